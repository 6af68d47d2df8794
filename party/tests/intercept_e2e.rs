//! End to end with real processes: a regression target whose mean dwarfs its variation, uploaded
//! raw, trained by `party train --model linreg` with its default intercept and revealed as a
//! `dyad-model/1` file that `party::linear_model::LinearModel::read` loads.

mod support;

use ndarray::{concatenate, s, Array2, Axis};
use party::linear_model::LinearModel;
use rand::{Rng, SeedableRng};
use std::process::Command;
use support::*;

/// `y = 1000 + x·(0.8, −0.5, 0.3) + noise`, `x ∈ [-1, 1]^3`, as `[x | y]`.
fn large_mean(n: usize, seed: u64) -> Array2<f64> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let w = [0.8, -0.5, 0.3];
    let x = Array2::from_shape_fn((n, 3), |_| rng.gen_range(-1.0..1.0));
    let y = Array2::from_shape_fn((n, 1), |(i, _)| {
        1000.0 + (0..3).map(|j| x[[i, j]] * w[j]).sum::<f64>() + rng.gen_range(-0.01..0.01)
    });
    concatenate![Axis(1), x, y]
}

fn mse(w: &Array2<f64>, xy: &Array2<f64>) -> f64 {
    let (x, y) = (xy.slice(s![.., ..3]).to_owned(), xy.column(3).to_owned());
    let p = ml::models::linreg::predict(w, &x).unwrap();
    (&p.column(0) - &y).mapv(|e| e * e).mean().unwrap()
}

/// The job's model recovers the intercept 1000 and the weights, its test MSE equals the
/// in-process twin's within 1e-4 (weights within 1e-3: fixed point with f = 16), and the model
/// without an intercept cannot fit the target (twin's test MSE above 1e5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linreg_with_its_default_intercept_fits_a_large_mean_target() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::new(tmp.path(), 60, 10_000_000);
    let (train, test) = (large_mean(256, 1), large_mean(128, 2));
    let csv = tmp.path().join("reg.csv");
    datasets::csv::write_csv(&csv, None, &train).unwrap();
    upload_ok(c.upload(ALICE, &["--name", "reg"], &csv));
    let out = tmp.path().join("reg-model.json");
    let (epochs, batch, lr, seed) = (8usize, 32usize, 0.5, 4u64);
    let args = linreg_train_args("reg");
    run_ok(
        Command::new(PARTY)
            .args(args)
            .arg(&out)
            .args(c.conn_args(ALICE)),
    );
    let m = LinearModel::read(&out).unwrap();
    assert_eq!((m.meta.kind.as_str(), m.meta.intercept), ("linreg", true));
    assert_eq!((m.meta.layers.clone(), m.meta.rows), (vec![3, 1], 256));
    let w = &m.weights[0];
    assert!((w[[3, 0]] - 1000.0).abs() < 0.05, "intercept {}", w[[3, 0]]);

    let x = train.slice(s![.., ..3]).to_owned();
    let y = train.slice(s![.., 3..]).to_owned();
    let sched = ml::Schedule::shuffled(256, batch, epochs, seed).unwrap();
    let hyper = ml::models::linreg::LinRegHyper::new(lr, batch).unwrap();
    let p = &mut ml::backend::Plain::new();
    let xi = ml::models::bias::append_ones_plain(&x);
    let twin =
        ml::models::linreg::train(p, &xi, &y, Array2::zeros((4, 1)), &sched, &hyper, &|_| {});
    let twin = twin.await.unwrap();
    let dw = w
        .iter()
        .zip(&twin)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let (secure, plain) = (mse(w, &test), mse(&twin, &test));
    eprintln!("test MSE: job {secure:.3e}, twin {plain:.3e}; max |w − w_twin| = {dw:.2e}");
    assert!(dw < 1e-3, "max |w − w_twin| = {dw}");
    assert!(
        (secure - plain).abs() < 1e-4 && secure < 1e-3,
        "{secure} vs {plain}"
    );
    let bare = ml::models::linreg::train(p, &x, &y, Array2::zeros((3, 1)), &sched, &hyper, &|_| {});
    let bare = mse(&bare.await.unwrap(), &test);
    assert!(
        bare > 1e5,
        "without an intercept the twin's test MSE is {bare}"
    );
}
