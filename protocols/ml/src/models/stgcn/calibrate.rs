//! BN re-calibration on the private data ("AdaBN" on shares): one forward pass over calibration
//! clips in which every BN output is re-normalised with the per-channel mean and variance of
//! those clips, computed in 2PC, and the BN affine `(s, t)` replaced by
//! `s = γ/√(var + eps)`, `t = β − mean·s` with the starting model's `γ, β` (public).
//!
//! Why: a public model pretrained on other data (other camera views) meets private inputs
//! whose per-channel statistics differ; with frozen statistics the `x²` activations amplify the
//! shift layer after layer (logits of 10³–10⁸ on the Mocap-15 views), and SGD on shares has no
//! clipping to recover from the first step. Re-normalising layer by layer, in order, puts every
//! activation back in the range the model was trained for before fine-tuning starts.
//!
//! # On shares
//! Means are row sums (local) followed by a truncation by `2^k` and a public scale `2^k / R`
//! (so `1/R` is never encoded at the fractional bits). The variance is the batch's (biased)
//! variance, the mean of squared centred values (one elementwise Beaver square per activation,
//! once), so on the calibration clips the re-calibrated network computes exactly what a
//! training-mode forward pass (BN with batch statistics) computes on them. The inverse square root
//! is Newton's iteration `r ← r·(3 − v·r²)/2` on `v = (var + eps)/P`, with the starting
//! model's `P = max(var₀ + eps, 10⁻³)` as a public reference and the public start
//! `r₀ = 2⁻⁶`: it converges (monotonically from below) whenever the new variance is below
//! `3·2¹²·P`, and reaches ~10⁻⁴ relative error from `v ≥ 10⁻⁴` within
//! [`NEWTON_ITERATIONS`] (`crate::ops::newton`, shared with the column statistics of tables).
//! Nothing is opened but Beaver-masked differences; the calibration
//! clips are public indices, like a batch. The new statistics stay secret (folded into the
//! shared `(s, t)`); the exported model keeps the old running statistics and solves `γ, β`
//! back, so it evaluates exactly as the re-calibrated network does.
//!
//! # Choosing the clips
//! A channel that is nearly constant on the calibration clips gets a very large scale
//! `γ/√(var + eps)`, and the next SGD steps amplify through it: with 32 of the quickstart's 60
//! clips one step at lr 1e-4 took the logits from 70 to 10⁴ (twin and shares alike), with all
//! 60 clips training was stable. Use at least a few hundred clips, or all of a small private
//! set. (A floor on the normalised variance on shares — one comparison per channel — would make
//! this robust; not done yet.)

use super::convert::diagonal;
use super::forward::forward_with;
use super::shape::{BnParams, StgcnShape};
use crate::backend::{Backend, IndexMap};
use crate::error::Result;
use crate::ops::inverse_sqrt;
pub use crate::ops::NEWTON_ITERATIONS;
use ndarray::{Array1, Array2};

/// Floor of the public reference variance `P`.
const REFERENCE_FLOOR: f64 = 1e-3;

/// The re-calibration state of one pass: the new `(s, t)` of every BN met so far.
#[derive(Debug)]
pub(crate) struct Recalibration<'a, T> {
    shape: &'a StgcnShape,
    updates: Vec<(BnParams, T, T)>,
}

fn row(v: &Array1<f64>) -> Array2<f64> {
    v.clone().insert_axis(ndarray::Axis(0))
}

/// Column sums `1 × C` of an `R × C` tensor divided by `divisor` (`bcast` the row broadcast
/// `1 × C → R × C`): a truncation by `2^k ≤ divisor`, then the public scale `2^k / divisor`.
async fn column_sums_over<B: Backend>(
    b: &mut B,
    t: &B::Tensor,
    bcast: &IndexMap,
    divisor: usize,
) -> Result<B::Tensor> {
    let divisor = divisor.max(1);
    let k = divisor.ilog2();
    let sum = b.scatter_add(t, bcast)?;
    let shifted = b.shift_right(&sum, k).await?;
    b.scale(&shifted, f64::from(1u32 << k) / divisor as f64)
        .await
}

