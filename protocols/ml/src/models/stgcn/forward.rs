//! The forward pass on any backend, recording what the backward pass needs (a tape). Products
//! of secret values are Beaver products; re-indexings and public linear maps are local.

use super::calibrate::Recalibration;
use super::layers::{BlockMaps, FoldMaps, StepMaps};
use super::shape::{BlockShape, BnParams, Residual, StgcnShape};
use crate::backend::{Backend, IndexMap};
use crate::error::Result;

/// What one activation site kept: its input, the kept part `d = keep ⊙ z` and, for the
/// polynomial, the broadcast `B` and `A ⊙ d`.
#[derive(Debug)]
pub(crate) struct ActTape<T> {
    pub(crate) d: T,
    pub(crate) poly: Option<(T, T)>,
}

/// A convolution with its BN scale folded in: `W ⊙ S_w`, and the broadcasts `S_w`, `S_b`.
#[derive(Debug)]
pub(crate) struct FoldTape<T> {
    pub(crate) w: T,
    pub(crate) sw: T,
    pub(crate) sb: T,
}

/// The residual branch's tape.
#[derive(Debug)]
pub(crate) enum ResTape<T> {
    None,
    Identity,
    /// Strided input and the folded conv.
    Conv {
        xs: T,
        fold: FoldTape<T>,
    },
}

/// What one block kept.
#[derive(Debug)]
pub(crate) struct BlockTape<T> {
    pub(crate) x: T,
    pub(crate) gcn: FoldTape<T>,
    pub(crate) act: [ActTape<T>; 2],
    pub(crate) col: T,
    pub(crate) tcn: FoldTape<T>,
    pub(crate) res: ResTape<T>,
}

/// What the step kept.
#[derive(Debug)]
pub(crate) struct Tape<T> {
    pub(crate) maps: StepMaps,
    pub(crate) blocks: Vec<BlockTape<T>>,
    pub(crate) pooled: T,
}

/// `x·W + b` with a row broadcast of the bias.
pub(crate) async fn affine<B: Backend>(
    b: &mut B,
    x: &B::Tensor,
    w: &B::Tensor,
    bias: &B::Tensor,
    bcast: &IndexMap,
) -> Result<B::Tensor> {
    let p = b.matmul(x, w, 0).await?;
    b.add(&p, &b.gather(bias, bcast)?)
}

/// The BN scale `s` folded into a convolution: `(W ⊙ S_w, b ⊙ S_b)`. A BN after a linear map
/// `s ⊙ (X·W + b) + t = X·(W ⊙ S_w) + b ⊙ S_b + t` (for the GCN the aggregation acts on rows
/// and commutes with the column scale), so the products are on the small weights, not on the
/// `(n·T·V) × C` activations.
async fn fold<B: Backend>(
    b: &mut B,
    w: &B::Tensor,
    bias: &B::Tensor,
    s: &B::Tensor,
    m: &FoldMaps,
) -> Result<(B::Tensor, FoldTape<B::Tensor>)> {
    let (sw, sb) = (b.gather(s, &m.weight)?, b.gather(s, &m.bias)?);
    let ws = b.mul(w, &sw, 0).await?;
    let bs = b.mul(bias, &sb, 0).await?;
    Ok((bs, FoldTape { w: ws, sw, sb }))
}

/// The activation of `site`: `z − d + act(d)` with `d = keep ⊙ z` (pruned nodes the identity).
async fn activation<B: Backend>(
    b: &mut B,
    p: &[B::Tensor],
    blk: &BlockShape,
    m: &BlockMaps,
    site: usize,
    z: &B::Tensor,
) -> Result<(B::Tensor, ActTape<B::Tensor>)> {
    let d = b.gather(z, &m.keep[site])?;
    let zd = b.sub(z, &d)?;
    match blk.act[site] {
        None => {
            let q = b.square(&d).await?;
            Ok((b.add(&zd, &q)?, ActTape { d, poly: None }))
        }
        Some(pp) => {
            let nodes = &m.nodes[site];
            let (ab, bb, cb) = (
                b.gather(&p[pp.a], nodes)?,
                b.gather(&p[pp.b], nodes)?,
                b.gather(&p[pp.c], nodes)?,
            );
            let ax = b.mul(&ab, &d, 0).await?;
            let q = b.mul(&b.add(&ax, &bb)?, &d, 0).await?;
            let out = b.add(&b.add(&zd, &q)?, &cb)?;
            Ok((
                out,
                ActTape {
                    d,
                    poly: Some((bb, ax)),
                },
            ))
        }
    }
}

/// A BN's output `z`: as it is in training, re-normalised on a calibration pass.
async fn bn_out<B: Backend>(
    b: &mut B,
    cal: &mut Option<&mut Recalibration<'_, B::Tensor>>,
    bn: BnParams,
    z: B::Tensor,
    bcast: &IndexMap,
) -> Result<B::Tensor> {
    match cal {
        None => Ok(z),
        Some(c) => c.normalize(b, bn, z, bcast).await,
    }
}

