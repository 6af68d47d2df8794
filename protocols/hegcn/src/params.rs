//! CKKS parameters tailored to one model and input shape: the smallest ring that holds the
//! folded model's depth and its layout's slots at 128-bit security, with exactly that many
//! levels and the key-switching split (special primes, digits) that makes the evaluation keys
//! smallest ([`choose_params`], [`ParamSpec`]).
//!
//! The named presets of [`ckks::presets`] carry a fixed number of levels (17 at `N = 2^15`); a
//! model of depth 14 encrypted under one of them still pays for every key-switching digit and
//! special prime of the full chain in each Galois key. A tailored set has `L = depth`, the same
//! scale (`Δ = 2^40`, `q_0` and the special primes of 50 bits, as the presets from `N = 2^14`
//! up, so the precision is that of the presets) and, among the splits that satisfy the
//! key-switching bound of [`ckks::CkksParamsBuilder::build`] and the 128-bit bound of the HE
//! standard, the one with the fewest bytes per key (`digits × (L + 1 + special primes)` limbs).
//! The named presets compete too: the result is whichever holds the model at the smallest `N`
//! with the smallest keys, a named preset when it is as good.
//!
//! Security model: a tailored set is as secure as a preset (RLWE with a ternary secret; the
//! builder refuses any `log2(QP)` above the HE standard's 128-bit bound). A client never takes
//! the server's word for it: it rebuilds the set from the [`ParamSpec`] with the same builder
//! (which re-checks the bound; there is no way to ask for an insecure set) and compares the
//! prime chain.
//!
//! The depth is the level plan's ([`crate::plan`]): every kept activation site and every linear
//! map spends one 40-bit level, except that two maps with a pruned site between them share one
//! (an open map and the one that closes it). The BodyPose model (3 blocks, nothing pruned, 14
//! levels) needs `50 + 14·40 + P > 438` bits, more than `N = 2^14` allows, whatever its slot
//! count; a linearised Mocap-15 model that keeps two sites needs 7 and runs at `N = 2^14`.

use ckks::{
    presets, CkksParams, Dnum, GaloisKeys, Levels, LogN, PrimeBits, RelinKey, ScaleBits,
    SpecialPrimes,
};
use serde::{Deserialize, Serialize};
use stgcn::FoldedModel;

use crate::error::{HeGcnError, Result};
use crate::layout::Packing;
use crate::plan::{level_plan, slots_needed, LevelPlan};

/// `log2(Δ)` of tailored sets.
pub const TAILORED_SCALE_BITS: u32 = 40;
/// Bits of `q_0` and of every special prime of tailored sets.
pub const TAILORED_PRIME_BITS: u32 = 50;
/// Ring degrees tried, smallest first (`log2 N`).
const LOG_N_RANGE: std::ops::RangeInclusive<u32> =
    ckks::params::MIN_LOG_N..=ckks::params::MAX_LOG_N;
/// Most special primes tried.
const MAX_SPECIAL_PRIMES: usize = 8;

/// A CKKS parameter set as it travels in a model description: what the client rebuilds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamSpec {
    /// `log2(N)`.
    pub log_n: u32,
    /// `log2(Δ)`.
    pub scale_bits: u32,
    /// Depth `L`.
    pub levels: usize,
    /// Bits of `q_0`.
    pub first_prime_bits: u32,
    /// Number of special primes.
    pub special_primes: usize,
    /// Bits of each special prime.
    pub special_prime_bits: u32,
    /// Key-switching digits.
    pub dnum: usize,
}

impl ParamSpec {
    /// The spec of a named preset.
    pub fn of_preset(p: &ckks::Preset) -> Self {
        Self {
            log_n: p.log_n,
            scale_bits: p.scale_bits,
            levels: p.levels,
            first_prime_bits: p.first_prime_bits,
            special_primes: p.special_primes,
            special_prime_bits: p.special_prime_bits,
            dnum: p.dnum,
        }
    }

