//! A short probe of this machine's CKKS operation costs, and the priced cost model built on it:
//! seconds per operation kind per level at one parameter set and thread count ([`OpCosts`]),
//! and the price of a block of evaluator operations ([`OpCosts::price`]). The encrypted-model
//! planners price their candidate plans with it (`hecnn::planner`, and `hegcn::planner` for its
//! AMA, channel-major and mixed stages): each stage is the [`OpCounts`] it plans at the level
//! it runs ([`super::stage::Stage`]), and a plan costs the sum of [`OpCosts::price`].
//!
//! **What is timed** ([`probe`]), each a few times after one warm-up, the median kept, at each
//! requested level, each run on the least recently used of sixteen operands (and four rotation
//! keys) so that it reads them from memory as a model's layer does, in the calling rayon pool (run it inside a pool of `t` threads to price
//! plans on `t` threads): a ciphertext addition; a plaintext product accumulated over `Q`
//! (`mul_plain_add_assign`) and over `Q·P` (`mul_plain_add_assign_ext`, lazy ModDown); a
//! constant product accumulated; a ciphertext product without relinearization (the tensor);
//! the parts of a key switch — the decomposition (ModUp of one polynomial), one key-switching
//! inner product (through an automorphism, as a hoisted rotation takes it) and the ModDown of
//! one polynomial; a full rotation and a relinearization, whose excess over their parts is
//! priced per rotation and per relinearization; a rescale; a level drop; an encoding; the
//! sanitizing of a result ciphertext (an encryption of zero under the public key and a flood).
//!
//! **Between levels** every cost is interpolated linearly in the level (all of them are
//! linear in the number of limbs), and extrapolated from the nearest two probed levels
//! outside them (never below zero).
//!
//! **Security.** The probe encrypts random values under keys it generates from the OS-seeded
//! generator and drops; it handles no one's data.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::ciphertext::Ciphertext;
use crate::encoder::Encoder;
use crate::error::{CkksError, Result};
use crate::evaluator::{Evaluator, OpCounts};
use crate::keys::{galois_element_for_step, KeyGenerator, PublicKey};
use crate::keyswitch;
use crate::params::CkksParams;
use crate::sanitize::FloodConfig;

/// The operation kinds the cost model prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// A ciphertext addition over `Q`.
    Add,
    /// A plaintext product accumulated over `Q`.
    MulPlain,
    /// A plaintext product accumulated over `Q·P` (lazy ModDown).
    MulPlainExt,
    /// A constant product accumulated over `Q`.
    MulConst,
    /// A ciphertext product without relinearization.
    Tensor,
    /// A relinearization beyond its key-switch parts.
    Relinearize,
    /// A rotation beyond its key-switch parts (the automorphism of `c0`).
    Rotate,
    /// One key-switching inner product (through an automorphism).
    InnerProduct,
    /// One key-switching decomposition (ModUp of one polynomial).
    Decompose,
    /// The ModDown of one polynomial.
    ModDown,
    /// A rescale.
    Rescale,
    /// A level drop.
    DropLevel,
    /// An encoding of one slot vector.
    Encode,
    /// Sanitizing one result ciphertext (encryption of zero and flood).
    Sanitize,
}

impl OpKind {
    /// Every kind, in table order.
    pub const ALL: [OpKind; 14] = [
        Self::Add,
        Self::MulPlain,
        Self::MulPlainExt,
        Self::MulConst,
        Self::Tensor,
        Self::Relinearize,
        Self::Rotate,
        Self::InnerProduct,
        Self::Decompose,
        Self::ModDown,
        Self::Rescale,
        Self::DropLevel,
        Self::Encode,
        Self::Sanitize,
    ];
}

/// Seconds per operation kind at the probed levels of one parameter set, on `threads` threads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OpCosts {
    params: String,
    threads: usize,
    levels: Vec<usize>,
    secs: BTreeMap<OpKind, Vec<f64>>,
}

