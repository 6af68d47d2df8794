//! The tile shapes of every layer of the CNN for one tiling `[t_f, t_h, t_b]` (the tile sizes
//! of the feature, hidden and batch dimensions; the tap dimension always has tiles of 1), the
//! depth, the rotation steps and the operations by stage — from the architecture and the slot
//! count alone (no weights): what the planner prices and the client packs by.

use super::ops::{mul_sum_counts, product_shape};
use super::shape::{DimKind, TileDim, TileShape};
use crate::counts::squares;
use crate::error::{HeCnnError, Result};
use crate::layout::Stage;
use ckks::OpCounts;
use ml::models::cnn::CnnSpec;

/// Dimension indices of the CNN's tile tensors: taps, features (classes after `fc2`),
/// hidden units, images.
pub(crate) const TAPS: usize = 0;
pub(crate) const FEATURES: usize = 1;
pub(crate) const HIDDEN: usize = 2;
pub(crate) const BATCH: usize = 3;

/// Tile sizes of the feature, hidden and batch dimensions (their product is the slot count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CnnTiling {
    /// Tile size of the features (and of the classes, which take their dimension).
    pub features: usize,
    /// Tile size of the hidden units.
    pub hidden: usize,
    /// Tile size of the images: images per forward pass.
    pub batch: usize,
}

impl CnnTiling {
    /// `[t_f, t_h, t_b]`.
    pub fn to_array(self) -> [usize; 3] {
        [self.features, self.hidden, self.batch]
    }

    /// From `[t_f, t_h, t_b]`.
    pub fn from_array([features, hidden, batch]: [usize; 3]) -> Self {
        Self {
            features,
            hidden,
            batch,
        }
    }

    /// Every split of `slots` (a power of two) into three power-of-two tile sizes, the
    /// single-image ones (`t_b = 1`) first.
    pub fn all(slots: usize) -> Vec<Self> {
        let n = slots.trailing_zeros();
        let mut out = Vec::new();
        for b in 0..=n {
            for h in 0..=n - b {
                out.push(Self::from_array([1 << (n - b - h), 1 << h, 1 << b]));
            }
        }
        out
    }

    /// `t_f×t_h×t_b`, as the planner's tables show it.
    pub fn label(self) -> String {
        format!("{}×{}×{}", self.features, self.hidden, self.batch)
    }
}

/// The shapes of one forward pass (see the module docs of [`crate::tile`]).
#[derive(Debug, Clone)]
pub struct TilePlan {
    pub(crate) spec: CnnSpec,
    pub(crate) tiling: CnnTiling,
    /// The client's tap tensor `[taps/1, features/t_f, */t_h, images/t_b]`.
    pub(crate) input: TileShape,
    pub(crate) conv_w: TileShape,
    pub(crate) conv_b: TileShape,
    /// The convolution's output `[*/1, features/t_f, */t_h, images/t_b]`.
    pub(crate) conv_out: TileShape,
    pub(crate) fc1_w: TileShape,
    pub(crate) fc1_b: TileShape,
    /// `fc1`'s output `[*/1, */t_f, hidden/t_h, images/t_b]` (stacked).
    pub(crate) fc1_out: TileShape,
    pub(crate) fc2_w: TileShape,
    /// `fc2`'s summed output, before cleaning.
    pub(crate) fc2_sum: TileShape,
    pub(crate) fc2_b: TileShape,
    /// The returned logits `[*/1, classes/t_f, 1/t_h or */t_h, images/t_b]`.
    pub(crate) output: TileShape,
    stages: Vec<Stage>,
    steps: Vec<i64>,
}

fn shape(dims: [TileDim; 4], slots: usize) -> Result<TileShape> {
    TileShape::new(dims.to_vec(), slots)
}

