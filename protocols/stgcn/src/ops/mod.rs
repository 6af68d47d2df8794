//! Forward and backward kernels of the ST-GCN layers on batches laid out as `(B, C, T, V)`
//! (standard row-major layout), parallel over the batch with rayon. Convolutions are matrix
//! products (`ndarray`'s `general_mat_mul`, i.e. `matrixmultiply`); the temporal convolution
//! uses im2col (rows `(c_in, tap)`, columns `(t_out, v)`).

use ndarray::{
    linalg::general_mat_mul, s, Array1, Array2, Array3, Array4, ArrayView1, ArrayView2, ArrayView3,
    ArrayViewMut3, Axis, CowArray, Ix2, Zip,
};
use rayon::prelude::*;

/// Output frames of a stride-`stride` convolution with "same" zero padding.
pub(crate) fn out_frames(t: usize, stride: usize) -> usize {
    (t.max(1) - 1) / stride + 1
}

fn as_matrix(x: ArrayView3<'_, f64>) -> ArrayView2<'_, f64> {
    let (c, t, v) = x.dim();
    x.into_shape_with_order((c, t * v))
        .expect("sample views of a standard-layout batch are contiguous")
}

fn as_matrix_mut(x: ArrayViewMut3<'_, f64>) -> ndarray::ArrayViewMut2<'_, f64> {
    let (c, t, v) = x.dim();
    x.into_shape_with_order((c, t * v))
        .expect("sample views of a standard-layout batch are contiguous")
}

/// Frames `0, s, 2s, …` of one sample as a `(C, T_out·V)` matrix (a view when `s = 1`).
fn strided_frames(x: ArrayView3<'_, f64>, stride: usize) -> CowArray<'_, f64, Ix2> {
    if stride == 1 {
        CowArray::from(as_matrix(x))
    } else {
        let (c, t, v) = x.dim();
        let to = out_frames(t, stride);
        let sub = x.slice(s![.., ..;stride, ..]).to_owned();
        CowArray::from(
            sub.into_shape_with_order((c, to * v))
                .expect("owned array is contiguous"),
        )
    }
}

/// Sums `f(b)` over the batch in parallel (per-thread accumulators, then a tree reduction).
fn par_sum<T, F>(n: usize, zero: impl Fn() -> T + Sync + Send, f: F) -> T
where
    T: Send + Accumulate,
    F: Fn(usize, &mut T) + Sync + Send,
{
    (0..n)
        .into_par_iter()
        .fold(&zero, |mut acc, b| {
            f(b, &mut acc);
            acc
        })
        .reduce(&zero, |mut a, b| {
            a.accumulate(b);
            a
        })
}

/// Elementwise `+=` by value (ndarray only implements `+=` for references).
pub(crate) trait Accumulate {
    fn accumulate(&mut self, other: Self);
}

impl<D: ndarray::Dimension> Accumulate for ndarray::Array<f64, D> {
    fn accumulate(&mut self, other: Self) {
        *self += &other;
    }
}

/// Gradient accumulators of one layer (weights, bias) summed over the batch.
#[derive(Clone, Debug)]
pub(crate) struct WB<W> {
    pub(crate) w: W,
    pub(crate) b: Array1<f64>,
}

impl<W: Accumulate> Accumulate for WB<W> {
    fn accumulate(&mut self, o: Self) {
        self.w.accumulate(o.w);
        self.b += &o.b;
    }
}

// ---------------------------------------------------------------- 1×1 convolution

/// `y[:, c_o, t, :] = W x[:, :, s·t, :] + b` for a `(C_o, C_i)` weight.
pub(crate) fn conv1x1_forward(
    x: &Array4<f64>,
    w: ArrayView2<'_, f64>,
    b: ArrayView1<'_, f64>,
    stride: usize,
) -> Array4<f64> {
    let (n, _, t, v) = x.dim();
    let co = w.nrows();
    let to = out_frames(t, stride);
    let mut y = Array4::zeros((n, co, to, v));
    Zip::from(y.axis_iter_mut(Axis(0)))
        .and(x.axis_iter(Axis(0)))
        .par_for_each(|yb, xb| {
            let xs = strided_frames(xb, stride);
            let mut y2 = as_matrix_mut(yb);
            for (mut row, &bias) in y2.rows_mut().into_iter().zip(b.iter()) {
                row.fill(bias);
            }
            general_mat_mul(1.0, &w, &xs, 1.0, &mut y2);
        });
    y
}

/// Backward of [`conv1x1_forward`]: `(dx, dW, db)`.
pub(crate) fn conv1x1_backward(
    x: &Array4<f64>,
    w: ArrayView2<'_, f64>,
    dy: &Array4<f64>,
    stride: usize,
) -> (Array4<f64>, WB<Array2<f64>>) {
    let (n, ci, t, v) = x.dim();
    let co = w.nrows();
    let to = out_frames(t, stride);
    let mut dx = Array4::zeros((n, ci, t, v));
    Zip::from(dx.axis_iter_mut(Axis(0)))
        .and(dy.axis_iter(Axis(0)))
        .par_for_each(|mut dxb, dyb| {
            let dy2 = as_matrix(dyb);
            if stride == 1 {
                let mut dx2 = as_matrix_mut(dxb);
                general_mat_mul(1.0, &w.t(), &dy2, 0.0, &mut dx2);
            } else {
                let d = w.t().dot(&dy2);
                let d3 = d
                    .into_shape_with_order((ci, to, v))
                    .expect("owned array is contiguous");
                dxb.slice_mut(s![.., ..;stride, ..]).assign(&d3);
            }
        });
    let grads = par_sum(
        n,
        || WB {
            w: Array2::zeros((co, ci)),
            b: Array1::zeros(co),
        },
        |b, acc| {
            let dy2 = as_matrix(dy.index_axis(Axis(0), b));
            let xs = strided_frames(x.index_axis(Axis(0), b), stride);
            general_mat_mul(1.0, &dy2, &xs.t(), 1.0, &mut acc.w);
            acc.b += &dy2.sum_axis(Axis(1));
        },
    );
    (dx, grads)
}

// ---------------------------------------------------------------- graph aggregation

/// The nonzero pattern of the K partition matrices with their current values. Skeleton graphs
/// have a few nonzeros per column, so the aggregation is a short list of scalar multiply-adds
/// per (channel, frame) row instead of a dense `(C·T × V)·(V × V)` product.
#[derive(Clone, Debug)]
pub(crate) struct SparseAdjacency {
    pub(crate) k: usize,
    pub(crate) v: usize,
    /// `(k, v, w, value)`: source node v contributes `value ×` to output node w in subset k.
    entries: Vec<(usize, usize, usize, f64)>,
}

impl SparseAdjacency {
    /// Entries of `values` at the nonzeros of `support` (the structural adjacency; entries
    /// outside it are zero in every `A ⊙ E` and have zero gradient with respect to `E`).
    pub(crate) fn new(values: &Array3<f64>, support: &Array3<f64>) -> Self {
        let (k, v, _) = values.dim();
        let entries = support
            .indexed_iter()
            .filter(|(_, &s)| s != 0.0)
            .map(|((ki, vi, wi), _)| (ki, vi, wi, values[[ki, vi, wi]]))
            .collect();
        SparseAdjacency { k, v, entries }
    }
}

/// `y[:, c, t, w] = Σ_k Σ_v u[:, k·C + c, t, v] · a[k, v, w]` for `u` of `K·C` channels.
pub(crate) fn aggregate_forward(u: &Array4<f64>, a: &SparseAdjacency) -> Array4<f64> {
    let (n, kc, t, v) = u.dim();
    let c = kc / a.k;
    let plane = c * t * v;
    let mut y = Array4::zeros((n, c, t, v));
    Zip::from(y.axis_iter_mut(Axis(0)))
        .and(u.axis_iter(Axis(0)))
        .par_for_each(|mut yb, ub| {
            let us = ub.to_slice().expect("contiguous sample");
            let ys = yb.as_slice_mut().expect("contiguous sample");
            for (r, yr) in ys.chunks_exact_mut(v).enumerate() {
                let base = r * v;
                for &(k, vi, wi, val) in &a.entries {
                    yr[wi] += val * us[k * plane + base + vi];
                }
            }
        });
    y
}

/// Backward of [`aggregate_forward`]: `(du, da)`, `da` being zero outside the support.
pub(crate) fn aggregate_backward(
    u: &Array4<f64>,
    a: &SparseAdjacency,
    dy: &Array4<f64>,
) -> (Array4<f64>, Array3<f64>) {
    let (n, kc, t, v) = u.dim();
    let c = kc / a.k;
    let plane = c * t * v;
    let mut du = Array4::zeros((n, kc, t, v));
    Zip::from(du.axis_iter_mut(Axis(0)))
        .and(dy.axis_iter(Axis(0)))
        .par_for_each(|mut dub, dyb| {
            let ds = dyb.to_slice().expect("contiguous sample");
            let dus = dub.as_slice_mut().expect("contiguous sample");
            for (r, dr) in ds.chunks_exact(v).enumerate() {
                let base = r * v;
                for &(k, vi, wi, val) in &a.entries {
                    dus[k * plane + base + vi] += val * dr[wi];
                }
            }
        });
    let dvals = par_sum(
        n,
        || Array1::zeros(a.entries.len()),
        |b, acc| {
            let us = u
                .index_axis(Axis(0), b)
                .to_slice()
                .expect("contiguous sample");
            let ds = dy
                .index_axis(Axis(0), b)
                .to_slice()
                .expect("contiguous sample");
            for (r, dr) in ds.chunks_exact(v).enumerate() {
                let base = r * v;
                for (g, &(k, vi, wi, _)) in acc.iter_mut().zip(&a.entries) {
                    *g += us[k * plane + base + vi] * dr[wi];
                }
            }
        },
    );
    let mut da = Array3::zeros((a.k, a.v, a.v));
    for (&g, &(k, vi, wi, _)) in dvals.iter().zip(&a.entries) {
        da[[k, vi, wi]] = g;
    }
    (du, da)
}

// ---------------------------------------------------------------- temporal convolution

/// im2col of one `(C_i, T, V)` sample into `col` (cleared first; its allocation is reused
/// across the samples one thread handles): row `c·K + j`, column `t_o·V + v` holds
/// `x[c, s·t_o + j − pad, v]` (zero outside `0..T`). Returns the `(C_i·K, T_out·V)` view.
fn im2col<'a>(
    col: &'a mut Vec<f64>,
    x: &[f64],
    ci: usize,
    (t, v): (usize, usize),
    ks: usize,
    stride: usize,
) -> ArrayView2<'a, f64> {
    let pad = ks / 2;
    let to = out_frames(t, stride);
    // Built by appending (no zero-fill pass over the whole matrix).
    col.clear();
    col.reserve(ci * ks * to * v);
    for c in 0..ci {
        for j in 0..ks {
            for o in 0..to {
                let ti = o * stride + j;
                if ti < pad || ti - pad >= t {
                    col.resize(col.len() + v, 0.0);
                } else {
                    let src = (c * t + ti - pad) * v;
                    col.extend_from_slice(&x[src..src + v]);
                }
            }
        }
    }
    ArrayView2::from_shape((ci * ks, to * v), &col[..]).expect("im2col size")
}

/// Adjoint of [`im2col`]: adds `col` back into `dx`.
fn col2im(col: &Array2<f64>, dx: &mut [f64], t: usize, v: usize, ks: usize, stride: usize) {
    let pad = ks / 2;
    let to = out_frames(t, stride);
    let ci = col.nrows() / ks;
    let cs = col.as_slice().expect("fresh array");
    let row_len = to * v;
    for c in 0..ci {
        for j in 0..ks {
            let row = &cs[(c * ks + j) * row_len..(c * ks + j + 1) * row_len];
            for o in 0..to {
                let ti = o * stride + j;
                if ti < pad || ti - pad >= t {
                    continue;
                }
                let dst = (c * t + ti - pad) * v;
                for (d, &s) in dx[dst..dst + v].iter_mut().zip(&row[o * v..(o + 1) * v]) {
                    *d += s;
                }
            }
        }
    }
}

/// Temporal convolution with a `(C_o, C_i, K)` kernel, zero padding `(K−1)/2`, stride `s`:
/// `y[c_o, t_o, v] = b[c_o] + Σ_{c_i, j} W[c_o, c_i, j] x[c_i, s·t_o + j − pad, v]`.
pub(crate) fn tconv_forward(
    x: &Array4<f64>,
    w: ArrayView3<'_, f64>,
    b: ArrayView1<'_, f64>,
    stride: usize,
) -> Array4<f64> {
    let (n, ci, t, v) = x.dim();
    let (co, _, ks) = w.dim();
    let to = out_frames(t, stride);
    let w2 = w
        .into_shape_with_order((co, ci * ks))
        .expect("weights are contiguous");
    let mut y = Array4::zeros((n, co, to, v));
    y.axis_iter_mut(Axis(0))
        .into_par_iter()
        .zip(x.axis_iter(Axis(0)).into_par_iter())
        .for_each_init(Vec::new, |buf, (yb, xb)| {
            let xs = xb.to_slice().expect("contiguous sample");
            let col = im2col(buf, xs, ci, (t, v), ks, stride);
            let mut y2 = as_matrix_mut(yb);
            for (mut row, &bias) in y2.rows_mut().into_iter().zip(b.iter()) {
                row.fill(bias);
            }
            general_mat_mul(1.0, &w2, &col, 1.0, &mut y2);
        });
    y
}

/// Per-thread state of [`tconv_backward`]: gradient accumulators and reused buffers.
struct TconvBackAcc {
    grads: WB<Array2<f64>>,
    col: Vec<f64>,
    dcol: Array2<f64>,
}

/// Backward of [`tconv_forward`]: `(dx, dW, db)`.
pub(crate) fn tconv_backward(
    x: &Array4<f64>,
    w: ArrayView3<'_, f64>,
    dy: &Array4<f64>,
    stride: usize,
) -> (Array4<f64>, WB<Array3<f64>>) {
    let (n, ci, t, v) = x.dim();
    let (co, _, ks) = w.dim();
    let to = out_frames(t, stride);
    let w2 = w
        .into_shape_with_order((co, ci * ks))
        .expect("weights are contiguous");
    let zero = || TconvBackAcc {
        grads: WB {
            w: Array2::zeros((co, ci * ks)),
            b: Array1::zeros(co),
        },
        col: Vec::new(),
        dcol: Array2::zeros((ci * ks, to * v)),
    };
    let mut dx = Array4::zeros((n, ci, t, v));
    let acc = dx
        .axis_iter_mut(Axis(0))
        .into_par_iter()
        .enumerate()
        .fold(zero, |mut acc, (b, mut dxb)| {
            let xs = x
                .index_axis(Axis(0), b)
                .to_slice()
                .expect("contiguous sample");
            let col = im2col(&mut acc.col, xs, ci, (t, v), ks, stride);
            let dy2 = as_matrix(dy.index_axis(Axis(0), b));
            general_mat_mul(1.0, &dy2, &col.t(), 1.0, &mut acc.grads.w);
            acc.grads.b += &dy2.sum_axis(Axis(1));
            general_mat_mul(1.0, &w2.t(), &dy2, 0.0, &mut acc.dcol);
            col2im(
                &acc.dcol,
                dxb.as_slice_mut().expect("contiguous sample"),
                t,
                v,
                ks,
                stride,
            );
            acc
        })
        .map(|acc| acc.grads)
        .reduce(
            || WB {
                w: Array2::zeros((co, ci * ks)),
                b: Array1::zeros(co),
            },
            |mut a, b| {
                a.accumulate(b);
                a
            },
        );
    let w3 = acc
        .w
        .into_shape_with_order((co, ci, ks))
        .expect("contiguous gradient");
    (dx, WB { w: w3, b: acc.b })
}

// ---------------------------------------------------------------- batch norm

/// What the backward pass of a training-mode batch norm needs.
#[derive(Clone, Debug)]
pub(crate) struct BnCache {
    pub(crate) xhat: Array4<f64>,
    pub(crate) inv_std: Array1<f64>,
}

/// Per-channel mean and biased variance over (B, T, V).
fn channel_stats(x: &Array4<f64>) -> (Array1<f64>, Array1<f64>) {
    let (n, c, t, v) = x.dim();
    let count = (n * t * v) as f64;
    let stats: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ci| {
            let xc = x.index_axis(Axis(1), ci);
            let mean = xc.sum() / count;
            let var = xc.fold(0.0, |acc, &e| acc + (e - mean) * (e - mean)) / count;
            (mean, var)
        })
        .collect();
    (
        stats.iter().map(|s| s.0).collect(),
        stats.iter().map(|s| s.1).collect(),
    )
}

