//! CKKS parameters: ring dimension, RNS prime chain, key-switching basis and the security check.
//!
//! The chain is `Q_L = q_0 · q_1 ⋯ q_L` (a first prime `q_0` that holds the final message, then
//! `L` scale primes close to the scale `Δ = 2^scale_bits`, consumed one per rescale) and the
//! special modulus `P = p_0 ⋯ p_{k-1}` used only inside hybrid key switching (Han–Ki, CT-RSA
//! 2020). All primes are `≡ 1 mod 2N` so that the negacyclic NTT exists, are generated
//! deterministically from the requested sizes, and default to at most 50 bits so that
//! `tfhe-ntt` takes its AVX-512 IFMA path.
//!
//! The primes come from the lattice crate's NTT-prime search ([`lattice::primes`]) and the
//! arithmetic over them lives in a [`lattice::RnsBasis`] (reduction constants and NTT plans),
//! which [`CkksParams`] holds and hands to every polynomial operation.
//!
//! **Security.** [`CkksParamsBuilder::build`] refuses any set whose `log2(QP)` exceeds the
//! 128-bit classical bound for a uniform ternary secret of the HomomorphicEncryption.org
//! Security Standard v1.1 ([`max_log_qp_128`], from [`lattice::security`]: N = 2^12 → 109 bits,
//! 2^13 → 218, 2^14 → 438, 2^15 → 881, and 1761 for N = 2^16, 11 bits below OpenFHE's
//! extension of the table). The bound applies to `log2(Q_L · P)` because key-switching keys live
//! modulo `QP`.

use std::sync::Arc;

use lattice::primes::{ntt_primes_of_bits, NttPrimeWalk};
use lattice::RnsBasis;
use serde::{Deserialize, Serialize};

use crate::error::{CkksError, Result};

pub use lattice::security::max_log_qp_128;

/// Smallest `log2(N)` accepted for secure parameters.
pub const MIN_LOG_N: u32 = 12;
/// Largest `log2(N)` accepted.
pub const MAX_LOG_N: u32 = 16;
/// Largest prime size in bits accepted by the builder (the arithmetic needs `p < 2^62`).
pub const MAX_PRIME_BITS: u32 = 60;
/// Smallest prime size in bits accepted by the builder.
pub const MIN_PRIME_BITS: u32 = 20;

/// `log2(N)`, the binary logarithm of the ring dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogN(pub u32);

/// `log2(Δ)`, the size in bits of the default scale and of each scale prime.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleBits(pub u32);

/// Number of rescalings the chain supports (`L`; the chain has `L + 1` primes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Levels(pub usize);

/// Number of special primes `k` forming the key-switching modulus `P`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialPrimes(pub usize);

/// Number of digits `dnum` of the hybrid key-switching decomposition of `Q_L`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dnum(pub usize);

/// Bit size of a family of primes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrimeBits(pub u32);

/// The security a parameter set claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum SecurityLevel {
    /// 128-bit classical security for a ternary secret (HE standard v1.1; for N = 2^16 a bound
    /// 11 bits below OpenFHE's extension of that table).
    Classical128,
    /// No security claim: test-only parameters (small N or an over-budget chain).
    Insecure,
}

/// Builder for [`CkksParams`]; every setting is validated by [`CkksParamsBuilder::build`].
#[derive(Clone, Debug)]
pub struct CkksParamsBuilder {
    log_n: LogN,
    scale_bits: ScaleBits,
    levels: Levels,
    first_prime_bits: Option<PrimeBits>,
    special_primes: SpecialPrimes,
    special_prime_bits: Option<PrimeBits>,
    dnum: Option<Dnum>,
    insecure: bool,
    name: &'static str,
}

impl Default for CkksParamsBuilder {
    fn default() -> Self {
        Self {
            log_n: LogN(14),
            scale_bits: ScaleBits(40),
            levels: Levels(7),
            first_prime_bits: None,
            special_primes: SpecialPrimes(2),
            special_prime_bits: None,
            dnum: None,
            insecure: false,
            name: "custom",
        }
    }
}

