//! Column statistics: the twin against direct formulas, shares against the twin (a column with
//! a large variance, one with a tiny one), standardization round trips.

use super::*;
use crate::backend::Plain;
use crate::ops::testing::on_shares;
use ndarray::{Array2, Axis};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// `n` rows of columns with the given (mean, sd), Gaussian-ish (sum of uniforms).
fn table(n: usize, cols: &[(f64, f64)], seed: u64) -> Array2<f64> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Array2::from_shape_fn((n, cols.len()), |(_, j)| {
        let u: f64 = (0..3).map(|_| rng.gen_range(-1.0..1.0)).sum();
        cols[j].0 + cols[j].1 * u
    })
}

fn direct(x: &Array2<f64>) -> (Vec<f64>, Vec<f64>) {
    let mean = x.mean_axis(Axis(0)).unwrap();
    let sd = x.std_axis(Axis(0), 0.0);
    (mean.to_vec(), sd.to_vec())
}

const COLS: [(f64, f64); 4] = [(1000.0, 900.0), (5.0, 0.01), (0.0, 1.0), (-40.0, 30.0)];

#[tokio::test]
async fn the_twin_computes_population_statistics() {
    let x = table(50, &COLS, 1);
    let (mean, sd) = direct(&x);
    for p in [0, 3] {
        let s = column_stats(&mut Plain::new(), &x, p).await.unwrap();
        for j in 0..COLS.len() {
            let rel = |a: f64, b: f64| ((a - b) / b).abs();
            assert!(rel(s.mean[[0, j]], mean[j]) < 1e-12, "mean {j}");
            assert!(
                rel(s.sd[[0, j]], sd[j]) < 1e-9,
                "sd {j}: {} vs {}",
                s.sd[[0, j]],
                sd[j]
            );
            assert!(rel(s.inv_sd[[0, j]], 1.0 / sd[j]) < 1e-9, "1/sd {j}");
        }
    }
}

/// Measured at f = 16, 200 rows (pre-shift 2): `sd` within 5e-6 relative for the large column
/// (sd ≈ 900) and 7e-4 for the tiny one (sd ≈ 0.01); `1/sd` within 2e-3 for the large column
/// (held at 2^-16: 2^-16·sd relative precision) and 1e-3 for the tiny one; the standardized
/// table within 5.2e-3. Tolerances: means 1e-4 (relative to max(|mean|, 1)); `sd` 1e-3, 1.5e-2
/// for the tiny column; `1/sd` the larger of that and 6·sd·2^-16; the table 0.05.
#[tokio::test]
async fn statistics_on_shares_match_the_twin() {
    let n = 200;
    let x = table(n, &COLS, 2);
    let p = auto_pre_shift(n, 16);
    assert_eq!(p, 2);
    let (twin, secure) = on_shares!(16, vec![x.clone()], |b, xs| {
        let s = column_stats(b, &xs[0], p).await.unwrap();
        let z = standardize(b, &xs[0], &s).await.unwrap();
        vec![s.mean, s.sd, s.inv_sd, z]
    });
    for j in 0..COLS.len() {
        let d_mean = (secure[0][[0, j]] - twin[0][[0, j]]).abs();
        assert!(
            d_mean < 1e-4 * COLS[j].0.abs().max(1.0),
            "mean {j}: {d_mean}"
        );
        // 1/sd has 2^-16·sd relative precision; sd itself 1e-3, 1.5e-2 for the tiny column.
        let tol_sd: f64 = if COLS[j].1 < 1.0 { 1.5e-2 } else { 1e-3 };
        let tol_inv = tol_sd.max(2.0 * COLS[j].1 * 3.0 / 65536.0);
        for (k, what, tol) in [(1, "sd", tol_sd), (2, "1/sd", tol_inv)] {
            let rel = ((secure[k][[0, j]] - twin[k][[0, j]]) / twin[k][[0, j]]).abs();
            eprintln!("{what} of column {j}: relative error {rel:.2e}");
            assert!(rel < tol, "{what} of column {j}: relative error {rel}");
        }
    }
    let dz = (&secure[3] - &twin[3])
        .mapv(f64::abs)
        .fold(0.0, |a: f64, &b| a.max(b));
    eprintln!("standardized values differ by at most {dz:.2e}");
    assert!(dz < 0.05, "standardized values differ by {dz}");
}

#[test]
fn the_pre_shift_grows_with_rows_and_fractional_bits() {
    assert_eq!(auto_pre_shift(200, 16), 2);
    assert_eq!(auto_pre_shift(2, 8), 0);
    assert!(auto_pre_shift(1 << 20, 16) > auto_pre_shift(1000, 16));
    assert!(auto_pre_shift(1000, 20) > auto_pre_shift(1000, 16));
}

#[tokio::test]
async fn a_single_row_is_refused() {
    let x = Array2::<f64>::ones((1, 3));
    let e = column_stats(&mut Plain::new(), &x, 0).await.unwrap_err();
    assert!(e.to_string().contains("1 × 3"), "{e}");
}

proptest! {
    /// Standardizing and mapping back returns the table; standardized columns have mean 0 and
    /// population variance 1.
    #[test]
    fn standardize_round_trips(seed in any::<u64>(), n in 8usize..30, sd in 0.1f64..1e3) {
        let x = table(n, &[(3.0, sd), (-sd, 1.0)], seed);
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
            let b = &mut Plain::new();
            let s = column_stats(b, &x, 0).await.unwrap();
            let z = standardize(b, &x, &s).await.unwrap();
            let back = unstandardize(b, &z, &s).await.unwrap();
            let err = (&back - &x).mapv(f64::abs).fold(0.0, |a: f64, &v| a.max(v));
            prop_assert!(err < 1e-9 * (1.0 + sd), "round trip error {}", err);
            let (m, v) = direct(&z);
            prop_assert!(m.iter().all(|m| m.abs() < 1e-9));
            prop_assert!(v.iter().all(|v| (v - 1.0).abs() < 1e-9));
            Ok(())
        })?;
    }
}
