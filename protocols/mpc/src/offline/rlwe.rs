//! RLWE additively homomorphic encryption over `R_Q = Z_Q[X]/(X^N + 1)` with plaintext modulus
//! `t = 2^64` and coefficient encoding — the lattice replacement for Paillier in SecureML's
//! LHE-based offline phase (Mohassel–Zhang, S&P 2017, §IV-B), in the style of Cheetah's HomFC
//! (Huang–Lu–Hong–Ding, USENIX Security 2022, §3–4). This module is the sans-I/O core: keys,
//! encryption of a query, the responder's plaintext products with re-randomization, noise flooding
//! and modulus switching, and decryption. [`super::he`] packs matrices into it and drives it.
//!
//! ## Parameters ([`RlweParams::standard`])
//!
//! `N = 16384`; `Q = q_0·…·q_4`, the five largest primes below `2^50` with `q_i ≡ 1 mod 2N`
//! (NTT-friendly; `log2 Q ≈ 250.0`). The HomomorphicEncryption.org standard (v1.1, Table 1) allows
//! `log Q ≤ 438` at `N = 16384` for 128-bit classical security with a ternary secret; here the
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
//!    coefficients a responder floods in a run (its [`FloodLedger`] refuses more) stay within
//!    `2^-41` together. At the largest response `f = 86 + 81 = 167`;
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
//! (the caller passes the generator). Secret keys are zeroized on drop. The samplers are not
//! constant-time (semi-honest servers, offline phase).

use super::flood::{self, FloodLedger, FloodNoise};
use crate::error::{MpcError, Result};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::marker::PhantomData;
use tfhe_ntt::fastdiv::Div64;
use tfhe_ntt::prime::{exp_mod64, largest_prime_in_arithmetic_progression64, mul_mod64};
use tfhe_ntt::prime64::Plan;
use zeroize::Zeroize;

/// log2 of the ring degree of the standard (128-bit) parameters.
pub const STANDARD_LOG_N: u32 = 14;
/// Number of RNS primes in `Q`.
pub const PRIMES: usize = 5;
/// Every prime of `Q` lies in `(2^(PRIME_BITS−1), 2^PRIME_BITS)`.
pub const PRIME_BITS: u32 = 50;
/// Standard deviation of the error distribution.
pub const SIGMA: f64 = 3.2;
/// Errors are cut at `|e| ≤ ERROR_BOUND` (≈ 6σ).
pub const ERROR_BOUND: i64 = 19;
/// Largest number of plaintext entries whose products one response sums.
pub const MAX_RESPONSE_NNZ: usize = 1 << 18;
/// Statistical security of noise flooding over a whole run, in bits.
pub const FLOOD_STAT_BITS: u32 = 40;
/// log2 of the run budget: the most output coefficients one responder floods per run
/// ([`FloodLedger`]).
pub const RUN_FLOOD_BUDGET_LOG2: u32 = 40;
/// Widest flooding noise the sampler draws (`[−2^b, 2^b)` with `b ≤ 128 + 63`).
const MAX_SAMPLED_FLOOD_BITS: u32 = 191;
/// Bound on the error of the fast base conversion in [`RlweParams::switch_residues`]: each of
/// the `PRIMES` terms is off by less than `2^PRIME_BITS·2^-64`.
const SWITCH_ROUNDING: f64 = PRIMES as f64 / (1u64 << (64 - PRIME_BITS)) as f64;
/// Bytes of a seed.
pub const SEED_BYTES: usize = 32;

/// Marker: a polynomial in coefficient representation.
#[derive(Debug, Clone, Copy)]
pub enum Coeff {}
/// Marker: a polynomial in (negacyclic, bit-reversed) NTT representation.
#[derive(Debug, Clone, Copy)]
pub enum Ntt {}

/// An RNS polynomial: `limbs` residue polynomials of `N` coefficients each, limb-major. The
/// representation (coefficients or NTT values) is part of the type, so the two cannot be mixed.
#[derive(Clone, PartialEq, Eq)]
pub struct Poly<D> {
    data: Vec<u64>,
    _d: PhantomData<D>,
}

impl<D> std::fmt::Debug for Poly<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Poly({} words)", self.data.len())
    }
}

impl<D> Poly<D> {
    fn zero(limbs: usize, n: usize) -> Self {
        Self {
            data: vec![0; limbs * n],
            _d: PhantomData,
        }
    }

    /// The residues modulo prime `i`.
    pub fn limb(&self, i: usize, n: usize) -> &[u64] {
        &self.data[i * n..(i + 1) * n]
    }

    fn limb_mut(&mut self, i: usize, n: usize) -> &mut [u64] {
        &mut self.data[i * n..(i + 1) * n]
    }

    fn limbs(&self, n: usize) -> usize {
        self.data.len() / n
    }
}

impl Poly<Coeff> {
    /// Forward NTT of every limb.
    pub fn into_ntt(mut self, p: &RlweParams) -> Poly<Ntt> {
        for i in 0..self.limbs(p.n) {
            p.plans[i].fwd(self.limb_mut(i, p.n));
        }
        Poly {
            data: self.data,
            _d: PhantomData,
        }
    }

    /// The polynomial with signed integer coefficients `v` (length `N`), on the first `limbs`
    /// primes.
    pub fn from_signed(p: &RlweParams, v: &[i64], limbs: usize) -> Self {
        let mut out = Self::zero(limbs, p.n);
        for i in 0..limbs {
            let l = out.limb_mut(i, p.n);
            for (o, &x) in l.iter_mut().zip(v) {
                *o = p.reduce_i64(i, x);
            }
        }
        out
    }
}

impl Poly<Ntt> {
    /// Inverse NTT of every limb (scaled, so the result is the polynomial itself).
    pub fn into_coeff(mut self, p: &RlweParams) -> Poly<Coeff> {
        for i in 0..self.limbs(p.n) {
            let l = self.limb_mut(i, p.n);
            p.plans[i].inv(l);
            p.plans[i].normalize(l);
        }
        Poly {
            data: self.data,
            _d: PhantomData,
        }
    }

    /// `self += a ⊙ b` on the limbs of `self`.
    pub fn mul_acc(&mut self, p: &RlweParams, a: &Poly<Ntt>, b: &Poly<Ntt>) {
        for i in 0..self.limbs(p.n) {
            let (n, plan) = (p.n, &p.plans[i]);
            plan.mul_accumulate(
                &mut self.data[i * n..(i + 1) * n],
                a.limb(i, n),
                b.limb(i, n),
            );
        }
    }
}