/// Checks `levels` (non-empty, each in `1..=max`) and returns them sorted without repeats.
fn checked_levels(levels: &[usize], max: usize) -> Result<Vec<usize>> {
    let mut out = levels.to_vec();
    out.sort_unstable();
    out.dedup();
    let bad = out.iter().find(|&&l| l == 0 || l > max);
    match (out.first(), bad) {
        (None, _) => Err(CkksError::InvalidCount {
            what: "probe levels (how many)",
            value: 0,
            min: 1,
            max,
        }),
        (_, Some(&l)) => Err(CkksError::InvalidCount {
            what: "probe level",
            value: l,
            min: 1,
            max,
        }),
        _ => Ok(out),
    }
}

impl OpCosts {
    /// A fixed cost table (not probed): `table(kind, level)` seconds at each of `levels`, for
    /// `threads` threads of parameters named `params`.
    ///
    /// # Errors
    /// [`CkksError::InvalidCount`] for no level or a level 0; [`CkksError::InvalidCost`] for a
    /// negative or non-finite cost.
    pub fn from_table(
        params: &str,
        threads: usize,
        levels: &[usize],
        table: impl Fn(OpKind, usize) -> f64,
    ) -> Result<Self> {
        let levels = checked_levels(levels, usize::MAX)?;
        let mut secs = BTreeMap::new();
        for kind in OpKind::ALL {
            let v: Vec<f64> = levels.iter().map(|&l| table(kind, l)).collect();
            if let Some((&level, &value)) = levels
                .iter()
                .zip(&v)
                .find(|(_, c)| !(c.is_finite() && **c >= 0.0))
            {
                return Err(CkksError::InvalidCost {
                    kind: format!("{kind:?}"),
                    level,
                    value,
                });
            }
            secs.insert(kind, v);
        }
        Ok(Self {
            params: params.to_string(),
            threads,
            levels,
            secs,
        })
    }

    /// The parameter set's name.
    pub fn params(&self) -> &str {
        &self.params
    }

    /// The rayon threads the costs were measured on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The probed levels, ascending.
    pub fn levels(&self) -> &[usize] {
        &self.levels
    }

    /// Seconds of one `kind` at `level` (interpolated between probed levels, extrapolated
    /// linearly beyond them, never negative).
    pub fn at(&self, kind: OpKind, level: usize) -> f64 {
        let v = &self.secs[&kind];
        let ls = &self.levels;
        if ls.len() == 1 {
            // One probed level: proportional to the limbs.
            return v[0] * (level + 1) as f64 / (ls[0] + 1) as f64;
        }
        let i = ls.partition_point(|&l| l < level).clamp(1, ls.len() - 1);
        let (l0, l1) = (ls[i - 1] as f64, ls[i] as f64);
        let t = (level as f64 - l0) / (l1 - l0);
        (v[i - 1] + t * (v[i] - v[i - 1])).max(0.0)
    }

    /// Seconds of the operations `ops` at `level`, `over_qp` of whose plaintext products (with
    /// their accumulations) are taken over `Q·P` (lazy ModDown). A rotation is priced as its
    /// parts as counted — decomposition, inner product, ModDowns — plus [`OpKind::Rotate`], so
    /// hoisted, giant-step and full rotations each cost what they do.
    pub fn price(&self, ops: &OpCounts, over_qp: u64, level: usize) -> f64 {
        let c = |k: OpKind, n: u64| n as f64 * self.at(k, level);
        let over_qp = over_qp.min(ops.mul_plain);
        c(OpKind::Add, ops.add)
            + c(OpKind::MulPlain, ops.mul_plain - over_qp)
            + c(OpKind::MulPlainExt, over_qp)
            + c(OpKind::MulConst, ops.mul_const)
            + c(OpKind::Tensor, ops.mul)
            + c(OpKind::Relinearize, ops.relinearize)
            + c(OpKind::Rotate, ops.rotate)
            + c(OpKind::InnerProduct, ops.key_switch)
            + c(OpKind::Decompose, ops.decompose)
            + c(OpKind::ModDown, ops.mod_down)
            + c(OpKind::Rescale, ops.rescale)
            + c(OpKind::DropLevel, ops.drop_level)
    }
}

/// Which operand the next timed run takes: one counter for every kind, so that each run
/// takes the operand least recently touched and finds it out of the core's cache, as the
/// operands of a model's layer are.
#[derive(Default)]
struct Cycle(std::cell::Cell<usize>);

