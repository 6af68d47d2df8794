//! Backends: where a model's arithmetic happens.
//!
//! A model is an `async fn` generic over [`Backend`]; the same code trains in plaintext
//! ([`Plain`]), on secret shares ([`Shared`]) and on shapes only ([`Plan`], which records the
//! preprocessing the shared run needs). Values carry `f` fractional bits on the shared backend;
//! every product takes an `extra_shift` so that a multiplication by a power of two (the power of
//! two of a learning rate over a batch size) folds into the truncation that follows it.
//!
//! ## Truncation
//!
//! The shared backend truncates after every product, in [`Backend::shift_right`] and inside the
//! softmax (reciprocal, exp). [`mpc::trunc::Truncation::Local`] (the default) is SecureML's local
//! truncation, which fails with probability ≤ 2^(l_x + 1 − 64) per value;
//! [`mpc::trunc::Truncation::Exact`] never fails for |x| < 2^62 at one elementwise triple and one
//! round per truncation. [`Plan`] and [`Shared`] count the values a run truncates
//! (`truncations()`), which turns the per-value bound into a whole-run one
//! ([`mpc::trunc::run_failure_bound`]); a [`Plan`] built with the same mode as the [`Shared`] run
//! records the exact variant's extra triples, so preprocessing still matches consumption.

mod maps;
mod plain;
mod plan;
mod shared;

pub use maps::{IndexMap, PublicLinear};
pub use plain::{piecewise_sigmoid, softmax_rows, Plain, SigmoidKind};
pub use plan::{preprocessing_words, request_words, Plan, PlanData, PlanTensor};
pub use shared::Shared;

use crate::error::Result;
use ndarray::Array2;
use std::future::Future;

/// The arithmetic a model needs. Matrices throughout; vectors are n×1.
pub trait Backend: Send {
    /// A matrix held by the backend: values, shares, or just a shape.
    type Tensor: Clone + Send + Sync;
    /// A data matrix prepared for repeated mini-batch products (SecureML's masked matrix).
    type Data: Send + Sync;
    /// A matrix of bits (comparison results), usable in [`Backend::select`].
    type Bits: Clone + Send + Sync;

    /// Shape of a tensor.
    fn dim(t: &Self::Tensor) -> (usize, usize);

    /// Shape of a data matrix.
    fn data_dim(d: &Self::Data) -> (usize, usize);

    /// `a + b` (local).
    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;