/// `y = scale[c]·x + shift[c]`.
pub(crate) fn channel_affine(
    x: &Array4<f64>,
    scale: ArrayView1<'_, f64>,
    shift: ArrayView1<'_, f64>,
) -> Array4<f64> {
    let mut y = Array4::zeros(x.raw_dim());
    Zip::from(y.axis_iter_mut(Axis(0)))
        .and(x.axis_iter(Axis(0)))
        .par_for_each(|mut yb, xb| {
            for (ci, (mut yc, xc)) in yb.outer_iter_mut().zip(xb.outer_iter()).enumerate() {
                let (a, b) = (scale[ci], shift[ci]);
                Zip::from(&mut yc).and(&xc).for_each(|o, &e| *o = a * e + b);
            }
        });
    y
}

/// Training-mode batch norm: `(y, cache, batch mean, batch biased variance)`.
pub(crate) fn bn_train_forward(
    x: &Array4<f64>,
    gamma: ArrayView1<'_, f64>,
    beta: ArrayView1<'_, f64>,
    eps: f64,
) -> (Array4<f64>, BnCache, Array1<f64>, Array1<f64>) {
    let (mean, var) = channel_stats(x);
    let inv_std = var.mapv(|s| 1.0 / (s + eps).sqrt());
    let mut xhat = Array4::zeros(x.raw_dim());
    let mut y = Array4::zeros(x.raw_dim());
    Zip::from(xhat.axis_iter_mut(Axis(0)))
        .and(y.axis_iter_mut(Axis(0)))
        .and(x.axis_iter(Axis(0)))
        .par_for_each(|mut hb, mut yb, xb| {
            for ci in 0..xb.dim().0 {
                let (m, is, g, b) = (mean[ci], inv_std[ci], gamma[ci], beta[ci]);
                Zip::from(hb.index_axis_mut(Axis(0), ci))
                    .and(yb.index_axis_mut(Axis(0), ci))
                    .and(xb.index_axis(Axis(0), ci))
                    .for_each(|h, y, &e| {
                        *h = (e - m) * is;
                        *y = g * *h + b;
                    });
            }
        });
    (y, BnCache { xhat, inv_std }, mean, var)
}