/// Validated parameters with their precomputed constants.
pub struct RlweParams {
    log_n: u32,
    n: usize,
    primes: Vec<u64>,
    divs: Vec<Div64>,
    plans: Vec<Plan>,
    /// `⌊Q/t⌋ mod q_i`.
    delta: Vec<u64>,
    /// Shoup companions `⌊delta_i·2^64/q_i⌋`.
    delta_shoup: Vec<u64>,
    /// `⌊2^64/q_i⌋` (reduction of 64-bit integers).
    one_shoup: Vec<u64>,
    /// `Q mod 2^64`.
    q_mod_t: u64,
    /// Bits of the response modulus `Q' = 2^w`.
    response_bits: u32,
    /// `(Q/q_i)^{-1} mod q_i` and its Shoup companion.
    rho: Vec<(u64, u64)>,
    /// `Q'/q_i = int + frac/2^64`.
    switch: Vec<(u128, u64)>,
    /// `q_0^{-1} mod q_1`.
    q0_inv_q1: u64,
    /// `2^128 mod q_i` (reduction of the flooding noise's high word).
    two128: Vec<u64>,
    log_q: f64,
    gauss_cdf: Vec<u64>,
}

impl std::fmt::Debug for RlweParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RlweParams(N = 2^{}, log Q = {:.1}, t = 2^64, Q' = 2^{})",
            self.log_n, self.log_q, self.response_bits
        )
    }
}

/// `e mod p` for a small `|e| < p`.
#[inline(always)]
fn small_mod(e: i64, p: u64) -> u64 {
    if e < 0 {
        p - e.unsigned_abs()
    } else {
        e as u64
    }
}

/// `⌊w·2^64/p⌋`, the Shoup companion of a constant `w < p`.
fn shoup(w: u64, p: u64) -> u64 {
    (((w as u128) << 64) / p as u128) as u64
}

/// `x·w mod p` for any 64-bit `x`, with `ws = shoup(w, p)` and `p < 2^63`.
#[inline(always)]
fn mul_shoup(x: u64, w: u64, ws: u64, p: u64) -> u64 {
    let qh = ((x as u128 * ws as u128) >> 64) as u64;
    let y = x.wrapping_mul(w).wrapping_sub(qh.wrapping_mul(p));
    if y >= p {
        y - p
    } else {
        y
    }
}

fn inv_mod(x: u64, p: u64) -> u64 {
    exp_mod64(Div64::new(p), x % p, p - 2)
}

impl RlweParams {
    /// The 128-bit parameters: `N = 16384`, `log Q ≈ 250`.
    pub fn standard() -> Self {
        Self::new(STANDARD_LOG_N).expect("the standard parameters are valid")
    }

    /// Parameters of degree `2^log_n` with the same modulus size. Only `log_n = 14` is the secure
    /// set; smaller degrees are for tests of the algebra. Checks the decryption bound of the
    /// module docs with the widest flooding noise.
    pub fn new(log_n: u32) -> Result<Self> {
        if !(6..=STANDARD_LOG_N).contains(&log_n) {
            return Err(MpcError::InvalidHeParams {
                what: "log2 of the ring degree",
                value: log_n as u64,
                max: STANDARD_LOG_N as u64,
            });
        }
        let n = 1usize << log_n;
        let mut primes = Vec::with_capacity(PRIMES);
        let mut hi = (1u64 << PRIME_BITS) - 1;
        while primes.len() < PRIMES {
            let p = largest_prime_in_arithmetic_progression64(
                2 * n as u64,
                1,
                1u64 << (PRIME_BITS - 1),
                hi,
            )
            .expect("primes 1 mod 2N exist below 2^50");
            primes.push(p);
            hi = p - 1;
        }
        let divs: Vec<Div64> = primes.iter().map(|&p| Div64::new(p)).collect();
        let plans = primes
            .iter()
            .map(|&p| Plan::try_new(n, p).expect("p = 1 mod 2N, so the NTT plan exists"))
            .collect();
        let q_mod_t = primes.iter().fold(1u64, |a, &p| a.wrapping_mul(p));
        // ⌊Q/t⌋ = (Q − r_t)/t ≡ −r_t · t^{-1} (mod q_i).
        let delta: Vec<u64> = primes
            .iter()
            .zip(&divs)
            .map(|(&p, &d)| {
                let t_mod = Div64::rem_u128(1u128 << 64, d);
                let r = Div64::rem(q_mod_t, d);
                mul_mod64(d, (p - r) % p, inv_mod(t_mod, p))
            })
            .collect();
        let delta_shoup = delta
            .iter()
            .zip(&primes)
            .map(|(&d, &p)| shoup(d, p))
            .collect();
        let one_shoup = primes.iter().map(|&p| shoup(1, p)).collect();
        let rho = (0..PRIMES)
            .map(|i| {
                let p = primes[i];
                let d = divs[i];
                let prod = (0..PRIMES)
                    .filter(|&j| j != i)
                    .fold(1u64, |a, j| mul_mod64(d, a, primes[j] % p));
                let r = inv_mod(prod, p);
                (r, shoup(r, p))
            })
            .collect();
        let response_bits = 65 + log_n;
        let switch = primes
            .iter()
            .map(|&p| {
                let big = 1u128 << response_bits;
                let int = big / p as u128;
                let rem = big % p as u128;
                (int, ((rem << 64) / p as u128) as u64)
            })
            .collect();
        let q0_inv_q1 = inv_mod(primes[0], primes[1]);
        let two128 = divs
            .iter()
            .map(|&d| {
                let r = Div64::rem_u128(1u128 << 64, d);
                mul_mod64(d, r, r)
            })
            .collect();
        let log_q = primes.iter().map(|&p| (p as f64).log2()).sum();
        let gauss_cdf = gaussian_cdf();
        let params = Self {
            log_n,
            n,
            primes,
            divs,
            plans,
            delta,
            delta_shoup,
            one_shoup,
            q_mod_t,
            response_bits,
            rho,
            switch,
            q0_inv_q1,
            two128,
            log_q,
            gauss_cdf,
        };
        params.check_bounds()?;
        Ok(params)
    }

    /// The ring degree.
    pub fn degree(&self) -> usize {
        self.n
    }

    /// `log2 Q`.
    pub fn log_q(&self) -> f64 {
        self.log_q
    }

    /// The primes of `Q`.
    pub fn primes(&self) -> &[u64] {
        &self.primes
    }

    /// Bits `w` of the response modulus `2^w`.
    pub fn response_bits(&self) -> u32 {
        self.response_bits
    }

