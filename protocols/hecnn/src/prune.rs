//! Pruning aligned to what the single-image layout ([`crate::lola`]) pays for: whole kernel
//! taps of the convolution (a tap whose weights are zero in every map costs no product and no
//! addition) and whole diagonals of the two dense layers' diagonal products (a diagonal whose
//! weights are all zero is not planned: no product, and the baby- and giant-step rotations
//! that fed only pruned diagonals disappear with it).
//!
//! Each weight of a dense layer belongs to exactly one diagonal of its plan (the first shift
//! that reaches it, `arrange::owners`), so pruning a diagonal zeroes exactly the weights it
//! holds and leaves every other diagonal as it was. Units are ranked by magnitude (the sum of
//! the squares of their weights) and the lowest fraction of each layer is pruned
//! ([`PruneLevel`]); [`PruneMask::tensors`] gives the fixed mask for plaintext fine-tuning
//! (`ml::models::cnn::fine_tune_plain`). FFConv models are pruned after folding
//! (`CnnModel::folded`): the encrypted pass runs the folded network, and a mask on the folded
//! dense layer is not a mask on the mixing and dense factors.
//!
//! **Security model.** Pruning happens on the server, on its own weights, in plaintext. What
//! the pruned structure shows the client: the Galois keys the server asks for
//! ([`crate::LolaCnn::rotation_steps`]) are those of the surviving baby and giant steps, so a
//! client learns which groups of diagonals survived (not their weights); the tap ciphertexts
//! it sends are all of them, pruned or not, so the input does not depend on the mask.

use crate::error::{HeCnnError, Result};
use crate::layout::require_plain;
use crate::lola::arrange::{dense_input_arrangement, owners, shifts_needed, Arrangement};
use ml::models::cnn::{to_tensors, CnnModel, CnnTensors};
use ndarray::{Array2, ArrayView2};

/// Fractions of units pruned per layer, each in `[0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PruneLevel {
    /// Fraction of the convolution's kernel taps.
    pub taps: f64,
    /// Fraction of the first dense layer's diagonals.
    pub fc1: f64,
    /// Fraction of the output layer's diagonals.
    pub fc2: f64,
}

/// Which weights survive a [`PruneLevel`] (`true`: kept), in the model's own shapes.
#[derive(Debug, Clone, PartialEq)]
pub struct PruneMask {
    /// One flag per kernel tap.
    pub taps: Vec<bool>,
    /// `hidden × features`, as `fc1_w`.
    pub fc1: Array2<bool>,
    /// `classes × hidden`, as `fc2_w`.
    pub fc2: Array2<bool>,
    /// Kept diagonals of fc1 and fc2, ascending shifts.
    pub kept: [Vec<usize>; 2],
}

/// One dense layer's diagonals: the owner shift of each weight and the diagonal count.
struct Diagonals {
    owner: Vec<usize>,
    count: usize,
}

impl Diagonals {
    fn new(w: ArrayView2<'_, f64>, a: &Arrangement, block: usize) -> Result<Self> {
        let bad = || HeCnnError::Packing {
            layer: "prune",
            what: "columns reached",
            value: 0,
            limit: w.ncols(),
        };
        let count = shifts_needed(w, a, block, true).ok_or_else(bad)?;
        let owner = owners(w.dim(), a, block, count)
            .into_iter()
            .map(|o| o.map(|(d, _)| d).ok_or_else(bad))
            .collect::<Result<_>>()?;
        Ok(Self { owner, count })
    }

    /// Keep flags (`rows × cols`) and kept shifts after pruning `fraction` of the diagonals
    /// with the smallest sum of squares.
    fn prune(&self, w: ArrayView2<'_, f64>, fraction: f64) -> (Array2<bool>, Vec<usize>) {
        let mut energy = vec![0.0; self.count];
        for (&d, v) in self.owner.iter().zip(w.iter()) {
            energy[d] += v * v;
        }
        let keep = keep_largest(&energy, fraction);
        let cols = w.ncols();
        let flags = Array2::from_shape_fn(w.dim(), |(i, c)| keep[self.owner[i * cols + c]]);
        let kept = (0..self.count).filter(|&d| keep[d]).collect();
        (flags, kept)
    }
}

