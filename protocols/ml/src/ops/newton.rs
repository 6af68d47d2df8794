//! Newton's iteration for `1/√x` on any backend: `r ← r·(3 − x·r²)/2` from a public start
//! `r₀`, three products per step. From below (`x·r₀² < 1`) it increases monotonically to
//! `1/√x`; it converges whenever `x·r₀² < 3`, quadratically once close. A caller brings `x`
//! into a known range first with a public reference (the ST-GCN BN re-calibration divides by
//! the starting model's variance) or an oblivious power-of-four normalization
//! ([`super::stats`]), and picks the start and the number of steps for that range.

use crate::backend::Backend;
use crate::error::Result;
use ndarray::Array2;

/// Default Newton steps: from [`NEWTON_START`], ~10⁻⁴ relative error from `x ≥ 10⁻⁴`.
pub const NEWTON_ITERATIONS: usize = 30;
/// Default public start: converges (from below) for `x < 3·2¹²`.
pub const NEWTON_START: f64 = 1.0 / 64.0;

/// `1/√x` of a tensor whose entries lie in `[10⁻⁴, 3·2¹²)` (Newton from [`NEWTON_START`],
/// [`NEWTON_ITERATIONS`] steps).
///
/// # Errors
/// The backend's errors (shapes, preprocessing, channel).
pub async fn inverse_sqrt<B: Backend>(b: &mut B, x: &B::Tensor) -> Result<B::Tensor> {
    inverse_sqrt_from(b, x, NEWTON_START, NEWTON_ITERATIONS).await
}

/// `1/√x` by `iterations` Newton steps from the public start `start` (entries of `x` must
/// satisfy `x·start² < 3`; from below, `x·start² ≤ 1`, the error only shrinks).
///
/// # Errors
/// The backend's errors (shapes, preprocessing, channel).
pub async fn inverse_sqrt_from<B: Backend>(
    b: &mut B,
    x: &B::Tensor,
    start: f64,
    iterations: usize,
) -> Result<B::Tensor> {
    let dims = B::dim(x);
    let three = b.constant(&Array2::from_elem(dims, 3.0))?;
    let mut r = b.constant(&Array2::from_elem(dims, start))?;
    for _ in 0..iterations {
        let xr = b.mul(x, &r, 0).await?;
        let xrr = b.mul(&xr, &r, 0).await?;
        let u = b.sub(&three, &xrr)?;
        r = b.mul(&r, &u, 1).await?;
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Plain;

    /// Newton from below reaches 1e-9 relative error from x = 1e-4 to 1.2e4 on the twin.
    #[tokio::test]
    async fn inverse_sqrt_converges_over_its_range() {
        let xs: Vec<f64> = (0..=32)
            .map(|i| 10f64.powf(-4.0 + 0.25 * f64::from(i)))
            .collect();
        let b = &mut Plain::new();
        let x = Array2::from_shape_vec((xs.len(), 1), xs.clone()).unwrap();
        let r = inverse_sqrt(b, &x).await.unwrap();
        for (v, got) in xs.iter().zip(r.iter()) {
            let want = 1.0 / v.sqrt();
            assert!(
                ((got - want) / want).abs() < 1e-9,
                "1/sqrt({v}) = {got}, want {want}"
            );
        }
    }

    /// From start 1 on [1/4, 1) eight steps reach 1e-12.
    #[tokio::test]
    async fn a_short_run_on_a_normalized_range() {
        let xs: Vec<f64> = (0..=30).map(|i| 0.25 + 0.025 * f64::from(i)).collect();
        let x = Array2::from_shape_vec((xs.len(), 1), xs.clone()).unwrap();
        let r = inverse_sqrt_from(&mut Plain::new(), &x, 1.0, 8)
            .await
            .unwrap();
        for (v, got) in xs.iter().zip(r.iter()) {
            assert!((got * v.sqrt() - 1.0).abs() < 1e-12, "1/sqrt({v}) = {got}");
        }
    }
}
