//! The logistic functions a training task's `plain_sigmoids` entries name (`logistic`/`sigmoid`,
//! `polyN`: least-squares polynomial fits on [-8, 8]). A leaf module: the config validates the
//! names with it and the runners train with it, so neither imports the other.

use ml::backend::SigmoidKind;

/// The logistic function a `plain_sigmoids` entry names.
pub fn sigmoid_kind(name: &str) -> Option<SigmoidKind> {
    if name == "logistic" || name == "sigmoid" {
        return Some(SigmoidKind::Logistic);
    }
    let deg: usize = name.strip_prefix("poly")?.parse().ok()?;
    (1..=15)
        .contains(&deg)
        .then(|| SigmoidKind::Poly(fit_sigmoid(deg)))
}

/// Least-squares fit of the logistic function by a polynomial of degree `deg` on [-8, 8]
/// (2001 equally spaced points; solved in the scaled variable t = x/8 for conditioning).
pub fn fit_sigmoid(deg: usize) -> Vec<f64> {
    let m = deg + 1;
    let mut a = vec![vec![0.0; m + 1]; m];
    for k in 0..=2000 {
        let x = -8.0 + 16.0 * k as f64 / 2000.0;
        let t = x / 8.0;
        let y = 1.0 / (1.0 + (-x).exp());
        let pw: Vec<f64> = (0..m).map(|i| t.powi(i as i32)).collect();
        for i in 0..m {
            for j in 0..m {
                a[i][j] += pw[i] * pw[j];
            }
            a[i][m] += pw[i] * y;
        }
    }
    // Gaussian elimination with partial pivoting on the normal equations.
    for c in 0..m {
        let p = (c..m)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .expect("rows");
        a.swap(c, p);
        let pivot = a[c].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot[c];
                for (x, p) in row.iter_mut().zip(&pivot).skip(c) {
                    *x -= f * p;
                }
            }
        }
    }
    (0..m)
        .map(|i| a[i][m] / a[i][i] / 8f64.powi(i as i32))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_fits_improve_with_degree() {
        let err = |deg| {
            let c = fit_sigmoid(deg);
            (0..=160)
                .map(|k| {
                    let x = -8.0 + 0.1 * k as f64;
                    let p: f64 = c.iter().rev().fold(0.0, |a, &ci| a * x + ci);
                    (p - 1.0 / (1.0 + (-x).exp())).abs()
                })
                .fold(0.0, f64::max)
        };
        let (e2, e5, e10) = (err(2), err(5), err(10));
        assert!(e10 < e5 && e5 < e2, "{e2} {e5} {e10}");
        assert!(e10 < 0.02, "{e10}");
        assert!(
            sigmoid_kind("poly3").is_some()
                && sigmoid_kind("poly0").is_none()
                && sigmoid_kind("tanh").is_none()
        );
    }
}
