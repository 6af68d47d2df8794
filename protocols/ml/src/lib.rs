//! placeholder

pub mod stgcn;