    /// `a − b` (local).
    fn sub(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor>;

    /// The rows `rows` of `t` (local).
    fn select_rows(&self, t: &Self::Tensor, rows: &[usize]) -> Self::Tensor;

    /// The transpose (local).
    fn transpose(&self, t: &Self::Tensor) -> Self::Tensor;

    /// `t · 2^-bits` (a truncation on shares: local, or one round with exact truncation).
    fn shift_right(
        &mut self,
        t: &Self::Tensor,
        bits: u32,
    ) -> impl Future<Output = Result<Self::Tensor>> + Send;

    /// `X[rows] · Y · 2^-extra_shift`, or `X[rows]ᵀ · Y · 2^-extra_shift` if `transpose`.
    fn data_matmul(
        &mut self,
        x: &Self::Data,
        rows: &[usize],
        transpose: bool,
        y: &Self::Tensor,
        extra_shift: u32,
    ) -> impl Future<Output = Result<Self::Tensor>> + Send;

    /// `A · B · 2^-extra_shift` for two tensors.
    fn matmul(
        &mut self,
        a: &Self::Tensor,
        b: &Self::Tensor,
        extra_shift: u32,
    ) -> impl Future<Output = Result<Self::Tensor>> + Send;

    /// ReLU and its derivative `[x ≥ 0]` from one comparison.
    fn relu(
        &mut self,
        t: &Self::Tensor,
    ) -> impl Future<Output = Result<(Self::Tensor, Self::Bits)>> + Send;

    /// `b ⊙ t`: entries of `t` where the bit is 1, zero elsewhere.
    fn select(
        &mut self,
        b: &Self::Bits,
        t: &Self::Tensor,
    ) -> impl Future<Output = Result<Self::Tensor>> + Send;

    /// The logistic function as the backend computes it (SecureML's piecewise sigmoid on shares).
    fn sigmoid(&mut self, t: &Self::Tensor) -> impl Future<Output = Result<Self::Tensor>> + Send;

    /// Row-wise softmax of the given kind.
    fn softmax(
        &mut self,
        t: &Self::Tensor,
        kind: SoftmaxKind,
    ) -> impl Future<Output = Result<Self::Tensor>> + Send;

    /// `e^t` elementwise. On shares the limit approximation `(1 + t/2^8)^(2^8)`
    /// ([`mpc::nonlinear::exp`], default parameters: inputs above 6 clamped, below −256 giving
    /// 0, absolute error within `e^t·(t²/2^9 + 2^−7) + 2^−12` on `[−8, 6]`); use it on
    /// non-positive inputs. The twin is the exact `f64` exponential.
    fn exp(&mut self, t: &Self::Tensor) -> impl Future<Output = Result<Self::Tensor>> + Send;

    /// `ln t` elementwise for `t > 0`. On shares [`mpc::nonlinear::ln`] (inputs in
    /// `[2^−f, 2^(39−f))`, absolute error ≤ 2^−13; others give ≈ 0). The twin is the exact `f64`
    /// logarithm.
    fn ln(&mut self, t: &Self::Tensor) -> impl Future<Output = Result<Self::Tensor>> + Send;

    /// The maximum of each row (`rows × 1`; exact on shares, [`mpc::nonlinear::row_max`]).
    fn row_max(&mut self, t: &Self::Tensor) -> impl Future<Output = Result<Self::Tensor>> + Send;

    /// `A ⊙ B · 2^-extra_shift` (elementwise).
    fn mul(
        &mut self,
        a: &Self::Tensor,
        b: &Self::Tensor,
        extra_shift: u32,
    ) -> impl Future<Output = Result<Self::Tensor>> + Send;

    /// `scatter_add(A · B, map)` truncated once, after the sum (a transposed convolution's
    /// input gradient: one truncation per input entry instead of one per unfolded entry).
    fn matmul_scatter(
        &mut self,
        a: &Self::Tensor,
        b: &Self::Tensor,
        map: &IndexMap,
    ) -> impl Future<Output = Result<Self::Tensor>> + Send;

    /// A public matrix as a tensor (local; on shares P0 holds its encoding and P1 zero).
    fn constant(&self, x: &Array2<f64>) -> Result<Self::Tensor>;

    /// The public re-indexing `map` of `t`: every output entry a copy of one input entry or 0
    /// (local and exact on shares).
    fn gather(&self, t: &Self::Tensor, map: &IndexMap) -> Result<Self::Tensor>;

    /// The adjoint of [`Backend::gather`]: every entry of `t` (shaped like the map's output)
    /// added into the input entry it was copied from (local and exact on shares).
    fn scatter_add(&self, t: &Self::Tensor, map: &IndexMap) -> Result<Self::Tensor>;

    /// `M · t` for a public sparse matrix `M` with real coefficients: on shares the
    /// coefficients are encoded at the backend's fractional bits, applied locally, and the
    /// result truncated once (no interaction with local truncation).
    fn linear_public(
        &mut self,
        t: &Self::Tensor,
        map: &PublicLinear,
    ) -> impl Future<Output = Result<Self::Tensor>> + Send;

    /// `c · t` for a public real `c` (encoded at the fractional bits; one truncation).
    fn scale(
        &mut self,
        t: &Self::Tensor,
        c: f64,
    ) -> impl Future<Output = Result<Self::Tensor>> + Send;

    /// `t ⊙ t` (on shares a Beaver product with an elementwise triple, one truncation).
    fn square(&mut self, t: &Self::Tensor) -> impl Future<Output = Result<Self::Tensor>> + Send;
}

/// The output normalization of a classifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SoftmaxKind {
    /// `e^x_i / Σ e^x_j` (secure: the row maximum subtracted first, then a limit-approximated exp
    /// and a Newton reciprocal).
    Exp,
    /// SecureML's `relu(x_i) / Σ relu(x_j)`, uniform when the sum is 0.
    Relu,
}

pub(crate) fn check_same(op: &'static str, a: (usize, usize), b: (usize, usize)) -> Result<()> {
    if a != b {
        return Err(crate::MlError::Shape {
            op,
            left: a,
            right: b,
        });
    }
    Ok(())
}

/// A row-wise reduction needs at least one column.
pub(crate) fn check_columns(op: &'static str, dim: (usize, usize)) -> Result<()> {
    if dim.1 == 0 {
        return Err(crate::MlError::Shape {
            op,
            left: dim,
            right: (dim.0, 1),
        });
    }
    Ok(())
}

pub(crate) fn check_matmul(op: &'static str, a: (usize, usize), b: (usize, usize)) -> Result<()> {
    if a.1 != b.0 {
        return Err(crate::MlError::Shape {
            op,
            left: a,
            right: b,
        });
    }
    Ok(())
}

/// Shape of `X[rows]` or its transpose.
pub(crate) fn batch_dim(data: (usize, usize), rows: usize, transpose: bool) -> (usize, usize) {
    if transpose {
        (data.1, rows)
    } else {
        (rows, data.1)
    }
}
