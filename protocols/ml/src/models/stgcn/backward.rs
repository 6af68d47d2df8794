//! The backward pass by hand: the adjoint of every forward operation (matrix products
//! transposed, gathers scattered back, public linear maps transposed, `2d ⊙ g` for `d²`,
//! column sums of `g ⊙ x` for BN scales). Gradients are sums over the batch (the loss gradient
//! is `P − Y`, the `1/|B|` is applied in the update).

use super::forward::{ActTape, BlockTape, FoldTape, ResTape, Tape};
use super::layers::{BlockMaps, FoldMaps};
use super::shape::{BlockShape, Residual, StgcnShape};
use crate::backend::{Backend, IndexMap};
use crate::error::Result;

/// Adds `g` into the gradient slot `i`.
fn put<B: Backend>(b: &B, grads: &mut [Option<B::Tensor>], i: usize, g: B::Tensor) -> Result<()> {
    grads[i] = Some(match grads[i].take() {
        Some(acc) => b.add(&acc, &g)?,
        None => g,
    });
    Ok(())
}

/// Backward of `x·W + b`: `(dx, dW, db)`; `dx` only if `need_dx`, scattered back by
/// `dx_map` (if `x` was a gather) before its one truncation.
async fn affine_back<B: Backend>(
    b: &mut B,
    (x, w): (&B::Tensor, &B::Tensor),
    g: &B::Tensor,
    (bcast, dx_map): (&IndexMap, Option<&IndexMap>),
    need_dx: bool,
) -> Result<(Option<B::Tensor>, B::Tensor, B::Tensor)> {
    let dw = b.matmul(&b.transpose(x), g, 0).await?;
    let db = b.scatter_add(g, bcast)?;
    let wt = b.transpose(w);
    let dx = match (need_dx, dx_map) {
        (false, _) => None,
        (true, None) => Some(b.matmul(g, &wt, 0).await?),
        (true, Some(map)) => Some(b.matmul_scatter(g, &wt, map).await?),
    };
    Ok((dx, dw, db))
}

/// A BN-folded convolution `x·(W ⊙ S_w) + b ⊙ S_b`, then `+ t` (for the GCN after the
/// aggregation): parameter indices `[W, b, s, t]`, its input and tape.
struct Conv<'a, T> {
    idx: [usize; 4],
    x: &'a T,
    fold: &'a FoldTape<T>,
    fm: &'a FoldMaps,
    /// The gather that made `x` (unfolding, strided rows), if any.
    x_map: Option<&'a IndexMap>,
}

/// Backward of a [`Conv`] from the gradient `g_conv` of the conv output (rows broadcast by
/// `b_map`): the input gradient (if `need_dx`), and the gradients of `W`, `b`, `s` into
/// `grads`: `dW = dW' ⊙ S_w`, `db = db' ⊙ S_b`, `ds = Σ_cols(W ⊙ dW') + Σ_cols(b ⊙ db')`.
/// The shift's gradient is the caller's (it sits after the aggregation for the GCN).
async fn conv_back<B: Backend>(
    b: &mut B,
    p: &[B::Tensor],
    c: Conv<'_, B::Tensor>,
    (g_conv, b_map): (&B::Tensor, &IndexMap),
    grads: &mut [Option<B::Tensor>],
    need_dx: bool,
) -> Result<Option<B::Tensor>> {
    let [w, bias, s, _] = c.idx;
    let maps = (b_map, c.x_map);
    let (dx, dws, dbs) = affine_back(b, (c.x, &c.fold.w), g_conv, maps, need_dx).await?;
    let dw = b.mul(&dws, &c.fold.sw, 0).await?;
    put(b, grads, w, dw)?;
    let db = b.mul(&dbs, &c.fold.sb, 0).await?;
    put(b, grads, bias, db)?;
    let wd = b.mul(&p[w], &dws, 0).await?;
    let bd = b.mul(&p[bias], &dbs, 0).await?;
    let ds = b.add(
        &b.scatter_add(&wd, &c.fm.weight)?,
        &b.scatter_add(&bd, &c.fm.bias)?,
    )?;
    put(b, grads, s, ds)?;
    Ok(dx)
}

/// Backward of an activation site; polynomial coefficient gradients go to `grads`.
async fn act_back<B: Backend>(
    b: &mut B,
    blk: &BlockShape,
    m: &BlockMaps,
    site: usize,
    t: &ActTape<B::Tensor>,
    g: &B::Tensor,
    grads: &mut [Option<B::Tensor>],
) -> Result<B::Tensor> {
    let gk = b.gather(g, &m.keep[site])?;
    let rest = b.sub(g, &gk)?;
    match (&t.poly, blk.act[site]) {
        (Some((bb, ax)), Some(pp)) => {
            // d(A d² + B d + C) = (2 A d + B) g; coefficients: Σ g d², Σ g d, Σ g per node.
            let slope = b.add(&b.add(ax, ax)?, bb)?;
            let dz = b.mul(&gk, &slope, 0).await?;
            let gd = b.mul(g, &t.d, 0).await?;
            let gdd = b.mul(&gd, &t.d, 0).await?;
            let nodes = &m.nodes[site];
            put(b, grads, pp.a, b.scatter_add(&gdd, nodes)?)?;
            put(b, grads, pp.b, b.scatter_add(&gd, nodes)?)?;
            put(b, grads, pp.c, b.scatter_add(g, nodes)?)?;
            b.add(&rest, &dz)
        }
        _ => {
            let p = b.mul(&gk, &t.d, 0).await?;
            b.add(&rest, &b.add(&p, &p)?)
        }
    }
}

