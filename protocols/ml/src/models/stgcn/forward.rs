//! The forward pass on any backend, recording what the backward pass needs (a tape). Products
//! of secret values are Beaver products; re-indexings and public linear maps are local.

use super::layers::{BlockMaps, StepMaps};
use super::shape::{BlockShape, Residual, StgcnShape};
use crate::backend::{Backend, IndexMap};
use crate::error::Result;

/// What one activation site kept: its input, the kept part `d = keep ⊙ z` and, for the
/// polynomial, the broadcast `B` and `A ⊙ d`.
#[derive(Debug)]
pub(crate) struct ActTape<T> {
    pub(crate) d: T,
    pub(crate) poly: Option<(T, T)>,
}

/// The residual branch's tape.
#[derive(Debug)]
pub(crate) enum ResTape<T> {
    None,
    Identity,
    /// Strided input, conv output before BN, broadcast BN scale.
    Conv {
        xs: T,
        r: T,
        sr: T,
    },
}

/// What one block kept.
#[derive(Debug)]
pub(crate) struct BlockTape<T> {
    pub(crate) x: T,
    pub(crate) y: T,
    pub(crate) s1: T,
    pub(crate) act: [ActTape<T>; 2],
    pub(crate) col: T,
    pub(crate) tc: T,
    pub(crate) s2: T,
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

/// The BN affine `s ⊙ x + t` with per-channel rows broadcast; returns it and the broadcast `s`.
async fn bn<B: Backend>(
    b: &mut B,
    x: &B::Tensor,
    s: &B::Tensor,
    t: &B::Tensor,
    bcast: &IndexMap,
) -> Result<(B::Tensor, B::Tensor)> {
    let sb = b.gather(s, bcast)?;
    let y = b.mul(x, &sb, 0).await?;
    Ok((b.add(&y, &b.gather(t, bcast)?)?, sb))
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

async fn block<B: Backend>(
    b: &mut B,
    p: &[B::Tensor],
    blk: &BlockShape,
    m: &BlockMaps,
    x: B::Tensor,
) -> Result<(B::Tensor, BlockTape<B::Tensor>)> {
    let u = affine(b, &x, &p[blk.gcn_w], &p[blk.gcn_b], &m.bcast_gcn).await?;
    let y = b
        .linear_public(&b.gather(&u, &m.stack)?, &m.aggregate)
        .await?;
    let (z1, s1) = bn(b, &y, &p[blk.bn1.scale], &p[blk.bn1.shift], &m.bcast_in).await?;
    let (h, act0) = activation(b, p, blk, m, 0, &z1).await?;
    let col = b.gather(&h, &m.unfold)?;
    let tc = affine(b, &col, &p[blk.tcn_w], &p[blk.tcn_b], &m.bcast_out).await?;
    let (mut s, s2) = bn(b, &tc, &p[blk.bn2.scale], &p[blk.bn2.shift], &m.bcast_out).await?;
    let res = match blk.residual {
        Residual::None => ResTape::None,
        Residual::Identity => {
            s = b.add(&s, &x)?;
            ResTape::Identity
        }
        Residual::Conv {
            weight,
            bias,
            bn: rb,
        } => {
            let xs = b.gather(&x, m.stride_rows.as_ref().expect("conv residual map"))?;
            let r = affine(b, &xs, &p[weight], &p[bias], &m.bcast_out).await?;
            let (rn, sr) = bn(b, &r, &p[rb.scale], &p[rb.shift], &m.bcast_out).await?;
            s = b.add(&s, &rn)?;
            ResTape::Conv { xs, r, sr }
        }
    };
    let (out, act1) = activation(b, p, blk, m, 1, &s).await?;
    let tape = BlockTape {
        x,
        y,
        s1,
        act: [act0, act1],
        col,
        tc,
        s2,
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
    super::optim::check_params::<B>(shape, params)?;
    crate::backend::check_same("stgcn input", (B::dim(x).0, shape.input_cols()), B::dim(x))?;
    let maps = StepMaps::new(shape, B::dim(x).0, rows)?;
    let mut h = b.gather(x, &maps.batch)?;
    let mut blocks = Vec::with_capacity(shape.blocks.len());
    for (blk, m) in shape.blocks.iter().zip(&maps.blocks) {
        let (out, tape) = block(b, params, blk, m, h).await?;
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