impl CkksParamsBuilder {
    /// Ring dimension `N = 2^log_n` (12..=16).
    pub fn log_n(mut self, log_n: LogN) -> Self {
        self.log_n = log_n;
        self
    }
    /// Scale `Δ = 2^bits`; scale primes are chosen as close to `Δ` as possible.
    pub fn scale_bits(mut self, bits: ScaleBits) -> Self {
        self.scale_bits = bits;
        self
    }
    /// Multiplicative depth `L` (number of scale primes).
    pub fn levels(mut self, levels: Levels) -> Self {
        self.levels = levels;
        self
    }
    /// Size of the first prime `q_0` (default `min(scale_bits + 10, 60)`); the message at
    /// level 0 must satisfy `|Δ·z| < q_0 / 2`.
    pub fn first_prime_bits(mut self, bits: PrimeBits) -> Self {
        self.first_prime_bits = Some(bits);
        self
    }
    /// Number of special primes forming `P`.
    pub fn special_primes(mut self, k: SpecialPrimes) -> Self {
        self.special_primes = k;
        self
    }
    /// Size of each special prime (default: the first prime's size).
    pub fn special_prime_bits(mut self, bits: PrimeBits) -> Self {
        self.special_prime_bits = Some(bits);
        self
    }
    /// Number of key-switching digits (default: the smallest `dnum` whose digits are no larger
    /// than `P`).
    pub fn dnum(mut self, dnum: Dnum) -> Self {
        self.dnum = Some(dnum);
        self
    }
    /// A name reported by [`CkksParams::name`].
    pub fn name(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }
    /// Skips the security bound and allows `N` down to 2^5. **Insecure**; only compiled for this
    /// crate's tests and under the `testing` feature, never for the binaries.
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub fn insecure_skip_security_check(mut self) -> Self {
        self.insecure = true;
        self
    }

    /// Generates the prime chain and validates the parameter set.
    pub fn build(self) -> Result<CkksParams> {
        let min_log_n = if self.insecure { 5 } else { MIN_LOG_N };
        let log_n = self.log_n.0;
        if !(min_log_n..=MAX_LOG_N).contains(&log_n) {
            return Err(CkksError::InvalidLogN {
                log_n,
                min: min_log_n,
                max: MAX_LOG_N,
            });
        }
        let check_bits = |what: &'static str, bits: u32| {
            if (MIN_PRIME_BITS..=MAX_PRIME_BITS).contains(&bits) {
                Ok(bits)
            } else {
                Err(CkksError::InvalidPrimeBits {
                    what,
                    bits,
                    min: MIN_PRIME_BITS,
                    max: MAX_PRIME_BITS,
                })
            }
        };
        let scale_bits = check_bits("scale_bits", self.scale_bits.0)?;
        let first_bits = check_bits(
            "first_prime_bits",
            self.first_prime_bits
                .map_or((scale_bits + 10).min(MAX_PRIME_BITS), |b| b.0),
        )?;
        let special_bits = check_bits(
            "special_prime_bits",
            self.special_prime_bits.map_or(first_bits, |b| b.0),
        )?;
        let levels = self.levels.0;
        if !(1..=64).contains(&levels) {
            return Err(CkksError::InvalidCount {
                what: "levels",
                value: levels,
                min: 1,
                max: 64,
            });
        }
        let k = self.special_primes.0;
        if !(1..=16).contains(&k) {
            return Err(CkksError::InvalidCount {
                what: "special_primes",
                value: k,
                min: 1,
                max: 16,
            });
        }
        let n = 1usize << log_n;
        let two_n = 2 * n as u64;
        let chain = generate_chain(two_n, first_bits, scale_bits, levels, special_bits, k)?;
        let (q, p) = chain;
        let log2 = |v: &[u64]| v.iter().map(|&x| (x as f64).log2()).sum::<f64>();
        let log_q = log2(&q);
        let log_p = log2(&p);
        let log_qp = log_q + log_p;
        let security = if self.insecure {
            SecurityLevel::Insecure
        } else {
            let bound = max_log_qp_128(log_n).expect("log_n range checked above");
            if log_qp > bound as f64 {
                return Err(CkksError::InsecureParameters {
                    log_qp,
                    bound,
                    log_n,
                });
            }
            SecurityLevel::Classical128
        };
        let nq = q.len();
        let dnum = match self.dnum {
            Some(Dnum(d)) => {
                if !(1..=nq).contains(&d) {
                    return Err(CkksError::InvalidCount {
                        what: "dnum",
                        value: d,
                        min: 1,
                        max: nq,
                    });
                }
                d
            }
            None => (1..=nq)
                .find(|&d| max_digit_bits(&q, nq.div_ceil(d)) <= log_p + 1.0)
                .unwrap_or(nq),
        };
        let alpha = nq.div_ceil(dnum);
        // Digits are groups of `alpha` consecutive primes; the effective number of digits may be
        // smaller than the requested dnum when alpha rounds up.
        let dnum = nq.div_ceil(alpha);
        let log_digit = max_digit_bits(&q, alpha);
        // Key-switching noise grows like N·σ·D/P for a digit modulus D; allow D up to 2P.
        if log_p + 1.0 < log_digit {
            return Err(CkksError::KeySwitchBasisTooSmall { log_p, log_digit });
        }
        let basis = RnsBasis::new(log_n, &q, &p);
        let fingerprint = fingerprint(log_n, alpha, &q, &p);
        Ok(CkksParams {
            inner: Arc::new(ParamsInner {
                fingerprint,
                log_n,
                n,
                scale_bits,
                q,
                p,
                basis,
                alpha,
                dnum,
                log_qp,
                security,
                name: self.name,
            }),
        })
    }
}

