//! The server's plan of the single-image layout before anything is encoded: the arrangement of
//! the convolution's outputs, the diagonal plans of the two dense layers with their
//! baby-step/giant-step splits, and the operations of a forward pass by stage. The planner
//! ([`crate::planner`]) enumerates the splits of a [`LolaPlan`] and prices each without
//! encoding a diagonal; [`super::LolaCnn::with_splits`] compiles the chosen one.

use super::arrange::{dense_input_arrangement, Arrangement, DensePlan};
use super::{conv, dense, LOLA_DEPTH};
use crate::counts::squares;
use crate::error::{HeCnnError, Result};
use crate::layout::{LayoutKind, Stage};
use ckks::CkksParams;
use ml::models::cnn::{CnnActivation, CnnModel};

/// The plan of one model's single-image forward pass at one parameter set (it holds the
/// weights' diagonals: a server-side object).
#[derive(Debug, Clone)]
pub struct LolaPlan {
    /// Live kernel taps (pruned taps cost nothing).
    pub(super) taps: usize,
    pub(super) arrangement: Arrangement,
    pub(super) fc1: DensePlan,
    pub(super) fc2: DensePlan,
}

impl LolaPlan {
    /// Plans `model` at `params`, each dense layer with the split the fixed weights of
    /// [`ckks::cost`] prefer.
    ///
    /// # Errors
    /// An invalid model, [`HeCnnError::DepthExceeded`] below [`LOLA_DEPTH`] levels,
    /// [`HeCnnError::Packing`] if the features do not fit one ciphertext at these parameters,
    /// [`HeCnnError::Model`] for an FFConv model (plan its folded network).
    pub fn new(model: &CnnModel, params: &CkksParams) -> Result<Self> {
        model.spec.validate()?;
        crate::layout::require_plain(model)?;
        let CnnActivation::Square = model.spec.activation;
        if params.max_level() < LOLA_DEPTH {
            return Err(HeCnnError::DepthExceeded {
                layout: LayoutKind::Lola.name(),
                needed: LOLA_DEPTH,
                available: params.max_level(),
            });
        }
        let sp = &model.spec;
        let slots = params.slots();
        let (r1, arrangement) = dense_input_arrangement("fc1", sp.hidden, sp.features(), slots)?;
        let fc1 = DensePlan::new("fc1", model.fc1_w.view(), &arrangement, slots, r1)?;
        let r2 = sp.classes.next_power_of_two();
        let fc2 = DensePlan::new(
            "fc2",
            model.fc2_w.view(),
            &fc1.output_arrangement(),
            slots,
            r2,
        )?;
        Ok(Self {
            taps: conv::live_taps(model).len(),
            arrangement,
            fc1,
            fc2,
        })
    }

    /// Baby steps per giant step of `[fc1, fc2]`.
    pub fn splits(&self) -> [usize; 2] {
        [self.fc1.baby, self.fc2.baby]
    }

    /// The splits worth considering for `[fc1, fc2]` (each distinct count of baby and giant
    /// steps once).
    pub fn split_choices(&self) -> [Vec<usize>; 2] {
        [self.fc1.split_choices(), self.fc2.split_choices()]
    }

    /// Sets `splits` baby steps per giant step for `[fc1, fc2]`.
    ///
    /// # Errors
    /// [`HeCnnError::Packing`] for a split outside `1..=` the layer's largest shift + 1 (the
    /// plan is left as it was).
    pub fn set_splits(&mut self, [n1, n2]: [usize; 2]) -> Result<()> {
        let old = self.fc1.baby;
        self.fc1.set_baby("fc1", n1)?;
        self.fc2
            .set_baby("fc2", n2)
            .inspect_err(|_| self.fc1.baby = old)
    }

    /// The operations of a forward pass by stage: conv, x², fc1 (products, rotate-and-add),
    /// x², fc2 (products, rotate-and-add), from the input level down.
    pub fn stages(&self) -> Vec<Stage> {
        stages(self.taps, &self.fc1, &self.fc2)
    }

    /// The rotation steps whose Galois keys the forward pass needs (and no others).
    pub fn rotation_steps(&self) -> Vec<i64> {
        rotation_steps(&self.fc1, &self.fc2)
    }

    /// Row block, shift count and baby steps per giant step of `[fc1, fc2]`.
    pub fn dense_shapes(&self) -> [(usize, usize, usize); 2] {
        dense_shapes(&self.fc1, &self.fc2)
    }
}

/// The operations of a forward pass on `taps` live tap ciphertexts by stage: conv, x², fc1
/// (products, rotate-and-add), x², fc2 (products, rotate-and-add), from the input level down.
pub(super) fn stages(taps: usize, fc1: &DensePlan, fc2: &DensePlan) -> Vec<Stage> {
    let l = LOLA_DEPTH;
    let mut s = vec![
        conv::planned_stage(taps as u64, l),
        Stage::new("x²", l - 1, squares(1), 0),
    ];
    s.extend(dense::planned_stages(fc1, "fc1", l - 2));
    s.push(Stage::new("x²", l - 3, squares(1), 0));
    s.extend(dense::planned_stages(fc2, "fc2", l - 4));
    s
}

/// The rotation steps of the two dense layers, ascending, each once.
pub(super) fn rotation_steps(fc1: &DensePlan, fc2: &DensePlan) -> Vec<i64> {
    let mut s = fc1.rotation_steps();
    s.extend(fc2.rotation_steps());
    s.sort_unstable();
    s.dedup();
    s.into_iter().map(|v| v as i64).collect()
}

/// `(block, shifts, baby steps per giant step)` of each dense layer.
pub(super) fn dense_shapes(fc1: &DensePlan, fc2: &DensePlan) -> [(usize, usize, usize); 2] {
    let f = |d: &DensePlan| (d.block, d.shifts.len(), d.baby);
    [f(fc1), f(fc2)]
}