    /// The inequalities of the module docs: the widest flooding noise can be sampled, and the
    /// worst-case response decrypts exactly.
    fn check_bounds(&self) -> Result<()> {
        let bits = self.max_flood_bits();
        if bits > MAX_SAMPLED_FLOOD_BITS {
            return Err(MpcError::InvalidHeParams {
                what: "bits of the flooding noise",
                value: bits as u64,
                max: MAX_SAMPLED_FLOOD_BITS as u64,
            });
        }
        let err = self.worst_case_response_error();
        let threshold = 2f64.powi(self.response_bits as i32 - 65);
        if err >= threshold {
            return Err(MpcError::InvalidHeParams {
                what: "worst-case decryption error of a response",
                value: err.ceil() as u64,
                max: threshold as u64,
            });
        }
        Ok(())
    }

    /// Bits of the flooding noise of the largest response ([`MAX_RESPONSE_NNZ`] entries).
    pub fn max_flood_bits(&self) -> u32 {
        flood::flood_bits(self.n, MAX_RESPONSE_NNZ)
    }

    /// Worst-case decryption error of a response after modulus switching (see the module docs):
    /// the largest response, flooded at its full width.
    pub fn worst_case_response_error(&self) -> f64 {
        let n = self.n as f64;
        let noise = flood::response_noise(self.n, MAX_RESPONSE_NNZ) as f64;
        let e = 2f64.powi(self.max_flood_bits() as i32) + noise;
        let scaled = e * 2f64.powf(self.response_bits as f64 - self.log_q);
        let tau = (0.5 + SWITCH_ROUNDING) * (n + 1.0);
        scaled + tau + 1.0
    }

    /// log2 of (decryption threshold `2^(w−65)` / worst-case error); positive means correct.
    pub fn noise_margin_bits(&self) -> f64 {
        (self.response_bits as f64 - 65.0) - self.worst_case_response_error().log2()
    }

    /// `flood mod q_i`.
    fn reduce_flood(&self, i: usize, f: FloodNoise) -> u64 {
        let hi = self.reduce_i64(i, f.hi);
        let lo = Div64::rem_u128(f.lo, self.divs[i]);
        let s = mul_mod64(self.divs[i], hi, self.two128[i]) + lo;
        let q = self.primes[i];
        if s >= q {
            s - q
        } else {
            s
        }
    }

    fn reduce_i64(&self, i: usize, x: i64) -> u64 {
        let p = self.primes[i];
        let r = mul_shoup(x.unsigned_abs(), 1, self.one_shoup[i], p);
        if x < 0 && r != 0 {
            p - r
        } else {
            r
        }
    }

    /// `⌊Q·m/t⌉ mod q_i` for `m ∈ [0, 2^64)`.
    fn encode_scaled(&self, i: usize, m: u64) -> u64 {
        let hi = ((self.q_mod_t as u128 * m as u128 + (1u128 << 63)) >> 64) as u64;
        let a = mul_shoup(m, self.delta[i], self.delta_shoup[i], self.primes[i]);
        let b = Div64::rem(hi, self.divs[i]);
        let s = a + b;
        if s >= self.primes[i] {
            s - self.primes[i]
        } else {
            s
        }
    }

    /// `⌊Q'·c/Q⌉ mod Q'` from the residues `x(i) = c mod q_i` of one coefficient.
    #[inline]
    fn switch_residues(&self, x: impl Fn(usize) -> u64) -> u128 {
        let mut int = 0u128;
        let mut frac = 0u128;
        for i in 0..PRIMES {
            let (r, rs) = self.rho[i];
            let y = mul_shoup(x(i), r, rs, self.primes[i]);
            int += y as u128 * self.switch[i].0;
            frac += y as u128 * self.switch[i].1 as u128;
        }
        (int + ((frac + (1u128 << 63)) >> 64)) & self.response_mask()
    }

    fn response_mask(&self) -> u128 {
        (1u128 << self.response_bits) - 1
    }

    fn sample_gaussian(&self, rng: &mut impl RngCore) -> i64 {
        let r = rng.next_u64();
        let idx = self.gauss_cdf.partition_point(|&c| c <= r);
        idx.min(self.gauss_cdf.len() - 1) as i64 - ERROR_BOUND
    }

    fn sample_ternary(&self, rng: &mut impl RngCore) -> Vec<i64> {
        let mut out = Vec::with_capacity(self.n);
        while out.len() < self.n {
            let w = rng.next_u64();
            for b in w.to_le_bytes() {
                if b < 255 && out.len() < self.n {
                    out.push(i64::from(b % 3) - 1);
                }
            }
        }
        out
    }

    /// A uniform polynomial in NTT form, expanded from a public seed (identically on both sides).
    pub fn expand_uniform(&self, seed: &[u8; SEED_BYTES]) -> Poly<Ntt> {
        let mut rng = ChaCha20Rng::from_seed(*seed);
        let mut out = Poly::<Ntt>::zero(PRIMES, self.n);
        let shift = 64 - PRIME_BITS;
        // One bulk fill, then the rare rejections (2^50 − q_i is a few multiples of 2N) redrawn in order.
        rng.fill_bytes(bytemuck::cast_slice_mut(&mut out.data));
        for i in 0..PRIMES {
            let p = self.primes[i];
            for o in out.limb_mut(i, self.n) {
                *o = u64::from_le(*o) >> shift;
                while *o >= p {
                    *o = rng.next_u64() >> shift;
                }
            }
        }
        out
    }

    /// Bytes of a serialized query: the seed and `c_0` in NTT form, `PRIME_BITS` bits per residue.
    pub fn query_bytes(&self) -> usize {
        SEED_BYTES + (PRIMES * self.n * PRIME_BITS as usize).div_ceil(8)
    }

    /// Bytes of a serialized public key (same layout as a query).
    pub fn public_key_bytes(&self) -> usize {
        self.query_bytes()
    }

    /// Bytes of a serialized response with `outputs` output coefficients.
    pub fn response_bytes(&self, outputs: usize) -> usize {
        ((self.n + outputs) * self.response_bits as usize).div_ceil(8)
    }
}

/// Cumulative thresholds (scaled to 2^64) of the discrete Gaussian on `[−B, B]`.
fn gaussian_cdf() -> Vec<u64> {
    let w: Vec<f64> = (-ERROR_BOUND..=ERROR_BOUND)
        .map(|x| (-((x * x) as f64) / (2.0 * SIGMA * SIGMA)).exp())
        .collect();
    let total: f64 = w.iter().sum();
    let mut acc = 0.0;
    let mut out: Vec<u64> = w
        .iter()
        .map(|x| {
            acc += x / total;
            (acc * 18_446_744_073_709_551_616.0).min(u64::MAX as f64) as u64
        })
        .collect();
    *out.last_mut().expect("non-empty") = u64::MAX;
    out
}

