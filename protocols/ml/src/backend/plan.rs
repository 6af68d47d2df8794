//! The planning backend: runs a model on shapes only and records, in order, every piece of
//! preprocessing the shared run of the same code will consume, and counts the values it truncates
//! (for the whole-run truncation failure bound). With [`Truncation::Exact`] every truncation adds
//! its elementwise triple right after the product it follows, as [`super::Shared`] consumes it.

use super::{
    batch_dim, check_columns, check_matmul, check_same, Backend, IndexMap, PublicLinear,
    SoftmaxKind,
};
use crate::error::Result;
use mpc::nonlinear;
use mpc::triples::{Lhs, MaskId, TripleRequest};
use mpc::trunc::Truncation;

/// The ring words (8 bytes each) one party stores for `reqs`: masks, matrix triples `(U, V, Z)`
/// (`V, Z` only against a registered mask, whose `U` is the mask), elementwise triples
/// `(a, b, c)`, AND triples (three words per word), leaf OTs (bytes) and random OTs (three words
/// and a choice bit per instance).
pub fn preprocessing_words(reqs: &[TripleRequest]) -> u64 {
    let mut masks = std::collections::HashMap::new();
    reqs.iter().map(|r| request_words(r, &mut masks)).sum()
}

/// The ring words of one request of a stream ([`preprocessing_words`]); `masks` holds the
/// column count of every mask registered before it (a `Mask` request adds its own).
pub fn request_words(
    r: &TripleRequest,
    masks: &mut std::collections::HashMap<MaskId, usize>,
) -> u64 {
    let words = match r {
        TripleRequest::Mask { id, rows, cols } => {
            masks.insert(*id, *cols);
            rows * cols
        }
        TripleRequest::Matmul { lhs, cols } => match lhs {
            Lhs::Fresh { rows, inner } => rows * inner + inner * cols + rows * cols,
            Lhs::Mask {
                id,
                rows,
                transpose,
            } => {
                let mcols = masks.get(id).copied().unwrap_or(0);
                let (out, inner) = if *transpose {
                    (mcols, rows.len())
                } else {
                    (rows.len(), mcols)
                };
                inner * cols + out * cols
            }
        },
        TripleRequest::Elementwise { rows, cols } => 3 * rows * cols,
        TripleRequest::And { words } => 3 * words,
        TripleRequest::LeafOt { count, bits } => (count * ((1 << bits) + 3)).div_ceil(8),
        TripleRequest::Rot { count } => 3 * count + count.div_ceil(64),
    };
    words as u64
}

/// A tensor that is only a shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanTensor(pub (usize, usize));

/// A data matrix that is only a shape and the mask it will use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanData {
    /// Shape.
    pub dim: (usize, usize),
    /// The mask registered for it.
    pub mask: MaskId,
}

/// Records triple requests.
#[derive(Debug, Default)]
pub struct Plan {
    requests: Vec<TripleRequest>,
    next_mask: MaskId,
    truncation: Truncation,
    truncations: u64,
}

impl Plan {
    /// An empty plan for local truncation.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty plan for a shared run truncating by `truncation`.
    pub fn with_truncation(truncation: Truncation) -> Self {
        Self {
            truncation,
            ..Self::default()
        }
    }

    /// The number of values the planned run truncates (products, shifts and the softmax's
    /// internal truncations).
    pub fn truncations(&self) -> u64 {
        self.truncations
    }

    /// Records one truncation of a `dim`-shaped value.
    fn truncate(&mut self, dim: (usize, usize)) {
        self.truncations += (dim.0 * dim.1) as u64;
        self.requests.extend(self.truncation.requests(dim));
    }

    /// Registers a data matrix of shape `dim`; masks are numbered in registration order, which
    /// [`super::Shared::data`] follows.
    pub fn data(&mut self, dim: (usize, usize)) -> PlanData {
        let id = self.next_mask;
        self.next_mask += 1;
        self.requests.push(TripleRequest::Mask {
            id,
            rows: dim.0,
            cols: dim.1,
        });
        PlanData { dim, mask: id }
    }

    /// The recorded requests.
    pub fn requests(&self) -> &[TripleRequest] {
        &self.requests
    }

    /// Takes the recorded requests.
    pub fn into_requests(self) -> Vec<TripleRequest> {
        self.requests
    }
}

impl Backend for Plan {
    type Tensor = PlanTensor;
    type Data = PlanData;
    type Bits = PlanTensor;

    fn dim(t: &Self::Tensor) -> (usize, usize) {
        t.0
    }

    fn data_dim(d: &Self::Data) -> (usize, usize) {
        d.dim
    }

    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor> {
        check_same("add", a.0, b.0)?;
        Ok(*a)
    }

