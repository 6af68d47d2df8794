//! The RLWE lattice layer shared by the workspace's two lattice schemes: RNS-CKKS (the `ckks`
//! crate) and the RLWE source of Beaver triples (`mpc::offline::rlwe`).
//!
//! It holds everything that is scheme-independent, so that security-critical code exists once:
//!
//! * [`arith`]: word-size modular arithmetic ([`Modulus`]: Barrett reduction, Shoup
//!   multiplication by constants, exponentiation and inversion modulo a prime);
//! * [`primes`]: the deterministic Miller–Rabin test and the search for NTT-friendly primes
//!   `p ≡ 1 (mod 2N)`;
//! * [`basis`]: an [`RnsBasis`] (degree, primes, their constants and `tfhe-ntt` NTT plans);
//! * [`poly`]: the RNS polynomial [`RnsPoly<R>`] with its representation (coefficients or NTT
//!   values) in the type, its arithmetic, NTT, automorphisms, rescaling, ModDown and fast base
//!   conversion, with vectorized word kernels (AVX-512/AVX2 by run-time dispatch, and
//!   AVX-512 IFMA copies of the key-switching ones for moduli below 2^50);
//! * [`sample`]: the samplers (uniform residues from a generator or a public seed, uniform
//!   ternary, the one discrete Gaussian with σ = 3.2 cut at 19);
//! * [`security`]: the HomomorphicEncryption.org 128-bit bound that every parameter set checks;
//! * [`pool`]: the process-wide recycling of residue buffers.
//!
//! ## Security assumptions
//!
//! Parameter sets claim 128-bit classical security under the Ring-LWE assumption as tabulated
//! by the HomomorphicEncryption.org Security Standard v1.1 for a uniform ternary secret and
//! errors of σ = 3.2 ([`security::max_log_qp_128`]); nothing here checks other secret or error
//! distributions. All randomness must come from a cryptographically secure generator (the
//! schemes use ChaCha20). The Gaussian sampler is constant-time (a full scan of its table per
//! draw); the ternary and uniform samplers reject a data-independent fraction of draws (which
//! reveals nothing about the accepted values). The word arithmetic has no secret-dependent
//! memory accesses, and its conditional corrections are comparisons that compilers usually lower
//! to conditional moves, which is not a guarantee: constant-time execution is not claimed for
//! the arithmetic (the deployments assume semi-honest parties that do not time each other). The
//! RNS buffers return to the pool uncleared: owners of secret polynomials zeroize them first
//! ([`RnsPoly::zeroize_data`]).
//!
//! ## Why hand-written
//!
//! No maintained pure-Rust crate provides RNS polynomials over `tfhe-ntt`'s 64-bit prime NTT
//! with a typed coefficient/NTT representation, pooled buffers and the exact centred base
//! conversion that CKKS key switching needs, nor the HE-standard parameter check; the NTT itself
//! is `tfhe-ntt`'s (Zama, with AVX-512 IFMA), and only the layer around it is ours.

#![warn(missing_docs)]

pub mod arith;
pub mod basis;
#[cfg(target_arch = "x86_64")]
mod ifma;
mod kernels;
pub mod poly;
pub mod pool;
pub mod primes;
pub mod sample;
pub mod security;

pub use arith::Modulus;
pub use basis::RnsBasis;
pub use poly::{Coeff, Ntt, Repr, RnsPoly};
pub use pool::{buffer_pool_bytes, trim_buffer_pool};
