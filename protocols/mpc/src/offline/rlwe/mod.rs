//! RLWE additively homomorphic encryption over `R_Q = Z_Q[X]/(X^N + 1)` with plaintext modulus
//! `t = 2^64` and coefficient encoding — the lattice replacement for Paillier in SecureML's
//! LHE-based offline phase (Mohassel–Zhang, S&P 2017, §IV-B), in the style of Cheetah's HomFC
//! (Huang–Lu–Hong–Ding, USENIX Security 2022, §3–4). This module is the sans-I/O core: keys,
//! encryption of a query, the responder's plaintext products with re-randomization, noise flooding
//! and modulus switching, and decryption. [`super::he`] packs matrices into it and drives it.
//!
//! The ring arithmetic (NTT primes and plans, RNS polynomials, modular arithmetic, the samplers
//! and the HE-standard security bound) is the `lattice` crate's, shared with CKKS; this module
//! keeps what is specific to the triple source: [`params`] (the validated, named parameter set
//! and the `t = 2^64` encoding constants), [`poly`] (the RNS polynomial as this scheme uses it),
//! [`keys`] (keys, queries, responses and their wire formats), [`responder`] (the responder's
//! products, re-randomization, flooding and modulus switching) and `bits` (bit packing).
//!
//! ## Parameters ([`RlweParams::standard`], the preset [`N14_Q250_128BIT`])
//!
//! `N = 16384`; `Q = q_0·…·q_4`, the five largest primes below `2^50` with `q_i ≡ 1 mod 2N`
//! (NTT-friendly; `log2 Q ≈ 250.0`). The HomomorphicEncryption.org standard (v1.1, Table 1) allows
//! `log Q ≤ 438` at `N = 16384` for 128-bit classical security with a ternary secret, which
//! [`RlwePreset::build`] checks through `lattice::security`; here the
//! secret is uniform ternary, errors are discrete Gaussians with `σ = 3.2` cut at
//! [`ERROR_BOUND`]` = 19 ≈ 6σ`. The prime size keeps every NTT on tfhe-ntt's IFMA path. Degrees
//! below 16384 ([`RlweParams::new`]) exist only for tests and are **not secure**. `N = 8192`
//! would not do: its limit `log Q ≤ 218` leaves no room for the run-sized flooding below
//! (correct decryption needs `log Q > 65 + 167 = 232`).
//!
//! ## Encoding and the error analysis (t does not divide Q)
//!
//! A message `m ∈ Z_t[X]/(X^N+1)` is encrypted as `c_0 + c_1·s = ⌊Q·m/t⌉ + e (mod Q)` with
//! `c_1 = a` uniform (expanded from a 32-byte seed, so a query costs `c_0` and the seed). The
//! rounded scaling `⌊Q·m/t⌉ = Δ·m + ⌊r_t·m/t⌉` (`Δ = ⌊Q/t⌋`, `r_t = Q mod t`) is what makes
//! plaintext products cheap in noise. Write `Q·m/t = ⌊Q·m/t⌉ − ε`, `|ε| ≤ ½`. For a plaintext
//! `ŵ` with centered coefficients `|ŵ_l| ≤ 2^63`,
//!
//! ```text
//! (c_0 + c_1·s)·ŵ = (Q/t)·m·ŵ + (e + ε)·ŵ = (Q/t)·[m·ŵ]_t + Q·K + (e + ε)·ŵ
//!                 ≡ (Q/t)·[m·ŵ]_t + (e + ε)·ŵ        (mod Q),
//! ```
//!
//! since `m·ŵ = [m·ŵ]_t + t·K` for an integer polynomial `K`. So a product adds at most
//! `‖ŵ‖_1·(B_e + ½)` of error, where `‖ŵ‖_1 ≤ nnz(ŵ)·2^63` — about `N·t/2·20 ≈ 2^82` for a full
//! plaintext, not the `N·t²/4 ≈ 2^140` that the unrounded encoding `Δ·m` would add through
//! `r_t·K`. No limb decomposition of `ŵ` is needed; the plaintext never leaves the responder in
//! any form. A response sums the products of at most [`MAX_RESPONSE_NNZ`]` = 2^18` plaintext
//! entries, so its product error is below `2^18·2^63·(19 + ½) < 2^85.3`.
//!
//! ## Circuit privacy (what the querier learns)
//!
//! Semi-honest servers: the querier (key owner) follows the protocol and tries to learn the
//! responder's plaintext `ŵ` from what it receives. The responder returns `Enc(U·v − R)` where
//! `R` is its uniform share. Before sending it
//!
//! 1. **re-randomizes**: adds `(pk_0·u + e_0, pk_1·u + e_1)` with `u` ternary and `e_0, e_1`
//!    Gaussian under the querier's public key `pk = (−a'·s + e', a')` — without it `c_1 = a·ŵ`,
//!    with `a` known to the querier, would reveal `ŵ`. This adds `e'·u + e_0 + e_1·s`, at most
//!    `(2N + 1)·19 < 2^19.3`, and makes `c_1` an RLWE sample (pseudorandom);
//! 2. **floods** the noise of every coefficient the querier can decrypt with a uniform integer in
//!    `[−2^f, 2^f)`, `f` sized for the whole run by [`super::flood`]: `f = bits(E) + 40 + 40 + 1`
//!    where `E` bounds the product and re-randomization errors of this response's shape
//!    (`nnz` plaintext entries), so each coefficient is within statistical distance
//!    `E/2^f < 2^-81` of a simulation that knows only `x − R`, and the at most `2^40`
//!    coefficients a responder floods in a run (its
//!    [`FloodLedger`](super::flood::FloodLedger) refuses more) stay within `2^-41` together. At
//!    the largest response `f = 86 + 81 = 167`;
//! 3. sends `c_0` **only at the output coefficients** (the querier cannot decrypt the others, which
//!    carry partial sums of `U` with other rows' inputs) and all of `c_1`;
//! 4. **switches modulus** from `Q` to `Q' = 2^w`, `w = 65 + log2 N` (79 at `N = 16384`):
//!    `c' = ⌊Q'·c/Q⌉`, computed from the residues by the fast base conversion
//!    `Σ_i [c_i·(Q/q_i)^{-1}]_{q_i}·Q'/q_i ≡ Q'·c/Q (mod Q')` with the constants `Q'/q_i` in 64-bit
//!    fixed point (each of the five terms off by less than `2^50·2^-64`, so the rounding is off by
//!    at most `5·2^-14 < 2^-11.6`; no big integers are needed anywhere).
//!
//! What the querier learns: `x − R` at the output coefficients (uniform, as `R` is), `c_1`
//! (pseudorandom under RLWE), and noise within statistical distance `2^-41` of simulated noise
//! over the run. What the responder learns: only RLWE ciphertexts under the querier's key.
//!
//! ## Decryption bound
//!
//! After switching, `c_0' + c_1'·s ≡ 2^(w−64)·[x − R]_t + (Q'/Q)·E + τ_0 + τ_1·s (mod 2^w)` with
//! `|τ| ≤ ½ + 5·2^-14`. With `E < 2^167 + 2^85.3 + 2^19.3` (flooding, product, re-randomization)
//! and `Q > 2^249.9`, `(Q'/Q)·E < 2^(79 + 167 − 250) = 2^-4`; `‖τ_1·s‖∞ ≤ (½ + 5·2^-14)·N`
//! (worst case, every secret coefficient nonzero). The total, below `0.5004·(N + 1) + 1.07
//! ≈ 8199`, is under `2^(w−65) = N = 16384` (a margin of 1.0 bit), so rounding `phase/2^(w−64)`
//! recovers `[x − R]_t` exactly; [`RlweParams::new`] checks this inequality (and that the flood
//! fits its sampler, `f ≤ 191`) and tests check it at the worst-case magnitudes. The querier
//! computes `c_1'·s` as an exact integer product by NTT over `q_0·q_1`
//! (`|c_1'·s| ≤ N·2^79 = 2^93 < q_0·q_1/2 ≈ 2^99`) and reduces it mod `2^w`.
//!
//! Randomness: every key, seed, noise and share comes from ChaCha20 seeded by the operating system
//! (the caller passes the generator). Secret keys are zeroized on drop. The Gaussian sampler is
//! the lattice crate's constant-time table inversion; the flooding sampler ([`super::flood`]) and
//! the rejection in the uniform and ternary samplers are not constant-time (semi-honest servers,
//! offline phase).