/// Backward of [`bn_train_forward`]: `(dx, dγ, dβ)`.
pub(crate) fn bn_backward(
    dy: &Array4<f64>,
    cache: &BnCache,
    gamma: ArrayView1<'_, f64>,
) -> (Array4<f64>, Array1<f64>, Array1<f64>) {
    let (n, c, t, v) = dy.dim();
    let count = (n * t * v) as f64;
    let sums: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ci| {
            let d = dy.index_axis(Axis(1), ci);
            let xh = cache.xhat.index_axis(Axis(1), ci);
            let sd = d.sum();
            let sdx = Zip::from(&d).and(&xh).fold(0.0, |acc, &a, &b| acc + a * b);
            (sd, sdx)
        })
        .collect();
    let dbeta: Array1<f64> = sums.iter().map(|s| s.0).collect();
    let dgamma: Array1<f64> = sums.iter().map(|s| s.1).collect();
    let mut dx = Array4::zeros((n, c, t, v));
    Zip::from(dx.axis_iter_mut(Axis(0)))
        .and(dy.axis_iter(Axis(0)))
        .and(cache.xhat.axis_iter(Axis(0)))
        .par_for_each(|mut dxb, dyb, xhb| {
            for ci in 0..c {
                let k = gamma[ci] * cache.inv_std[ci] / count;
                let (sd, sdx) = (dbeta[ci], dgamma[ci]);
                Zip::from(dxb.index_axis_mut(Axis(0), ci))
                    .and(dyb.index_axis(Axis(0), ci))
                    .and(xhb.index_axis(Axis(0), ci))
                    .for_each(|o, &d, &xh| *o = k * (count * d - sd - xh * sdx));
            }
        });
    (dx, dgamma, dbeta)
}

