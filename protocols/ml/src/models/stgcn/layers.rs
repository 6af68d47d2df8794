//! The public maps of one training step, built from the model's shape and the batch: gathering
//! a batch's clips into `(n·T·V) × C` rows, broadcasts of per-channel and per-node rows, the
//! pruning mask, stacking the K partitions, graph aggregation, the temporal unfolding (im2col,
//! zero padding `(Kt − 1)/2`, stride), strided row selection and average pooling. All public
//! (they depend on the structure and the public batch indices only).

use super::shape::{BlockShape, StgcnShape};
use crate::backend::{IndexMap, PublicLinear};
use crate::error::{MlError, Result};

/// The maps of one block for a batch of `n` clips.
#[derive(Debug)]
pub(crate) struct BlockMaps {
    /// `1 × Co` → `(n·T_in·V) × Co`.
    pub(crate) bcast_in: IndexMap,
    /// `1 × K·Co` → `(n·T_in·V) × K·Co` (the GCN bias).
    pub(crate) bcast_gcn: IndexMap,
    /// `1 × Co` → `(n·T_out·V) × Co`.
    pub(crate) bcast_out: IndexMap,
    /// `(n·T_in·V) × K·Co` → `(K·n·T_in·V) × Co`: the K partitions stacked by rows.
    pub(crate) stack: IndexMap,
    /// `Σ_k (I ⊗ (A_k ⊙ E_k)ᵀ)` from the stacked partitions, and its transpose.
    pub(crate) aggregate: PublicLinear,
    pub(crate) aggregate_t: PublicLinear,
    /// im2col of `(n·T_in·V) × Co` into `(n·T_out·V) × (Co·Kt)`, column `c·Kt + j`.
    pub(crate) unfold: IndexMap,
    /// Rows `(b, s·t, v)` of `(n·T_in·V) × Ci` (strided residual input).
    pub(crate) stride_rows: Option<IndexMap>,
    /// Per site: keep-mask identity and node broadcast (`1 × V` → rows, zero at pruned nodes).
    pub(crate) keep: [IndexMap; 2],
    pub(crate) nodes: [IndexMap; 2],
    /// BN scale broadcasts onto the weights and biases of the GCN conv, the temporal conv and
    /// the residual conv (folding the BN scale into the small weights).
    pub(crate) fold_gcn: FoldMaps,
    pub(crate) fold_tcn: FoldMaps,
    pub(crate) fold_res: Option<FoldMaps>,
}

/// A BN scale `1 × Co` broadcast onto a weight `rows × (m·Co)` and a bias `1 × (m·Co)`
/// (column `j` gets `s[j mod Co]`).
#[derive(Debug)]
pub(crate) struct FoldMaps {
    pub(crate) weight: IndexMap,
    pub(crate) bias: IndexMap,
}

impl FoldMaps {
    fn new(rows: usize, cols: usize, co: usize) -> Result<Self> {
        let f = |_: usize, j: usize| Some((0, j % co));
        Ok(Self {
            weight: IndexMap::from_fn((1, co), (rows, cols), f)?,
            bias: IndexMap::from_fn((1, co), (1, cols), f)?,
        })
    }
}

/// The maps of one step.
#[derive(Debug)]
pub(crate) struct StepMaps {
    /// Dataset `N × (C·T·V)` → batch rows `(n·T·V) × C`.
    pub(crate) batch: IndexMap,
    pub(crate) blocks: Vec<BlockMaps>,
    /// Mean over `T_last·V` rows per clip, and its transpose.
    pub(crate) pool: PublicLinear,
    pub(crate) pool_t: PublicLinear,
    /// `1 × Q` → `n × Q` (dense bias); `n × 1` → `n × Q` (its adjoint sums rows).
    pub(crate) bcast_classes: IndexMap,
    pub(crate) row_sum: IndexMap,
}

/// `1 × cols` → `rows × cols`, every row a copy.
pub(crate) fn broadcast_row(rows: usize, cols: usize) -> Result<IndexMap> {
    IndexMap::from_fn((1, cols), (rows, cols), |_, c| Some((0, c)))
}

/// `1 × V` → `rows × cols` by node `r mod V`, zero where `keep[v]` is false.
fn broadcast_nodes(rows: usize, cols: usize, keep: &[bool]) -> Result<IndexMap> {
    let v = keep.len();
    IndexMap::from_fn((1, v), (rows, cols), |r, _| {
        keep[r % v].then_some((0, r % v))
    })
}

/// The identity on kept nodes' rows, zero elsewhere.
fn keep_mask(rows: usize, cols: usize, keep: &[bool]) -> Result<IndexMap> {
    let v = keep.len();
    IndexMap::from_fn((rows, cols), (rows, cols), |r, c| {
        keep[r % v].then_some((r, c))
    })
}

