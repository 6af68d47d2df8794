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
//! 4. **switches modulus** from `Q` to `Q' = 2^w` (`w = 75` at `N = 16384`):
//!    `c' = ⌊Q'·c/Q⌉`, computed from the residues by the fast base conversion
//!    `Σ_i [c_i·(Q/q_i)^{-1}]_{q_i}·Q'/q_i ≡ Q'·c/Q (mod Q')` with the constants `Q'/q_i` in 64-bit
//!    fixed point (each of the five terms off by less than `2^50·2^-64`, so the rounding is off by
//!    at most `δ = 5·2^-14 < 2^-11.6`; no big integers are needed anywhere), and then **drops the
//!    low `d` bits of `c_0`** (`d = 9`: `c_0` travels at `w − d = 66` bits, rounded; Cheetah's
//!    trick, Huang et al. 2022 §4.1). `w` and `d` are the smallest response widths the decryption
//!    bound below allows ([`RlweParams::response_bits`], [`RlweParams::c0_bits`]).
//!
//! What the querier learns: `x − R` at the output coefficients (uniform, as `R` is), `c_1`
//! (pseudorandom under RLWE), and noise within statistical distance `2^-41` of simulated noise
//! over the run. Switching and dropping bits are deterministic functions of what the responder
//! would otherwise send, so they reveal nothing more. What the responder learns: only RLWE
//! ciphertexts under the querier's key — a query is a *symmetric* encryption
//! `(c_0 = −a·s + ⌊Q·m/t⌉ + e, a)` with `a` expanded by ChaCha20 from a fresh 32-byte seed drawn
//! for that query alone (never reused), sent as `(c_0, seed)`. Its security is RLWE with a
//! uniform `a` replaced by a PRG's output (PRG or random-oracle model), as in SEAL's seeded
//! ciphertexts and Cheetah's queries; the public key `(pk_0, seed)` is the same form.
//!
//! ## Decryption bound
//!
//! The querier computes `2^d·c_0' + c_1'·s ≡ 2^(w−64)·[x − R]_t + (Q'/Q)·E + 2^d·τ_0 + τ_1·s
//! (mod 2^w)`, where `τ_0` (`|τ_0| ≤ ½ + (½ + δ)·2^-d`) and `τ_1` (`|τ_{1,l}| ≤ ½ + δ`) are the
//! rounding errors. It decrypts correctly when the error is below `2^(w−65)` (1024 at `w = 75`):
//!
//! - `(Q'/Q)·E < 2^(75 + 167 − 249.9) < 2^-7`, with `E < 2^167 + 2^85.3 + 2^19.3` (flooding,
//!   product, re-randomization) and `Q > 2^249.9`;
//! - `2^d·|τ_0| ≤ 2^(d−1) + ½ + δ = 256.5`;
//! - `τ_1·s`: always at most `(½ + δ)·N ≈ 8197` (every secret coefficient nonzero) — too much for
//!   `w = 75`. Its coefficients are sums of at most `N` rounding errors `τ_{1,l}`, each in an
//!   interval of width `1 + 2δ` with mean within `δ` of 0. Treating them as independent and
//!   uniform — the standard average-case assumption of BFV/CKKS noise analyses (SEAL, Cheetah):
//!   `c_1` is pseudorandom after re-randomization, so its fractional parts `Q'·c_1/Q` are — the
//!   Hoeffding bound gives `|τ_1·s|_j ≤ N·δ + (1 + 2δ)·√(N·ln(2^(F+1))/2) = 5 + 678.6` except
//!   with probability `2^-F`, `F` = [`DECRYPT_FAILURE_LOG2`]` = 80`.
//!
//! The total, `941.1 + 1` of slack, is below 1024 (a margin of 0.12 bits; at the threshold itself
//! the Hoeffding tail is `2^-101`). So each output coefficient decrypts correctly except with
//! probability below `2^-80` (`2^-101` at the actual margin), and a run — at most `2^40` flooded
//! coefficients per responder ([`FloodLedger`](super::flood::FloodLedger)) — has no wrong triple
//! entry except with probability below `2^-61` per responder (a failure gives a wrong triple,
//! never a leak: the querier sees the same noise it would otherwise). At `w = 74` the same
//! failure target would not fit (678.6 > 512); at the test degree `N = 64` the worst-case bound
//! is the smaller one and is used. [`RlweParams::new`] chooses `w` then `d` by this bound, checks
//! it (and that the flood fits its sampler, `f ≤ 191`), and tests check the noise at the
//! worst-case magnitudes. Before (through link version 7) both halves travelled at the
//! worst-case width `w = 65 + log2 N = 79`: 162 KB of `c_1` and 10 bytes per output, now
//! 154 KB and 8.25 bytes (−5.1 % and −16 %). The querier computes `c_1'·s` as an exact integer
//! product by NTT over `q_0·q_1` (`|c_1'·s| ≤ N·2^75 = 2^89 < q_0·q_1/2 ≈ 2^99`) and reduces it
//! mod `2^w`.
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
