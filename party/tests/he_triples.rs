//! `triples = he` on real `party serve` processes: the RLWE offline phase (HE for the matrix
//! triples, OT for the rest, no third party) serves the existing models. A linear regression
//! trained with HE triples equals the same job with OT triples (both make exact triples; the
//! runs differ only by the local truncations' ±1 ulp and their rare failures), and so does the
//! job run with the IKNP extension in place of the silent default (`JobSpec.ot_extension`).

mod support;

use party::client::reveal_model;
use party::proto::{JobSpec, ModelKind, OtExtension, TripleKind};
use std::path::{Path, PathBuf};
use support::*;

const MAX_UPLOAD: u64 = 10_000_000;
/// Largest difference allowed between the two models (16 fractional bits, 6 steps).
const TOL: f64 = 1e-3;

fn small_csv(dir: &Path) -> PathBuf {
    let p = dir.join("small.csv");
    let mut s = String::from("a,b,label\n");
    for i in 0..48 {
        let (a, b) = (i as f64 / 24.0, -(i as f64) / 48.0);
        s.push_str(&format!("{a},{b},{}\n", 0.5 * a - 0.25 * b + 0.1));
    }
    std::fs::write(&p, s).unwrap();
    p
}

/// Trains the job with `triples` and `ext`; the model and P0's offline bytes sent.
async fn train(c: &Cluster, triples: TripleKind, ext: OtExtension) -> (ndarray::Array2<f64>, u64) {
    let spec = JobSpec {
        model: ModelKind::Linreg,
        dataset: "small".into(),
        learning_rate: 0.25,
        batch_size: 16,
        epochs: 2,
        schedule_seed: 5,
        triples,
        intercept: false,
        ot_extension: ext,
    };
    let mut p0 = c.client(0, ALICE).await.unwrap();
    let done = p0.submit(&spec, &mut |_| {}).await.unwrap();
    assert!(done.stats.iter().all(|s| s.offline.bytes_sent > 0));
    let mut p1 = c.client(1, ALICE).await.unwrap();
    let model = reveal_model(&mut p0, &mut p1, done.job).await.unwrap();
    (model, done.stats[0].offline.bytes_sent)
}

fn max_diff(a: &ndarray::Array2<f64>, b: &ndarray::Array2<f64>) -> f64 {
    (a - b).iter().fold(0.0f64, |m, v| m.max(v.abs()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linear_job_with_he_triples_equals_the_ot_job_and_the_iknp_job() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::new(tmp.path(), 60, MAX_UPLOAD);
    upload_ok(c.upload(ALICE, &["--name", "small"], &small_csv(tmp.path())));
    let (he, _) = train(&c, TripleKind::He, OtExtension::Silent).await;
    let (ot, ot_bytes) = train(&c, TripleKind::Ot, OtExtension::Silent).await;
    assert_eq!(he.dim(), (2, 1));
    assert!(max_diff(&he, &ot) < TOL, "he {he:?} vs ot {ot:?}");
    assert!(he.iter().any(|v| v.abs() > 0.05), "trained: {he:?}");
    // The job's OT extension reaches both parties: `ot` makes its matrix triples from COTs
    // (Gilboa), and IKNP's offline traffic differs from the silent extension's (column
    // messages against a bootstrap and GGM trees); the model does not.
    let (iknp, iknp_bytes) = train(&c, TripleKind::Ot, OtExtension::Iknp).await;
    assert!(max_diff(&ot, &iknp) < TOL, "silent {ot:?} vs iknp {iknp:?}");
    assert_ne!(
        ot_bytes, iknp_bytes,
        "the same offline traffic with both extensions"
    );
}