impl<T: Clone + Send + Sync> Recalibration<'_, T> {
    /// The BN `bn`'s output for the pre-BN activations `z` (`R × C`): `s ⊙ (z − mean) + β`
    /// with this batch's statistics; records `(s, t)`.
    pub(crate) async fn normalize<B: Backend<Tensor = T>>(
        &mut self,
        b: &mut B,
        bn: BnParams,
        z: T,
        bcast: &IndexMap,
    ) -> Result<T> {
        let f = self.shape.bn_frozen(bn.scale);
        let eps = self.shape.bn_eps();
        let reference = f.var.mapv(|v| (v + eps).max(REFERENCE_FLOOR));
        let rows = B::dim(&z).0;
        let mean = column_sums_over(b, &z, bcast, rows).await?;
        let d = b.sub(&z, &b.gather(&mean, bcast)?)?;
        let sq = b.square(&d).await?;
        let var = column_sums_over(b, &sq, bcast, rows).await?;
        let v = b
            .linear_public(
                &b.transpose(&var),
                &diagonal(reference.iter().map(|p| 1.0 / p))?,
            )
            .await?;
        let eps_col = reference.mapv(|p| eps / p).insert_axis(ndarray::Axis(1));
        let v = b.add(&v, &b.constant(&eps_col)?)?;
        let r = inverse_sqrt(b, &v).await?;
        let g = (&f.gamma / &reference.mapv(f64::sqrt)).to_vec();
        let s = b.linear_public(&r, &diagonal(g.into_iter())?).await?;
        let s = b.transpose(&s);
        let beta = b.constant(&row(&f.beta))?;
        let ms = b.mul(&mean, &s, 0).await?;
        let t = b.sub(&beta, &ms)?;
        let sd = b.mul(&d, &b.gather(&s, bcast)?, 0).await?;
        let out = b.add(&sd, &b.gather(&beta, bcast)?)?;
        self.updates.push((bn, s, t));
        Ok(out)
    }
}

/// The public calibration clips of a run: the first `min(k, n)` of a shuffle of `0..n` drawn
/// from `seed` (a stream apart from the batch schedule's), so every party and the twin pick
/// the same clips.
pub fn calibration_rows(n: usize, k: usize, seed: u64) -> Vec<usize> {
    let k = k.min(n);
    if k == 0 {
        return Vec::new();
    }
    crate::Schedule::shuffled(n, k, 1, seed ^ 0xca1_b4a7e)
        .map(|s| s.epochs[0][0].clone())
        .unwrap_or_default()
}

/// Re-calibrates every BN of `params` on the clips `rows` of the prepared dataset `x`: one
/// forward pass, layer by layer, replacing each BN affine by `γ/√(var+eps)`, `β − mean·s` with
/// the statistics of those clips (see the module docs). Other parameters are unchanged.
pub async fn calibrate<B: Backend>(
    b: &mut B,
    shape: &StgcnShape,
    x: &B::Tensor,
    params: &mut [B::Tensor],
    rows: &[usize],
) -> Result<()> {
    super::optim::check_params::<B>(shape, params)?;
    let mut pass = params.to_vec();
    for f in &shape.bn_stats {
        let c = f.gamma.len();
        pass[f.params.scale] = b.constant(&Array2::ones((1, c)))?;
        pass[f.params.shift] = b.constant(&Array2::zeros((1, c)))?;
    }
    let mut cal = Recalibration {
        shape,
        updates: Vec::with_capacity(shape.bn_stats.len()),
    };
    forward_with(b, shape, x, &pass, rows, Some(&mut cal)).await?;
    for (bn, s, t) in cal.updates {
        params[bn.scale] = s;
        params[bn.shift] = t;
    }
    Ok(())
}