/// Dataset rows `rows` (of `n_total`) as `(n·T·V) × C` activation rows.
pub(crate) fn batch_map(shape: &StgcnShape, n_total: usize, rows: &[usize]) -> Result<IndexMap> {
    if let Some((index, &value)) = rows.iter().enumerate().find(|(_, &r)| r >= n_total) {
        return Err(MlError::OutOfRange {
            what: "batch row (dataset clips)",
            index,
            value,
            limit: n_total,
        });
    }
    let (c, t, v) = (shape.config.in_channels, shape.frames(), shape.nodes());
    let tv = t * v;
    IndexMap::from_fn(
        (n_total, shape.input_cols()),
        (rows.len() * tv, c),
        |r, ch| Some((rows[r / tv], ch * tv + r % tv)),
    )
}

fn aggregation(nt: usize, blk: &BlockShape) -> Result<PublicLinear> {
    let (k, v, _) = blk.adjacency.dim();
    let r = nt * v;
    let mut trip = Vec::new();
    for ((ki, vi, wi), &a) in blk.adjacency.indexed_iter() {
        if a != 0.0 {
            for f in 0..nt {
                trip.push((f * v + wi, ki * r + f * v + vi, a));
            }
        }
    }
    let _ = k;
    PublicLinear::from_triplets(r, k * r, trip)
}

fn unfold(n: usize, blk: &BlockShape, v: usize, kt: usize) -> Result<IndexMap> {
    let (ti, to, s, c) = (blk.t_in, blk.t_out, blk.stride, blk.c_out);
    let pad = kt / 2;
    IndexMap::from_fn((n * ti * v, c), (n * to * v, c * kt), |r, col| {
        let (b, o, vi) = (r / (to * v), (r / v) % to, r % v);
        let (ch, j) = (col / kt, col % kt);
        let t = o * s + j;
        (t >= pad && t - pad < ti).then(|| ((b * ti + t - pad) * v + vi, ch))
    })
}

fn block_maps(shape: &StgcnShape, blk: &BlockShape, n: usize) -> Result<BlockMaps> {
    let (v, k, kt) = (shape.nodes(), shape.subsets(), shape.kernel());
    let (r_in, r_out) = (n * blk.t_in * v, n * blk.t_out * v);
    let (ci, co) = (blk.c_in, blk.c_out);
    let aggregate = aggregation(n * blk.t_in, blk)?;
    let stride_rows = match blk.residual {
        super::shape::Residual::Conv { .. } => Some(IndexMap::from_fn(
            (r_in, blk.c_in),
            (r_out, blk.c_in),
            |r, c| {
                let (b, o, vi) = (r / (blk.t_out * v), (r / v) % blk.t_out, r % v);
                Some(((b * blk.t_in + o * blk.stride) * v + vi, c))
            },
        )?),
        _ => None,
    };
    Ok(BlockMaps {
        bcast_in: broadcast_row(r_in, co)?,
        bcast_gcn: broadcast_row(r_in, k * co)?,
        bcast_out: broadcast_row(r_out, co)?,
        stack: IndexMap::from_fn((r_in, k * co), (k * r_in, co), |r, c| {
            Some((r % r_in, (r / r_in) * co + c))
        })?,
        aggregate_t: aggregate.transpose(),
        aggregate,
        unfold: unfold(n, blk, v, kt)?,
        stride_rows,
        keep: [
            keep_mask(r_in, co, &blk.keep[0])?,
            keep_mask(r_out, co, &blk.keep[1])?,
        ],
        nodes: [
            broadcast_nodes(r_in, co, &blk.keep[0])?,
            broadcast_nodes(r_out, co, &blk.keep[1])?,
        ],
        fold_gcn: FoldMaps::new(ci, k * co, co)?,
        fold_tcn: FoldMaps::new(kt * co, co, co)?,
        fold_res: match blk.residual {
            super::shape::Residual::Conv { .. } => Some(FoldMaps::new(ci, co, co)?),
            _ => None,
        },
    })
}

impl StepMaps {
    /// The maps of a step on dataset rows `rows` of an `n_total`-clip dataset.
    pub(crate) fn new(shape: &StgcnShape, n_total: usize, rows: &[usize]) -> Result<Self> {
        let n = rows.len();
        let blocks = shape
            .blocks
            .iter()
            .map(|blk| block_maps(shape, blk, n))
            .collect::<Result<Vec<_>>>()?;
        let t_last = shape.blocks.last().map_or(shape.frames(), |b| b.t_out);
        let tv = t_last * shape.nodes();
        let pool = PublicLinear::from_triplets(
            n,
            n * tv,
            (0..n * tv).map(|r| (r / tv, r, 1.0 / tv as f64)),
        )?;
        let q = shape.num_classes();
        Ok(Self {
            batch: batch_map(shape, n_total, rows)?,
            blocks,
            pool_t: pool.transpose(),
            pool,
            bcast_classes: broadcast_row(n, q)?,
            row_sum: IndexMap::from_fn((n, 1), (n, q), |r, _| Some((r, 0)))?,
        })
    }
}
