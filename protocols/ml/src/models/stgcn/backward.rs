//! The backward pass by hand: the adjoint of every forward operation (matrix products
//! transposed, gathers scattered back, public linear maps transposed, `2d ⊙ g` for `d²`,
//! column sums of `g ⊙ x` for BN scales). Gradients are sums over the batch (the loss gradient
//! is `P − Y`, the `1/|B|` is applied in the update).

use super::forward::{ActTape, BlockTape, ResTape, Tape};
use super::layers::BlockMaps;
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

/// Backward of `x·W + b`: `(dx, dW, db)`; `dx` only if `need_dx`.
async fn affine_back<B: Backend>(
    b: &mut B,
    x: &B::Tensor,
    w: &B::Tensor,
    g: &B::Tensor,
    bcast: &IndexMap,
    need_dx: bool,
) -> Result<(Option<B::Tensor>, B::Tensor, B::Tensor)> {
    let dw = b.matmul(&b.transpose(x), g, 0).await?;
    let db = b.scatter_add(g, bcast)?;
    let dx = if need_dx {
        Some(b.matmul(g, &b.transpose(w), 0).await?)
    } else {
        None
    };
    Ok((dx, dw, db))
}

/// Backward of the BN affine `s ⊙ x + t`: `(dx, ds, dt)`.
async fn bn_back<B: Backend>(
    b: &mut B,
    x: &B::Tensor,
    sb: &B::Tensor,
    g: &B::Tensor,
    bcast: &IndexMap,
) -> Result<(B::Tensor, B::Tensor, B::Tensor)> {
    let gx = b.mul(g, x, 0).await?;
    let dx = b.mul(g, sb, 0).await?;
    Ok((dx, b.scatter_add(&gx, bcast)?, b.scatter_add(g, bcast)?))
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
        (ResTape::Conv { xs, r, sr }, Residual::Conv { weight, bias, bn }) => {
            let (gr, ds, dt) = bn_back(b, r, sr, &gs, &m.bcast_out).await?;
            put(b, grads, bn.scale, ds)?;
            put(b, grads, bn.shift, dt)?;
            let (dxs, dw, db) = affine_back(b, xs, &p[weight], &gr, &m.bcast_out, need_dx).await?;
            put(b, grads, weight, dw)?;
            put(b, grads, bias, db)?;
            let map = m.stride_rows.as_ref().expect("conv residual map");
            dxs.map(|d| b.scatter_add(&d, map)).transpose()?
        }
        (ResTape::Identity, _) => Some(gs.clone()),
        _ => None,
    };
    let (gtc, ds2, dt2) = bn_back(b, &t.tc, &t.s2, &gs, &m.bcast_out).await?;
    put(b, grads, blk.bn2.scale, ds2)?;
    put(b, grads, blk.bn2.shift, dt2)?;
    let (dcol, dw, db) = affine_back(b, &t.col, &p[blk.tcn_w], &gtc, &m.bcast_out, true).await?;
    put(b, grads, blk.tcn_w, dw)?;
    put(b, grads, blk.tcn_b, db)?;
    let gh = b.scatter_add(&dcol.expect("requested"), &m.unfold)?;
    let gz1 = act_back(b, blk, m, 0, &t.act[0], &gh, grads).await?;
    let (gy, ds1, dt1) = bn_back(b, &t.y, &t.s1, &gz1, &m.bcast_in).await?;
    put(b, grads, blk.bn1.scale, ds1)?;
    put(b, grads, blk.bn1.shift, dt1)?;
    let gstack = b.linear_public(&gy, &m.aggregate_t).await?;
    let gu = b.scatter_add(&gstack, &m.stack)?;
    let (dx, dw, db) = affine_back(b, &t.x, &p[blk.gcn_w], &gu, &m.bcast_gcn, need_dx).await?;
    put(b, grads, blk.gcn_w, dw)?;
    put(b, grads, blk.gcn_b, db)?;
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
    let (dp, dw, db) = affine_back(
        b,
        &tape.pooled,
        &params[shape.fc_w],
        g,
        &maps.bcast_classes,
        true,
    )
    .await?;
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