impl Cycle {
    fn next(&self) -> usize {
        let j = (self.0.get() + 1) % OPERANDS;
        self.0.set(j);
        j
    }
}

/// Median seconds of `reps` runs of `f` on the operands `cycle` hands out, after one warm-up.
fn median_secs(reps: usize, cycle: &Cycle, mut f: impl FnMut(usize) -> Result<()>) -> Result<f64> {
    f(cycle.next())?;
    let mut t = Vec::with_capacity(reps);
    for _ in 0..reps {
        let j = cycle.next();
        let start = Instant::now();
        f(j)?;
        t.push(start.elapsed().as_secs_f64());
    }
    t.sort_by(f64::total_cmp);
    Ok(t[t.len() / 2])
}

/// Distinct operands the timed runs cycle through (with four rotation keys), so that the
/// probe's working set (tens of megabytes at N = 2^14) outgrows a core's cache as a model's
/// does: an operand reused at once is several times faster than one read from memory.
const OPERANDS: usize = 16;

/// Rotation keys the inner products cycle through.
const KEYS: usize = 4;

/// The operands of the probe at one level: `OPERANDS` of each.
struct Operands {
    values: Vec<Vec<f64>>,
    cts: Vec<Ciphertext>,
    pts: Vec<crate::encoder::Plaintext>,
    pts_ext: Vec<crate::encoder::Plaintext>,
    exts: Vec<crate::lazy::ExtCiphertext>,
}

fn operands(pk: &PublicKey, eval: &Evaluator, enc: &Encoder, level: usize) -> Result<Operands> {
    let p = eval.params();
    let scale = p.default_scale();
    let values: Vec<Vec<f64>> = (0..OPERANDS + 2)
        .map(|j| {
            (0..p.slots())
                .map(|i| ((i * 37 + j * 11) % 101) as f64 / 101.0)
                .collect()
        })
        .collect();
    let mut o = Operands {
        values: Vec::new(),
        cts: Vec::new(),
        pts: Vec::new(),
        pts_ext: Vec::new(),
        exts: Vec::new(),
    };
    for j in 0..OPERANDS {
        let ct = pk.encrypt(&enc.encode(&values[j], level, scale)?)?;
        o.pts.push(enc.encode(&values[j + 1], level, scale)?);
        o.pts_ext
            .push(enc.encode_ext(&values[j + 2], level, scale)?);
        o.exts.push(eval.lift_ext(&ct)?);
        o.cts.push(ct);
    }
    o.values = values;
    Ok(o)
}

/// Times the products, additions, rescales, encodings and sanitizing at the operands' level.
fn probe_arithmetic(
    eval: &Evaluator,
    pk: &PublicKey,
    enc: &Encoder,
    o: &Operands,
    reps: usize,
    m: &mut BTreeMap<OpKind, f64>,
) -> Result<()> {
    let (cts, level) = (&o.cts, o.cts[0].level());
    let scale = eval.params().default_scale();
    let mut accs = (0..OPERANDS)
        .map(|j| eval.mul_plain(&cts[j], &o.pts[j]))
        .collect::<Result<Vec<_>>>()?;
    let mut accs_c = (0..OPERANDS)
        .map(|j| eval.mul_const(&cts[j], 0.5))
        .collect::<Result<Vec<_>>>()?;
    let mut accs_ext = (0..OPERANDS)
        .map(|j| eval.mul_plain_ext(&o.exts[j], &o.pts_ext[j]))
        .collect::<Result<Vec<_>>>()?;
    let flood = FloodConfig::default().flood(scale);
    let cycle = Cycle::default();
    let mut t = |k: OpKind, f: &mut dyn FnMut(usize) -> Result<()>| -> Result<()> {
        m.insert(k, median_secs(reps, &cycle, f)?);
        Ok(())
    };
    t(OpKind::Add, &mut |j| eval.add(&cts[j], &cts[j]).map(drop))?;
    t(OpKind::MulPlain, &mut |j| {
        eval.mul_plain_add_assign(&mut accs[j], &cts[j], &o.pts[j])
    })?;
    t(OpKind::MulPlainExt, &mut |j| {
        eval.mul_plain_add_assign_ext(&mut accs_ext[j], &o.exts[j], &o.pts_ext[j])
    })?;
    t(OpKind::MulConst, &mut |j| {
        eval.mul_const_add_assign(&mut accs_c[j], &cts[j], 0.25)
    })?;
    t(OpKind::Tensor, &mut |j| {
        eval.mul_no_relin(&cts[j], &cts[j]).map(drop)
    })?;
    t(OpKind::Rescale, &mut |j| eval.rescale(&cts[j]).map(drop))?;
    t(OpKind::DropLevel, &mut |j| {
        eval.drop_level(&cts[j]).map(drop)
    })?;
    t(OpKind::Encode, &mut |j| {
        enc.encode(&o.values[j], level, scale).map(drop)
    })?;
    t(OpKind::Sanitize, &mut |j| {
        eval.sanitize(&cts[j], pk, &flood).map(drop)
    })
}

