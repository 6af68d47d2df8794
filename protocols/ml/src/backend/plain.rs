//! The plaintext twin: `f64` matrices (ndarray).

use super::{
    batch_dim, check_columns, check_matmul, check_same, Backend, IndexMap, PublicLinear,
    SoftmaxKind,
};
use crate::error::Result;
use ndarray::{Array2, Axis};

/// Which logistic function the plaintext backend evaluates.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum SigmoidKind {
    /// SecureML's piecewise sigmoid (what the shared backend computes): the twin's default.
    #[default]
    Piecewise,
    /// The real logistic function 1/(1+e^-x).
    Logistic,
    /// A polynomial `Σ c_i x^i` (coefficients from degree 0 up), e.g. a least-squares fit.
    Poly(Vec<f64>),
}

/// The `f64` backend.
#[derive(Debug, Default, Clone)]
pub struct Plain {
    /// The logistic function [`Backend::sigmoid`] evaluates.
    pub sigmoid: SigmoidKind,
}

impl Plain {
    /// A plaintext backend computing what the shared backend computes.
    pub fn new() -> Self {
        Self::default()
    }

    /// A plaintext backend with another logistic function (for plaintext-only comparisons).
    pub fn with_sigmoid(sigmoid: SigmoidKind) -> Self {
        Self { sigmoid }
    }
}

/// SecureML's piecewise sigmoid: 0 below −½, x + ½ between, 1 from ½ on.
pub fn piecewise_sigmoid(x: f64) -> f64 {
    if x < -0.5 {
        0.0
    } else if x >= 0.5 {
        1.0
    } else {
        x + 0.5
    }
}

/// Row-wise softmax in `f64`.
pub fn softmax_rows(t: &Array2<f64>, kind: SoftmaxKind) -> Array2<f64> {
    let mut out = t.clone();
    for mut row in out.rows_mut() {
        match kind {
            SoftmaxKind::Exp => {
                let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
                row.mapv_inplace(|v| (v - m).exp());
            }
            SoftmaxKind::Relu => row.mapv_inplace(|v| v.max(0.0)),
        }
        let s: f64 = row.sum();
        let k = row.len() as f64;
        if s > 0.0 {
            row.mapv_inplace(|v| v / s);
        } else {
            row.fill(1.0 / k);
        }
    }
    out
}

fn pow2(bits: u32) -> f64 {
    2f64.powi(-(bits as i32))
}

impl Backend for Plain {
    type Tensor = Array2<f64>;
    type Data = Array2<f64>;
    type Bits = Array2<f64>;

    fn dim(t: &Self::Tensor) -> (usize, usize) {
        t.dim()
    }

    fn data_dim(d: &Self::Data) -> (usize, usize) {
        d.dim()
    }

