//! The forward passes of [`StGcn`]: input checks and normalisation, evaluation-mode inference
//! in chunks, the training-mode pass that records a tape for the backward pass, the losses
//! (cross-entropy, distillation) with their gradients, and the statistics gathered from forward
//! passes (precise BN, activation inputs).

use ndarray::{Array1, Array2, Array4, ArrayView2, ArrayView5, Axis};

use super::{ActivationInputStats, BlockTape, BnIdx, Gradients, ResIdx, StGcn, Tape, EVAL_CHUNK};
use crate::ops::{self, BnCache, SparseAdjacency};
use crate::{Distillation, ModelError, Result};

impl StGcn {
    /// Checks an `(N, C, T, V, M)` input and turns it into `(N·M, C, T, V)` with the input
    /// normalisation applied.
    pub(crate) fn prepare_input(&self, x: ArrayView5<'_, f64>) -> Result<Array4<f64>> {
        let (n, c, t, v, m) = x.dim();
        let checks = [
            ("channels C", self.config.in_channels, c),
            ("nodes V", self.config.num_nodes(), v),
            ("persons M", self.config.num_persons, m),
        ];
        for (what, expected, found) in checks {
            if expected != found {
                return Err(ModelError::InputShape {
                    what,
                    expected,
                    found,
                });
            }
        }
        for (what, found) in [("clips N", n), ("frames T", t)] {
            if found == 0 {
                return Err(ModelError::InputShape {
                    what,
                    expected: 1,
                    found,
                });
            }
        }
        let mut out = Array4::zeros((n * m, c, t, v));
        for ni in 0..n {
            for mi in 0..m {
                out.index_axis_mut(Axis(0), ni * m + mi)
                    .assign(&x.index_axis(Axis(0), ni).index_axis(Axis(3), mi));
            }
        }
        if let Some(norm) = &self.config.input_norm {
            let (scale, shift) = norm.affine();
            for mut sample in out.outer_iter_mut() {
                for ((ci, _, vi), e) in sample.indexed_iter_mut() {
                    *e = scale[[ci, vi]] * *e + shift[[ci, vi]];
                }
            }
        }
        Ok(out)
    }

    fn bn_forward(
        &self,
        x: &Array4<f64>,
        idx: &BnIdx,
        train: bool,
        stats: &mut Vec<(usize, Array1<f64>)>,
    ) -> (Array4<f64>, Option<BnCache>) {
        if train {
            let (y, cache, mean, var) = ops::bn_train_forward(
                x,
                self.v1(idx.weight),
                self.v1(idx.bias),
                self.config.bn_eps,
            );
            let (n, _, t, v) = x.dim();
            let count = (n * t * v) as f64;
            let unbiased = if count > 1.0 {
                var * (count / (count - 1.0))
            } else {
                var
            };
            let m = self.config.bn_momentum;
            stats.push((idx.mean, &self.v1(idx.mean) * (1.0 - m) + &(mean * m)));
            stats.push((idx.var, &self.v1(idx.var) * (1.0 - m) + &(unbiased * m)));
            (y, Some(cache))
        } else {
            let (scale, shift) = self.bn_affine(idx);
            (ops::channel_affine(x, scale.view(), shift.view()), None)
        }
    }

    fn block_forward(
        &self,
        i: usize,
        x: Array4<f64>,
        train: bool,
        stats: &mut Vec<(usize, Array1<f64>)>,
        observe: &mut dyn FnMut(usize, usize, &Array4<f64>),
    ) -> (Array4<f64>, Option<BlockTape>) {
        let b = &self.layout.blocks[i];
        let stride = self.config.blocks[i].stride;
        let a_eff = SparseAdjacency::new(&self.effective_adjacency(i), &self.adjacency);
        let u = ops::conv1x1_forward(&x, self.v2(b.gcn_w), self.v1(b.gcn_b), 1);
        let y = ops::aggregate_forward(&u, &a_eff);
        let (z1, bn1) = self.bn_forward(&y, &b.bn1, train, stats);
        drop(y);
        observe(i, 0, &z1);
        let h = ops::act_forward(&z1, self.act_params(i, 0));
        let tc = ops::tconv_forward(&h, self.v3(b.tcn_w), self.v1(b.tcn_b), stride);
        let (mut s, bn2) = self.bn_forward(&tc, &b.bn2, train, stats);
        drop(tc);
        let mut res_bn = None;
        match &b.res {
            ResIdx::None => {}
            ResIdx::Identity => s += &x,
            ResIdx::Conv { weight, bias, bn } => {
                let r = ops::conv1x1_forward(&x, self.v2(*weight), self.v1(*bias), stride);
                let (rb, cache) = self.bn_forward(&r, bn, train, stats);
                s += &rb;
                res_bn = cache;
            }
        }
        observe(i, 1, &s);
        let out = ops::act_forward(&s, self.act_params(i, 1));
        let tape = match (bn1, bn2) {
            (Some(bn1), Some(bn2)) if train => Some(BlockTape {
                x,
                u,
                a_eff,
                bn1,
                z1,
                h,
                bn2,
                res_bn,
                s,
            }),
            _ => None,
        };
        (out, tape)
    }