fn max_digit_bits(q: &[u64], alpha: usize) -> f64 {
    q.chunks(alpha)
        .map(|c| c.iter().map(|&x| (x as f64).log2()).sum::<f64>())
        .fold(0.0, f64::max)
}

/// Deterministic prime chain: `q_0` = largest `first_bits`-bit prime `≡ 1 mod 2N`; scale primes
/// alternately just above and just below `2^scale_bits` (so their product stays close to
/// `Δ^L`); special primes = largest unused `special_bits`-bit primes.
fn generate_chain(
    two_n: u64,
    first_bits: u32,
    scale_bits: u32,
    levels: usize,
    special_bits: u32,
    k: usize,
) -> Result<(Vec<u64>, Vec<u64>)> {
    let mut used: Vec<u64> = Vec::new();
    let below = |bits: u32, used: &mut Vec<u64>| -> Option<u64> {
        // Largest prime c ≡ 1 mod 2N with c < 2^bits not used yet.
        let c = ntt_primes_of_bits(two_n, bits).find(|c| !used.contains(c))?;
        used.push(c);
        Some(c)
    };
    let not_enough = |bits, needed| CkksError::NotEnoughPrimes {
        bits,
        modulus_2n: two_n,
        needed,
    };
    let q0 = below(first_bits, &mut used).ok_or(not_enough(first_bits, 1))?;
    // Scale primes around 2^scale_bits.
    let center = 1u64 << scale_bits;
    let lo_limit = 1u64 << (scale_bits - 1);
    let hi_limit = 1u64 << (scale_bits + 1).min(61);
    let mut up = NttPrimeWalk::up(center + 1, two_n, hi_limit);
    let mut down = NttPrimeWalk::down(center - two_n + 1, two_n, lo_limit);
    let mut q = vec![q0];
    let mut take_up = true;
    while q.len() < levels + 1 {
        let mut found = None;
        for attempt in 0..2 {
            let walk = if take_up ^ (attempt == 1) {
                &mut up
            } else {
                &mut down
            };
            found = walk.find(|c| !used.contains(c));
            if found.is_some() {
                break;
            }
        }
        let c = found.ok_or(not_enough(scale_bits, levels))?;
        used.push(c);
        q.push(c);
        take_up = !take_up;
    }
    let mut p = Vec::with_capacity(k);
    for _ in 0..k {
        p.push(below(special_bits, &mut used).ok_or(not_enough(special_bits, k))?);
    }
    Ok((q, p))
}