    /// The 128-bit preset with exactly this spec, if any.
    pub fn preset(&self) -> Option<&'static ckks::Preset> {
        presets::ALL_128BIT
            .iter()
            .find(|p| Self::of_preset(p) == *self)
    }

    /// The preset's name, or `N<log n>_L<levels>_S<scale>_P<k>x<bits>_D<dnum>_128BIT` for a
    /// tailored set.
    pub fn name(&self) -> String {
        match self.preset() {
            Some(p) => p.name.to_string(),
            None => format!(
                "N{}_L{}_S{}_Q{}_P{}x{}_D{}_128BIT",
                self.log_n,
                self.levels,
                self.scale_bits,
                self.first_prime_bits,
                self.special_primes,
                self.special_prime_bits,
                self.dnum
            ),
        }
    }

    /// Builds the set at 128-bit security (the builder re-checks the HE standard's bound and
    /// the key-switching bound; a spec that breaks either is refused).
    ///
    /// # Errors
    /// [`ckks::CkksError`] for an invalid or insecure spec.
    pub fn build(&self) -> ckks::Result<CkksParams> {
        if let Some(p) = self.preset() {
            return p.build();
        }
        CkksParams::builder()
            .name("tailored")
            .log_n(LogN(self.log_n))
            .scale_bits(ScaleBits(self.scale_bits))
            .levels(Levels(self.levels))
            .first_prime_bits(PrimeBits(self.first_prime_bits))
            .special_primes(SpecialPrimes(self.special_primes))
            .special_prime_bits(PrimeBits(self.special_prime_bits))
            .dnum(Dnum(self.dnum))
            .build()
    }
}

/// Bytes of one Galois key (one element) under `params`, as a session uploads it.
pub fn galois_key_bytes(params: &CkksParams) -> u64 {
    GaloisKeys::serialized_len(params, 1)
}

/// A parameter set chosen for a model: its spec, the built parameters and the level plan.
#[derive(Clone, Debug)]
pub struct ParamChoice {
    /// What the client rebuilds.
    pub spec: ParamSpec,
    /// The parameters.
    pub params: CkksParams,
    /// The model's level plan (`plan.depth ≤ params.max_level()`).
    pub plan: LevelPlan,
}

/// The smallest 128-bit parameters for `model` under `packing` (see the module docs): the
/// smallest ring degree whose slots hold the layout and whose 128-bit modulus bound holds the
/// depth, with the smallest keys among the named presets and the tailored sets of that degree.
///
/// # Errors
/// [`HeGcnError::UnsupportedActivation`] for a kept ReLU; [`HeGcnError::LayoutTooLarge`] when
/// no ring has the slots; [`HeGcnError::DepthExceeded`] when no ring holds the depth.
pub fn choose_params(model: &FoldedModel, packing: Packing) -> Result<ParamChoice> {
    let plan = level_plan(model)?;
    let (spec, params) = smallest_params(plan.depth, slots_needed(model, packing), packing)?;
    Ok(ParamChoice { spec, params, plan })
}

/// The smallest 128-bit parameters with at least `depth` levels and `slots` slots (see
/// [`choose_params`]); `packing` only names the layout in a refusal.
///
/// # Errors
/// [`HeGcnError::LayoutTooLarge`], [`HeGcnError::DepthExceeded`].
pub fn smallest_params(
    depth: usize,
    slots: usize,
    packing: Packing,
) -> Result<(ParamSpec, CkksParams)> {
    let depth = depth.max(1);
    let max_slots = 1usize << (ckks::params::MAX_LOG_N - 1);
    if slots > max_slots {
        return Err(HeGcnError::LayoutTooLarge {
            packing: packing.name(),
            needed: slots,
            available: max_slots,
        });
    }
    for log_n in LOG_N_RANGE {
        if (1usize << (log_n - 1)) < slots {
            continue;
        }
        if let Some(best) = best_at(log_n, depth) {
            return Ok(best);
        }
    }
    Err(HeGcnError::DepthExceeded {
        needed: depth,
        available: deepest_estimate(),
    })
}

/// Bytes of the relinearization key and one Galois key: what every key of a session costs.
fn key_cost(params: &CkksParams) -> u64 {
    RelinKey::serialized_len(params) + galois_key_bytes(params)
}