    fn add(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor> {
        check_same("add", a.dim(), b.dim())?;
        Ok(a + b)
    }

    fn sub(&self, a: &Self::Tensor, b: &Self::Tensor) -> Result<Self::Tensor> {
        check_same("sub", a.dim(), b.dim())?;
        Ok(a - b)
    }

    fn select_rows(&self, t: &Self::Tensor, rows: &[usize]) -> Self::Tensor {
        t.select(Axis(0), rows)
    }

    fn transpose(&self, t: &Self::Tensor) -> Self::Tensor {
        t.t().to_owned()
    }

    async fn shift_right(&mut self, t: &Self::Tensor, bits: u32) -> Result<Self::Tensor> {
        Ok(t * pow2(bits))
    }

    async fn relu(&mut self, t: &Self::Tensor) -> Result<(Self::Tensor, Self::Bits)> {
        Ok((
            t.mapv(|v| v.max(0.0)),
            t.mapv(|v| if v >= 0.0 { 1.0 } else { 0.0 }),
        ))
    }

    async fn select(&mut self, b: &Self::Bits, t: &Self::Tensor) -> Result<Self::Tensor> {
        check_same("select", b.dim(), t.dim())?;
        Ok(b * t)
    }

    async fn sigmoid(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        Ok(match &self.sigmoid {
            SigmoidKind::Piecewise => t.mapv(piecewise_sigmoid),
            SigmoidKind::Logistic => t.mapv(|v| 1.0 / (1.0 + (-v).exp())),
            SigmoidKind::Poly(c) => t.mapv(|v| c.iter().rev().fold(0.0, |acc, &ci| acc * v + ci)),
        })
    }

    async fn softmax(&mut self, t: &Self::Tensor, kind: SoftmaxKind) -> Result<Self::Tensor> {
        Ok(softmax_rows(t, kind))
    }

    async fn exp(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        Ok(t.mapv(f64::exp))
    }

    async fn ln(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        Ok(t.mapv(f64::ln))
    }

    async fn row_max(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        check_columns("row_max", t.dim())?;
        let m = t.map_axis(Axis(1), |r| r.fold(f64::NEG_INFINITY, |a, &b| a.max(b)));
        Ok(m.insert_axis(Axis(1)))
    }

    async fn data_matmul(
        &mut self,
        x: &Self::Data,
        rows: &[usize],
        transpose: bool,
        y: &Self::Tensor,
        extra_shift: u32,
    ) -> Result<Self::Tensor> {
        check_matmul(
            "data_matmul",
            batch_dim(x.dim(), rows.len(), transpose),
            y.dim(),
        )?;
        let xb = x.select(Axis(0), rows);
        let p = if transpose { xb.t().dot(y) } else { xb.dot(y) };
        Ok(p * pow2(extra_shift))
    }

    async fn matmul(
        &mut self,
        a: &Self::Tensor,
        b: &Self::Tensor,
        extra_shift: u32,
    ) -> Result<Self::Tensor> {
        check_matmul("matmul", a.dim(), b.dim())?;
        Ok(a.dot(b) * pow2(extra_shift))
    }

    async fn mul(
        &mut self,
        a: &Self::Tensor,
        b: &Self::Tensor,
        extra_shift: u32,
    ) -> Result<Self::Tensor> {
        check_same("mul", a.dim(), b.dim())?;
        Ok(a * b * pow2(extra_shift))
    }

    async fn matmul_scatter(
        &mut self,
        a: &Self::Tensor,
        b: &Self::Tensor,
        map: &IndexMap,
    ) -> Result<Self::Tensor> {
        check_matmul("matmul_scatter", a.dim(), b.dim())?;
        self.scatter_add(&a.dot(b), map)
    }

    fn constant(&self, x: &Array2<f64>) -> Result<Self::Tensor> {
        Ok(x.clone())
    }

    fn gather(&self, t: &Self::Tensor, map: &IndexMap) -> Result<Self::Tensor> {
        map.check("gather", t.dim(), false)?;
        let x = t.as_standard_layout();
        let v = map.gather_slice(x.as_slice().expect("standard layout"), 0.0);
        Ok(Array2::from_shape_vec(map.out_dim(), v).expect("map size"))
    }

    fn scatter_add(&self, t: &Self::Tensor, map: &IndexMap) -> Result<Self::Tensor> {
        map.check("scatter_add", t.dim(), true)?;
        let x = t.as_standard_layout();
        let v = map.scatter_slice(x.as_slice().expect("standard layout"), 0.0, |a, b| a + b);
        Ok(Array2::from_shape_vec(map.in_dim(), v).expect("map size"))
    }

    async fn linear_public(
        &mut self,
        t: &Self::Tensor,
        map: &PublicLinear,
    ) -> Result<Self::Tensor> {
        map.check("linear_public", t.dim())?;
        let x = t.as_standard_layout();
        let coef: Vec<f64> = map.coefficients().collect();
        let cols = t.ncols();
        let xs = x.as_slice().expect("standard layout");
        let v = map.apply_with(xs, cols, &coef, 0.0, |a, c, x| a + c * x);
        Ok(Array2::from_shape_vec((map.dim().0, cols), v).expect("map size"))
    }

    async fn scale(&mut self, t: &Self::Tensor, c: f64) -> Result<Self::Tensor> {
        Ok(t * c)
    }

    async fn square(&mut self, t: &Self::Tensor) -> Result<Self::Tensor> {
        Ok(t * t)
    }
}
