//! # ml — models written once, run on a plaintext or a secret-shared backend
//!
//! One model code path, two backends (ARCHITECTURE.md, "Data flow … (2PC)").
//! [`backend::Plain`] computes in `f64` (the *plaintext twin*, the reference every secure result
//! is compared with);
//! [`backend::Shared`] computes on 2PC shares with the `mpc` crate (SecureML). A third backend,
//! [`backend::Plan`], runs the same code on shapes only and records the preprocessing (triples)
//! the shared run will consume, so the offline phase can be done before going online.
//!
//! Models: [`models::linreg`] (SecureML §IV linear regression by mini-batch SGD; the power of two
//! of the learning rate over the batch size folds into a truncation, any other factor is one
//! public fixed-point multiply per update),
//! [`models::logreg`] (piecewise sigmoid) and [`models::mlp`] (ReLU, softmax) on every backend,
//! each with an optional intercept / layer biases on a public column of ones ([`models::bias`]).
//! Shared building blocks in [`ops`]: Newton's inverse square root, column statistics and
//! standardization of a table on shares, evaluation metrics (MSE, accuracy) of a trained model.
//! The plaintext ST-GCN family trained for encrypted inference is the separate `stgcn` crate,
//! which needs neither the 2PC backend nor `mpc`; [`models::stgcn_gates`] learns on it which
//! nodes keep their activation under a budget (plaintext, for the HE frontier).

pub mod backend;
pub mod error;
pub mod models;
pub mod ops;
pub mod schedule;

pub use backend::{Backend, Plain, Plan, Shared};
pub use error::MlError;
pub use schedule::Schedule;
