//! The polynomial activation sites of a compiled model: per-ciphertext, per-block
//! coefficients `a⊙x² + b⊙x + c` ([`ActMap`]), the evaluation each ciphertext's quadratic
//! coefficients allow ([`QuadKind`]: linear, plain or negated square, or general `a` at the
//! reduced scale [`ACT_COEFF_SCALE_BITS`]), the evaluation itself and its operation counts.

use ckks::{Ciphertext, Encoder, Evaluator, OpCounts};
use rayon::prelude::*;
use stgcn::FoldedActivation;

use super::replicas::Replicas;
use crate::error::{HeGcnError, Result};
use crate::layout::Layout;
use crate::linear::check_aligned;
use crate::plan::site_levels;

/// Bits of the scale at which general polynomial coefficients `a_v` are encoded.
pub const ACT_COEFF_SCALE_BITS: u32 = 20;

/// The quadratic coefficients `a` of one activation ciphertext (over its used blocks).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum QuadKind {
    /// All `a = 0`: `b·x + c` only.
    Linear,
    /// All `a = 1`: a plain square.
    Square,
    /// All `a = −1`: a negated square.
    NegSquare,
    /// Any other `a`: `x·(a⊙x)` with `a` encoded at a reduced scale.
    General,
}

impl QuadKind {
    /// The kind of a ciphertext whose used blocks hold the coefficients `vals`.
    fn of(vals: &[f64]) -> Self {
        if vals.iter().all(|&x| x == 1.0) {
            QuadKind::Square
        } else if vals.iter().all(|&x| x == -1.0) {
            QuadKind::NegSquare
        } else if vals.iter().all(|&x| x == 0.0) {
            QuadKind::Linear
        } else {
            QuadKind::General
        }
    }
}

/// Per-ciphertext, per-block coefficients of one activation site.
#[derive(Debug)]
pub(super) struct ActMap {
    a: Vec<Vec<f64>>,
    b: Vec<Vec<f64>>,
    c: Vec<Vec<f64>>,
    /// Per ciphertext: which evaluation its quadratic coefficients allow.
    kind: Vec<QuadKind>,
    valid: Vec<f64>,
    block: usize,
    slots: usize,
}

impl ActMap {
    /// The site `site` of block `block_idx` in `layout`; `None` for a fully pruned site.
    pub(super) fn new(
        act: &FoldedActivation,
        layout: &Layout,
        block_idx: usize,
        site: usize,
        reps: Replicas,
    ) -> Result<Option<Self>> {
        if site_levels(act, block_idx, site)? == 0 {
            return Ok(None);
        }
        let FoldedActivation::Poly { a, b, c } = act else {
            unreachable!("site_levels refuses kept ReLU nodes")
        };
        let n = layout.num_cts();
        let nb = layout.blocks_per_ct();
        let mut am = vec![vec![0.0; nb]; n];
        let mut bm = am.clone();
        let mut cm = am.clone();
        let mut used = vec![vec![false; nb]; n];
        for ch in 0..layout.channels {
            for v in 0..layout.nodes {
                let (ct, blk0) = layout.position(ch, v);
                for blk in reps.blocks(blk0) {
                    am[ct][blk] = a[v];
                    bm[ct][blk] = b[v];
                    cm[ct][blk] = c[v];
                    used[ct][blk] = true;
                }
            }
        }
        let kind = (0..n)
            .map(|ct| {
                let vals: Vec<f64> = (0..nb)
                    .filter(|&k| used[ct][k])
                    .map(|k| am[ct][k])
                    .collect();
                QuadKind::of(&vals)
            })
            .collect();
        Ok(Some(Self {
            a: am,
            b: bm,
            c: cm,
            kind,
            valid: layout.valid_mask(),
            block: layout.block,
            slots: layout.slots,
        }))
    }

    fn slot_vec(&self, per_block: &[f64]) -> Vec<f64> {
        let mut v = vec![0.0; self.slots];
        for (blk, &x) in per_block.iter().enumerate() {
            if x != 0.0 {
                for (u, &m) in self.valid.iter().enumerate() {
                    v[blk * self.block + u] = x * m;
                }
            }
        }
        v
    }