/// Flags keeping all but the `⌊fraction · n⌋` smallest `scores` (ties: the lower index goes).
fn keep_largest(scores: &[f64], fraction: f64) -> Vec<bool> {
    let drop = (fraction * scores.len() as f64).floor() as usize;
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]).then(a.cmp(&b)));
    let mut keep = vec![true; scores.len()];
    for &i in &order[..drop.min(scores.len())] {
        keep[i] = false;
    }
    keep
}

fn check_fraction(name: &'static str, f: f64) -> Result<()> {
    if (0.0..1.0).contains(&f) {
        return Ok(());
    }
    Err(HeCnnError::Model(ml::MlError::InvalidHyper {
        name,
        value: f.to_string(),
        reason: "a pruned fraction must be in [0, 1)",
    }))
}

impl PruneMask {
    /// The mask of `level` for a plain `model` packed over `slots` slots (the arrangement and
    /// the diagonals of [`crate::LolaCnn`] at those slots).
    ///
    /// # Errors
    /// A fraction outside `[0, 1)` (naming the layer), an FFConv model (fold it first), or a
    /// model that does not fit the single-image layout.
    pub fn new(model: &CnnModel, slots: usize, level: &PruneLevel) -> Result<Self> {
        require_plain(model)?;
        check_fraction("prune.taps", level.taps)?;
        check_fraction("prune.fc1", level.fc1)?;
        check_fraction("prune.fc2", level.fc2)?;
        let sp = &model.spec;
        let tap_energy: Vec<f64> = model
            .conv_w
            .columns()
            .into_iter()
            .map(|c| c.iter().map(|v| v * v).sum())
            .collect();
        let (r1, a1) = dense_input_arrangement("fc1", sp.hidden, sp.features(), slots)?;
        let d1 = Diagonals::new(model.fc1_w.view(), &a1, r1)?;
        let (fc1, kept1) = d1.prune(model.fc1_w.view(), level.fc1);
        let a2: Arrangement = (0..r1).map(|i| (i < sp.hidden).then_some(i)).collect();
        let d2 = Diagonals::new(model.fc2_w.view(), &a2, sp.classes.next_power_of_two())?;
        let (fc2, kept2) = d2.prune(model.fc2_w.view(), level.fc2);
        Ok(Self {
            taps: keep_largest(&tap_energy, level.taps),
            fc1,
            fc2,
            kept: [kept1, kept2],
        })
    }

    /// `model` with every pruned weight set to 0.
    pub fn apply(&self, model: &CnnModel) -> CnnModel {
        let mut m = model.clone();
        for (k, keep) in self.taps.iter().enumerate() {
            if !keep {
                m.conv_w.column_mut(k).fill(0.0);
            }
        }
        m.fc1_w
            .zip_mut_with(&self.fc1, |w, &k| *w *= f64::from(u8::from(k)));
        m.fc2_w
            .zip_mut_with(&self.fc2, |w, &k| *w *= f64::from(u8::from(k)));
        m
    }

    /// The 0/1 mask of every parameter of `model`, shaped as `to_tensors` gives them (biases
    /// kept), for `fine_tune_plain`.
    pub fn tensors(&self, model: &CnnModel) -> CnnTensors<Array2<f64>> {
        let f = |b: bool| f64::from(u8::from(b));
        let mut t: Vec<Array2<f64>> = to_tensors(model)
            .iter()
            .map(|p| Array2::ones(p.dim()))
            .collect();
        for (k, &keep) in self.taps.iter().enumerate() {
            t[0].row_mut(k).fill(f(keep));
        }
        t[2] = self.fc1.t().mapv(f);
        t[4] = self.fc2.t().mapv(f);
        t
    }
}
