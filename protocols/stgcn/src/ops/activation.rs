//! Per-node activations of the ST-GCN (ReLU, x², node-wise polynomials, soft gates) and their
//! backward passes.

use ndarray::{Array1, Array2, Array4, Axis, Zip};

use super::{par_sum, Accumulate};
use crate::ActivationKind;

/// An activation with its per-node parameters and pruning mask.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ActParams<'a> {
    pub(crate) kind: ActivationKind,
    /// `(a, b, c)` per node, for [`ActivationKind::Poly`].
    pub(crate) poly: Option<(&'a [f64], &'a [f64], &'a [f64])>,
    /// `keep[v]`: node v keeps its non-linearity.
    pub(crate) keep: &'a [bool],
    /// Soft gates `g[v] ∈ [0, 1]` of the kept nodes during gate training: the site computes
    /// `x + g[v]·(act(x) − x)`; `None` is `g = 1`.
    pub(crate) gate: Option<&'a [f64]>,
}

impl ActParams<'_> {
    /// The activation itself, ignoring `keep` and `gate`.
    #[inline]
    fn raw(&self, v: usize, x: f64) -> f64 {
        match (self.kind, self.poly) {
            (ActivationKind::Relu, _) => x.max(0.0),
            (ActivationKind::Square, _) => x * x,
            (ActivationKind::Poly, Some((a, b, c))) => (a[v] * x + b[v]) * x + c[v],
            (ActivationKind::Poly, None) => unreachable!("poly activation without coefficients"),
        }
    }

    /// Derivative of [`Self::raw`].
    #[inline]
    fn raw_derivative(&self, v: usize, x: f64) -> f64 {
        match (self.kind, self.poly) {
            (ActivationKind::Relu, _) => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            (ActivationKind::Square, _) => 2.0 * x,
            (ActivationKind::Poly, Some((a, b, _))) => 2.0 * a[v] * x + b[v],
            (ActivationKind::Poly, None) => unreachable!("poly activation without coefficients"),
        }
    }

    /// The gate of node `v` (1 without soft gates).
    #[inline]
    fn gate(&self, v: usize) -> f64 {
        self.gate.map_or(1.0, |g| g[v])
    }

    #[inline]
    fn apply(&self, v: usize, x: f64) -> f64 {
        if !self.keep[v] {
            return x;
        }
        let y = self.raw(v, x);
        match self.gate {
            None => y,
            Some(g) => x + g[v] * (y - x),
        }
    }

    #[inline]
    fn derivative(&self, v: usize, x: f64) -> f64 {
        if !self.keep[v] {
            return 1.0;
        }
        let d = self.raw_derivative(v, x);
        match self.gate {
            None => d,
            Some(g) => 1.0 + g[v] * (d - 1.0),
        }
    }
}

/// Elementwise activation; node index is the last axis.
pub(crate) fn act_forward(x: &Array4<f64>, p: ActParams<'_>) -> Array4<f64> {
    let v = x.dim().3;
    let mut y = Array4::zeros(x.raw_dim());
    Zip::from(y.axis_iter_mut(Axis(0)))
        .and(x.axis_iter(Axis(0)))
        .par_for_each(|mut yb, xb| {
            let ys = yb.as_slice_mut().expect("contiguous sample");
            let xs = xb.to_slice().expect("contiguous sample");
            for (yl, xl) in ys.chunks_exact_mut(v).zip(xs.chunks_exact(v)) {
                for (vi, (o, &e)) in yl.iter_mut().zip(xl).enumerate() {
                    *o = p.apply(vi, e);
                }
            }
        });
    y
}

/// Backward of [`act_forward`] given its input `x`: `(dx, [da, db, dc] per node)`; the
/// coefficient gradients are zero unless the activation is polynomial.
pub(crate) fn act_backward(
    x: &Array4<f64>,
    dy: &Array4<f64>,
    p: ActParams<'_>,
) -> (Array4<f64>, Array2<f64>) {
    let v = x.dim().3;
    let mut dx = Array4::zeros(x.raw_dim());
    Zip::from(dx.axis_iter_mut(Axis(0)))
        .and(x.axis_iter(Axis(0)))
        .and(dy.axis_iter(Axis(0)))
        .par_for_each(|mut db, xb, dyb| {
            let ds = db.as_slice_mut().expect("contiguous sample");
            let xs = xb.to_slice().expect("contiguous sample");
            let gs = dyb.to_slice().expect("contiguous sample");
            for ((dl, xl), gl) in ds
                .chunks_exact_mut(v)
                .zip(xs.chunks_exact(v))
                .zip(gs.chunks_exact(v))
            {
                for vi in 0..v {
                    dl[vi] = gl[vi] * p.derivative(vi, xl[vi]);
                }
            }
        });
    let coeff = if p.kind == ActivationKind::Poly {
        kept_node_sums(
            x,
            dy,
            p.keep,
            || Array2::zeros((3, v)),
            |acc, vi, d, xv| {
                let d = d * p.gate(vi);
                acc[[0, vi]] += d * xv * xv;
                acc[[1, vi]] += d * xv;
                acc[[2, vi]] += d;
            },
        )
    } else {
        Array2::zeros((3, v))
    };
    (dx, coeff)
}

/// Gradient of the soft gates of [`act_forward`] given its input `x`: per node,
/// `Σ dy·(act(x) − x)` over the batch, channels and frames (zero at pruned nodes).
pub(crate) fn gate_backward(x: &Array4<f64>, dy: &Array4<f64>, p: ActParams<'_>) -> Array1<f64> {
    let v = x.dim().3;
    kept_node_sums(
        x,
        dy,
        p.keep,
        || Array1::zeros(v),
        |acc, vi, d, xv| {
            acc[vi] += d * (p.raw(vi, xv) - xv);
        },
    )
}

/// `Σ f(acc, v, dy, x)` over every sample, channel and frame of the nodes `keep` marks, one
/// accumulator per rayon task (the per-node reductions of the activation's backward pass).
fn kept_node_sums<T: Send + Accumulate>(
    x: &Array4<f64>,
    dy: &Array4<f64>,
    keep: &[bool],
    zero: impl Fn() -> T + Sync + Send,
    f: impl Fn(&mut T, usize, f64, f64) + Sync + Send,
) -> T {
    let (n, _, _, v) = x.dim();
    par_sum(n, zero, |b, acc| {
        let xs = x
            .index_axis(Axis(0), b)
            .to_slice()
            .expect("contiguous sample");
        let ds = dy
            .index_axis(Axis(0), b)
            .to_slice()
            .expect("contiguous sample");
        for (dl, xl) in ds.chunks_exact(v).zip(xs.chunks_exact(v)) {
            for vi in (0..v).filter(|&vi| keep[vi]) {
                f(acc, vi, dl[vi], xl[vi]);
            }
        }
    })
}

// ---------------------------------------------------------------- pooling, dense, loss
