//! The candidate plans of a model: each layout this crate runs, at the smallest 128-bit
//! preset of its depth, with its operations by stage; the single-image layout once per
//! distinct baby-step/giant-step split of each dense layer; the matrix layout (a batch of
//! `slots / block` images per ciphertext) once, with its fixed-weight splits; the tile layout
//! once per tiling `[t_f, t_h, t_b]` (every split of the slots over the feature, hidden and
//! batch dimensions).

use crate::batch::{BatchCnn, BATCH_DEPTH};
use crate::counts::sum_stages;
use crate::error::{HeCnnError, Result};
use crate::layout::{CnnLayout, LayoutKind, Stage};
use crate::lola::{LolaPlan, LOLA_DEPTH};
use crate::matrix::{MatrixPlan, MATRIX_DEPTH};
use crate::plan::choose_preset;
use crate::tile::{CnnTiling, TilePlan, MAX_INPUT_CTS, TILE_DEPTH};
use ckks::{OpCounts, Preset};
use ml::models::cnn::CnnModel;

/// One plan the planner may choose: a layout at a preset, its knobs and its operations.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The layout.
    pub layout: LayoutKind,
    /// The CKKS preset.
    pub preset: Preset,
    /// The layout's knobs: baby steps per giant step of each dense layer (single-image
    /// layout), the tiling `[t_f, t_h, t_b]` (tile layout); empty otherwise.
    pub splits: Vec<usize>,
    /// Images one forward pass answers.
    pub images: usize,
    /// Ciphertexts one forward pass returns (each sanitized).
    pub outputs: usize,
    /// The forward pass's operations by stage.
    pub stages: Vec<Stage>,
}

impl Candidate {
    /// The candidate of a compiled `layout` at `preset` answering `images` images with
    /// `outputs` returned ciphertexts per forward pass (how a new layout plugs in).
    pub fn of_layout<L: CnnLayout>(
        layout: &L,
        preset: Preset,
        images: usize,
        outputs: usize,
    ) -> Self {
        Self {
            layout: layout.kind(),
            preset,
            splits: Vec::new(),
            images,
            outputs,
            stages: layout.planned_stages(),
        }
    }

    /// Every evaluator operation of one forward pass.
    pub fn op_counts(&self) -> OpCounts {
        sum_stages(&self.stages)
    }

    /// A short name: the layout and its splits (`lola 7/8`: 7 baby steps per giant step in
    /// the first dense layer, 8 in the second; `tile 128×64×1`: tiles of 128 features, 64
    /// hidden units, 1 image).
    pub fn label(&self) -> String {
        let splits: Vec<String> = self.splits.iter().map(ToString::to_string).collect();
        if self.layout == LayoutKind::Tile && splits.len() == 3 {
            format!("{} {}", self.layout.name(), splits.join("×"))
        } else if splits.is_empty() {
            self.layout.name().to_string()
        } else {
            format!("{} {}", self.layout.name(), splits.join("/"))
        }
    }
}

/// Every candidate plan of `model` (a layout whose features do not fit its preset is left
/// out). An FFConv model is planned on its folded network (the 1×1 mixing folded into the
/// first dense layer, as [`crate::ffconv::FfConvCnn`] runs it).
///
/// # Errors
/// An invalid model, CKKS errors building a preset.
pub fn candidates(model: &CnnModel) -> Result<Vec<Candidate>> {
    let model = &model.folded();
    let preset = choose_preset(LayoutKind::Batch.name(), BATCH_DEPTH)?;
    let he = BatchCnn::new(model, &preset.build()?)?;
    let mut out = vec![Candidate::of_layout(
        &he,
        preset,
        he.batch_capacity(),
        model.spec.classes,
    )];
    let preset = choose_preset(LayoutKind::Lola.name(), LOLA_DEPTH)?;
    match LolaPlan::new(model, &preset.build()?) {
        Ok(plan) => out.extend(lola_candidates(plan, preset)?),
        Err(HeCnnError::Packing { .. }) => {}
        Err(e) => return Err(e),
    }
    let preset = choose_preset(LayoutKind::Matrix.name(), MATRIX_DEPTH)?;
    match MatrixPlan::new(model, &preset.build()?) {
        Ok(plan) => out.push(Candidate {
            layout: LayoutKind::Matrix,
            preset,
            splits: Vec::new(),
            images: plan.images(),
            outputs: 1,
            stages: plan.stages(),
        }),
        Err(HeCnnError::Packing { .. }) => {}
        Err(e) => return Err(e),
    }
    out.extend(tile_candidates(model)?);
    Ok(out)
}

/// The tile candidates: every tiling of the slots of the smallest preset with the tile
/// layout's largest depth (the tilings of depth 5 find no smaller preset with these slots)
/// whose input has at most [`MAX_INPUT_CTS`] ciphertexts.
fn tile_candidates(model: &CnnModel) -> Result<Vec<Candidate>> {
    let preset = choose_preset(LayoutKind::Tile.name(), TILE_DEPTH)?;
    let slots = 1usize << (preset.log_n - 1);
    let mut out = Vec::new();
    for t in CnnTiling::all(slots) {
        let plan = TilePlan::new(&model.spec, slots, t)?;
        if plan.input_cts() <= MAX_INPUT_CTS {
            out.push(Candidate {
                layout: LayoutKind::Tile,
                preset,
                splits: t.to_array().to_vec(),
                images: plan.images(),
                outputs: plan.output_cts(),
                stages: plan.stages(),
            });
        }
    }
    Ok(out)
}

/// The single-image candidates: every pair of split choices of the two dense layers.
fn lola_candidates(mut plan: LolaPlan, preset: Preset) -> Result<Vec<Candidate>> {
    let [c1, c2] = plan.split_choices();
    let mut out = Vec::with_capacity(c1.len() * c2.len());
    for &n1 in &c1 {
        for &n2 in &c2 {
            plan.set_splits([n1, n2])?;
            out.push(Candidate {
                layout: LayoutKind::Lola,
                preset,
                splits: vec![n1, n2],
                images: 1,
                outputs: 1,
                stages: plan.stages(),
            });
        }
    }
    Ok(out)
}