pub(crate) struct ParamsInner {
    pub(crate) log_n: u32,
    pub(crate) n: usize,
    pub(crate) scale_bits: u32,
    pub(crate) q: Vec<u64>,
    pub(crate) p: Vec<u64>,
    /// `q_0..q_L` then `p_0..p_{k-1}`: their constants and NTT plans.
    pub(crate) basis: RnsBasis,
    pub(crate) alpha: usize,
    pub(crate) dnum: usize,
    pub(crate) log_qp: f64,
    pub(crate) security: SecurityLevel,
    pub(crate) name: &'static str,
    /// FNV-1a hash of `(log_n, alpha, q, p)`, stamped on ciphertexts and plaintexts.
    pub(crate) fingerprint: u64,
}

fn fingerprint(log_n: u32, alpha: usize, q: &[u64], p: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let words = [log_n as u64, alpha as u64, q.len() as u64, p.len() as u64];
    for w in words.iter().chain(q).chain(p) {
        for b in w.to_le_bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// A validated CKKS parameter set (cheap to clone: shared behind an `Arc`).
#[derive(Clone)]
pub struct CkksParams {
    pub(crate) inner: Arc<ParamsInner>,
}

impl std::fmt::Debug for CkksParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CkksParams")
            .field("name", &self.inner.name)
            .field("log_n", &self.inner.log_n)
            .field("max_level", &self.max_level())
            .field("scale_bits", &self.inner.scale_bits)
            .field("q", &self.inner.q)
            .field("p", &self.inner.p)
            .field("dnum", &self.inner.dnum)
            .field("log_qp", &self.inner.log_qp)
            .field("security", &self.inner.security)
            .finish()
    }
}

impl AsRef<RnsBasis> for CkksParams {
    /// The RNS basis `q_0..q_L, p_0..p_{k-1}` every polynomial operation runs over.
    fn as_ref(&self) -> &RnsBasis {
        &self.inner.basis
    }
}

impl PartialEq for CkksParams {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
            || (self.inner.log_n == other.inner.log_n
                && self.inner.q == other.inner.q
                && self.inner.p == other.inner.p
                && self.inner.alpha == other.inner.alpha)
    }
}

impl CkksParams {
    /// Starts a builder with defaults `N = 2^14`, `Δ = 2^40`, `L = 7`, two special primes.
    pub fn builder() -> CkksParamsBuilder {
        CkksParamsBuilder::default()
    }
    /// The ring dimension `N`.
    pub fn n(&self) -> usize {
        self.inner.n
    }
    /// `log2(N)`.
    pub fn log_n(&self) -> LogN {
        LogN(self.inner.log_n)
    }
    /// Number of complex slots, `N/2`.
    pub fn slots(&self) -> usize {
        self.inner.n / 2
    }
    /// The highest level `L` (a fresh ciphertext's level).
    pub fn max_level(&self) -> usize {
        self.inner.q.len() - 1
    }
    /// The default scale `2^scale_bits`.
    pub fn default_scale(&self) -> f64 {
        (self.inner.scale_bits as f64).exp2()
    }
    /// The chain primes `q_0..q_L`.
    pub fn q_primes(&self) -> &[u64] {
        &self.inner.q
    }
    /// The special primes `p_0..p_{k-1}`.
    pub fn p_primes(&self) -> &[u64] {
        &self.inner.p
    }
    /// The prime `q_level` removed by rescaling a ciphertext at `level`.
    pub fn q_prime(&self, level: usize) -> Result<u64> {
        self.inner
            .q
            .get(level)
            .copied()
            .ok_or(CkksError::InvalidLevel {
                level,
                max: self.max_level(),
            })
    }
    /// Number of key-switching digits.
    pub fn dnum(&self) -> usize {
        self.inner.dnum
    }
    /// Number of primes per key-switching digit (`α = ⌈(L+1)/dnum⌉`).
    pub fn alpha(&self) -> usize {
        self.inner.alpha
    }
    /// `log2(Q_L · P)`.
    pub fn log_qp(&self) -> f64 {
        self.inner.log_qp
    }
    /// The claimed security level.
    pub fn security(&self) -> SecurityLevel {
        self.inner.security
    }
    /// The preset or builder name.
    pub fn name(&self) -> &'static str {
        self.inner.name
    }
    /// A 64-bit fingerprint of the ring dimension and prime chain; ciphertexts and plaintexts
    /// carry it and the evaluator refuses objects made under other parameters.
    pub fn fingerprint(&self) -> u64 {
        self.inner.fingerprint
    }
    pub(crate) fn check_level(&self, level: usize) -> Result<()> {
        if level > self.max_level() {
            Err(CkksError::InvalidLevel {
                level,
                max: self.max_level(),
            })
        } else {
            Ok(())
        }
    }
}

