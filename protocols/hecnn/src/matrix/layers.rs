//! The diagonals of the three linear layers in the matrix layout (see `geometry` for the
//! slots): the convolution spanned into the image's matrix space, the first dense layer as a
//! blocked product with rotate-and-add, the second as a direct product onto the class slots.
//!
//! * **conv** (one input, `groups` outputs): map `m`'s tap `k` is a shift by
//!   `Geometry::conv_shift(m, k)` and a pattern holding `w[m, k]` on map `m`'s output slots;
//!   the maps of one ciphertext whose shifts coincide share one product.
//! * **fc1** (`groups` inputs, one output): `Y = X · W1ᵀ` for the batch matrix `X` (one image
//!   per row), the row of image `n` being its block. Weight `(i, f)` with `f` at slot `t`
//!   lands in slot `t − d` of the block, `d = (t − i) mod R1`: the shifts are `0..R1` (E2DM's
//!   column shifts `φ^d` of the data matrix, one rotation each because every feature sits at
//!   or after slot `R1` and the shift never wraps into the next image), the weights `ψ`-arranged
//!   in plaintext; the `⌈log2(block/R1)⌉` rotate-and-add steps by `R1, 2R1, …` sum the
//!   sub-blocks (E2DM's rectangular product) and leave hidden unit `i` in slot `i`.
//! * **fc2** (one input, one output): class `c` reads unit `i` at shift `i − c`, directly into
//!   slot `c`: no rotate-and-add, so every other slot of the returned ciphertext holds an exact
//!   zero (no partial sum of the weights leaves the server).

use super::geometry::Geometry;
use super::linear::{Diagonals, LinearPlan};
use crate::error::Result;
use ckks::cost::{GIANT_STEP, INNER_PRODUCT};
use ml::models::cnn::CnnModel;
use std::collections::{BTreeMap, BTreeSet};

/// Adds `w` at `slot` of the `(input, shift)` diagonal.
fn put(
    terms: &mut BTreeMap<(usize, i64), Vec<f64>>,
    block: usize,
    key: (usize, i64),
    slot: usize,
    w: f64,
) {
    terms.entry(key).or_insert_with(|| vec![0.0; block])[slot] += w;
}

/// The convolution's diagonals: one output per group of `per` maps.
pub(crate) fn conv(model: &CnnModel, g: &Geometry, slots: usize) -> Result<LinearPlan> {
    let np = g.spec.positions();
    let mut outs = vec![Diagonals::default(); g.groups];
    for o in &mut outs {
        o.bias = vec![0.0; g.block];
    }
    for m in 0..g.spec.maps {
        let out = &mut outs[m / g.per];
        for p in 0..np {
            let (_, s) = g.feature_slot(m, p);
            out.bias[s] = model.conv_b[m];
            for k in 0..g.spec.taps() {
                let w = model.conv_w[[m, k]];
                if w != 0.0 {
                    put(&mut out.terms, g.block, (0, g.conv_shift(m, k)), s, w);
                }
            }
        }
    }
    LinearPlan::new("conv", (g.block, slots, 1), outs, None)
}

/// The first dense layer's diagonals (blocked product, rotate-and-add).
pub(crate) fn fc1(model: &CnnModel, g: &Geometry, slots: usize) -> Result<LinearPlan> {
    let r = g.rows1;
    let mut d = Diagonals {
        bias: vec![0.0; g.block],
        ..Diagonals::default()
    };
    let mut last = 0;
    for (j, f, t) in g.feature_slots() {
        last = last.max(t);
        for i in 0..g.spec.hidden {
            let w = model.fc1_w[[i, f]];
            if w != 0.0 {
                let shift = (t - i) % r;
                put(&mut d.terms, g.block, (j, shift as i64), t - shift, w);
            }
        }
    }
    let subblocks = last / r + 1;
    d.collapse = (0..subblocks.next_power_of_two().trailing_zeros())
        .map(|k| (r << k) as i64)
        .collect();
    d.bias[..g.spec.hidden].copy_from_slice(model.fc1_b.as_slice().expect("contiguous"));
    let n1 = best_split(&d.terms);
    LinearPlan::new("fc1", (g.block, slots, g.groups), vec![d], Some(n1))
}

/// The second dense layer's diagonals (direct onto the class slots).
pub(crate) fn fc2(model: &CnnModel, g: &Geometry, slots: usize) -> Result<LinearPlan> {
    let mut d = Diagonals {
        bias: vec![0.0; g.block],
        ..Diagonals::default()
    };
    for ((c, i), &w) in model.fc2_w.indexed_iter() {
        if w != 0.0 {
            put(&mut d.terms, g.block, (0, i as i64 - c as i64), c, w);
        }
    }
    d.bias[..g.spec.classes].copy_from_slice(model.fc2_b.as_slice().expect("contiguous"));
    let n1 = best_split(&d.terms);
    LinearPlan::new("fc2", (g.block, slots, 1), vec![d], Some(n1))
}

/// The baby-step count minimising the key-switching work of the shifts of `terms` with the
/// fixed weights of [`ckks::cost`]: a hoisted baby step per input and non-zero baby, a giant
/// step per non-zero giant.
fn best_split(terms: &BTreeMap<(usize, i64), Vec<f64>>) -> usize {
    let span =
        terms.keys().map(|k| k.1).max().unwrap_or(0) - terms.keys().map(|k| k.1).min().unwrap_or(0);
    let cost = |n1: usize| {
        let n = n1 as i64;
        let babies: BTreeSet<(usize, i64)> =
            terms.keys().map(|&(j, d)| (j, d.rem_euclid(n))).collect();
        let giants: BTreeSet<i64> = terms.keys().map(|&(_, d)| d - d.rem_euclid(n)).collect();
        let b = babies.iter().filter(|(_, b)| *b != 0).count() as f64;
        let g = giants.iter().filter(|&&g| g != 0).count() as f64;
        b * INNER_PRODUCT + g * GIANT_STEP
    };
    (1..=span as usize + 1)
        .min_by(|&a, &b| cost(a).total_cmp(&cost(b)))
        .unwrap_or(1)
}
