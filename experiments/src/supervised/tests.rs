//! Tests of the training tasks: the HE source's flooding bound over whole planned runs, and the
//! rendering of hand-built typed results into metrics and table rows.

use super::measure::{plan_requests, Measured, SecureOutcome};
use super::quality::{Classification, Quality, Score, SigmoidRun};
use super::report::{render, RunInfo};
use super::*;
use crate::config::Task;
use crate::offline::Flooding;
use mpc::net::CommStats;

/// The HE source's noise flooding holds for whole runs, not per coefficient: the statistical
/// distance summed over every coefficient the responders flood (from the block plans and
/// widths the source itself uses) is at most 2^-40 for the SecureML Table II workload (the
/// `he` task of `configs/secureml-offline.toml`, planned as its run plans it) and for 15
/// epochs of the MNIST MLP 784-128-128-10, batch 128 (60,000 samples).
#[tokio::test]
async fn flooding_bound_holds_per_run() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/secureml-offline.toml");
    let cfg = Config::load(std::path::Path::new(path)).unwrap();
    let task = cfg
        .tasks
        .iter()
        .find_map(|t| match t {
            Task::Linreg(t) if t.triples.as_deref() == Some("he") => Some(t),
            _ => None,
        })
        .expect("secureml-offline has an he task");
    let table2 = task_requests(Kind::Linreg, task, &cfg).await.unwrap();
    let f = Flooding::of(&table2).unwrap();
    // Per batch (78 full batches an epoch — the schedule drops the partial one — 2 epochs):
    // a 128-output forward and a 1000-output backward cross term.
    assert_eq!(f.coefficients, 2 * 78 * (128 + 1000));
    assert!(f.distance_log2 <= -40.0, "Table II: 2^{}", f.distance_log2);

    let layers = [784, 128, 128, 10];
    let w_dims: Vec<_> = mlp::init_weights(&layers, 1)
        .iter()
        .map(|w| w.dim())
        .collect();
    let sched = Schedule::shuffled(60_000, 128, 15, 1).unwrap();
    // 468 full batches of 128 an epoch (the 96-sample remainder is dropped).
    assert_eq!(sched.steps(), 468 * 15);
    let hyper = LinRegHyper::new(0.25, 128).unwrap();
    let model = Model::Mlp(SoftmaxKind::Relu);
    let (mnist, _) = plan_requests(
        model,
        (60_000, 784),
        (60_000, 10),
        &w_dims,
        &sched,
        &hyper,
        Truncation::Local,
    )
    .await
    .unwrap();
    let f = Flooding::of(&mnist).unwrap();
    assert!(f.coefficients > 1 << 29, "{}", f.coefficients);
    assert!(f.distance_log2 <= -40.0, "MNIST MLP: 2^{}", f.distance_log2);
    eprintln!("Table II and MNIST MLP: {f:?}");
}

fn stats(bytes_sent: u64, rounds: u64) -> CommStats {
    CommStats {
        bytes_sent,
        rounds,
        ..Default::default()
    }
}

fn measured(quality: Quality) -> Measured {
    Measured {
        secure: SecureOutcome {
            ws: vec![],
            online_s: 2.0,
            setup_s: 0.5,
            train_s: 1.5,
            offline_s: 0.25,
            total_s: 2.25,
            stats: [stats(1000, 40), stats(900, 40)],
            offline_stats: [stats(10, 1), stats(20, 1)],
            trust: "a trusted dealer",
            flooding: None,
            truncations: 1 << 10,
        },
        plain_s: 0.01,
        max_weight_diff: 1e-4,
        quality,
        steps: 10,
        upload_bytes: 4096.0,
    }
}

fn info(model: Model, label: &str) -> RunInfo {
    RunInfo {
        model,
        title: "Linear regression".into(),
        label: label.into(),
        twin_label: None,
        data: "hand-built".into(),
        epochs: 2,
        batch_size: 32,
        learning_rate: 0.125,
        frac_bits: 16,
        source: "dealer".into(),
        transport: "memory".into(),
        truncation: Truncation::Local,
    }
}

/// A hand-built regression result renders into the MSE rows and the published metric names.
#[test]
fn regression_results_render_rows_and_metrics() {
    let q = Quality::Regression {
        secure: Score {
            test: 2.0,
            train: 1.0,
        },
        plain: Score {
            test: 1.0,
            train: 1.0,
        },
    };
    let mut r = Report::default();
    render(&mut r, &info(Model::Linreg, ""), &measured(q));
    let md = &r.sections[0];
    assert!(md.starts_with("## Linear regression\n"), "{md}");
    assert!(md.contains("| run | test MSE | train MSE |"), "{md}");
    assert!(md.contains("| secure (2PC) | 2 | 1 |"), "{md}");
    assert!(md.contains("| online total | 2.000 s |"), "{md}");
    assert_eq!(r.metrics["secure.test_mse_rel_diff"], 1.0);
    assert_eq!(r.metrics["secure.rounds_per_batch_count"], 4.0);
    assert_eq!(r.metrics["secure.online_per_epoch_s"], 0.75);
    assert_eq!(r.metrics["secure.truncation_failure_run_log2"], 10.0 - 19.0);
    for k in [
        "secure.max_weight_diff",
        "secure.test_mse",
        "plain.test_mse",
        "secure.train_mse",
        "plain.train_mse",
        "secure.offline_bytes_received_p1_bytes",
        "secure.upload_bytes",
        "secure.steps_count",
        "secure.truncations_count",
        "plain.train_s",
    ] {
        assert!(r.metrics.contains_key(k), "{k}");
    }
    assert_eq!(r.metrics["secure.total_s"], 2.25);
    assert_eq!(r.metrics.len(), 27);
}

/// A hand-built classifier result renders its accuracy rows and labelled metric names.
#[test]
fn classification_results_render_rows_and_metrics() {
    let c = Classification {
        secure: Score {
            test: 95.0,
            train: 96.5,
        },
        plain: Score {
            test: 94.0,
            train: 97.0,
        },
        agreement_pct: 99.0,
        perturbed_pct: vec![93.0, 95.5],
        majority_pct: 62.5,
        sigmoids: vec![SigmoidRun {
            name: "logistic".into(),
            logistic: true,
            test_accuracy_pct: 96.0,
        }],
    };
    let mut r = Report::default();
    let mut i = info(Model::Mlp(SoftmaxKind::Exp), "x");
    i.title = "MLP".into();
    render(&mut r, &i, &measured(Quality::Classification(c)));
    let md = &r.sections[0];
    assert!(md.starts_with("## MLP — x\n"), "{md}");
    assert!(md.contains("| secure (2PC) | 95.00 % | 96.50 % |"), "{md}");
    assert!(md.contains("| (majority class) | 62.50 % |  |"), "{md}");
    assert!(md.contains("| 93.00–95.50 % (93.00, 95.50 %) |"), "{md}");
    assert!(
        md.contains("| plaintext, logistic activation | 96.00 % |  |"),
        "{md}"
    );
    assert_eq!(r.metrics["secure_x.agreement_pct"], 99.0);
    assert_eq!(r.metrics["plain_perturbed_x.runs_count"], 2.0);
    assert_eq!(r.metrics["plain_perturbed_x.test_accuracy_min_pct"], 93.0);
    assert_eq!(r.metrics["plain_sigmoid.test_accuracy_pct"], 96.0);
    assert!(r.metrics.contains_key("plain_x.train_accuracy_pct"));
    assert!(r.notes.iter().any(|n| n.starts_with("Exp softmax")));
}