// ---------------------------------------------------------------- activations

mod activation;
pub(crate) use activation::{act_backward, act_forward, gate_backward, ActParams};

/// Mean over (T, V) and over the `persons` consecutive batch rows of each clip:
/// `(N·M, C, T, V) → (N, C)`.
pub(crate) fn pool_forward(x: &Array4<f64>, persons: usize) -> Array2<f64> {
    let (nm, c, t, v) = x.dim();
    let n = nm / persons;
    let scale = 1.0 / (persons * t * v) as f64;
    let mut p = Array2::zeros((n, c));
    for b in 0..nm {
        let xb = x.index_axis(Axis(0), b);
        for ci in 0..c {
            p[[b / persons, ci]] += xb.index_axis(Axis(0), ci).sum() * scale;
        }
    }
    p
}

/// Backward of [`pool_forward`].
pub(crate) fn pool_backward(
    dp: &Array2<f64>,
    shape: (usize, usize, usize, usize),
    persons: usize,
) -> Array4<f64> {
    let (_, _, t, v) = shape;
    let scale = 1.0 / (persons * t * v) as f64;
    Array4::from_shape_fn(shape, |(b, c, _, _)| dp[[b / persons, c]] * scale)
}

/// `logits = p Wᵀ + b`.
pub(crate) fn dense_forward(
    p: &Array2<f64>,
    w: ArrayView2<'_, f64>,
    b: ArrayView1<'_, f64>,
) -> Array2<f64> {
    p.dot(&w.t()) + b
}