impl TilePlan {
    /// The plan of architecture `spec` (plain: an FFConv spec is planned as its folded
    /// network) with `tiling` at `slots` slots.
    ///
    /// # Errors
    /// An invalid spec; [`HeCnnError::Packing`] for tile sizes that are not powers of two or
    /// whose product is not `slots`.
    pub fn new(spec: &CnnSpec, slots: usize, tiling: CnnTiling) -> Result<Self> {
        spec.validate()?;
        let spec = spec.folded();
        let [tf, th, tb] = tiling.to_array();
        let (f, h, c) = (spec.features(), spec.hidden, spec.classes);
        let (full, rep) = (TileDim::full, TileDim::replicated);
        let taps = full("taps", spec.taps(), 1);
        let input = shape(
            [
                taps,
                full("features", f, tf),
                rep("hidden", th),
                full("images", tb, tb),
            ],
            slots,
        )?;
        let conv_w = shape(
            [
                taps,
                full("features", f, tf),
                rep("hidden", th),
                rep("images", tb),
            ],
            slots,
        )?;
        let (conv_mul, _, conv_out) = mul_sum_counts(&input, &conv_w, TAPS)?;
        let conv_b = conv_out.with_dim(BATCH, rep("images", tb));
        let fc1_w = shape(
            [
                rep("taps", 1),
                full("features", f, tf),
                full("hidden", h, th),
                rep("images", tb),
            ],
            slots,
        )?;
        let (fc1_mul, fc1_rot, fc1_out) = mul_sum_counts(&conv_out, &fc1_w, FEATURES)?;
        let fc1_b = fc1_out.with_dim(BATCH, rep("images", tb));
        let fc2_w = shape(
            [
                rep("taps", 1),
                full("classes", c, tf),
                full("hidden", h, th),
                rep("images", tb),
            ],
            slots,
        )?;
        let (fc2_mul, fc2_rot, fc2_sum) = mul_sum_counts(&fc1_out, &fc2_w, HIDDEN)?;
        let clean = fc2_sum.dim(HIDDEN).kind == DimKind::Unknown;
        let output = if clean {
            fc2_sum.with_dim(HIDDEN, full("hidden", 1, th))
        } else {
            fc2_sum.clone()
        };
        let fc2_b = output.with_dim(BATCH, rep("images", tb));
        debug_assert!(product_shape(&output, &fc2_b).is_ok());
        let (n_f, n_h, n_c) = (
            conv_out.tile_count() as u64,
            fc1_out.tile_count() as u64,
            output.tile_count() as u64,
        );
        let l = 5 + usize::from(clean);
        let adds = |n: u64| OpCounts {
            add: n,
            ..OpCounts::default()
        };
        let mut stages = vec![
            Stage::new("conv", l, ckks::cost::sum_counts(&[conv_mul, adds(n_f)]), 0),
            Stage::new("x²", l - 1, squares(n_f), 0),
            Stage::new("fc1", l - 2, fc1_mul, 0),
            Stage::new(
                "fc1 rotate-and-sum",
                l - 3,
                ckks::cost::sum_counts(&[fc1_rot, adds(n_h)]),
                0,
            ),
            Stage::new("x²", l - 3, squares(n_h), 0),
            Stage::new("fc2", l - 4, fc2_mul, 0),
        ];
        if clean {
            stages.push(Stage::new("fc2 rotate-and-sum", l - 5, fc2_rot, 0));
            let mask = OpCounts {
                mul_plain: n_c,
                rescale: n_c,
                add: n_c,
                ..OpCounts::default()
            };
            stages.push(Stage::new("clean + bias", l - 5, mask, 0));
        } else {
            let rot = ckks::cost::sum_counts(&[fc2_rot, adds(n_c)]);
            stages.push(Stage::new("fc2 rotate-and-sum", l - 5, rot, 0));
        }
        let mut steps = super::ops::sum_steps(&product_shape(&conv_out, &fc1_w)?, FEATURES);
        steps.extend(super::ops::sum_steps(
            &product_shape(&fc1_out, &fc2_w)?,
            HIDDEN,
        ));
        steps.sort_unstable();
        steps.dedup();
        Ok(Self {
            spec,
            tiling,
            input,
            conv_w,
            conv_b,
            conv_out,
            fc1_w,
            fc1_b,
            fc1_out,
            fc2_w,
            fc2_sum,
            fc2_b,
            output,
            stages,
            steps,
        })
    }

    /// The tiling.
    pub fn tiling(&self) -> CnnTiling {
        self.tiling
    }

    /// The architecture planned (plain).
    pub fn spec(&self) -> &CnnSpec {
        &self.spec
    }

    /// Levels the forward pass consumes: 6 when `fc2`'s summation leaves its hidden dimension
    /// unknown (it is cleaned by a mask), 5 when it is replicated (`t_f = 1`) or one slot wide.
    pub fn depth(&self) -> usize {
        self.stages[0].level
    }

    /// Whether the logits are cleaned by a mask (one level).
    pub fn cleans(&self) -> bool {
        self.fc2_sum.dim(HIDDEN).kind == DimKind::Unknown
    }

    /// The operations of a forward pass by stage, from the input level down.
    pub fn stages(&self) -> Vec<Stage> {
        self.stages.clone()
    }

    /// The rotation steps whose Galois keys the forward pass needs (and no others).
    pub fn rotation_steps(&self) -> Vec<i64> {
        self.steps.clone()
    }

    /// Images one forward pass answers (`t_b`).
    pub fn images(&self) -> usize {
        self.tiling.batch
    }

    /// Ciphertexts the client sends (`taps · ⌈features/t_f⌉`).
    pub fn input_cts(&self) -> usize {
        self.input.tile_count()
    }

    /// Ciphertexts the server returns (`⌈classes/t_f⌉`).
    pub fn output_cts(&self) -> usize {
        self.output.tile_count()
    }

    /// The shapes of the representation changes, in HElayers' notation: the input, the
    /// convolution's output, `fc1`'s output, the logits.
    pub fn shape_labels(&self) -> [String; 4] {
        [
            self.input.label(),
            self.conv_out.label(),
            self.fc1_out.label(),
            self.output.label(),
        ]
    }
}

/// [`HeCnnError::BatchTooLarge`] for a batch larger than the tiling's.
pub(crate) fn too_many_images(images: usize, tb: usize) -> HeCnnError {
    HeCnnError::BatchTooLarge { images, slots: tb }
}
