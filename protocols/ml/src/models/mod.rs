//! Models written once against [`crate::Backend`], and [`train`], the one dispatch over them.

pub mod bias;
pub mod cnn;
mod dispatch;
mod hyper;
pub mod linreg;
pub mod logreg;
pub mod mlp;
pub mod stgcn;
pub mod stgcn_gates;

pub use dispatch::{train, Model};

#[cfg(test)]
mod intercept_tests;
#[cfg(test)]
mod tests;
