//! `triples = he` on real `party serve` processes: the RLWE offline phase (HE for the matrix
//! triples, OT for the rest, no third party) serves the existing models. A linear regression
//! trained with HE triples equals the same job with OT triples (both make exact triples; the
//! runs differ only by the local truncations' ±1 ulp and their rare failures).

mod support;

use party::client::reveal_model;
use party::proto::{JobSpec, ModelKind, TripleKind};
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

async fn train(c: &Cluster, triples: TripleKind) -> ndarray::Array2<f64> {
    let spec = JobSpec {
        model: ModelKind::Linreg,
        dataset: "small".into(),
        learning_rate: 0.25,
        batch_size: 16,
        epochs: 2,
        schedule_seed: 5,
        triples,
        intercept: false,
    };
    let mut p0 = c.client(0, ALICE).await.unwrap();
    let done = p0.submit(&spec, &mut |_| {}).await.unwrap();
    assert!(done.stats.iter().all(|s| s.offline.bytes_sent > 0));
    let mut p1 = c.client(1, ALICE).await.unwrap();
    reveal_model(&mut p0, &mut p1, done.job).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_linear_job_with_he_triples_equals_the_ot_job() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::new(tmp.path(), 60, MAX_UPLOAD);
    upload_ok(c.upload(ALICE, &["--name", "small"], &small_csv(tmp.path())));
    let he = train(&c, TripleKind::He).await;
    let ot = train(&c, TripleKind::Ot).await;
    assert_eq!(he.dim(), (2, 1));
    let d = (&he - &ot).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(d < TOL, "he {he:?} vs ot {ot:?}");
    assert!(he.iter().any(|v| v.abs() > 0.05), "trained: {he:?}");
}
