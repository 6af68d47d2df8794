//! The server's plan of the matrix layout before anything is encoded: the geometry, the three
//! layers' diagonals and the operations of a forward pass by stage (what the planner prices,
//! [`crate::planner`], without encoding a diagonal).

use super::geometry::Geometry;
use super::linear::LinearPlan;
use super::{layers, MATRIX_DEPTH};
use crate::counts::squares;
use crate::error::{HeCnnError, Result};
use crate::layout::{LayoutKind, Stage};
use ckks::CkksParams;
use ml::models::cnn::{CnnActivation, CnnModel};

/// The plan of one model's batched forward pass at one parameter set (it holds the weights'
/// diagonals: a server-side object).
#[derive(Debug, Clone)]
pub struct MatrixPlan {
    pub(super) geometry: Geometry,
    pub(super) slots: usize,
    pub(super) conv: LinearPlan,
    pub(super) fc1: LinearPlan,
    pub(super) fc2: LinearPlan,
}

/// Refuses parameters shallower than [`MATRIX_DEPTH`].
pub(super) fn check_depth(params: &CkksParams) -> Result<()> {
    if params.max_level() < MATRIX_DEPTH {
        return Err(HeCnnError::DepthExceeded {
            layout: LayoutKind::Matrix.name(),
            needed: MATRIX_DEPTH,
            available: params.max_level(),
        });
    }
    Ok(())
}

impl MatrixPlan {
    /// Plans `model` at `params`.
    ///
    /// # Errors
    /// An invalid model, [`HeCnnError::DepthExceeded`] below [`MATRIX_DEPTH`] levels,
    /// [`HeCnnError::Packing`] if one image's block does not fit the slots,
    /// [`HeCnnError::Model`] for an FFConv model (plan its folded network).
    pub fn new(model: &CnnModel, params: &CkksParams) -> Result<Self> {
        model.spec.validate()?;
        crate::layout::require_plain(model)?;
        let CnnActivation::Square = model.spec.activation;
        check_depth(params)?;
        let slots = params.slots();
        let geometry = Geometry::new(&model.spec, slots)?;
        Ok(Self {
            conv: layers::conv(model, &geometry, slots)?,
            fc1: layers::fc1(model, &geometry, slots)?,
            fc2: layers::fc2(model, &geometry, slots)?,
            geometry,
            slots,
        })
    }

    /// Images per ciphertext (`slots / block`).
    pub fn images(&self) -> usize {
        self.slots / self.geometry.block
    }

    /// Slots per image.
    pub fn block(&self) -> usize {
        self.geometry.block
    }

    /// The operations of a forward pass by stage: conv, x², fc1 (products, rotate-and-add),
    /// x², fc2, from the input level down.
    pub fn stages(&self) -> Vec<Stage> {
        let l = MATRIX_DEPTH;
        let mut s = self.conv.stages(l);
        s.push(Stage::new(
            "x²",
            l - 1,
            squares(self.geometry.groups as u64),
            0,
        ));
        s.extend(self.fc1.stages(l - 2));
        s.push(Stage::new("x²", l - 3, squares(1), 0));
        s.extend(self.fc2.stages(l - 4));
        s
    }

    /// The rotation steps whose Galois keys the forward pass needs (and no others), in
    /// `1..slots`, ascending.
    pub fn rotation_steps(&self) -> Vec<i64> {
        let mut s = self.conv.rotation_steps();
        s.extend(self.fc1.rotation_steps());
        s.extend(self.fc2.rotation_steps());
        s.into_iter().collect()
    }

    /// Plaintext products of `[conv, fc1, fc2]`.
    pub fn products(&self) -> [usize; 3] {
        [
            self.conv.products(),
            self.fc1.products(),
            self.fc2.products(),
        ]
    }
}