/// A ternary secret key (coefficients and NTT form). Zeroized on drop; `Debug` hides it.
pub struct SecretKey {
    s: Vec<i64>,
    s_ntt: Poly<Ntt>,
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<hidden>)")
    }
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.s.zeroize();
        self.s_ntt.data.zeroize();
    }
}

/// A public key `(b, a) = (−a·s + e, a)` with `a` expanded from `seed`.
#[derive(Clone)]
pub struct PublicKey {
    seed: [u8; SEED_BYTES],
    b: Poly<Ntt>,
    a: Poly<Ntt>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PublicKey(RLWE)")
    }
}

/// A fresh encryption under the secret key: `c_0` in NTT form and the seed of `c_1 = a`.
#[derive(Clone)]
pub struct Query {
    seed: [u8; SEED_BYTES],
    c0: Poly<Ntt>,
}

impl std::fmt::Debug for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Query(RLWE ciphertext)")
    }
}

/// A query as the responder uses it: `c_0` and the expanded `c_1`, both in NTT form.
#[derive(Debug, Clone)]
pub struct ExpandedQuery {
    c0: Poly<Ntt>,
    c1: Poly<Ntt>,
}

/// A response modulo `2^w`: all of `c_1` and `c_0` at the output coefficients only.
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    c1: Vec<u128>,
    c0: Vec<u128>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Response({} outputs)", self.c0.len())
    }
}

impl SecretKey {
    /// A uniform ternary secret.
    pub fn generate(p: &RlweParams, rng: &mut impl RngCore) -> Self {
        let s = p.sample_ternary(rng);
        let s_ntt = Poly::from_signed(p, &s, PRIMES).into_ntt(p);
        Self { s, s_ntt }
    }

    /// A public key for this secret.
    pub fn public_key(&self, p: &RlweParams, rng: &mut impl RngCore) -> PublicKey {
        let mut seed = [0u8; SEED_BYTES];
        rng.fill_bytes(&mut seed);
        let q = self.encrypt_with_seed(p, &vec![0; p.n], seed, rng);
        PublicKey {
            seed,
            a: p.expand_uniform(&seed),
            b: q.c0,
        }
    }

    /// Encrypts the coefficient vector `m` (length at most `N`, entries in `Z_2^64`).
    pub fn encrypt(&self, p: &RlweParams, m: &[u64], rng: &mut impl RngCore) -> Query {
        let mut seed = [0u8; SEED_BYTES];
        rng.fill_bytes(&mut seed);
        self.encrypt_with_seed(p, m, seed, rng)
    }

    fn encrypt_with_seed(
        &self,
        p: &RlweParams,
        m: &[u64],
        seed: [u8; SEED_BYTES],
        rng: &mut impl RngCore,
    ) -> Query {
        assert!(m.len() <= p.n, "message longer than the ring degree");
        let n = p.n;
        let e: Vec<i64> = (0..n).map(|_| p.sample_gaussian(rng)).collect();
        let mut phase = Poly::<Coeff>::zero(PRIMES, n);
        for i in 0..PRIMES {
            let q = p.primes[i];
            let l = phase.limb_mut(i, n);
            for j in 0..n {
                let enc = m.get(j).map_or(0, |&v| p.encode_scaled(i, v));
                let s = enc + small_mod(e[j], q);
                l[j] = if s >= q { s - q } else { s };
            }
        }
        let mut c0 = phase.into_ntt(p);
        let a = p.expand_uniform(&seed);
        // c0 = phase − a·s
        let mut as_ = Poly::<Ntt>::zero(PRIMES, n);
        as_.mul_acc(p, &a, &self.s_ntt);
        for i in 0..PRIMES {
            let q = p.primes[i];
            for (c, x) in c0.limb_mut(i, n).iter_mut().zip(as_.limb(i, n)) {
                *c = if *c >= *x { *c - *x } else { *c + q - *x };
            }
        }
        Query { seed, c0 }
    }

    /// Decrypts the output coefficients `outputs` of a response: `[x − R]_t` at each.
    pub fn decrypt(&self, p: &RlweParams, r: &Response, outputs: &[usize]) -> Result<Vec<u64>> {
        Ok(self
            .decrypt_with_noise(p, r, outputs)?
            .into_iter()
            .map(|(m, _)| m)
            .collect())
    }

    /// As [`SecretKey::decrypt`], with each coefficient's noise `phase − 2^(w−64)·m` (centered).
    pub fn decrypt_with_noise(
        &self,
        p: &RlweParams,
        r: &Response,
        outputs: &[usize],
    ) -> Result<Vec<(u64, i64)>> {
        let n = p.n;
        if r.c1.len() != n || r.c0.len() != outputs.len() {
            return Err(MpcError::Malformed {
                reason: format!(
                    "HE response with {} c1 and {} c0 coefficients, expected {n} and {}",
                    r.c1.len(),
                    r.c0.len(),
                    outputs.len()
                ),
            });
        }
        // c1'·s over the integers, by NTT modulo q0·q1.
        let mut c1 = Poly::<Coeff>::zero(2, n);
        for i in 0..2 {
            let d = p.divs[i];
            for (o, &x) in c1.limb_mut(i, n).iter_mut().zip(&r.c1) {
                *o = Div64::rem_u128(x, d);
            }
        }
        let c1 = c1.into_ntt(p);
        let mut prod = Poly::<Ntt>::zero(2, n);
        prod.mul_acc(p, &c1, &self.s_ntt);
        let prod = prod.into_coeff(p);
        let (q0, q1) = (p.primes[0] as u128, p.primes[1] as u128);
        let big = q0 * q1;
        let mask = p.response_mask();
        let shift = p.response_bits - 64;
        let mut out = Vec::with_capacity(outputs.len());
        for (&j, &c0) in outputs.iter().zip(&r.c0) {
            if j >= n {
                return Err(MpcError::Malformed {
                    reason: format!("HE output coefficient {j} beyond the degree {n}"),
                });
            }
            let (a0, a1) = (prod.data[j] as u128, prod.data[n + j] as u128);
            let diff = (a1 + q1 - a0 % q1) % q1;
            let k = mul_mod64(p.divs[1], diff as u64, p.q0_inv_q1) as u128;
            let x = a0 + q0 * k; // in [0, q0·q1)
            let cs = if x > big / 2 {
                (x as i128 - big as i128) as u128
            } else {
                x
            };
            let phase = c0.wrapping_add(cs) & mask;
            let m = ((phase + (1u128 << (shift - 1))) >> shift) as u64;
            let back = ((m as u128) << shift) & mask;
            let noise = phase.wrapping_sub(back) & mask;
            let noise = if noise > mask / 2 {
                -((mask + 1 - noise) as i64)
            } else {
                noise as i64
            };
            out.push((m, noise));
        }
        Ok(out)
    }
}