/// A named parameter preset; [`Preset::build`] generates its chain.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// Preset name.
    pub name: &'static str,
    /// `log2(N)`.
    pub log_n: u32,
    /// `log2(Δ)`.
    pub scale_bits: u32,
    /// Depth `L`.
    pub levels: usize,
    /// Size of `q_0`.
    pub first_prime_bits: u32,
    /// Number of special primes.
    pub special_primes: usize,
    /// Size of each special prime.
    pub special_prime_bits: u32,
    /// Key-switching digits.
    pub dnum: usize,
    /// `true` for test-only presets that skip the security check.
    pub insecure: bool,
}

impl Preset {
    /// Builds the parameter set (validating it like any builder input).
    #[allow(unused_mut)]
    pub fn build(&self) -> Result<CkksParams> {
        let mut b = CkksParams::builder()
            .name(self.name)
            .log_n(LogN(self.log_n))
            .scale_bits(ScaleBits(self.scale_bits))
            .levels(Levels(self.levels))
            .first_prime_bits(PrimeBits(self.first_prime_bits))
            .special_primes(SpecialPrimes(self.special_primes))
            .special_prime_bits(PrimeBits(self.special_prime_bits))
            .dnum(Dnum(self.dnum));
        #[cfg(any(test, feature = "testing"))]
        if self.insecure {
            b = b.insecure_skip_security_check();
        }
        b.build()
    }
}

/// Named parameter sets. Each 128-bit preset satisfies the ternary-secret bound of the HE
/// Security Standard v1.1 (OpenFHE's extension for N = 2^16); `build()` re-checks it.
pub mod presets {
    use super::Preset;

    /// N = 2^12, Δ = 2^30, L = 1, q_0: 38 bits, P: one 38-bit prime, dnum 2.
    /// log2(QP) ≈ 106 ≤ 109: **128-bit classical security** (HE standard v1.1, ternary secret).
    pub const N12_L1_S30_128BIT: Preset = Preset {
        name: "N12_L1_S30_128BIT",
        log_n: 12,
        scale_bits: 30,
        levels: 1,
        first_prime_bits: 38,
        special_primes: 1,
        special_prime_bits: 38,
        dnum: 2,
        insecure: false,
    };

    /// N = 2^13, Δ = 2^40, L = 3, q_0: 48 bits, P: one 48-bit prime, dnum 4.
    /// log2(QP) ≈ 216 ≤ 218: **128-bit classical security** (HE standard v1.1, ternary secret).
    pub const N13_L3_S40_128BIT: Preset = Preset {
        name: "N13_L3_S40_128BIT",
        log_n: 13,
        scale_bits: 40,
        levels: 3,
        first_prime_bits: 48,
        special_primes: 1,
        special_prime_bits: 48,
        dnum: 4,
        insecure: false,
    };