    /// Operations of [`Self::apply`], call by call.
    pub(super) fn planned_ops(&self) -> OpCounts {
        let mut c = OpCounts::default();
        let needs_pa = self.kind.contains(&QuadKind::General);
        for ct in 0..self.kind.len() {
            let has_b = self.b[ct].iter().any(|&v| v != 0.0);
            let square = |c: &mut OpCounts| {
                c.mul += 1;
                c.relinearize += 1;
                c.key_switch += 1;
                c.decompose += 1;
                c.mod_down += 2;
            };
            match (self.kind[ct], needs_pa) {
                (QuadKind::Linear, _) => c.mul_plain += 1,
                (QuadKind::Square, false) => square(&mut c),
                (QuadKind::NegSquare, false) => {
                    square(&mut c);
                    c.add += 1;
                }
                _ => {
                    c.mul_plain += 1;
                    square(&mut c);
                }
            }
            if has_b && self.kind[ct] != QuadKind::Linear {
                c.mul_plain += 1;
                c.add += 1;
            }
            c.rescale += 1;
            if self.c[ct].iter().any(|&v| v != 0.0) {
                c.add += 1;
            }
        }
        c
    }

    /// Evaluates the site on every ciphertext (one level).
    pub(super) fn apply(
        &self,
        eval: &Evaluator,
        encoder: &Encoder,
        x: &[Ciphertext],
    ) -> Result<Vec<Ciphertext>> {
        check_aligned(x)?;
        let needs_pa = self.kind.contains(&QuadKind::General);
        let pa = if needs_pa {
            general_coeff_scale(eval, &x[0])?
        } else {
            1.0
        };
        let op = SiteOp {
            level: x[0].level(),
            scale: x[0].scale(),
            pa,
            needs_pa,
        };
        x.par_iter()
            .enumerate()
            .map(|(ct, xi)| self.apply_one(eval, encoder, ct, xi, op))
            .collect()
    }

    /// `a⊙x² + b⊙x + c` on ciphertext `ct` (`xi`).
    fn apply_one(
        &self,
        eval: &Evaluator,
        encoder: &Encoder,
        ct: usize,
        xi: &Ciphertext,
        op: SiteOp,
    ) -> Result<Ciphertext> {
        let SiteOp {
            level,
            scale: s,
            pa,
            needs_pa,
        } = op;
        let has_b = self.b[ct].iter().any(|&v| v != 0.0);
        let b_term = |z: Option<Ciphertext>| -> Result<Ciphertext> {
            let pt = encoder.encode(&self.slot_vec(&self.b[ct]), level, s * pa)?;
            let bx = eval.mul_plain(xi, &pt)?;
            Ok(match z {
                None => bx,
                Some(z) => eval.add(&z, &bx)?,
            })
        };
        let mut z = match (self.kind[ct], needs_pa) {
            (QuadKind::Linear, _) => b_term(None)?,
            (QuadKind::Square, false) | (QuadKind::NegSquare, false) => {
                let mut sq = eval.square(xi)?;
                if self.kind[ct] == QuadKind::NegSquare {
                    sq = eval.neg(&sq)?;
                }
                if has_b {
                    b_term(Some(sq))?
                } else {
                    sq
                }
            }
            _ => {
                let pt = encoder.encode(&self.slot_vec(&self.a[ct]), level, pa)?;
                let y = eval.mul_plain(xi, &pt)?;
                let sq = eval.mul(xi, &y)?;
                if has_b {
                    b_term(Some(sq))?
                } else {
                    sq
                }
            }
        };
        z = eval.rescale(&z)?;
        if self.c[ct].iter().any(|&v| v != 0.0) {
            let pt = encoder.encode(&self.slot_vec(&self.c[ct]), z.level(), z.scale())?;
            z = eval.add_plain(&z, &pt)?;
        }
        Ok(z)
    }
}

/// What every ciphertext of one evaluation of a site shares: the level and scale of the
/// (aligned) inputs, taken from the first, and the scale `pa` of general coefficients
/// (`needs_pa`: some ciphertext of the site has them).
#[derive(Clone, Copy)]
struct SiteOp {
    level: usize,
    scale: f64,
    pa: f64,
    needs_pa: bool,
}

/// The scale at which general coefficients `a` are encoded for an input like `x`: at most
/// `2^ACT_COEFF_SCALE_BITS`, and small enough that `x·(a⊙x)` fits the modulus.
///
/// # Errors
/// [`HeGcnError::LevelTooLow`] if less than `2^8` fits.
fn general_coeff_scale(eval: &Evaluator, x: &Ciphertext) -> Result<f64> {
    let level = x.level();
    let s = x.scale();
    let log_q: f64 = eval.params().q_primes()[..=level]
        .iter()
        .map(|&q| (q as f64).log2())
        .sum();
    let bits = (log_q - 2.0 * s.log2() - 3.0)
        .floor()
        .min(ACT_COEFF_SCALE_BITS as f64);
    if bits < 8.0 {
        return Err(HeGcnError::LevelTooLow {
            stage: "polynomial activation (room for a·x²)".into(),
            level,
            needed: level + 1,
        });
    }
    Ok(bits.exp2())
}