    /// Forward pass of an `(N·M, C, T, V)` batch; `observe(block, site, input)` sees the input
    /// of every activation site.
    fn forward_batch(
        &self,
        x: Array4<f64>,
        train: bool,
        stats: &mut Vec<(usize, Array1<f64>)>,
        observe: &mut dyn FnMut(usize, usize, &Array4<f64>),
    ) -> (Array2<f64>, Option<Tape>) {
        let mut h = x;
        let mut tapes = Vec::new();
        for i in 0..self.config.blocks.len() {
            let (out, tape) = self.block_forward(i, h, train, stats, observe);
            tapes.extend(tape);
            h = out;
        }
        let pooled = ops::pool_forward(&h, self.config.num_persons);
        let logits = ops::dense_forward(
            &pooled,
            self.v2(self.layout.fc_w),
            self.v1(self.layout.fc_b),
        );
        let tape = train.then(|| Tape {
            blocks: tapes,
            last_shape: h.dim(),
            pooled,
        });
        (logits, tape)
    }

    /// Evaluation-mode logits `(N, classes)` for an `(N, C, T, V, M)` input (BN with running
    /// statistics), computed in chunks of 64 clips.
    pub fn forward(&self, x: ArrayView5<'_, f64>) -> Result<Array2<f64>> {
        let n = x.dim().0;
        let mut logits = Array2::zeros((n, self.config.num_classes));
        let mut start = 0;
        while start < n.max(1) {
            let end = (start + EVAL_CHUNK).min(n);
            let chunk = self.prepare_input(x.slice_axis(Axis(0), (start..end).into()))?;
            let (l, _) = self.forward_batch(chunk, false, &mut Vec::new(), &mut |_, _, _| {});
            logits.slice_mut(ndarray::s![start..end, ..]).assign(&l);
            start = end;
        }
        Ok(logits)
    }

    /// Evaluation-mode forward pass over `(N, C, T, V, M)` clips in chunks of 64 that calls
    /// `observe(block, site, input)` with the `(n, C, T, V)` input of every activation site.
    pub(crate) fn observe_activation_inputs(
        &self,
        x: ArrayView5<'_, f64>,
        observe: &mut dyn FnMut(usize, usize, &Array4<f64>),
    ) -> Result<()> {
        let n = x.dim().0;
        let mut start = 0;
        while start < n.max(1) {
            let end = (start + EVAL_CHUNK).min(n);
            let chunk = self.prepare_input(x.slice_axis(Axis(0), (start..end).into()))?;
            self.forward_batch(chunk, false, &mut Vec::new(), observe);
            start = end;
        }
        Ok(())
    }

    /// Training-mode forward and backward pass on one mini-batch: returns the mean softmax
    /// cross-entropy, the logits and the gradients, and updates the BN running statistics.
    pub fn loss_and_gradients(
        &mut self,
        x: ArrayView5<'_, f64>,
        labels: &[usize],
    ) -> Result<(f64, Array2<f64>, Gradients)> {
        self.loss_and_gradients_with(x, labels, |logits| {
            ops::softmax_cross_entropy(logits, labels)
        })
    }

    /// As [`Self::loss_and_gradients`] with the knowledge-distillation loss of
    /// [`Distillation`] (Hinton, Vinyals and Dean 2015): `teacher_logits` are the teacher's
    /// `(N, classes)` logits of the same clips.
    pub fn distillation_loss_and_gradients(
        &mut self,
        x: ArrayView5<'_, f64>,
        labels: &[usize],
        teacher_logits: ArrayView2<'_, f64>,
        distillation: &Distillation,
    ) -> Result<(f64, Array2<f64>, Gradients)> {
        distillation.validate()?;
        let (n, q) = (x.dim().0, self.config.num_classes);
        for (what, expected, found) in [
            ("teacher logits (rows)", n, teacher_logits.nrows()),
            ("teacher logits (classes)", q, teacher_logits.ncols()),
        ] {
            if expected != found {
                return Err(ModelError::InputShape {
                    what,
                    expected,
                    found,
                });
            }
        }
        self.loss_and_gradients_with(x, labels, |logits| {
            ops::distillation_loss(
                logits,
                labels,
                teacher_logits,
                distillation.temperature,
                distillation.weight,
            )
        })
    }