/// Times the parts of a key switch (decomposition, inner product with each of the keys of
/// `steps`, ModDown) and the excess of a full rotation and a relinearization over them.
fn probe_key_switching(
    eval: &Evaluator,
    o: &Operands,
    steps: &[i64],
    reps: usize,
    m: &mut BTreeMap<OpKind, f64>,
) -> Result<()> {
    let p = eval.params();
    let cts = &o.cts;
    let digits: Vec<_> = cts.iter().map(|c| keyswitch::decompose(p, &c.c1)).collect();
    let ct3s = cts
        .iter()
        .map(|c| eval.mul_no_relin(c, c))
        .collect::<Result<Vec<_>>>()?;
    let keys = steps
        .iter()
        .map(|&s| {
            let g = galois_element_for_step(p, s);
            Ok((eval.key_for(g, s, cts[0].level())?, eval.perm_for(g)))
        })
        .collect::<Result<Vec<_>>>()?;
    let cycle = Cycle::default();
    let dec = median_secs(reps, &cycle, |j| {
        drop(keyswitch::decompose(p, &cts[j].c1));
        Ok(())
    })?;
    let ip = median_secs(reps, &cycle, |j| {
        let (key, perm) = &keys[j % KEYS];
        drop(keyswitch::inner_product(p, &digits[j], key, Some(perm)));
        Ok(())
    })?;
    let md_clone = median_secs(reps, &cycle, |j| {
        drop(o.exts[j].a1.clone().mod_down(p));
        Ok(())
    })?;
    let clone = median_secs(reps, &cycle, |j| {
        drop(o.exts[j].a1.clone());
        Ok(())
    })?;
    let md = (md_clone - clone).max(0.0);
    let parts = dec + ip + 2.0 * md;
    let rot = median_secs(reps, &cycle, |j| {
        eval.rotate(&cts[j], steps[j % KEYS]).map(drop)
    })?;
    let relin = median_secs(reps, &cycle, |j| eval.relinearize(&ct3s[j]).map(drop))?;
    m.insert(OpKind::Decompose, dec);
    m.insert(OpKind::InnerProduct, ip);
    m.insert(OpKind::ModDown, md);
    m.insert(OpKind::Rotate, (rot - parts).max(0.0));
    m.insert(OpKind::Relinearize, (relin - parts).max(0.0));
    Ok(())
}