impl PublicKey {
    /// Serializes: seed, then `b` in NTT form.
    pub fn to_bytes(&self, p: &RlweParams) -> Vec<u8> {
        ntt_to_bytes(p, &self.seed, &self.b)
    }

    /// Parses and validates a public key.
    pub fn from_bytes(p: &RlweParams, bytes: &[u8]) -> Result<Self> {
        let (seed, b) = ntt_from_bytes(p, bytes, "public key")?;
        Ok(Self {
            a: p.expand_uniform(&seed),
            seed,
            b,
        })
    }
}

impl Query {
    /// Serializes: seed, then `c_0` in NTT form, `PRIME_BITS` bits per residue.
    pub fn to_bytes(&self, p: &RlweParams) -> Vec<u8> {
        ntt_to_bytes(p, &self.seed, &self.c0)
    }

    /// Parses and validates a query.
    pub fn from_bytes(p: &RlweParams, bytes: &[u8]) -> Result<Self> {
        let (seed, c0) = ntt_from_bytes(p, bytes, "query")?;
        Ok(Self { seed, c0 })
    }

    /// Expands `c_1` from the seed.
    pub fn expand(self, p: &RlweParams) -> ExpandedQuery {
        ExpandedQuery {
            c1: p.expand_uniform(&self.seed),
            c0: self.c0,
        }
    }
}

fn ntt_to_bytes(p: &RlweParams, seed: &[u8; SEED_BYTES], c: &Poly<Ntt>) -> Vec<u8> {
    let mut w = BitWriter::with_capacity(p.query_bytes());
    w.out.extend_from_slice(seed);
    for &x in &c.data {
        w.put(x as u128, PRIME_BITS);
    }
    w.finish()
}

fn ntt_from_bytes(
    p: &RlweParams,
    bytes: &[u8],
    what: &str,
) -> Result<([u8; SEED_BYTES], Poly<Ntt>)> {
    if bytes.len() != p.query_bytes() {
        return Err(MpcError::Malformed {
            reason: format!(
                "HE {what} of {} bytes, expected {}",
                bytes.len(),
                p.query_bytes()
            ),
        });
    }
    let seed: [u8; SEED_BYTES] = bytes[..SEED_BYTES].try_into().expect("length checked");
    let mut r = BitReader::new(&bytes[SEED_BYTES..]);
    let mut c = Poly::<Ntt>::zero(PRIMES, p.n);
    for i in 0..PRIMES {
        let q = p.primes[i];
        for (j, o) in c.limb_mut(i, p.n).iter_mut().enumerate() {
            let x = r.get(PRIME_BITS) as u64;
            if x >= q {
                return Err(MpcError::Malformed {
                    reason: format!(
                        "HE {what}: residue {x} at limb {i}, index {j} is not below the prime {q}"
                    ),
                });
            }
            *o = x;
        }
    }
    Ok((seed, c))
}

impl Response {
    /// Serializes: `c_1` then `c_0`, `w` bits per coefficient.
    pub fn to_bytes(&self, p: &RlweParams) -> Vec<u8> {
        let mut w = BitWriter::with_capacity(p.response_bytes(self.c0.len()));
        for &x in self.c1.iter().chain(&self.c0) {
            w.put(x, p.response_bits);
        }
        w.finish()
    }

    /// Parses a response with `outputs` output coefficients.
    pub fn from_bytes(p: &RlweParams, bytes: &[u8], outputs: usize) -> Result<Self> {
        let want = p.response_bytes(outputs);
        if bytes.len() != want {
            return Err(MpcError::Malformed {
                reason: format!("HE response of {} bytes, expected {want}", bytes.len()),
            });
        }
        let mut r = BitReader::new(bytes);
        let c1 = (0..p.n).map(|_| r.get(p.response_bits)).collect();
        let c0 = (0..outputs).map(|_| r.get(p.response_bits)).collect();
        Ok(Self { c1, c0 })
    }

    /// `c_1` modulo `2^w`.
    pub fn c1(&self) -> &[u128] {
        &self.c1
    }
}

/// The responder's side: `Enc(Σ_b query_b · ŵ_b − R)` re-randomized under the querier's `pk`,
/// flooded at `outputs`, switched to `2^w`. `products` pairs expanded queries with plaintexts in
/// NTT form; `nnz` is the number of plaintext entries they hold, counted from the public block
/// shape (at most [`MAX_RESPONSE_NNZ`]); it sets the flooding width ([`flood::flood_bits`]).
/// The output coefficients are charged to `ledger` first: a response beyond the run budget is
/// refused. Returns the response and the responder's shares `R` (one per output).
pub fn respond(
    p: &RlweParams,
    pk: &PublicKey,
    products: &[(&ExpandedQuery, &Poly<Ntt>)],
    nnz: usize,
    outputs: &[usize],
    ledger: &FloodLedger,
    rng: &mut impl RngCore,
) -> Result<(Response, Vec<u64>)> {
    respond_inner(p, pk, products, nnz, outputs, ledger, rng, true)
}

#[allow(clippy::too_many_arguments)]
fn respond_inner(
    p: &RlweParams,
    pk: &PublicKey,
    products: &[(&ExpandedQuery, &Poly<Ntt>)],
    nnz: usize,
    outputs: &[usize],
    ledger: &FloodLedger,
    rng: &mut impl RngCore,
    rerandomize: bool,
) -> Result<(Response, Vec<u64>)> {
    if nnz > MAX_RESPONSE_NNZ {
        return Err(MpcError::InvalidHeParams {
            what: "plaintext entries summed in one response",
            value: nnz as u64,
            max: MAX_RESPONSE_NNZ as u64,
        });
    }
    let n = p.n;
    if let Some(&j) = outputs.iter().find(|&&j| j >= n) {
        return Err(MpcError::Malformed {
            reason: format!("HE output coefficient {j} beyond the degree {n}"),
        });
    }
    ledger.charge(outputs.len() as u64)?;
    let mut c0 = Poly::<Ntt>::zero(PRIMES, n);
    let mut c1 = Poly::<Ntt>::zero(PRIMES, n);
    for (q, w) in products {
        c0.mul_acc(p, &q.c0, w);
        c1.mul_acc(p, &q.c1, w);
    }
    if rerandomize {
        let u = p.sample_ternary(rng);
        let u = Poly::from_signed(p, &u, PRIMES).into_ntt(p);
        c0.mul_acc(p, &pk.b, &u);
        c1.mul_acc(p, &pk.a, &u);
    }
    let c0 = c0.into_coeff(p);
    let mut c1 = c1.into_coeff(p);
    if rerandomize {
        for j in 0..n {
            let e = p.sample_gaussian(rng);
            for i in 0..PRIMES {
                let q = p.primes[i];
                let x = &mut c1.data[i * n + j];
                let s = *x + small_mod(e, q);
                *x = if s >= q { s - q } else { s };
            }
        }
    }
    let c1s: Vec<u128> = (0..n)
        .map(|j| p.switch_residues(|i| c1.data[i * n + j]))
        .collect();
    let bits = rerandomize.then(|| flood::flood_bits(n, nnz));
    let (c0s, shares) = flood_outputs(p, &c0, outputs, bits, rng);
    Ok((Response { c1: c1s, c0: c0s }, shares))
}

