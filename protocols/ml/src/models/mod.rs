//! Models written once against [`crate::Backend`].

pub mod linreg;
pub mod logreg;
pub mod mlp;

#[cfg(test)]
mod tests;