async fn block<B: Backend>(
    b: &mut B,
    p: &[B::Tensor],
    (blk, m): (&BlockShape, &BlockMaps),
    x: B::Tensor,
    cal: &mut Option<&mut Recalibration<'_, B::Tensor>>,
) -> Result<(B::Tensor, BlockTape<B::Tensor>)> {
    let (bs, gcn) = fold(
        b,
        &p[blk.gcn_w],
        &p[blk.gcn_b],
        &p[blk.bn1.scale],
        &m.fold_gcn,
    )
    .await?;
    let u = affine(b, &x, &gcn.w, &bs, &m.bcast_gcn).await?;
    let y = b
        .linear_public(&b.gather(&u, &m.stack)?, &m.aggregate)
        .await?;
    let z1 = b.add(&y, &b.gather(&p[blk.bn1.shift], &m.bcast_in)?)?;
    let z1 = bn_out(b, cal, blk.bn1, z1, &m.bcast_in).await?;
    let (h, act0) = activation(b, p, blk, m, 0, &z1).await?;
    let col = b.gather(&h, &m.unfold)?;
    let (bs, tcn) = fold(
        b,
        &p[blk.tcn_w],
        &p[blk.tcn_b],
        &p[blk.bn2.scale],
        &m.fold_tcn,
    )
    .await?;
    let tc = affine(b, &col, &tcn.w, &bs, &m.bcast_out).await?;
    let s = b.add(&tc, &b.gather(&p[blk.bn2.shift], &m.bcast_out)?)?;
    let mut s = bn_out(b, cal, blk.bn2, s, &m.bcast_out).await?;
    let res = match blk.residual {
        Residual::None => ResTape::None,
        Residual::Identity => {
            s = b.add(&s, &x)?;
            ResTape::Identity
        }
        Residual::Conv { weight, bias, bn } => {
            let xs = b.gather(&x, m.stride_rows.as_ref().expect("conv residual map"))?;
            let fm = m.fold_res.as_ref().expect("conv residual maps");
            let (bs, fold) = fold(b, &p[weight], &p[bias], &p[bn.scale], fm).await?;
            let r = affine(b, &xs, &fold.w, &bs, &m.bcast_out).await?;
            let r = b.add(&r, &b.gather(&p[bn.shift], &m.bcast_out)?)?;
            let r = bn_out(b, cal, bn, r, &m.bcast_out).await?;
            s = b.add(&s, &r)?;
            ResTape::Conv { xs, fold }
        }
    };
    let (out, act1) = activation(b, p, blk, m, 1, &s).await?;
    let tape = BlockTape {
        x,
        gcn,
        act: [act0, act1],
        col,
        tcn,
        res,
    };
    Ok((out, tape))
}

/// Logits `|B| × Q` of the clips `rows` of the prepared dataset `x` (`N × input_cols`) under
/// `params`, and the tape of the pass.
pub(crate) async fn forward<B: Backend>(
    b: &mut B,
    shape: &StgcnShape,
    x: &B::Tensor,
    params: &[B::Tensor],
    rows: &[usize],
) -> Result<(B::Tensor, Tape<B::Tensor>)> {
    forward_with(b, shape, x, params, rows, None).await
}

/// [`forward`], with every BN output re-normalised by `cal` when given (the calibration pass).
pub(crate) async fn forward_with<B: Backend>(
    b: &mut B,
    shape: &StgcnShape,
    x: &B::Tensor,
    params: &[B::Tensor],
    rows: &[usize],
    mut cal: Option<&mut Recalibration<'_, B::Tensor>>,
) -> Result<(B::Tensor, Tape<B::Tensor>)> {
    super::optim::check_params::<B>(shape, params)?;
    crate::backend::check_same("stgcn input", (B::dim(x).0, shape.input_cols()), B::dim(x))?;
    let maps = StepMaps::new(shape, B::dim(x).0, rows)?;
    let mut h = b.gather(x, &maps.batch)?;
    let mut blocks = Vec::with_capacity(shape.blocks.len());
    for (blk, m) in shape.blocks.iter().zip(&maps.blocks) {
        let (out, tape) = block(b, params, (blk, m), h, &mut cal).await?;
        blocks.push(tape);
        h = out;
    }
    let pooled = b.linear_public(&h, &maps.pool).await?;
    let logits = affine(
        b,
        &pooled,
        &params[shape.fc_w],
        &params[shape.fc_b],
        &maps.bcast_classes,
    )
    .await?;
    Ok((
        logits,
        Tape {
            maps,
            blocks,
            pooled,
        },
    ))
}