    /// N = 2^14, Δ = 2^40, L = 7, q_0: 50 bits, P: two 50-bit primes, dnum 4.
    /// log2(QP) ≈ 430 ≤ 438: **128-bit classical security** (HE standard v1.1, ternary secret).
    pub const N14_L7_S40_128BIT: Preset = Preset {
        name: "N14_L7_S40_128BIT",
        log_n: 14,
        scale_bits: 40,
        levels: 7,
        first_prime_bits: 50,
        special_primes: 2,
        special_prime_bits: 50,
        dnum: 4,
        insecure: false,
    };

    /// N = 2^15, Δ = 2^40, L = 17, q_0: 50 bits, P: three 50-bit primes, dnum 6.
    /// log2(QP) ≈ 880 ≤ 881: **128-bit classical security** (HE standard v1.1, ternary secret).
    pub const N15_L17_S40_128BIT: Preset = Preset {
        name: "N15_L17_S40_128BIT",
        log_n: 15,
        scale_bits: 40,
        levels: 17,
        first_prime_bits: 50,
        special_primes: 3,
        special_prime_bits: 50,
        dnum: 6,
        insecure: false,
    };

    /// N = 2^16, Δ = 2^40, L = 37, q_0: 50 bits, P: four 50-bit primes, dnum 10.
    /// log2(QP) ≈ 1730 ≤ 1761: **128-bit classical security**; 1761 is 11 bits below the 1772 that
    /// OpenFHE lists for N = 2^16 in its extension of the HE standard's table (which itself stops
    /// at 2^15).
    pub const N16_L37_S40_128BIT: Preset = Preset {
        name: "N16_L37_S40_128BIT",
        log_n: 16,
        scale_bits: 40,
        levels: 37,
        first_prime_bits: 50,
        special_primes: 4,
        special_prime_bits: 50,
        dnum: 10,
        insecure: false,
    };

    /// All 128-bit presets, smallest first.
    pub const ALL_128BIT: [Preset; 5] = [
        N12_L1_S30_128BIT,
        N13_L3_S40_128BIT,
        N14_L7_S40_128BIT,
        N15_L17_S40_128BIT,
        N16_L37_S40_128BIT,
    ];

    /// **INSECURE** N = 2^10 test preset (Δ = 2^40, L = 4). No security at all; only compiled
    /// for this crate's tests and under the `testing` feature, never used by the binaries.
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub const INSECURE_N10_L4_S40_TEST_ONLY: Preset = Preset {
        name: "INSECURE_N10_L4_S40_TEST_ONLY",
        log_n: 10,
        scale_bits: 40,
        levels: 4,
        first_prime_bits: 50,
        special_primes: 2,
        special_prime_bits: 50,
        dnum: 3,
        insecure: true,
    };