/// `c_0` at the outputs: minus a fresh share `R`, plus (with `flood_bits`) a Gaussian `e_0` and
/// uniform flooding noise in `[−2^flood_bits, 2^flood_bits)`, switched to `2^w`. Returns the
/// switched coefficients and the shares.
fn flood_outputs(
    p: &RlweParams,
    c0: &Poly<Coeff>,
    outputs: &[usize],
    flood_bits: Option<u32>,
    rng: &mut impl RngCore,
) -> (Vec<u128>, Vec<u64>) {
    let n = p.n;
    let mut shares = Vec::with_capacity(outputs.len());
    let mut c0s = Vec::with_capacity(outputs.len());
    let mut one = [0u64; PRIMES];
    for &j in outputs {
        let r = rng.next_u64();
        let noise = flood_bits.map(|b| (p.sample_gaussian(rng), FloodNoise::sample(b, rng)));
        for (i, o) in one.iter_mut().enumerate() {
            let q = p.primes[i];
            let mut x = c0.data[i * n + j];
            if let Some((e0, f)) = noise {
                x += small_mod(e0, q);
                x = if x >= q { x - q } else { x };
                x += p.reduce_flood(i, f);
                x = if x >= q { x - q } else { x };
            }
            let enc = p.encode_scaled(i, r);
            *o = if x >= enc { x - enc } else { x + q - enc };
        }
        c0s.push(p.switch_residues(|i| one[i]));
        shares.push(r);
    }
    (c0s, shares)
}

/// Packs values of `w ≤ 128` bits LSB-first into bytes, eight at a time.
struct BitWriter {
    out: Vec<u8>,
    acc: u128,
    fill: u32,
}

impl BitWriter {
    fn with_capacity(n: usize) -> Self {
        Self {
            out: Vec::with_capacity(n),
            acc: 0,
            fill: 0,
        }
    }

    #[inline]
    fn put64(&mut self, v: u64, w: u32) {
        self.acc |= (v as u128) << self.fill;
        self.fill += w;
        if self.fill >= 64 {
            self.out.extend_from_slice(&(self.acc as u64).to_le_bytes());
            self.acc >>= 64;
            self.fill -= 64;
        }
    }

    #[inline]
    fn put(&mut self, v: u128, w: u32) {
        if w > 64 {
            self.put64(v as u64, 64);
            self.put64((v >> 64) as u64, w - 64);
        } else {
            self.put64(v as u64, w);
        }
    }

    fn finish(mut self) -> Vec<u8> {
        let bytes = self.fill.div_ceil(8) as usize;
        self.out
            .extend_from_slice(&(self.acc as u64).to_le_bytes()[..bytes]);
        self.out
    }
}