/// Probes this machine's costs of every [`OpKind`] at each of `levels` of `params`: `reps`
/// timed runs of each (median), in the calling rayon pool. At N = 2^14 with 3 levels and 5
/// runs it takes well under two seconds on one core.
///
/// # Errors
/// [`CkksError::InvalidCount`] for no level, a level outside `1..=max_level` or `reps`
/// outside `1..=100`; CKKS errors of key generation.
pub fn probe(params: &CkksParams, levels: &[usize], reps: usize) -> Result<OpCosts> {
    let levels = checked_levels(levels, params.max_level())?;
    if !(1..=100).contains(&reps) {
        return Err(CkksError::InvalidCount {
            what: "probe repetitions",
            value: reps,
            min: 1,
            max: 100,
        });
    }
    let mut kg = KeyGenerator::new(params);
    let sk = kg.secret_key();
    let steps: Vec<i64> = (1..=KEYS as i64).collect();
    let pk = kg.public_key(&sk)?;
    let eval = Evaluator::new(params)
        .with_relin_key(kg.relin_key(&sk)?)
        .with_galois_keys(kg.galois_keys(&sk, &steps, false)?);
    let enc = Encoder::new(params);
    let mut secs: BTreeMap<OpKind, Vec<f64>> = BTreeMap::new();
    for &l in &levels {
        let pk_l = pk.at_level(l)?;
        let o = operands(&pk_l, &eval, &enc, l)?;
        let mut m = BTreeMap::new();
        probe_arithmetic(&eval, &pk_l, &enc, &o, reps, &mut m)?;
        probe_key_switching(&eval, &o, &steps, reps, &mut m)?;
        for (k, t) in m {
            secs.entry(k).or_default().push(t);
        }
    }
    Ok(OpCosts {
        params: params.name().to_string(),
        threads: rayon::current_num_threads(),
        levels,
        secs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::presets;

    #[test]
    fn the_probe_returns_positive_finite_costs_at_every_level() {
        let params = presets::INSECURE_N11_L6_S40_TEST_ONLY.build().unwrap();
        let costs = probe(&params, &[4, 1], 3).unwrap();
        assert_eq!(costs.levels(), &[1, 4]);
        assert!(costs.threads() >= 1);
        for kind in OpKind::ALL {
            for l in [0, 1, 2, 4, 6] {
                let c = costs.at(kind, l);
                assert!(c.is_finite() && c >= 0.0, "{kind:?} at {l}: {c}");
            }
        }
        // The parts that do real work cannot take no time at all.
        for kind in [
            OpKind::InnerProduct,
            OpKind::Decompose,
            OpKind::Tensor,
            OpKind::Encode,
        ] {
            assert!(costs.at(kind, 4) > 0.0, "{kind:?}");
        }
    }

    #[test]
    fn bad_levels_and_repetitions_are_refused_by_name() {
        let params = presets::INSECURE_N10_L4_S40_TEST_ONLY.build().unwrap();
        for (levels, reps, what) in [
            (&[][..], 3, "probe levels"),
            (&[0][..], 3, "probe level"),
            (&[5][..], 3, "probe level"),
            (&[1][..], 0, "probe repetitions"),
        ] {
            let e = probe(&params, levels, reps).unwrap_err().to_string();
            assert!(e.contains(what), "{e}");
        }
        let e = OpCosts::from_table("t", 1, &[1], |k, _| {
            if k == OpKind::Rescale {
                f64::NAN
            } else {
                1.0
            }
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("Rescale") && e.contains("level 1"), "{e}");
    }

    #[test]
    fn costs_interpolate_between_levels_and_price_counts_field_by_field() {
        // 1 ms per limb for every kind, probed at levels 2 and 6.
        let c = OpCosts::from_table("t", 1, &[6, 2], |_, l| 1e-3 * (l + 1) as f64).unwrap();
        for l in 0..9 {
            let want = 1e-3 * (l + 1) as f64;
            assert!((c.at(OpKind::Add, l) - want).abs() < 1e-12, "level {l}");
        }
        let one = OpCosts::from_table("t", 1, &[3], |_, _| 4e-3).unwrap();
        assert!((one.at(OpKind::Add, 1) - 2e-3).abs() < 1e-12);
        // A full rotation: rotate + key switch + decomposition + 2 ModDowns = 5 units; a
        // product over Q·P replaces one over Q.
        let unit = OpCosts::from_table("t", 1, &[1], |k, _| match k {
            OpKind::MulPlainExt => 10.0,
            _ => 1.0,
        })
        .unwrap();
        let rot = OpCounts {
            rotate: 1,
            key_switch: 1,
            decompose: 1,
            mod_down: 2,
            ..OpCounts::default()
        };
        assert_eq!(unit.price(&rot, 0, 1), 5.0);
        let products = OpCounts {
            mul_plain: 3,
            add: 2,
            ..OpCounts::default()
        };
        assert_eq!(unit.price(&products, 0, 1), 5.0);
        assert_eq!(unit.price(&products, 2, 1), 1.0 + 20.0 + 2.0);
    }
}
