//! What every encrypted layout of a CNN provides ([`CnnLayout`]), the catalogue of layouts
//! ([`LayoutKind`]): the whole-network layouts and LoLa's representations inside them, and the stages a layout's
//! operations fall into for pricing ([`Stage`]).

use crate::error::Result;
use ckks::{Evaluator, OpCounts};

/// The layouts of the CNN papers Dyad reproduces. [`LayoutKind::Batch`], [`LayoutKind::Lola`],
/// [`LayoutKind::FfConv`], [`LayoutKind::Matrix`] and [`LayoutKind::Tile`] are whole-network
/// layouts ([`LayoutKind::implemented`]); LoLa's four representations are named for reports:
/// they are the stages of [`LayoutKind::Lola`] and tile shapes of [`LayoutKind::Tile`], not
/// networks of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayoutKind {
    /// CryptoNets: one image per slot, one ciphertext per pixel/neuron; no rotations
    /// ([`crate::batch::BatchCnn`]).
    Batch,
    /// LoLa-style single image: convolution representation at the input (one ciphertext per
    /// kernel tap), arranged dense layers by diagonals with hoisted rotations
    /// ([`crate::lola::LolaCnn`]).
    Lola,
    /// FFConv (low-rank convolution, activation, 1×1 mixing) in the single-image layout: the
    /// mixing folded into the first dense layer, the rank-`r` convolution slot-wise
    /// ([`crate::ffconv::FfConvCnn`]).
    FfConv,
    /// LoLa's dense representation (one vector per ciphertext): the dense layers of
    /// [`crate::lola`] (the arranged vector); not a whole-network layout.
    Dense,
    /// LoLa's convolution representation (one ciphertext per kernel tap): the input of
    /// [`crate::lola`] and of [`crate::tile`] (`[25/1, …]`); not a whole-network layout.
    Convolution,
    /// LoLa's interleaved representation: the tile shapes `[…, */t_h, …]` of [`crate::tile`]'s
    /// input (each value repeated `t_h` times); not a whole-network layout.
    Interleaved,
    /// LoLa's stacked representation: the hidden vector `[*/t_f, 100/t_h]` of [`crate::tile`]
    /// after the first dense layer's sum; not a whole-network layout.
    Stacked,
    /// Matrix encoding (E2DM line): a batch of images as one data matrix in one ciphertext,
    /// the convolution spanned into the images' matrix space, the dense layers as matrix
    /// products with plaintext weights ([`crate::matrix::MatrixCnn`]).
    Matrix,
    /// HElayers-style tile tensors with the tile shape a parameter
    /// ([`crate::tile::TileCnn`]).
    Tile,
}

impl LayoutKind {
    /// Short name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Batch => "batch",
            Self::Lola => "lola",
            Self::FfConv => "ffconv",
            Self::Dense => "dense",
            Self::Convolution => "convolution",
            Self::Interleaved => "interleaved",
            Self::Stacked => "stacked",
            Self::Matrix => "matrix",
            Self::Tile => "tile",
        }
    }

    /// Whether this crate evaluates the layout as a whole network (LoLa's representations are
    /// stages of other layouts, see the variants).
    pub fn implemented(self) -> bool {
        matches!(
            self,
            Self::Batch | Self::Lola | Self::FfConv | Self::Matrix | Self::Tile
        )
    }
}

/// An encrypted evaluation of a CNN in one layout: the server's side. Client-side encryption
/// and decryption are inherent methods of each layout (their inputs differ: a batch of images,
/// one image, a matrix).
pub trait CnnLayout {
    /// The encrypted input the client sends.
    type Input;
    /// The encrypted output the server returns.
    type Output;

    /// Which layout this is.
    fn kind(&self) -> LayoutKind;

    /// Levels the forward pass consumes.
    fn depth(&self) -> usize;

    /// Every evaluator operation of one forward pass, from the model's shape alone.
    fn planned_op_counts(&self) -> OpCounts;

    /// The same operations by stage, each at the level it runs, for the planner to price
    /// ([`crate::planner`]); their sum is [`Self::planned_op_counts`]. The default is one stage
    /// at the input level (every operation priced at the top level: an upper bound); the
    /// layouts here override it with their layers.
    fn planned_stages(&self) -> Vec<Stage> {
        vec![Stage::new(
            "forward",
            self.depth(),
            self.planned_op_counts(),
            0,
        )]
    }

    /// The forward pass (the evaluator's counters count its operations).
    ///
    /// # Errors
    /// CKKS errors, or an input of the wrong shape or level.
    fn forward(&self, eval: &Evaluator, input: &Self::Input) -> Result<Self::Output>;
}

/// Refuses an FFConv model (`spec.rank` set) in a layout that reads one kernel per map: its
/// convolution has `rank` maps, not `maps`.
///
/// # Errors
/// [`crate::HeCnnError::Model`] naming the rank and the layout to use instead.
pub(crate) fn require_plain(model: &ml::models::cnn::CnnModel) -> Result<()> {
    match model.spec.rank {
        None => Ok(()),
        Some(r) => Err(ml::MlError::Unsupported {
            what: "CNN spec.rank (FFConv)",
            value: r.to_string(),
            reason: "this layout reads a plain convolution: use hecnn::ffconv::FfConvCnn or \
                     CnnModel::folded",
        }
        .into()),
    }
}

/// A block of a forward pass's operations that run at one level: what the planner prices
/// ([`crate::planner`], with [`ckks::cost::OpCosts::price`]). Defined in [`ckks::cost::stage`],
/// which `hegcn`'s planner shares.
pub use ckks::cost::Stage;
