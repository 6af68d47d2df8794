//! The RLWE parameter set: a named preset ([`RlwePreset`], today's [`N14_Q250_128BIT`]) whose
//! [`RlwePreset::build`] checks the HE-standard 128-bit bound through `lattice::security`, and
//! the validated [`RlweParams`] with the constants of the `t = 2^64` encoding, the flooding
//! reduction and the modulus switch to `2^w`.

use lattice::primes::largest_ntt_primes;
use lattice::{Modulus, RnsBasis};

use super::poly::{Ntt, Poly};
use super::{
    DECRYPT_FAILURE_LOG2, MAX_RESPONSE_NNZ, MAX_SAMPLED_FLOOD_BITS, PRIMES, PRIME_BITS, SEED_BYTES,
    STANDARD_LOG_N, SWITCH_ROUNDING,
};
use crate::error::{MpcError, Result};
use crate::offline::flood::{self, FloodNoise};

/// A named RLWE parameter set: the ring degree and the shape of `Q`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RlwePreset {
    /// The name results and logs refer to it by.
    pub name: &'static str,
    /// `log2(N)`.
    pub log_n: u32,
    /// Number of primes of `Q` (the wire format and the modulus switch are built for
    /// [`PRIMES`]).
    pub primes: usize,
    /// Bits of every prime of `Q` (the largest primes `≡ 1 mod 2N` below `2^prime_bits`; the
    /// wire format packs residues in [`PRIME_BITS`]).
    pub prime_bits: u32,
}

/// Today's 128-bit set: `N = 16384`, `Q` the five largest 50-bit NTT primes (`log2 Q ≈ 250`,
/// below the HE standard's 438).
pub const N14_Q250_128BIT: RlwePreset = RlwePreset {
    name: "N14_Q250_128BIT",
    log_n: STANDARD_LOG_N,
    primes: PRIMES,
    prime_bits: PRIME_BITS,
};

impl RlwePreset {
    /// Builds the parameters and validates them: the shape this implementation supports, the
    /// decryption bound of the module docs ([`RlweParams::new`]) and 128-bit security for a
    /// ternary secret under the HE standard ([`lattice::security::max_log_qp_128`]).
    pub fn build(&self) -> Result<RlweParams> {
        if self.primes != PRIMES || self.prime_bits != PRIME_BITS {
            return Err(MpcError::InvalidHeParams {
                what: "primes of Q (count × bits) of an RLWE preset",
                value: self.primes as u64 * self.prime_bits as u64,
                max: PRIMES as u64 * PRIME_BITS as u64,
            });
        }
        let params = RlweParams::new(self.log_n)?;
        if !params.is_128_bit_secure() {
            return Err(MpcError::InvalidHeParams {
                what: "log2 Q against the HE-standard 128-bit bound",
                value: params.log_q().ceil() as u64,
                max: lattice::security::max_log_qp_128(self.log_n).map_or(0, u64::from),
            });
        }
        Ok(params)
    }
}

/// Validated parameters with their precomputed constants.
pub struct RlweParams {
    log_n: u32,
    n: usize,
    primes: Vec<u64>,
    /// The primes' constants and NTT plans.
    basis: RnsBasis,
    /// `⌊Q/t⌋ mod q_i`.
    pub(super) delta: Vec<u64>,
    /// Shoup companions `⌊delta_i·2^64/q_i⌋`.
    delta_shoup: Vec<u64>,
    /// `Q mod 2^64`.
    pub(super) q_mod_t: u64,
    /// Bits of the response modulus `Q' = 2^w` (of `c_1`, and of the decryption).
    response_bits: u32,
    /// Low bits of `c_0` dropped after switching: `c_0` travels modulo `2^(w − c0_drop)`.
    c0_drop: u32,
    /// `(Q/q_i)^{-1} mod q_i` and its Shoup companion.
    rho: Vec<(u64, u64)>,
    /// `Q'/q_i = int + frac/2^64`.
    switch: Vec<(u128, u64)>,
    /// `q_0^{-1} mod q_1`.
    q0_inv_q1: u64,
    /// `2^128 mod q_i` (reduction of the flooding noise's high word).
    two128: Vec<u64>,
    log_q: f64,
}

