//! Metrics: the twin against direct counts and sums, shares against the twin.

use super::*;
use crate::backend::Plain;
use crate::ops::testing::on_shares;
use ndarray::{Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn uniform(rows: usize, cols: usize, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| rng.gen_range(-1.0..1.0))
}

/// Logits kept at least 0.05 away from 0 (no sign can flip by rounding).
fn away_from_zero(t: Array2<f64>) -> Array2<f64> {
    t.mapv(|v| {
        if v.abs() < 0.05 {
            v.signum() * 0.05 + v
        } else {
            v
        }
    })
}

#[tokio::test]
async fn the_twin_matches_direct_formulas() {
    let b = &mut Plain::new();
    let (p, y) = (uniform(40, 1, 1), uniform(40, 1, 2));
    let mse = mean_squared_error(b, &p, &y, 2).await.unwrap()[[0, 0]];
    let want = (&p - &y).mapv(|e| e * e).mean().unwrap();
    assert!((mse - want).abs() < 1e-12);
    let z = away_from_zero(uniform(40, 1, 3));
    let y01 = uniform(40, 1, 4).mapv(|v| f64::from(u8::from(v > 0.0)));
    let acc = binary_accuracy(b, &z, &y01).await.unwrap()[[0, 0]];
    let right = z
        .iter()
        .zip(&y01)
        .filter(|(z, y)| (**z >= 0.0) == (**y == 1.0))
        .count();
    assert!((acc - right as f64 / 40.0).abs() < 1e-12);
    let logits = uniform(40, 4, 5);
    let classes: Vec<usize> = (0..40).map(|i| (i * 7) % 4).collect();
    let one_hot = Array2::from_shape_fn((40, 4), |(i, j)| f64::from(u8::from(classes[i] == j)));
    let acc = class_accuracy(b, &logits, &one_hot).await.unwrap()[[0, 0]];
    let pred = crate::models::mlp::argmax_rows(logits.view());
    let right = pred.iter().zip(&classes).filter(|(p, c)| p == c).count();
    assert!((acc - right as f64 / 40.0).abs() < 1e-12);
    assert!(right > 0 && right < 40);
}

/// The model outputs: a regression with and without intercept, an MLP with biases, against
/// the models' own plaintext predictions.
#[tokio::test]
async fn outputs_match_the_models_predictions() {
    let b = &mut Plain::new();
    let x = uniform(10, 3, 6);
    for rows in [3, 4] {
        let w = uniform(rows, 1, 7);
        let got = linear_outputs(b, &x, &w).await.unwrap();
        let xx = if rows == 4 {
            crate::models::bias::append_ones_plain(&x)
        } else {
            x.clone()
        };
        assert!((&got - &xx.dot(&w)).iter().all(|d| d.abs() < 1e-12));
    }
    let ws = crate::models::mlp::init_weights_with_bias(&[3, 5, 2], 9, true);
    let logits = mlp_logits(b, &x, &ws).await.unwrap();
    assert_eq!(
        crate::models::mlp::argmax_rows(logits.view()),
        crate::models::mlp::predict(&ws, &x)
    );
    assert!(linear_outputs(b, &x, &uniform(5, 1, 1)).await.is_err());
}

/// Measured at f = 16: the MSE within 1e-5 relative of the twin's, both accuracies equal (no
/// logit within 0.05 of a decision); tolerance 1e-3 relative, exact counts.
#[tokio::test]
async fn metrics_on_shares_match_the_twin() {
    let n = 60;
    let p = uniform(n, 1, 10).mapv(|v| 1000.0 + 40.0 * v);
    let y = uniform(n, 1, 11).mapv(|v| 1000.0 + 40.0 * v);
    let z = away_from_zero(uniform(n, 1, 12));
    let y01 = uniform(n, 1, 13).mapv(|v| f64::from(u8::from(v > 0.0)));
    let mut logits = uniform(n, 3, 14);
    let classes: Vec<usize> = (0..n).map(|i| (i * 5) % 3).collect();
    for (i, row) in logits.axis_iter_mut(Axis(0)).enumerate() {
        // The true class either wins or loses by at least 0.05.
        let mut row = row;
        let best = row.iter().cloned().fold(f64::MIN, f64::max);
        if (row[classes[i]] - best).abs() < 0.05 && row[classes[i]] != best {
            row[classes[i]] = best + 0.1;
        }
    }
    let one_hot = Array2::from_shape_fn((n, 3), |(i, j)| f64::from(u8::from(classes[i] == j)));
    let inputs = vec![p, y, z, y01, logits, one_hot];
    let (twin, secure) = on_shares!(16, inputs, |b, xs| {
        vec![
            mean_squared_error(b, &xs[0], &xs[1], 4).await.unwrap(),
            binary_accuracy(b, &xs[2], &xs[3]).await.unwrap(),
            class_accuracy(b, &xs[4], &xs[5]).await.unwrap(),
        ]
    });
    let rel = ((secure[0][[0, 0]] - twin[0][[0, 0]]) / twin[0][[0, 0]]).abs();
    assert!(
        rel < 1e-3,
        "MSE {} vs {}",
        secure[0][[0, 0]],
        twin[0][[0, 0]]
    );
    for k in [1, 2] {
        let d = (secure[k][[0, 0]] - twin[k][[0, 0]]).abs();
        assert!(
            d < 1e-3,
            "accuracy {k}: {} vs {}",
            secure[k][[0, 0]],
            twin[k][[0, 0]]
        );
    }
}