    /// **INSECURE** N = 2^11 test preset (Δ = 2^40, L = 6, one special prime, dnum = L+1).
    /// No security at all; only compiled for this crate's tests and the `testing` feature.
    #[cfg(any(test, feature = "testing"))]
    #[doc(hidden)]
    pub const INSECURE_N11_L6_S40_TEST_ONLY: Preset = Preset {
        name: "INSECURE_N11_L6_S40_TEST_ONLY",
        log_n: 11,
        scale_bits: 40,
        levels: 6,
        first_prime_bits: 50,
        special_primes: 1,
        special_prime_bits: 50,
        dnum: 7,
        insecure: true,
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use lattice::primes::is_prime;

    #[test]
    fn presets_build_and_meet_their_bound() {
        for preset in presets::ALL_128BIT {
            let params = preset.build().unwrap();
            let bound = max_log_qp_128(preset.log_n).unwrap() as f64;
            assert!(params.log_qp() <= bound, "{}", preset.name);
            assert_eq!(params.security(), SecurityLevel::Classical128);
            assert_eq!(params.max_level(), preset.levels);
            assert_eq!(params.dnum(), preset.dnum, "{}", preset.name);
            let two_n = 2 * params.n() as u64;
            let mut all: Vec<u64> = params.q_primes().to_vec();
            all.extend_from_slice(params.p_primes());
            for &p in &all {
                assert!(is_prime(p) && p % two_n == 1 && p < (1 << 50), "{p}");
            }
            let mut dedup = all.clone();
            dedup.sort_unstable();
            dedup.dedup();
            assert_eq!(dedup.len(), all.len(), "primes must be distinct");
            for &q in &params.q_primes()[1..] {
                let rel = (q as f64 / params.default_scale() - 1.0).abs();
                assert!(
                    rel < 1e-3,
                    "scale prime {q} too far from 2^{}",
                    preset.scale_bits
                );
            }
        }
    }

    /// The primes (and so the fingerprint stamped on every ciphertext) are those the chain
    /// search produced before it moved to the lattice crate.
    #[test]
    fn chain_matches_the_recorded_primes() {
        let a = presets::N14_L7_S40_128BIT.build().unwrap();
        let q: [u64; 8] = [
            1125899904679937,
            1099511922689,
            1099510054913,
            1099512938497,
            1099508121601,
            1099514314753,
            1099507695617,
            1099514478593,
        ];
        assert_eq!(a.q_primes(), q);
        assert_eq!(a.p_primes(), [1125899903991809, 1125899903827969]);
        let b = presets::N12_L1_S30_128BIT.build().unwrap();
        assert_eq!(b.q_primes(), [274877816833, 1073750017]);
        assert_eq!(b.p_primes(), [274877734913]);
    }

    #[test]
    fn chain_is_deterministic() {
        let a = presets::N14_L7_S40_128BIT.build().unwrap();
        let b = presets::N14_L7_S40_128BIT.build().unwrap();
        assert_eq!(a.q_primes(), b.q_primes());
        assert_eq!(a.p_primes(), b.p_primes());
    }

    #[test]
    fn builder_rejects_over_budget_chain() {
        let err = CkksParams::builder()
            .log_n(LogN(14))
            .scale_bits(ScaleBits(40))
            .levels(Levels(9))
            .build()
            .unwrap_err();
        assert!(
            matches!(
                err,
                CkksError::InsecureParameters {
                    bound: 438,
                    log_n: 14,
                    ..
                }
            ),
            "{err}"
        );
        let err = CkksParams::builder()
            .log_n(LogN(12))
            .scale_bits(ScaleBits(40))
            .levels(Levels(2))
            .build()
            .unwrap_err();
        assert!(matches!(
            err,
            CkksError::InsecureParameters { bound: 109, .. }
        ));
    }

    #[test]
    fn builder_rejects_invalid_settings() {
        let e = CkksParams::builder().log_n(LogN(11)).build().unwrap_err();
        assert!(matches!(e, CkksError::InvalidLogN { log_n: 11, .. }));
        let e = CkksParams::builder().log_n(LogN(17)).build().unwrap_err();
        assert!(matches!(e, CkksError::InvalidLogN { log_n: 17, .. }));
        let e = CkksParams::builder()
            .scale_bits(ScaleBits(61))
            .build()
            .unwrap_err();
        assert!(matches!(e, CkksError::InvalidPrimeBits { bits: 61, .. }));
        let e = CkksParams::builder().dnum(Dnum(9)).build().unwrap_err();
        assert!(matches!(e, CkksError::InvalidCount { what: "dnum", .. }));
        // One 50-bit special prime cannot cover digits of four primes.
        let e = CkksParams::builder()
            .special_primes(SpecialPrimes(1))
            .dnum(Dnum(2))
            .build()
            .unwrap_err();
        assert!(matches!(e, CkksError::KeySwitchBasisTooSmall { .. }), "{e}");
    }

    #[test]
    fn default_dnum_is_smallest_fitting() {
        let p = CkksParams::builder().build().unwrap();
        // Two 50-bit special primes cover digits of two primes (90 bits), not three.
        assert_eq!(p.alpha(), 2);
        assert_eq!(p.dnum(), 4);
    }
}
