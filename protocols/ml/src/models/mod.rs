//! Models written once against [`crate::Backend`].

pub mod linreg;