impl std::fmt::Debug for RlweParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RlweParams(N = 2^{}, log Q = {:.1}, t = 2^64, Q' = 2^{}, c_0 at {} bits)",
            self.log_n,
            self.log_q,
            self.response_bits,
            self.c0_bits()
        )
    }
}

impl AsRef<RnsBasis> for RlweParams {
    fn as_ref(&self) -> &RnsBasis {
        &self.basis
    }
}

/// `⌊Q/t⌋ mod q` for each prime: `(Q − r_t)/t ≡ −r_t · t^{-1} (mod q)`, `r_t = Q mod t`.
fn scaling_factors(moduli: &[Modulus], q_mod_t: u64) -> Vec<u64> {
    moduli
        .iter()
        .map(|m| {
            let t_mod = m.reduce_u128(1u128 << 64);
            let t_inv = m
                .inv(t_mod)
                .expect("t = 2^64 is invertible modulo an odd prime");
            m.mul(m.neg(m.reduce(q_mod_t)), t_inv)
        })
        .collect()
}

/// `(Q/q_i)^{-1} mod q_i` with its Shoup companion, for each prime.
fn crt_inverses(moduli: &[Modulus]) -> Vec<(u64, u64)> {
    (0..moduli.len())
        .map(|i| {
            let m = moduli[i];
            let prod = (0..moduli.len())
                .filter(|&j| j != i)
                .fold(1u64, |a, j| m.mul(a, m.reduce(moduli[j].value())));
            let r = m.inv(prod).expect("distinct primes");
            (r, m.shoup(r))
        })
        .collect()
}

/// `2^w/q_i` in 64-bit fixed point: integer part and fraction `·2^64`.
fn switch_constants(primes: &[u64], response_bits: u32) -> Vec<(u128, u64)> {
    primes
        .iter()
        .map(|&p| {
            let big = 1u128 << response_bits;
            let int = big / p as u128;
            let rem = big % p as u128;
            (int, ((rem << 64) / p as u128) as u64)
        })
        .collect()
}

/// `(w, d)`: the fewest bits `w` of the response modulus, then the most bits `d` dropped from
/// `c_0`, for which [`response_error_bound`] stays below the threshold `2^(w−65)` (the module
/// docs' decryption bound). Valid parameters always find one: at `w = 128` the threshold is
/// `2^63`.
fn response_widths(n: usize, log_q: f64) -> (u32, u32) {
    for w in 66..=128 {
        let threshold = 2f64.powi(w as i32 - 65);
        if let Some(d) = (0..=w - 65)
            .rev()
            .find(|&d| response_error_bound(n, log_q, w, d) < threshold)
        {
            return (w, d);
        }
    }
    (128, 0)
}

/// The decryption error of a response after switching `c_1` to `2^w` and `c_0` to `2^(w−d)`
/// (in units of the phase modulo `2^w`), for the largest response flooded at full width: the
/// scaled error `(2^w/Q)·E`, the rounding of `c_0` (`2^(d−1) + ½ + δ` with the base
/// conversion's `δ`), the conversion's bias `N·δ`, and `‖τ_1·s‖∞` — at most `(½ + δ)·N` always,
/// and at most the Hoeffding bound `(1 + 2δ)·√(N·ln(2^(F+1))/2)` except with probability `2^-F`
/// (`F` = [`DECRYPT_FAILURE_LOG2`]) when `c_1`'s rounding errors are independent and uniform —
/// the smaller of the two — plus 1.
fn response_error_bound(n: usize, log_q: f64, w: u32, d: u32) -> f64 {
    let n_f = n as f64;
    let noise = flood::response_noise(n, MAX_RESPONSE_NNZ) as f64;
    let e = 2f64.powi(flood::flood_bits(n, MAX_RESPONSE_NNZ) as i32) + noise;
    let scaled = e * 2f64.powf(w as f64 - log_q);
    let c0 = 2f64.powi(d as i32 - 1) + 0.5 + SWITCH_ROUNDING;
    let worst = (0.5 + SWITCH_ROUNDING) * n_f;
    let ln_fail = (DECRYPT_FAILURE_LOG2 + 1) as f64 * std::f64::consts::LN_2;
    let hoeffding = (1.0 + 2.0 * SWITCH_ROUNDING) * (n_f * ln_fail / 2.0).sqrt();
    let tau1 = worst.min(hoeffding + n_f * SWITCH_ROUNDING);
    scaled + c0 + tau1 + 1.0
}

