//! placeholder

pub mod skeleton;
