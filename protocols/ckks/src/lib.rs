//! RNS-CKKS approximate homomorphic encryption in pure Rust.
//!
//! Implements the CKKS scheme of Cheon–Kim–Kim–Song ("Homomorphic Encryption for Arithmetic of
//! Approximate Numbers", ASIACRYPT 2017) in its full-RNS variant (Cheon–Han–Kim–Kim–Song, "A
//! Full RNS Variant of Approximate Homomorphic Encryption", SAC 2018), with hybrid key switching
//! (Han–Ki, "Better Bootstrapping for Approximate Homomorphic Encryption", CT-RSA 2020) and
//! hoisted rotations (Halevi–Shoup, CRYPTO 2014/2018). Parameter presets meet the 128-bit bounds
//! of the HomomorphicEncryption.org Security Standard v1.1 (ternary secret); see [`params`].
//!
//! Modules: [`params`] (validated parameters, prime chain, presets), [`arith`] (Barrett/Shoup
//! word arithmetic), [`poly`] (RNS polynomials with the coefficient/NTT representation in the
//! type, NTT via `tfhe-ntt`, base conversion, rescale, automorphisms), [`encoder`] (canonical
//! embedding), [`keys`] (secret/public/relinearization/Galois keys), [`evaluator`] (homomorphic
//! operations and operation counters), [`serial`] (validated, size-limited serialization),
//! [`sampling`] (ChaCha20-based ternary/Gaussian/uniform sampling), [`sanitize`] (re-randomizing
//! and noise-flooding a result before it goes back to the key owner) and [`pool`] (process-wide
//! recycling of polynomial buffers, as SEAL's memory pool).
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
//! Single-thread latency against Microsoft SEAL 4.1 (TenSEAL 0.3.18) at the same N, chain and
//! scale: `cargo bench -p ckks --bench ckks_ops` against `experiments/baselines/ckks_seal.py`,
//! both reporting the median over 10 samples of the mean time per call in ~0.2 s batches (see
//! the bench for what each operation includes). Ratio Dyad/SEAL measured 2026-11-27 in one
//! sitting, interleaved Dyad–SEAL–Dyad, on the shared 2-core development machine under load
//! average 23–35 (other builds running); the load inflated SEAL's figures more than Dyad's, so
//! the same-sitting speed-up over the previous implementation (commit `67c15a0`), times that
//! implementation's quiet-machine ratio, is given as a second estimate:
//!
//! | operation          | 2^14 loaded | 2^14 speed-up × quiet | 2^15 loaded | 2^15 speed-up × quiet |
//! |--------------------|------------:|----------------------:|------------:|----------------------:|
//! | encode             | 0.64        | —                     | 0.47        | —                     |
//! | encrypt (pk)       | 0.32        | —                     | 0.21        | —                     |
//! | decrypt + decode   | 0.77        | —                     | 0.33        | —                     |
//! | add                | 0.64        | 0.92 × 0.69 ≈ 0.64    | 0.44        | 0.42 × 0.84 ≈ 0.35    |
//! | pt × ct            | 0.27        | 0.77 × 0.26 ≈ 0.20    | 0.46        | 0.97 × 0.35 ≈ 0.34    |
//! | ct × ct + relin    | 0.43        | 0.42 × 0.81 ≈ 0.34    | 0.27        | 0.29 × 0.93 ≈ 0.27    |
//! | rescale            | 0.38        | 0.78 × 0.75 ≈ 0.59    | 0.23        | 0.39 × 0.92 ≈ 0.36    |
//! | rotate             | 0.49        | 0.51 × 0.90 ≈ 0.46    | 0.25        | 0.28 × 0.90 ≈ 0.25    |
//! | 16 rotations       | 0.44        | 0.48 × 1.15 ≈ 0.55    | 0.28        | 0.34 × 0.68 ≈ 0.23    |
//! | 16 hoisted (vs 16) | 0.26        | 0.46 × 0.60 ≈ 0.28    | 0.14        | 0.42 × 0.30 ≈ 0.13    |
//! | Galois keygen      | 0.30        | 0.70 × 0.48 ≈ 0.34    | 0.20        | 0.63 × 0.21 ≈ 0.13    |
//!
//! Encoding was made faster after that table (2026-11-28): the special FFT reads precomputed
//! per-stage twiddles (no index modulo per butterfly) and coefficients below 2^62 (values of
//! order one at scale ≤ 2^61, the usual case) are converted in hardware and reduced with a
//! single-word Barrett step instead of the 128-bit one. At N = 2^15, level 11, one thread:
//! 3.1 ms of CPU time per `encode` against 6.1 ms before (user time of 1,000 encodes, two runs of each; the two
//! builds run alternately on the loaded 2-core machine), so the encode column above would now
//! be about 0.24 (derived as 0.47 × 3.1 / 6.1, not measured against SEAL).
//!
//! Run-to-run spread under that load was up to 2× for the short operations (decrypt, add, pt×ct),
//! and the load fell from ~25 to ~17 between the old and new N = 2^15 runs, so the 2^15 speed-ups
//! are overstated; a quiet-machine rerun should replace this table. A second N = 2^14 sitting
//! (load average 15–19) gave: encode 0.57, encrypt 0.32, decrypt 0.43, add 0.49, pt×ct 0.26,
//! ct×ct+relin 0.42, rescale 0.33, rotate 0.41, 16 rotations 0.39, 16 hoisted 0.22, Galois
//! keygen 0.34.
//!
//! What makes the difference: results and temporaries live in recycled buffers ([`pool`], as
//! SEAL's memory pool) and are written once; the RNS passes outside the NTT (base conversion,
//! ModDown, rescale, additions) are vectorized for AVX-512/AVX2 with run-time dispatch; the
//! NTT is `tfhe-ntt`'s (AVX-512 IFMA below 2^50); hybrid key switching with `dnum` digits needs
//! fewer NTTs than SEAL's one-digit-per-prime switching.

#![warn(missing_docs)]

pub mod arith;
pub mod ciphertext;
pub mod encoder;
pub mod error;
pub mod evaluator;
mod kernels;
pub mod keys;
mod keyswitch;
pub mod params;
pub mod poly;
pub mod pool;
pub mod sampling;
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
pub use params::{
    presets, CkksParams, CkksParamsBuilder, Dnum, Levels, LogN, Preset, PrimeBits, ScaleBits,
    SecurityLevel, SpecialPrimes,
};
pub use pool::{buffer_pool_bytes, trim_buffer_pool};
pub use sanitize::Flood;
#[cfg(test)]
mod scheme_tests;