mod bits;
pub mod keys;
pub mod params;
pub mod poly;
pub mod responder;
#[cfg(test)]
pub(crate) mod tests;

pub use keys::{ExpandedQuery, PublicKey, Query, Response, SecretKey};
pub use lattice::sample::{ERROR_BOUND, SIGMA};
pub use params::{RlweParams, RlwePreset, N14_Q250_128BIT};
pub use poly::{Coeff, Ntt, Poly};
pub use responder::respond;

/// log2 of the ring degree of the standard (128-bit) parameters.
pub const STANDARD_LOG_N: u32 = 14;
/// Number of RNS primes in `Q`.
pub const PRIMES: usize = 5;
/// Every prime of `Q` lies in `(2^(PRIME_BITS−1), 2^PRIME_BITS)`.
pub const PRIME_BITS: u32 = 50;
/// Largest number of plaintext entries whose products one response sums.
pub const MAX_RESPONSE_NNZ: usize = 1 << 18;
/// Statistical security of noise flooding over a whole run, in bits.
pub const FLOOD_STAT_BITS: u32 = 40;
/// log2 of the run budget: the most output coefficients one responder floods per run
/// ([`FloodLedger`](super::flood::FloodLedger)).
pub const RUN_FLOOD_BUDGET_LOG2: u32 = 40;
/// log2 of the largest probability that one output coefficient of a response decrypts wrongly
/// (the response widths of [`RlweParams`] are chosen for it; see the module docs).
pub const DECRYPT_FAILURE_LOG2: u32 = 80;
/// Widest flooding noise the sampler draws (`[−2^b, 2^b)` with `b ≤ 128 + 63`).
const MAX_SAMPLED_FLOOD_BITS: u32 = 191;
/// Bound on the error of the fast base conversion in [`RlweParams`]' modulus switching: each of
/// the `PRIMES` terms is off by less than `2^PRIME_BITS·2^-64`.
const SWITCH_ROUNDING: f64 = PRIMES as f64 / (1u64 << (64 - PRIME_BITS)) as f64;
/// Bytes of a seed.
pub const SEED_BYTES: usize = lattice::sample::SEED_BYTES;