/// The candidate with the smallest keys at ring degree `2^log_n` holding `depth` levels:
/// named presets and tailored sets with `L = depth`, 1 to [`MAX_SPECIAL_PRIMES`] special
/// primes and the fewest digits the key-switching bound allows.
fn best_at(log_n: u32, depth: usize) -> Option<(ParamSpec, CkksParams)> {
    let bound = ckks::params::max_log_qp_128(log_n)? as usize;
    let mut candidates: Vec<ParamSpec> = presets::ALL_128BIT
        .iter()
        .filter(|p| p.log_n == log_n && p.levels >= depth)
        .map(ParamSpec::of_preset)
        .collect();
    let q_bits = TAILORED_PRIME_BITS as usize + depth * TAILORED_SCALE_BITS as usize;
    for k in 1..=MAX_SPECIAL_PRIMES {
        if q_bits + k * TAILORED_PRIME_BITS as usize > bound {
            break;
        }
        // The fewest digits whose widest digit stays within 2·P (the builder's bound): a digit
        // of `a` primes holds at most `50 + (a − 1)·40` bits (the first) of `50 + 40·a`.
        let p_bits = k * TAILORED_PRIME_BITS as usize;
        let alpha = (1..=depth + 1)
            .rev()
            .find(|&a| {
                TAILORED_PRIME_BITS as usize + (a - 1) * TAILORED_SCALE_BITS as usize <= p_bits
            })
            .unwrap_or(1);
        candidates.push(ParamSpec {
            log_n,
            scale_bits: TAILORED_SCALE_BITS,
            levels: depth,
            first_prime_bits: TAILORED_PRIME_BITS,
            special_primes: k,
            special_prime_bits: TAILORED_PRIME_BITS,
            dnum: (depth + 1).div_ceil(alpha),
        });
    }
    candidates
        .into_iter()
        .filter_map(|s| s.build().ok().map(|p| (s, p)))
        .min_by_key(|(s, p)| (key_cost(p), s.preset().is_none(), s.levels))
}

/// The depth the largest ring holds with one special prime (an upper bound for any split).
fn deepest_estimate() -> usize {
    let bound = ckks::params::max_log_qp_128(ckks::params::MAX_LOG_N).unwrap_or(0) as usize;
    bound.saturating_sub(2 * TAILORED_PRIME_BITS as usize) / TAILORED_SCALE_BITS as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_and_slots_pick_the_smallest_ring_with_the_smallest_keys() {
        // BodyPose (depth 14, 1 slot): N = 2^15 with exactly 14 levels, smaller keys than
        // the 17-level preset.
        let (spec, params) = smallest_params(14, 1, Packing::Ama).unwrap();
        assert_eq!((spec.log_n, spec.levels), (15, 14));
        assert_eq!(params.max_level(), 14);
        let preset = presets::N15_L17_S40_128BIT.build().unwrap();
        assert!(key_cost(&params) < key_cost(&preset));
        assert!(spec.preset().is_none());
        assert!(spec.name().starts_with("N15_L14_S40_"), "{}", spec.name());
        // Rebuilding the spec gives the same chain (what a client does).
        let again = spec.build().unwrap();
        assert_eq!(again.q_primes(), params.q_primes());
        assert_eq!(again.p_primes(), params.p_primes());
        assert_eq!(again.fingerprint(), params.fingerprint());
        // Shallow models go to smaller rings; a wide layout forces a larger one.
        let (s, _) = smallest_params(3, 8, Packing::Ama).unwrap();
        assert_eq!(s.log_n, 13);
        let (s, _) = smallest_params(6, 4, Packing::Ama).unwrap();
        assert_eq!((s.log_n, s.levels), (14, 6));
        let (s, _) = smallest_params(3, 1 << 13, Packing::ChannelMajor).unwrap();
        assert_eq!(s.log_n, 14);
    }

    #[test]
    fn nothing_fits_is_refused_with_the_limit() {
        let e = smallest_params(80, 1, Packing::Ama).unwrap_err();
        assert!(matches!(e, HeGcnError::DepthExceeded { needed: 80, available } if available < 80));
        let e = smallest_params(3, 1 << 16, Packing::ChannelMajor).unwrap_err();
        assert!(matches!(
            e,
            HeGcnError::LayoutTooLarge {
                needed: 65536,
                available: 32768,
                ..
            }
        ));
    }

    #[test]
    fn presets_round_trip_through_their_spec_and_tailored_sets_stay_secure() {
        for p in presets::ALL_128BIT {
            let s = ParamSpec::of_preset(&p);
            assert_eq!(s.name(), p.name);
            assert_eq!(s.build().unwrap().q_primes(), p.build().unwrap().q_primes());
        }
        for depth in [1, 2, 5, 9, 14, 20] {
            let (_, params) = smallest_params(depth, 1, Packing::Ama).unwrap();
            assert_eq!(params.security(), ckks::SecurityLevel::Classical128);
            assert!(params.max_level() >= depth);
        }
        // A spec above the bound is refused by the builder (no insecure path).
        let mut s = smallest_params(14, 1, Packing::Ama).unwrap().0;
        s.log_n = 14;
        assert!(s.build().is_err());
    }
}