impl RlweParams {
    /// The 128-bit parameters, the preset [`N14_Q250_128BIT`]: `N = 16384`, `log Q ≈ 250`.
    pub fn standard() -> Self {
        N14_Q250_128BIT
            .build()
            .expect("the standard parameters are valid")
    }

    /// Parameters of degree `2^log_n` with the same modulus size. Only `log_n = 14` is the secure
    /// set ([`N14_Q250_128BIT`]); smaller degrees are for tests of the algebra. Checks the
    /// decryption bound of the module docs with the widest flooding noise.
    pub fn new(log_n: u32) -> Result<Self> {
        if !(6..=STANDARD_LOG_N).contains(&log_n) {
            return Err(MpcError::InvalidHeParams {
                what: "log2 of the ring degree",
                value: log_n as u64,
                max: STANDARD_LOG_N as u64,
            });
        }
        let n = 1usize << log_n;
        let primes = largest_ntt_primes(2 * n as u64, PRIME_BITS, PRIMES)
            .expect("primes 1 mod 2N exist below 2^50");
        let basis = RnsBasis::new(log_n, &primes, &[]);
        let moduli = basis.moduli();
        let q_mod_t = primes.iter().fold(1u64, |a, &p| a.wrapping_mul(p));
        let delta = scaling_factors(moduli, q_mod_t);
        let delta_shoup = moduli
            .iter()
            .zip(&delta)
            .map(|(m, &d)| m.shoup(d))
            .collect();
        let rho = crt_inverses(moduli);
        let log_q = primes.iter().map(|&p| (p as f64).log2()).sum();
        let (response_bits, c0_drop) = response_widths(n, log_q);
        let switch = switch_constants(&primes, response_bits);
        let q0_inv_q1 = moduli[1].inv(primes[0]).expect("distinct primes");
        let two128 = moduli
            .iter()
            .map(|m| {
                let r = m.reduce_u128(1u128 << 64);
                m.mul(r, r)
            })
            .collect();
        let params = Self {
            log_n,
            n,
            primes,
            basis,
            delta,
            delta_shoup,
            q_mod_t,
            response_bits,
            c0_drop,
            rho,
            switch,
            q0_inv_q1,
            two128,
            log_q,
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

    /// Whether `log2 Q` meets the HE standard's 128-bit bound at this degree (false for the
    /// test degrees, which the standard does not cover).
    pub fn is_128_bit_secure(&self) -> bool {
        lattice::security::meets_128_bit(self.log_n, self.log_q)
    }

    /// The primes of `Q`.
    pub fn primes(&self) -> &[u64] {
        &self.primes
    }

    /// The constants of prime `i`.
    pub(super) fn modulus(&self, i: usize) -> Modulus {
        self.basis.moduli()[i]
    }

    /// Bits `w` of the response modulus `2^w`.
    pub fn response_bits(&self) -> u32 {
        self.response_bits
    }

    /// Bits `w − d` of `c_0` on the wire (its low `d` bits after switching are dropped).
    pub fn c0_bits(&self) -> u32 {
        self.response_bits - self.c0_drop
    }

    /// Bits `d` dropped from `c_0`: the querier scales it by `2^d` before adding `c_1·s`.
    pub(super) fn c0_drop(&self) -> u32 {
        self.c0_drop
    }

    /// `q_0^{-1} mod q_1` (the CRT lift of a decryption product).
    pub(super) fn q0_inv_q1(&self) -> u64 {
        self.q0_inv_q1
    }

    /// The inequalities of the module docs: the widest flooding noise can be sampled, and the
    /// largest response decrypts exactly except with probability `2^-DECRYPT_FAILURE_LOG2` per
    /// coefficient.
    fn check_bounds(&self) -> Result<()> {
        let bits = self.max_flood_bits();
        if bits > MAX_SAMPLED_FLOOD_BITS {
            return Err(MpcError::InvalidHeParams {
                what: "bits of the flooding noise",
                value: bits as u64,
                max: MAX_SAMPLED_FLOOD_BITS as u64,
            });
        }
        // The querier's exact c_1'·s modulo q_0·q_1 (keys.rs) needs N·2^w < q_0·q_1/2.
        let lift_bits = self.log_n + self.response_bits;
        if lift_bits > 2 * (PRIME_BITS - 1) - 1 {
            return Err(MpcError::InvalidHeParams {
                what: "bits of c_1'·s in the decryption (log2 N + w)",
                value: lift_bits as u64,
                max: 2 * (PRIME_BITS as u64 - 1) - 1,
            });
        }
        let err = self.response_error_bound();
        let threshold = 2f64.powi(self.response_bits as i32 - 65);
        if err >= threshold {
            return Err(MpcError::InvalidHeParams {
                what: "decryption error bound of a response",
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

    /// Bound on the decryption error of the largest response (in units of the phase modulo
    /// `2^w`) that holds for each coefficient except with probability
    /// `2^-DECRYPT_FAILURE_LOG2` (see the module docs).
    pub fn response_error_bound(&self) -> f64 {
        response_error_bound(self.n, self.log_q, self.response_bits, self.c0_drop)
    }

    /// log2 of (decryption threshold `2^(w−65)` / error bound); positive means correct.
    pub fn noise_margin_bits(&self) -> f64 {
        (self.response_bits as f64 - 65.0) - self.response_error_bound().log2()
    }

    /// `flood mod q_i`.
    pub(super) fn reduce_flood(&self, i: usize, f: FloodNoise) -> u64 {
        let m = self.modulus(i);
        let hi = m.reduce_i64(f.hi);
        m.add(m.mul(hi, self.two128[i]), m.reduce_u128(f.lo))
    }

    /// `x mod q_i` for a signed `x`.
    #[cfg(test)]
    pub(super) fn reduce_i64(&self, i: usize, x: i64) -> u64 {
        self.modulus(i).reduce_i64(x)
    }

    /// `⌊Q·m/t⌉ mod q_i` for `m ∈ [0, 2^64)`.
    pub(super) fn encode_scaled(&self, i: usize, m: u64) -> u64 {
        let q = self.modulus(i);
        let hi = ((self.q_mod_t as u128 * m as u128 + (1u128 << 63)) >> 64) as u64;
        let a = q.mul_shoup(m, self.delta[i], self.delta_shoup[i]);
        q.add(a, q.reduce(hi))
    }

    /// `⌊Q'·c/Q⌉ mod Q'` from the residues `x(i) = c mod q_i` of one coefficient.
    #[inline]
    pub(super) fn switch_residues(&self, x: impl Fn(usize) -> u64) -> u128 {
        let mut int = 0u128;
        let mut frac = 0u128;
        for i in 0..PRIMES {
            let (r, rs) = self.rho[i];
            let y = self.modulus(i).mul_shoup(x(i), r, rs);
            int += y as u128 * self.switch[i].0;
            frac += y as u128 * self.switch[i].1 as u128;
        }
        (int + ((frac + (1u128 << 63)) >> 64)) & self.response_mask()
    }

    /// `⌊2^(w−d)·c/Q⌉ mod 2^(w−d)`: the switched coefficient with its low `d` bits rounded
    /// away (the `c_0` of a response).
    #[inline]
    pub(super) fn switch_c0(&self, x: impl Fn(usize) -> u64) -> u128 {
        let c = self.switch_residues(x);
        match self.c0_drop {
            0 => c,
            d => ((c + (1u128 << (d - 1))) >> d) & (self.response_mask() >> d),
        }
    }

    pub(super) fn response_mask(&self) -> u128 {
        (1u128 << self.response_bits) - 1
    }

    /// A uniform polynomial in NTT form, expanded from a public seed (identically on both sides).
    pub fn expand_uniform(&self, seed: &[u8; SEED_BYTES]) -> Poly<Ntt> {
        Poly(lattice::sample::expand_seed_high_bits(
            &self.basis,
            seed,
            PRIMES,
            PRIME_BITS,
        ))
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
        (self.n * self.response_bits as usize + outputs * self.c0_bits() as usize).div_ceil(8)
    }
}