    fn sub(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor> {
        check_same("sub", a.0, b.0)?;
        Ok(*a)
    }

    fn select_rows(&self, t: &Self::Tensor, rows: &[usize]) -> Self::Tensor {
        PlanTensor((rows.len(), t.0 .1))
    }

    fn transpose(&self, t: &Self::Tensor) -> Self::Tensor {
        PlanTensor((t.0 .1, t.0 .0))
    }

    async fn shift_right(&mut self, t: &Self::Tensor, _bits: u32) -> Result<Self::Tensor> {
        self.truncate(t.0);
        Ok(*t)
    }

    async fn relu(&mut self, t: &Self::Tensor) -> Result<(Self::Tensor, Self::Bits)> {
        self.requests.extend(nonlinear::relu_requests(t.0));
        Ok((*t, *t))
    }

    async fn select(&mut self, b: &Self::Bits, t: &Self::Tensor) -> Result<Self::Tensor> {
        check_same("select", b.0, t.0)?;
        self.requests.extend(nonlinear::select_requests(t.0));
        Ok(*t)
    }

    async fn sigmoid(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        self.requests
            .extend(nonlinear::piecewise_sigmoid_requests(t.0));
        Ok(*t)
    }

    async fn softmax(&mut self, t: &Self::Tensor, kind: SoftmaxKind) -> Result<Self::Tensor> {
        let (iters, mode) = (nonlinear::DEFAULT_NEWTON_ITERATIONS, self.truncation);
        let (reqs, count) = match kind {
            SoftmaxKind::Exp => (
                nonlinear::stable_softmax_requests_with(t.0, Default::default(), iters, mode),
                nonlinear::stable_softmax_truncations(t.0, Default::default(), iters),
            ),
            SoftmaxKind::Relu => (
                nonlinear::relu_softmax_requests_with(t.0, iters, mode),
                nonlinear::relu_softmax_truncations(t.0, iters),
            ),
        };
        self.requests.extend(reqs);
        self.truncations += count;
        Ok(*t)
    }

    async fn exp(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        let params = nonlinear::ExpParams::default();
        let reqs = nonlinear::exp_requests_with(t.0, params, self.truncation);
        self.requests.extend(reqs);
        self.truncations += nonlinear::exp_truncations(t.0, params);
        Ok(*t)
    }

    async fn ln(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        let reqs = nonlinear::ln_requests_with(t.0, self.truncation);
        self.requests.extend(reqs);
        self.truncations += nonlinear::ln_truncations(t.0 .0 * t.0 .1);
        Ok(*t)
    }

    async fn row_max(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        check_columns("row_max", t.0)?;
        self.requests.extend(nonlinear::row_max_requests(t.0));
        Ok(PlanTensor((t.0 .0, 1)))
    }

    async fn data_matmul(
        &mut self,
        x: &Self::Data,
        rows: &[usize],
        transpose: bool,
        y: &Self::Tensor,
        _extra_shift: u32,
    ) -> Result<Self::Tensor> {
        let lhs = batch_dim(x.dim, rows.len(), transpose);
        check_matmul("data_matmul", lhs, y.0)?;
        self.requests.push(TripleRequest::Matmul {
            lhs: Lhs::Mask {
                id: x.mask,
                rows: rows.to_vec(),
                transpose,
            },
            cols: y.0 .1,
        });
        self.truncate((lhs.0, y.0 .1));
        Ok(PlanTensor((lhs.0, y.0 .1)))
    }

    async fn matmul(
        &mut self,
        a: &Self::Tensor,
        b: &Self::Tensor,
        _extra_shift: u32,
    ) -> Result<Self::Tensor> {
        check_matmul("matmul", a.0, b.0)?;
        self.requests.push(TripleRequest::Matmul {
            lhs: Lhs::Fresh {
                rows: a.0 .0,
                inner: a.0 .1,
            },
            cols: b.0 .1,
        });
        self.truncate((a.0 .0, b.0 .1));
        Ok(PlanTensor((a.0 .0, b.0 .1)))
    }

    async fn mul(
        &mut self,
        a: &Self::Tensor,
        b: &Self::Tensor,
        _extra_shift: u32,
    ) -> Result<Self::Tensor> {
        check_same("mul", a.0, b.0)?;
        self.requests.push(TripleRequest::Elementwise {
            rows: a.0 .0,
            cols: a.0 .1,
        });
        self.truncate(a.0);
        Ok(*a)
    }

    async fn matmul_scatter(
        &mut self,
        a: &Self::Tensor,
        b: &Self::Tensor,
        map: &IndexMap,
    ) -> Result<Self::Tensor> {
        check_matmul("matmul_scatter", a.0, b.0)?;
        map.check("matmul_scatter", (a.0 .0, b.0 .1), true)?;
        self.requests.push(TripleRequest::Matmul {
            lhs: Lhs::Fresh {
                rows: a.0 .0,
                inner: a.0 .1,
            },
            cols: b.0 .1,
        });
        self.truncate(map.in_dim());
        Ok(PlanTensor(map.in_dim()))
    }

    fn constant(&self, x: &ndarray::Array2<f64>) -> Result<Self::Tensor> {
        Ok(PlanTensor(x.dim()))
    }

    fn gather(&self, t: &Self::Tensor, map: &IndexMap) -> Result<Self::Tensor> {
        map.check("gather", t.0, false)?;
        Ok(PlanTensor(map.out_dim()))
    }

    fn scatter_add(&self, t: &Self::Tensor, map: &IndexMap) -> Result<Self::Tensor> {
        map.check("scatter_add", t.0, true)?;
        Ok(PlanTensor(map.in_dim()))
    }

    async fn linear_public(
        &mut self,
        t: &Self::Tensor,
        map: &PublicLinear,
    ) -> Result<Self::Tensor> {
        map.check("linear_public", t.0)?;
        let out = (map.dim().0, t.0 .1);
        self.truncate(out);
        Ok(PlanTensor(out))
    }

    async fn scale(&mut self, t: &Self::Tensor, _c: f64) -> Result<Self::Tensor> {
        self.truncate(t.0);
        Ok(*t)
    }

    async fn square(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        self.mul(t, t, 0).await
    }
}
