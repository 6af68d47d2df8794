//! The plaintext twin: `f64` matrices (ndarray).

use super::{batch_dim, check_matmul, check_same, Backend};
use crate::error::Result;
use ndarray::{Array2, Axis};

/// The `f64` backend.
#[derive(Debug, Default, Clone, Copy)]
pub struct Plain;

impl Plain {
    /// A plaintext backend.
    pub fn new() -> Self {
        Plain
    }
}

fn pow2(bits: u32) -> f64 {
    2f64.powi(-(bits as i32))
}

impl Backend for Plain {
    type Tensor = Array2<f64>;
    type Data = Array2<f64>;

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

    fn shift_right(&self, t: &Self::Tensor, bits: u32) -> Result<Self::Tensor> {
        Ok(t * pow2(bits))
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
}