/// Backward of one block from the gradient of its output; returns the input gradient (if
/// `need_dx`).
#[allow(clippy::too_many_arguments)] // the block's tape, maps, params and the gradient sink
async fn block_back<B: Backend>(
    b: &mut B,
    p: &[B::Tensor],
    blk: &BlockShape,
    m: &BlockMaps,
    t: &BlockTape<B::Tensor>,
    g: &B::Tensor,
    grads: &mut [Option<B::Tensor>],
    need_dx: bool,
) -> Result<Option<B::Tensor>> {
    let gs = act_back(b, blk, m, 1, &t.act[1], g, grads).await?;
    let dx_res = match (&t.res, blk.residual) {
        (ResTape::Conv { xs, fold }, Residual::Conv { weight, bias, bn }) => {
            put(b, grads, bn.shift, b.scatter_add(&gs, &m.bcast_out)?)?;
            let fm = m.fold_res.as_ref().expect("conv residual maps");
            let idx = [weight, bias, bn.scale, bn.shift];
            let x_map = m.stride_rows.as_ref();
            let conv = Conv {
                idx,
                x: xs,
                fold,
                fm,
                x_map,
            };
            conv_back(b, p, conv, (&gs, &m.bcast_out), grads, need_dx).await?
        }
        (ResTape::Identity, _) => Some(gs.clone()),
        _ => None,
    };
    put(b, grads, blk.bn2.shift, b.scatter_add(&gs, &m.bcast_out)?)?;
    let idx = [blk.tcn_w, blk.tcn_b, blk.bn2.scale, blk.bn2.shift];
    let conv = Conv {
        idx,
        x: &t.col,
        fold: &t.tcn,
        fm: &m.fold_tcn,
        x_map: Some(&m.unfold),
    };
    let gh = conv_back(b, p, conv, (&gs, &m.bcast_out), grads, true).await?;
    let gh = gh.expect("requested");
    let gz1 = act_back(b, blk, m, 0, &t.act[0], &gh, grads).await?;
    put(b, grads, blk.bn1.shift, b.scatter_add(&gz1, &m.bcast_in)?)?;
    let gstack = b.linear_public(&gz1, &m.aggregate_t).await?;
    let gu = b.scatter_add(&gstack, &m.stack)?;
    let idx = [blk.gcn_w, blk.gcn_b, blk.bn1.scale, blk.bn1.shift];
    let conv = Conv {
        idx,
        x: &t.x,
        fold: &t.gcn,
        fm: &m.fold_gcn,
        x_map: None,
    };
    let dx = conv_back(b, p, conv, (&gu, &m.bcast_gcn), grads, need_dx).await?;
    match (dx, dx_res) {
        (Some(a), Some(r)) => Ok(Some(b.add(&a, &r)?)),
        (a, _) => Ok(a),
    }
}

/// Gradients (sums over the batch) of every parameter, in `param_dims` order, from the
/// gradient `g = P − Y` of the logits.
pub(crate) async fn backward<B: Backend>(
    b: &mut B,
    shape: &StgcnShape,
    params: &[B::Tensor],
    tape: &Tape<B::Tensor>,
    g: &B::Tensor,
) -> Result<Vec<B::Tensor>> {
    let mut grads: Vec<Option<B::Tensor>> = vec![None; params.len()];
    let maps = &tape.maps;
    let fc = (&tape.pooled, &params[shape.fc_w]);
    let (dp, dw, db) = affine_back(b, fc, g, (&maps.bcast_classes, None), true).await?;
    put(b, &mut grads, shape.fc_w, dw)?;
    put(b, &mut grads, shape.fc_b, db)?;
    let mut gh = b
        .linear_public(&dp.expect("requested"), &maps.pool_t)
        .await?;
    for (i, (blk, t)) in shape.blocks.iter().zip(&tape.blocks).enumerate().rev() {
        let m = &maps.blocks[i];
        match block_back(b, params, blk, m, t, &gh, &mut grads, i > 0).await? {
            Some(gx) => gh = gx,
            None => break,
        }
    }
    Ok(grads
        .into_iter()
        .map(|g| g.expect("every parameter has a gradient"))
        .collect())
}
