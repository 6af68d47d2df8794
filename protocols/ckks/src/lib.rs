//! RNS-CKKS approximate homomorphic encryption in pure Rust.
//!
//! Implements the CKKS scheme of Cheon–Kim–Kim–Song ("Homomorphic Encryption for Arithmetic of
//! Approximate Numbers", ASIACRYPT 2017) in its full-RNS variant (Cheon–Han–Kim–Kim–Song, "A
//! Full RNS Variant of Approximate Homomorphic Encryption", SAC 2018), with hybrid key switching
//! (Han–Ki, "Better Bootstrapping for Approximate Homomorphic Encryption", CT-RSA 2020) and
//! hoisted rotations (Halevi–Shoup, CRYPTO 2014/2018). Parameter presets meet the 128-bit bounds
//! of the HomomorphicEncryption.org Security Standard v1.1 (ternary secret); see [`params`].

#![warn(missing_docs)]

pub mod arith;
pub mod ciphertext;
pub mod encoder;
pub mod error;
pub mod evaluator;
pub mod keys;
mod keyswitch;
pub mod params;
pub mod poly;
pub mod sampling;
pub mod serial;

pub use ciphertext::{Ciphertext, Ciphertext3};
pub use encoder::{Encoder, Plaintext, C64};
pub use error::{CkksError, Result};
pub use evaluator::{Evaluator, OpCounters, OpCounts, SCALE_TOLERANCE};
pub use keys::{
    galois_element_conjugate, galois_element_for_step, GaloisKeys, KeyGenerator, KeySwitchKey,
    PublicKey, RelinKey, SecretKey,
};
pub use params::{
    presets, CkksParams, CkksParamsBuilder, Dnum, Levels, LogN, Preset, PrimeBits, ScaleBits,
    SecurityLevel, SpecialPrimes,
};
#[cfg(test)]
mod scheme_tests;
