//! The backward pass of [`StGcn`]: gradients of every tensor from the tape the training-mode
//! forward pass recorded, block by block in reverse.

use ndarray::{Array2, Array4, ArrayD};

use super::{BlockTape, Gradients, PolyIdx, ResIdx, StGcn, Tape};
use crate::ops;

impl StGcn {
    pub(super) fn backward(&self, tape: &Tape, dlogits: &Array2<f64>) -> Gradients {
        let mut grads: Vec<ArrayD<f64>> = self
            .store
            .tensors
            .iter()
            .map(|t| ArrayD::zeros(t.value.raw_dim()))
            .collect();
        let l = &self.layout;
        let (dp, dw, db) = ops::dense_backward(&tape.pooled, self.v2(l.fc_w), dlogits);
        grads[l.fc_w] = dw.into_dyn();
        grads[l.fc_b] = db.into_dyn();
        let mut d = ops::pool_backward(&dp, tape.last_shape, self.config.num_persons);
        let mut gates = self.gates.clone();
        for (i, bt) in tape.blocks.iter().enumerate().rev() {
            d = self.block_backward(i, bt, d, &mut grads, gates.as_mut().map(|g| &mut g[i]));
        }
        Gradients { grads, gates }
    }

    fn store_poly(grads: &mut [ArrayD<f64>], idx: &Option<PolyIdx>, g: &Array2<f64>) {
        if let Some(p) = idx {
            grads[p.a] = g.row(0).to_owned().into_dyn();
            grads[p.b] = g.row(1).to_owned().into_dyn();
            grads[p.c] = g.row(2).to_owned().into_dyn();
        }
    }

    fn block_backward(
        &self,
        i: usize,
        t: &BlockTape,
        dout: Array4<f64>,
        grads: &mut [ArrayD<f64>],
        mut gate_grads: Option<&mut [Vec<f64>; 2]>,
    ) -> Array4<f64> {
        let b = &self.layout.blocks[i];
        let stride = self.config.blocks[i].stride;
        if let Some(g) = gate_grads.as_deref_mut() {
            g[1] = ops::gate_backward(&t.s, &dout, self.act_params(i, 1)).to_vec();
        }
        let (ds, g2) = ops::act_backward(&t.s, &dout, self.act_params(i, 1));
        drop(dout);
        Self::store_poly(grads, &b.act2, &g2);
        let mut dx_res = None;
        match &b.res {
            ResIdx::None => {}
            ResIdx::Identity => dx_res = Some(ds.clone()),
            ResIdx::Conv { weight, bias, bn } => {
                let cache = t.res_bn.as_ref().expect("training tape has residual BN");
                let (dr, dg, dbeta) = ops::bn_backward(&ds, cache, self.v1(bn.weight));
                grads[bn.weight] = dg.into_dyn();
                grads[bn.bias] = dbeta.into_dyn();
                let (dx, wb) = ops::conv1x1_backward(&t.x, self.v2(*weight), &dr, stride);
                grads[*weight] = wb.w.into_dyn();
                grads[*bias] = wb.b.into_dyn();
                dx_res = Some(dx);
            }
        }
        let (dtc, dg, dbeta) = ops::bn_backward(&ds, &t.bn2, self.v1(b.bn2.weight));
        drop(ds);
        grads[b.bn2.weight] = dg.into_dyn();
        grads[b.bn2.bias] = dbeta.into_dyn();
        let (dh, wb) = ops::tconv_backward(&t.h, self.v3(b.tcn_w), &dtc, stride);
        drop(dtc);
        grads[b.tcn_w] = wb.w.into_dyn();
        grads[b.tcn_b] = wb.b.into_dyn();
        if let Some(g) = gate_grads {
            g[0] = ops::gate_backward(&t.z1, &dh, self.act_params(i, 0)).to_vec();
        }
        let (dz1, g1) = ops::act_backward(&t.z1, &dh, self.act_params(i, 0));
        drop(dh);
        Self::store_poly(grads, &b.act1, &g1);
        let (dy, dg, dbeta) = ops::bn_backward(&dz1, &t.bn1, self.v1(b.bn1.weight));
        drop(dz1);
        grads[b.bn1.weight] = dg.into_dyn();
        grads[b.bn1.bias] = dbeta.into_dyn();
        let (du, da) = ops::aggregate_backward(&t.u, &t.a_eff, &dy);
        drop(dy);
        grads[b.edge] = (da * &self.adjacency).into_dyn();
        let (mut dx, wb) = ops::conv1x1_backward(&t.x, self.v2(b.gcn_w), &du, 1);
        grads[b.gcn_w] = wb.w.into_dyn();
        grads[b.gcn_b] = wb.b.into_dyn();
        if let Some(r) = dx_res {
            dx += &r;
        }
        dx
    }
}