/// Backward of [`dense_forward`]: `(dp, dW, db)`.
pub(crate) fn dense_backward(
    p: &Array2<f64>,
    w: ArrayView2<'_, f64>,
    dl: &Array2<f64>,
) -> (Array2<f64>, Array2<f64>, Array1<f64>) {
    (dl.dot(&w), dl.t().dot(p), dl.sum_axis(Axis(0)))
}

/// Mean softmax cross-entropy and its gradient with respect to the logits.
pub(crate) fn softmax_cross_entropy(logits: &Array2<f64>, labels: &[usize]) -> (f64, Array2<f64>) {
    let n = logits.nrows();
    let mut grad = Array2::zeros(logits.raw_dim());
    let mut loss = 0.0;
    for (i, (row, &y)) in logits.outer_iter().zip(labels).enumerate() {
        let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let exps = row.mapv(|z| (z - m).exp());
        let z: f64 = exps.sum();
        loss += z.ln() + m - row[y];
        for (j, e) in exps.iter().enumerate() {
            grad[[i, j]] = (e / z - if j == y { 1.0 } else { 0.0 }) / n as f64;
        }
    }
    (loss / n as f64, grad)
}

/// Knowledge-distillation loss (Hinton, Vinyals and Dean, "Distilling the knowledge in a neural
/// network", 2015, §2): `(1 − w)·CE(softmax(s), y) + w·T²·KL(softmax(t/T) ‖ softmax(s/T))`,
/// averaged over the batch, for student logits `s`, teacher logits `t`, temperature `T` and
/// weight `w`; the `T²` keeps the soft term's gradient scale independent of `T`. Returns the
/// loss and its gradient with respect to `s`:
/// `((1 − w)·(softmax(s) − onehot(y)) + w·T·(softmax(s/T) − softmax(t/T))) / N`.
pub(crate) fn distillation_loss(
    logits: &Array2<f64>,
    labels: &[usize],
    teacher: ArrayView2<'_, f64>,
    temperature: f64,
    weight: f64,
) -> (f64, Array2<f64>) {
    let (ce, ce_grad) = softmax_cross_entropy(logits, labels);
    let n = logits.nrows();
    let mut grad = ce_grad * (1.0 - weight);
    let mut kl = 0.0;
    let log_softmax = |row: ndarray::ArrayView1<'_, f64>| {
        let scaled = row.mapv(|z| z / temperature);
        let m = scaled.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let lse = scaled.mapv(|z| (z - m).exp()).sum().ln() + m;
        scaled.mapv(|z| z - lse)
    };
    for (i, (s, t)) in logits.outer_iter().zip(teacher.outer_iter()).enumerate() {
        let (ls, lt) = (log_softmax(s), log_softmax(t));
        for (j, (&a, &b)) in ls.iter().zip(lt.iter()).enumerate() {
            let pt = b.exp();
            kl += pt * (b - a);
            grad[[i, j]] += weight * temperature * (a.exp() - pt) / n as f64;
        }
    }
    let t2 = temperature * temperature;
    ((1.0 - weight) * ce + weight * t2 * kl / n as f64, grad)
}