/// Logits of a classifier that is mostly right: `n` rows, the true class's logit raised by
/// `margin` in 80% of the rows, entries spread over `±spread`.
fn classifier_logits(n: usize, k: usize, spread: f64, seed: u64) -> (Array2<f64>, Vec<usize>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let classes: Vec<usize> = (0..n).map(|_| rng.gen_range(0..k)).collect();
    let z = Array2::from_shape_fn((n, k), |(i, j)| {
        let base = rng.gen_range(-spread..spread);
        if j == classes[i] && rng.gen_bool(0.8) {
            base.abs()
        } else {
            base
        }
    });
    (z, classes)
}

fn one_hot(classes: &[usize], k: usize) -> Array2<f64> {
    Array2::from_shape_fn((classes.len(), k), |(i, j)| {
        f64::from(u8::from(classes[i] == j))
    })
}

/// The twin's log-losses are the textbook ones: `−mean(y ln σ(z) + (1 − y) ln(1 − σ(z)))`
/// and `−mean(ln softmax(z)_y)`.
#[tokio::test]
async fn the_twin_log_losses_match_direct_formulas() {
    let b = &mut Plain::new();
    let (z, classes) = classifier_logits(50, 2, 6.0, 20);
    // A logistic regression's logit: the difference of the two columns.
    let z = z.column(1).to_owned() - z.column(0);
    let y: Vec<f64> = classes.iter().map(|&c| c as f64).collect();
    let (z, y) = (
        z.insert_axis(Axis(1)),
        Array2::from_shape_vec((50, 1), y).unwrap(),
    );
    let got = binary_log_loss(b, &z, &y).await.unwrap()[[0, 0]];
    let want = -z
        .iter()
        .zip(&y)
        .map(|(&z, &y)| {
            let p = 1.0 / (1.0 + (-z).exp());
            y * p.ln() + (1.0 - y) * (1.0 - p).ln()
        })
        .sum::<f64>()
        / 50.0;
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    let (z, classes) = classifier_logits(50, 4, 6.0, 21);
    let got = class_log_loss(b, &z, &one_hot(&classes, 4)).await.unwrap()[[0, 0]];
    let p = crate::backend::softmax_rows(&z, crate::backend::SoftmaxKind::Exp);
    let want = -classes
        .iter()
        .enumerate()
        .map(|(i, &c)| p[[i, c]].ln())
        .sum::<f64>()
        / 50.0;
    assert!((got - want).abs() < 1e-12, "{got} vs {want}");
    assert!(
        want > 0.05 && want < 2.0,
        "a loss of a mostly right model: {want}"
    );
}

/// At f = 16 with exact truncation, the log-losses on shares against the twin: within 1e-2
/// (binary) and 1e-2 + k·2^−12 (k = 4 classes), the module docs' per-sample bounds, which the
/// mean inherits.
#[tokio::test]
async fn log_losses_on_shares_match_the_twin() {
    let n = 120;
    let (z2, classes2) = classifier_logits(n, 2, 5.0, 30);
    let z = (z2.column(1).to_owned() - z2.column(0)).insert_axis(Axis(1));
    let y = Array2::from_shape_fn((n, 1), |(i, _)| classes2[i] as f64);
    let (logits, classes) = classifier_logits(n, 4, 8.0, 31);
    let inputs = vec![z, y, logits, one_hot(&classes, 4)];
    let (twin, secure) = on_shares!(16, inputs, |b, xs| {
        vec![
            binary_log_loss(b, &xs[0], &xs[1]).await.unwrap(),
            class_log_loss(b, &xs[2], &xs[3]).await.unwrap(),
        ]
    });
    for (k, tol) in [(0, 1e-2), (1, 1e-2 + 4.0 / 4096.0)] {
        let (s, t) = (secure[k][[0, 0]], twin[k][[0, 0]]);
        eprintln!(
            "log-loss {k}: secure {s:.6}, twin {t:.6}, difference {:.2e}",
            s - t
        );
        assert!((s - t).abs() < tol, "log-loss {k}: {s} vs {t}");
    }
}

/// The combined metrics (one comparison batch or one true-logit product for both) give the
/// separate functions' values: exactly on the twin, and on shares within the tolerances of
/// the separate tests (accuracies: the same count, so only the fixed-point mean's rounding,
/// 1e-3 relative as above; the logits sit ≥ 0.05 from every decision boundary).
#[tokio::test]
async fn combined_metrics_equal_the_separate_ones() {
    let n = 60;
    let (z2, c2) = classifier_logits(n, 2, 5.0, 40);
    let z = away_from_zero((z2.column(1).to_owned() - z2.column(0)).insert_axis(Axis(1)));
    let y = Array2::from_shape_fn((n, 1), |(i, _)| c2[i] as f64);
    let (logits, classes) = classifier_logits(n, 4, 8.0, 41);
    let hot = one_hot(&classes, 4);
    let b = &mut Plain::new();
    let separate = [
        binary_accuracy(b, &z, &y).await.unwrap(),
        binary_log_loss(b, &z, &y).await.unwrap(),
        class_accuracy(b, &logits, &hot).await.unwrap(),
        class_log_loss(b, &logits, &hot).await.unwrap(),
    ];
    let inputs = vec![z, y, logits, hot];
    let (twin, secure) = on_shares!(16, inputs, |b, xs| {
        let [a, l] = binary_metrics(b, &xs[0], &xs[1]).await.unwrap();
        let [ca, cl] = class_metrics(b, &xs[2], &xs[3]).await.unwrap();
        vec![a, l, ca, cl]
    });
    let tol = [1e-3, 1e-2, 1e-3, 1e-2 + 4.0 / 4096.0];
    for k in 0..4 {
        assert_eq!(twin[k], separate[k], "metric {k} on the twin");
        let (s, t) = (secure[k][[0, 0]], twin[k][[0, 0]]);
        assert!((s - t).abs() < tol[k], "metric {k}: {s} vs {t}");
    }
}