    fn loss_and_gradients_with(
        &mut self,
        x: ArrayView5<'_, f64>,
        labels: &[usize],
        loss: impl FnOnce(&Array2<f64>) -> (f64, Array2<f64>),
    ) -> Result<(f64, Array2<f64>, Gradients)> {
        let n = x.dim().0;
        if labels.len() != n {
            return Err(ModelError::LabelCount {
                labels: labels.len(),
                samples: n,
            });
        }
        let q = self.config.num_classes;
        if let Some((index, &label)) = labels.iter().enumerate().find(|(_, &l)| l >= q) {
            return Err(ModelError::LabelOutOfRange {
                index,
                label,
                num_classes: q,
            });
        }
        let input = self.prepare_input(x)?;
        let mut stats = Vec::new();
        let (logits, tape) = self.forward_batch(input, true, &mut stats, &mut |_, _, _| {});
        let tape = tape.expect("training forward records a tape");
        let (loss, dlogits) = loss(&logits);
        let grads = self.backward(&tape, &dlogits);
        for (i, value) in stats {
            self.store.tensors[i].value = value.into_dyn();
        }
        Ok((loss, logits, grads))
    }

    /// Precise BN (Wu and Johnson, "Rethinking 'Batch' in BatchNorm", 2021, §3): replaces the
    /// running mean and variance of every batch norm by the average, over the batches of the
    /// `(N, C, T, V, M)` clips `x` taken in order (`batch_size` clips each, weighted by size), of
    /// the batch statistics that a training-mode forward pass with the current weights computes.
    /// The exponential moving average kept during training mixes statistics of the last few
    /// dozen batches and of older weights; this is the population estimate the EMA aims at.
    /// Weights are unchanged.
    pub fn recompute_bn_statistics(
        &mut self,
        x: ArrayView5<'_, f64>,
        batch_size: usize,
    ) -> Result<()> {
        if batch_size == 0 {
            return Err(ModelError::InvalidValue {
                name: "batch_size",
                value: 0.0,
                allowed: ">= 1",
            });
        }
        let mut probe = self.clone();
        // Momentum 1: the "running" values a training step writes are the batch statistics.
        probe.config.bn_momentum = 1.0;
        let n = x.dim().0;
        let mut sums: Vec<Option<Array1<f64>>> = vec![None; self.store.tensors.len()];
        let mut start = 0;
        while start < n {
            let end = (start + batch_size).min(n);
            let input = probe.prepare_input(x.slice_axis(Axis(0), (start..end).into()))?;
            let mut stats = Vec::new();
            probe.forward_batch(input, true, &mut stats, &mut |_, _, _| {});
            let w = (end - start) as f64;
            for (i, v) in stats {
                let v = v * w;
                sums[i] = Some(match sums[i].take() {
                    Some(acc) => acc + v,
                    None => v,
                });
            }
            start = end;
        }
        for (i, sum) in sums.into_iter().enumerate() {
            if let Some(sum) = sum {
                self.store.tensors[i].value = (sum / n as f64).into_dyn();
            }
        }
        Ok(())
    }

    /// Statistics of the inputs of every activation site (block order, site 0 then 1) on the
    /// clips `x`, from a training-mode forward pass (BN with the batch's statistics, as in
    /// training) that leaves the running statistics unchanged. A diagnostic for polynomial
    /// activations, whose outputs grow with the square of their inputs.
    pub fn activation_input_stats(
        &self,
        x: ArrayView5<'_, f64>,
    ) -> Result<Vec<ActivationInputStats>> {
        let input = self.prepare_input(x)?;
        let (_, tape) = self.forward_batch(input, true, &mut Vec::new(), &mut |_, _, _| {});
        let tape = tape.expect("training forward records a tape");
        Ok(tape
            .blocks
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                [
                    ActivationInputStats::of(i, 0, &t.z1),
                    ActivationInputStats::of(i, 1, &t.s),
                ]
            })
            .collect())
    }
}
