//! The CNN compiled into encoded tile tensors (the server's weight cache) and its forward
//! pass: convolution as a product with the kernel tensor summed over the taps (no rotation:
//! taps have tiles of 1), `x²`, `fc1` as a product with `W1ᵀ` summed over the features
//! (interleaved → stacked), `x²`, `fc2` as a product with `W2` summed over the hidden units,
//! the clean (when that sum leaves them unknown) and the biases.

use super::ops::{add_plain, clean, mask_shape, mul_sum, square, CtTiles, PtTiles};
use super::plan::{CnnTiling, TilePlan, FEATURES, HIDDEN, TAPS};
use crate::error::{HeCnnError, Result};
use crate::layout::LayoutKind;
use ckks::{CkksParams, Encoder, Evaluator, Plaintext};
use ml::models::cnn::CnnModel;

/// A CNN compiled for the tile layout at one tiling and parameter set.
#[derive(Debug, Clone)]
pub struct TileCnn {
    pub(super) model: CnnModel,
    pub(super) params: CkksParams,
    pub(super) plan: TilePlan,
    conv_w: PtTiles,
    conv_b: PtTiles,
    fc1_w: PtTiles,
    fc1_b: PtTiles,
    fc2_w: PtTiles,
    mask: Option<Plaintext>,
    fc2_b: PtTiles,
}

/// The values of `f(i)` for `i < n`.
fn values(n: usize, f: impl Fn(usize) -> f64) -> Vec<f64> {
    (0..n).map(f).collect()
}

impl TileCnn {
    /// Compiles `model` (plain; fold an FFConv model first) for `params` with `tiling`.
    ///
    /// # Errors
    /// An invalid tiling for the slot count ([`HeCnnError::Packing`]), parameters with fewer
    /// levels than the plan's depth ([`HeCnnError::DepthExceeded`]), an FFConv model
    /// ([`HeCnnError::Model`]), CKKS encoding errors.
    pub fn new(model: &CnnModel, params: &CkksParams, tiling: CnnTiling) -> Result<Self> {
        crate::layout::require_plain(model)?;
        let plan = TilePlan::new(&model.spec, params.slots(), tiling)?;
        let l = plan.depth();
        if params.max_level() < l {
            return Err(HeCnnError::DepthExceeded {
                layout: LayoutKind::Tile.name(),
                needed: l,
                available: params.max_level(),
            });
        }
        let enc = Encoder::new(params);
        let delta = params.default_scale();
        // The plaintext scale that brings `in_scale` back to Δ after the rescale at `level`.
        let pt = |level: usize, in_scale: f64| -> Result<(f64, f64)> {
            let q = params.q_prime(level)? as f64;
            let p = q * delta / in_scale;
            Ok((p, in_scale * p / q))
        };
        let sq =
            |s: f64, level: usize| -> Result<f64> { Ok(s * s / params.q_prime(level)? as f64) };
        let sp = &plan.spec;
        let (np, nf, nh, nc) = (sp.positions(), sp.features(), sp.hidden, sp.classes);
        let conv = &model.conv_w;
        let w = values(sp.taps() * nf, |i| conv[[(i % nf) / np, i / nf]]);
        let (p0, s0) = pt(l, delta)?;
        let conv_w = PtTiles::encode(plan.conv_w.clone(), &w, &enc, l, p0)?;
        let b = values(nf, |f| model.conv_b[f / np]);
        let conv_b = PtTiles::encode(plan.conv_b.clone(), &b, &enc, l - 1, s0)?;
        let s1 = sq(s0, l - 1)?;
        let (p1, s1) = pt(l - 2, s1)?;
        let w = values(nf * nh, |i| model.fc1_w[[i % nh, i / nh]]);
        let fc1_w = PtTiles::encode(plan.fc1_w.clone(), &w, &enc, l - 2, p1)?;
        let fc1_b = PtTiles::encode(
            plan.fc1_b.clone(),
            model.fc1_b.as_slice().expect("contiguous"),
            &enc,
            l - 3,
            s1,
        )?;
        let s2 = sq(s1, l - 3)?;
        let (p2, s2) = pt(l - 4, s2)?;
        let w = values(nc * nh, |i| model.fc2_w[[i / nh, i % nh]]);
        let fc2_w = PtTiles::encode(plan.fc2_w.clone(), &w, &enc, l - 4, p2)?;
        let (mask, s_out) = if plan.cleans() {
            let (pm, sm) = pt(l - 5, s2)?;
            let m = PtTiles::encode(mask_shape(&plan.fc2_sum, HIDDEN), &[1.0], &enc, l - 5, pm)?;
            (m.tiles.into_iter().next(), sm)
        } else {
            (None, s2)
        };
        let out_level = l - 5 - usize::from(plan.cleans());
        let b = model.fc2_b.as_slice().expect("contiguous");
        let fc2_b = PtTiles::encode(plan.fc2_b.clone(), b, &enc, out_level, s_out)?;
        Ok(Self {
            model: model.clone(),
            params: params.clone(),
            plan,
            conv_w,
            conv_b,
            fc1_w,
            fc1_b,
            fc2_w,
            mask,
            fc2_b,
        })
    }

    /// The plaintext model.
    pub fn model(&self) -> &CnnModel {
        &self.model
    }

    /// The CKKS parameters.
    pub fn params(&self) -> &CkksParams {
        &self.params
    }

    /// The plan (shapes, depth, stages).
    pub fn plan(&self) -> &TilePlan {
        &self.plan
    }

    /// The level the client encrypts at (the depth: the logits arrive at level 0).
    pub fn input_level(&self) -> usize {
        self.plan.depth()
    }

    /// The level of the returned logits.
    pub fn output_level(&self) -> usize {
        0
    }

    /// The rotation steps whose Galois keys the forward pass needs (and no others).
    pub fn rotation_steps(&self) -> Vec<i64> {
        self.plan.rotation_steps()
    }

    /// The forward pass on the client's tap tensor.
    pub(super) fn run(&self, eval: &Evaluator, x: &CtTiles) -> Result<CtTiles> {
        if x.shape != self.plan.input {
            return Err(HeCnnError::Shape {
                what: "input tile tensor (tiles)",
                expected: self.plan.input.tile_count(),
                found: x.tiles.len(),
            });
        }
        let z = add_plain(eval, &mul_sum(eval, x, &self.conv_w, TAPS)?, &self.conv_b)?;
        let z = square(eval, &z)?;
        let y = add_plain(
            eval,
            &mul_sum(eval, &z, &self.fc1_w, FEATURES)?,
            &self.fc1_b,
        )?;
        let y = square(eval, &y)?;
        let mut o = mul_sum(eval, &y, &self.fc2_w, HIDDEN)?;
        if let Some(m) = &self.mask {
            o = clean(eval, &o, HIDDEN, m)?;
        }
        add_plain(eval, &o, &self.fc2_b)
    }
}
