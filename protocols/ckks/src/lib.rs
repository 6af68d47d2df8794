//! RNS-CKKS approximate homomorphic encryption in pure Rust.
//!
//! Implements the CKKS scheme of Cheon–Kim–Kim–Song ("Homomorphic Encryption for Arithmetic of
//! Approximate Numbers", ASIACRYPT 2017) in its full-RNS variant (Cheon–Han–Kim–Kim–Song, "A
//! Full RNS Variant of Approximate Homomorphic Encryption", SAC 2018), with hybrid key switching
//! (Han–Ki, "Better Bootstrapping for Approximate Homomorphic Encryption", CT-RSA 2020) and
//! hoisted rotations (Halevi–Shoup, CRYPTO 2014/2018). Parameter presets meet the 128-bit bounds
//! of the HomomorphicEncryption.org Security Standard v1.1 (ternary secret); see [`params`].
//!
//! Modules: [`params`] (validated parameters, prime chain, presets), [`encoder`] (canonical
//! embedding), [`keys`] (secret/public/relinearization/Galois keys), [`evaluator`] (homomorphic
//! operations and operation counters), [`lazy`] (hoisted rotations kept over `Q·P` and summed
//! before one ModDown: double hoisting), [`serial`] (validated, size-limited serialization) and
//! [`sanitize`] (re-randomizing and noise-flooding a result before it goes back to the key
//! owner). The scheme-independent layer comes from the `lattice` crate and is re-exported
//! at its former paths: [`arith`] (Barrett/Shoup word arithmetic), [`poly`] (RNS polynomials
//! with the coefficient/NTT representation in the type, NTT via `tfhe-ntt`, base conversion,
//! rescale, automorphisms), [`sampling`] (ChaCha20-based ternary/Gaussian/uniform sampling) and
//! [`pool`] (process-wide recycling of polynomial buffers, as SEAL's memory pool).
//!
//! ```
//! use ckks::{presets, Encoder, Evaluator, KeyGenerator};
//!
//! let params = presets::N13_L3_S40_128BIT.build()?;
//! let mut keygen = KeyGenerator::new(&params);
//! let sk = keygen.secret_key();
//! let pk = keygen.public_key(&sk)?;
//! let eval = Evaluator::new(&params)
//!     .with_relin_key(keygen.relin_key(&sk)?)
//!     .with_galois_keys(keygen.galois_keys(&sk, &[1], false)?);
//! let encoder = Encoder::new(&params);
//!
//! let x = [0.5, -1.0, 2.0];
//! let ct = pk.encrypt(&encoder.encode(&x, params.max_level(), params.default_scale())?)?;
//! let sq = eval.rescale(&eval.mul(&ct, &ct)?)?; // x², one level consumed
//! let rot = eval.rotate(&sq, 1)?; // slots shifted left by one
//! let out = encoder.decode(&sk.decrypt(&rot)?);
//! assert!((out[0] - 1.0).abs() < 1e-4 && (out[1] - 4.0).abs() < 1e-4);
//! assert_eq!(eval.counters().rotate, 1);
//! # Ok::<(), ckks::CkksError>(())
//! ```

//! # Performance
//!
//! Dated measurements against Microsoft SEAL 4.1 (`cargo bench -p ckks --bench ckks_ops` against
//! `experiments/baselines/ckks_seal.py`), with the sittings, loads and dates they were taken
//! under, are kept beside the benches in `protocols/ckks/BENCHMARKS.md`.

#![warn(missing_docs)]

pub use lattice::arith;
pub mod ciphertext;
pub mod cost;
pub mod encoder;
pub mod error;
pub mod evaluator;
pub mod keys;
mod keyswitch;
pub mod lazy;
pub mod params;
pub use lattice::poly;
pub use lattice::pool;
pub use lattice::sample as sampling;
pub mod sanitize;
pub mod serial;

pub use ciphertext::{Ciphertext, Ciphertext3};
pub use encoder::{Encoder, Plaintext, C64};
pub use error::{CkksError, Result};
pub use evaluator::{Evaluator, OpCounters, OpCounts, SCALE_TOLERANCE};
pub use keys::{
    galois_element_conjugate, galois_element_for_step, GaloisKeys, KeyGenerator, KeySwitchKey,
    PublicKey, RelinKey, SecretKey,
};
pub use lazy::ExtCiphertext;
pub use params::{
    presets, CkksParams, CkksParamsBuilder, Dnum, Levels, LogN, Preset, PrimeBits, ScaleBits,
    SecurityLevel, SpecialPrimes,
};
pub use pool::{buffer_pool_bytes, trim_buffer_pool};
pub use sanitize::{Flood, FloodConfig};
#[cfg(test)]
mod lazy_tests;
#[cfg(test)]
mod restricted_key_tests;
#[cfg(test)]
mod scheme_tests;