/// Reads what [`BitWriter`] packed.
struct BitReader<'a> {
    bytes: &'a [u8],
    at: usize,
    acc: u128,
    fill: u32,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            at: 0,
            acc: 0,
            fill: 0,
        }
    }

    #[inline]
    fn get64(&mut self, w: u32) -> u64 {
        if self.fill < w {
            let take = (self.bytes.len() - self.at).min(8);
            let mut b = [0u8; 8];
            b[..take].copy_from_slice(&self.bytes[self.at..self.at + take]);
            self.at += take;
            self.acc |= (u64::from_le_bytes(b) as u128) << self.fill;
            self.fill += 8 * take as u32;
        }
        let v = (self.acc & ((1u128 << w) - 1)) as u64;
        self.acc >>= w;
        self.fill -= w;
        v
    }

    #[inline]
    fn get(&mut self, w: u32) -> u128 {
        if w > 64 {
            let lo = self.get64(64) as u128;
            lo | (self.get64(w - 64) as u128) << 64
        } else {
            self.get64(w) as u128
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::RngCore;

    /// Schoolbook negacyclic product modulo `q`.
    #[allow(clippy::needless_range_loop)]
    fn schoolbook(a: &[u64], b: &[u64], q: u64) -> Vec<u64> {
        let n = a.len();
        let mut out = vec![0u128; n];
        for i in 0..n {
            for j in 0..n {
                let prod = a[i] as u128 * b[j] as u128 % q as u128;
                let k = i + j;
                if k < n {
                    out[k] = (out[k] + prod) % q as u128;
                } else {
                    out[k - n] = (out[k - n] + q as u128 - prod) % q as u128;
                }
            }
        }
        out.into_iter().map(|x| x as u64).collect()
    }

    /// Negacyclic product over `Z_2^64`.
    #[allow(clippy::needless_range_loop)]
    pub(crate) fn ring_product(a: &[u64], b: &[u64]) -> Vec<u64> {
        let n = a.len();
        let mut out = vec![0u64; n];
        for i in 0..n {
            if a[i] == 0 {
                continue;
            }
            for j in 0..n {
                let prod = a[i].wrapping_mul(b[j]);
                let k = i + j;
                if k < n {
                    out[k] = out[k].wrapping_add(prod);
                } else {
                    out[k - n] = out[k - n].wrapping_sub(prod);
                }
            }
        }
        out
    }

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    fn plaintext(p: &RlweParams, w: &[u64]) -> Poly<Ntt> {
        let v: Vec<i64> = w.iter().map(|&x| x as i64).collect();
        Poly::from_signed(p, &v, PRIMES).into_ntt(p)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// NTT multiplication equals the schoolbook negacyclic product, on every prime.
        #[test]
        fn ntt_product_is_negacyclic(seed in any::<u64>()) {
            let p = RlweParams::new(6).unwrap();
            let n = p.degree();
            let mut g = rng(seed);
            for i in 0..PRIMES {
                let q = p.primes()[i];
                let a: Vec<u64> = (0..n).map(|_| g.next_u64() % q).collect();
                let b: Vec<u64> = (0..n).map(|_| g.next_u64() % q).collect();
                let mut pa = Poly::<Coeff>::zero(1, n);
                let mut pb = Poly::<Coeff>::zero(1, n);
                pa.data.copy_from_slice(&a);
                pb.data.copy_from_slice(&b);
                let (fa, fb) = (pa.ntt_on(&p, i), pb.ntt_on(&p, i));
                let mut acc = vec![0u64; n];
                p.plans[i].mul_accumulate(&mut acc, &fa, &fb);
                p.plans[i].inv(&mut acc);
                p.plans[i].normalize(&mut acc);
                prop_assert_eq!(acc, schoolbook(&a, &b, q));
            }
        }

        /// Signed reduction and the rounded scaling agree with 128-bit arithmetic.
        #[test]
        fn reductions_match_wide_arithmetic(x in any::<i64>(), f in any::<i128>(), m in any::<u64>()) {
            let p0 = RlweParams::new(6).unwrap();
            for i in 0..PRIMES {
                let q = p0.primes()[i] as u128;
                let want = (p0.delta[i] as u128 * (m as u128 % q)
                    + ((p0.q_mod_t as u128 * m as u128 + (1 << 63)) >> 64))
                    % q;
                prop_assert_eq!(p0.encode_scaled(i, m) as u128, want);
            }
            let p = RlweParams::new(6).unwrap();
            for i in 0..PRIMES {
                let q = p.primes()[i] as i128;
                prop_assert_eq!(p.reduce_i64(i, x) as i128, (x as i128).rem_euclid(q));
                // Flooding noise hi·2^128 + lo, reduced by shifting 64 bits at a time.
                let (hi, lo) = ((f >> 64) as i64, f as u128);
                let mut want = (hi as i128).rem_euclid(q) as u128;
                want = (want << 64) % q as u128;
                want = (want << 64) % q as u128;
                want = (want + lo % q as u128) % q as u128;
                prop_assert_eq!(p.reduce_flood(i, FloodNoise { hi, lo }) as u128, want);
            }
            // Δ = ⌊Q/t⌋ satisfies Δ·t + r_t = Q ≡ 0 (mod q_i).
            for i in 0..PRIMES {
                let q = p.primes()[i] as u128;
                let t = (1u128 << 64) % q;
                let lhs = (p.delta[i] as u128 * t + p.q_mod_t as u128 % q) % q;
                prop_assert_eq!(lhs, 0);
            }
        }
    }

    impl Poly<Coeff> {
        fn ntt_on(&self, p: &RlweParams, i: usize) -> Vec<u64> {
            let mut v = self.data.clone();
            p.plans[i].fwd(&mut v);
            v
        }
    }

    proptest! {
        /// Bit packing round-trips values of mixed widths.
        #[test]
        fn bit_packing_round_trips(v in proptest::collection::vec((any::<u128>(), 1u32..=128), 0..40)) {
            let mut w = BitWriter::with_capacity(0);
            for &(x, b) in &v {
                w.put(x & (u128::MAX >> (128 - b)), b);
            }
            let bytes = w.finish();
            let total: u32 = v.iter().map(|x| x.1).sum();
            prop_assert_eq!(bytes.len(), total.div_ceil(8) as usize);
            let mut r = BitReader::new(&bytes);
            for &(x, b) in &v {
                prop_assert_eq!(r.get(b), x & (u128::MAX >> (128 - b)));
            }
        }
    }

    #[test]
    fn standard_parameters_meet_the_bounds() {
        let p = RlweParams::standard();
        assert_eq!(p.degree(), 16384);
        assert!(p.log_q() <= 438.0 && p.log_q() > 249.9, "{}", p.log_q());
        assert!(p.noise_margin_bits() > 0.9, "{}", p.noise_margin_bits());
        assert_eq!(p.max_flood_bits(), 167);
        let worst = flood::coefficient_distance_log2(p.degree(), MAX_RESPONSE_NNZ);
        let run = worst + RUN_FLOOD_BUDGET_LOG2 as f64;
        assert!(run <= -(FLOOD_STAT_BITS as f64), "{run}");
        for &q in p.primes() {
            assert_eq!(q % (2 * 16384), 1);
            assert!(q < 1 << PRIME_BITS && q > 1 << (PRIME_BITS - 1));
        }
        assert_eq!(p.response_bits(), 79);
    }

    /// Encrypt, multiply by the constant 1, subtract R, decrypt every coefficient.
    #[test]
    fn encrypt_respond_decrypt_round_trip() {
        let p = RlweParams::standard();
        let n = p.degree();
        let mut g = rng(1);
        let sk = SecretKey::generate(&p, &mut g);
        let pk = sk.public_key(&p, &mut g);
        let pk = PublicKey::from_bytes(&p, &pk.to_bytes(&p)).unwrap();
        let mut m: Vec<u64> = (0..n).map(|_| g.next_u64()).collect();
        m[0] = u64::MAX;
        m[1] = 0;
        let q = sk.encrypt(&p, &m, &mut g);
        let bytes = q.to_bytes(&p);
        assert_eq!(bytes.len(), p.query_bytes());
        let q = Query::from_bytes(&p, &bytes).unwrap().expand(&p);
        let mut one = vec![0u64; n];
        one[0] = 1;
        let w = plaintext(&p, &one);
        let outputs: Vec<usize> = (0..n).collect();
        let (resp, r) = respond(
            &p,
            &pk,
            &[(&q, &w)],
            1,
            &outputs,
            &FloodLedger::default(),
            &mut g,
        )
        .unwrap();
        let bytes = resp.to_bytes(&p);
        assert_eq!(bytes.len(), p.response_bytes(n));
        let resp2 = Response::from_bytes(&p, &bytes, n).unwrap();
        assert_eq!(resp, resp2);
        let d = sk.decrypt(&p, &resp2, &outputs).unwrap();
        for j in 0..n {
            assert_eq!(d[j].wrapping_add(r[j]), m[j], "coefficient {j}");
        }
    }

    /// A product with a random plaintext equals the negacyclic product over Z_2^64.
    #[test]
    fn plaintext_product_is_the_ring_product() {
        let p = RlweParams::new(9).unwrap();
        let n = p.degree();
        let mut g = rng(2);
        let sk = SecretKey::generate(&p, &mut g);
        let pk = sk.public_key(&p, &mut g);
        let m: Vec<u64> = (0..n).map(|_| g.next_u64()).collect();
        let w: Vec<u64> = (0..n).map(|_| g.next_u64()).collect();
        let q = sk.encrypt(&p, &m, &mut g).expand(&p);
        let outputs: Vec<usize> = (0..n).step_by(3).collect();
        let (resp, r) = respond(
            &p,
            &pk,
            &[(&q, &plaintext(&p, &w))],
            n,
            &outputs,
            &FloodLedger::default(),
            &mut g,
        )
        .unwrap();
        let d = sk.decrypt(&p, &resp, &outputs).unwrap();
        let want = ring_product(&m, &w);
        for (k, &j) in outputs.iter().enumerate() {
            assert_eq!(d[k].wrapping_add(r[k]), want[j]);
        }
    }

    /// Worst-case magnitudes: every plaintext coefficient −2^63, every message coefficient
    /// 2^64 − 1, the largest number of summed products a response allows, full flooding. The
    /// decryption is exact and the measured noise stays below the analysed worst case, which is
    /// below the decryption threshold 2^(w−65).
    #[test]
    fn worst_case_noise_stays_below_the_bound() {
        let p = RlweParams::standard();
        let n = p.degree();
        let mut g = rng(3);
        let sk = SecretKey::generate(&p, &mut g);
        let pk = sk.public_key(&p, &mut g);
        let m = vec![u64::MAX; n];
        let w = vec![1u64 << 63; n];
        let wp = plaintext(&p, &w);
        let count = MAX_RESPONSE_NNZ / n;
        let qs: Vec<ExpandedQuery> = (0..count)
            .map(|_| sk.encrypt(&p, &m, &mut g).expand(&p))
            .collect();
        let products: Vec<_> = qs.iter().map(|q| (q, &wp)).collect();
        let outputs: Vec<usize> = (0..n).collect();
        let (resp, r) = respond(
            &p,
            &pk,
            &products,
            count * n,
            &outputs,
            &FloodLedger::default(),
            &mut g,
        )
        .unwrap();
        let d = sk.decrypt_with_noise(&p, &resp, &outputs).unwrap();
        let one = ring_product(&m, &w);
        let bound = p.worst_case_response_error();
        assert!(bound < 2f64.powi(p.response_bits() as i32 - 65));
        let mut worst = 0i64;
        for j in 0..n {
            let want = one[j].wrapping_mul(count as u64);
            assert_eq!(d[j].0.wrapping_add(r[j]), want, "coefficient {j}");
            worst = worst.max(d[j].1.abs());
        }
        assert!(
            (worst as f64) < bound,
            "noise {worst} above the bound {bound}"
        );
        // Above the cap, the responder refuses.
        let ledger = FloodLedger::default();
        assert!(respond(
            &p,
            &pk,
            &products,
            MAX_RESPONSE_NNZ + 1,
            &outputs,
            &ledger,
            &mut g
        )
        .is_err());
    }

    /// The responder charges every flooded output coefficient to the run's ledger and refuses a
    /// response that would exceed the budget (the refused one is not charged).
    #[test]
    fn responses_beyond_the_run_budget_are_refused() {
        let p = RlweParams::new(6).unwrap();
        let mut g = rng(6);
        let sk = SecretKey::generate(&p, &mut g);
        let pk = sk.public_key(&p, &mut g);
        let q = sk.encrypt(&p, &[1, 2, 3], &mut g).expand(&p);
        let w = plaintext(&p, &[1]);
        let ledger = FloodLedger::with_budget(20);
        let outputs: Vec<usize> = (0..8).collect();
        for _ in 0..2 {
            respond(&p, &pk, &[(&q, &w)], 1, &outputs, &ledger, &mut g).unwrap();
        }
        assert_eq!(ledger.used(), 16);
        let e = respond(&p, &pk, &[(&q, &w)], 1, &outputs, &ledger, &mut g).unwrap_err();
        assert!(
            matches!(
                e,
                MpcError::InvalidHeParams {
                    value: 24,
                    max: 20,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(ledger.used(), 16);
        respond(&p, &pk, &[(&q, &w)], 1, &outputs[..4], &ledger, &mut g).unwrap();
    }

    /// The response's c1 is not the bare product a·ŵ (which would reveal ŵ to the key owner):
    /// re-randomization changes nearly every coefficient by a full-size amount, and the plaintext's
    /// words appear nowhere in the response bytes.
    #[test]
    fn response_is_rerandomized_and_hides_the_plaintext() {
        let p = RlweParams::standard();
        let n = p.degree();
        let mut g = rng(4);
        let sk = SecretKey::generate(&p, &mut g);
        let pk = sk.public_key(&p, &mut g);
        let m: Vec<u64> = (0..n).map(|_| g.next_u64()).collect();
        let w: Vec<u64> = (0..n).map(|_| g.next_u64()).collect();
        let wp = plaintext(&p, &w);
        let q = sk.encrypt(&p, &m, &mut g).expand(&p);
        let outputs = vec![0usize, 7, 100];
        let (bare, _) = respond_inner(
            &p,
            &pk,
            &[(&q, &wp)],
            n,
            &outputs,
            &FloodLedger::default(),
            &mut g,
            false,
        )
        .unwrap();
        let (resp, _) = respond(
            &p,
            &pk,
            &[(&q, &wp)],
            n,
            &outputs,
            &FloodLedger::default(),
            &mut g,
        )
        .unwrap();
        let mask = p.response_mask();
        let far = bare
            .c1()
            .iter()
            .zip(resp.c1())
            .filter(|(a, b)| {
                let d = a.wrapping_sub(**b) & mask;
                d.min(mask + 1 - d) > 1 << 40
            })
            .count();
        assert!(far > n - 8, "only {far} of {n} coefficients re-randomized");
        let bytes = resp.to_bytes(&p);
        for &x in &w {
            let pat = x.to_le_bytes();
            assert!(!bytes.windows(8).any(|b| b == pat));
        }
        // Decryption still works on the re-randomized response.
        assert_eq!(sk.decrypt(&p, &resp, &outputs).unwrap().len(), 3);
    }

    #[test]
    fn malformed_ciphertexts_are_refused() {
        let p = RlweParams::new(6).unwrap();
        let mut g = rng(5);
        let sk = SecretKey::generate(&p, &mut g);
        let q = sk.encrypt(&p, &[1, 2, 3], &mut g);
        let mut b = q.to_bytes(&p);
        assert!(Query::from_bytes(&p, &b[1..]).is_err());
        for x in &mut b[SEED_BYTES..SEED_BYTES + 7] {
            *x = 0xff;
        }
        assert!(matches!(
            Query::from_bytes(&p, &b),
            Err(MpcError::Malformed { reason }) if reason.contains("not below the prime")
        ));
        assert!(Response::from_bytes(&p, &[0u8; 3], 1).is_err());
        assert!(RlweParams::new(15).is_err());
        assert_eq!(format!("{sk:?}"), "SecretKey(<hidden>)");
    }
}
