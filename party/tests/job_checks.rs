//! Jobs checked at submission, between two real `party serve` processes: a job that cannot run
//! is refused by P0 before it contacts P1, or by P1 in its answer to P0's `Job` request, with a
//! `BadRequest` naming the parameter, its value and the limit — never a peer error after the peer
//! timeout. A job with a learning rate that is not a power of two then runs to the end.

mod support;

use party::client::ClientError;
use party::proto::{ErrorCode, JobSpec, MlpSpec, ModelKind, TripleKind};
use std::path::{Path, PathBuf};
use support::*;

/// Peer timeout of the cluster: far longer than a refusal may take, so a refusal that waited for
/// it would show as a `Peer` error naming the timeout.
const TIMEOUT_S: u64 = 120;

/// 50 rows of two features and a 0/1 label.
fn small_csv(dir: &Path) -> PathBuf {
    let p = dir.join("small.csv");
    let mut s = String::from("a,b,label\n");
    for i in 0..50 {
        let y = i % 2;
        let sign = if y == 0 { -1.0 } else { 1.0 };
        s.push_str(&format!(
            "{},{},{y}\n",
            sign * (0.5 + (i % 7) as f64 / 10.0),
            -sign * (i % 5) as f64 / 8.0
        ));
    }
    std::fs::write(&p, s).unwrap();
    p
}

fn spec(model: ModelKind, triples: TripleKind) -> JobSpec {
    JobSpec {
        model,
        dataset: "small".into(),
        learning_rate: 0.3,
        batch_size: 10,
        epochs: 1,
        schedule_seed: 5,
        triples,
        intercept: false,
        ot_extension: Default::default(),
    }
}

/// The refusal's message; asserts it is a `BadRequest` (not a peer failure or timeout).
fn bad_request(r: Result<impl std::fmt::Debug, ClientError>) -> String {
    match r {
        Err(ClientError::Refused {
            code: ErrorCode::BadRequest,
            message,
        }) => {
            assert!(!message.contains("timeout"), "{message}");
            message
        }
        other => panic!("expected a BadRequest refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_that_cannot_run_are_refused_at_submission() {
    let tmp = tempfile::tempdir().unwrap();
    // P0 has a dealer configured (never contacted here), P1 none: a dealer job passes P0's
    // checks and is refused by P1's.
    let dealer = format!(
        "[dealer]\naddress = \"127.0.0.1:{}\"\ncertificate = \"{}\"\n",
        free_port(),
        tmp.path().join("p0/cert.pem").display()
    );
    let c = Cluster::with_sections(tmp.path(), TIMEOUT_S, 1 << 20, [&dealer, ""]);
    upload_ok(c.upload(ALICE, &["--name", "small"], &small_csv(tmp.path())));
    let mut alice = c.client(0, ALICE).await.unwrap();
    let mut none = |_| {};

    // P0 refuses an MLP whose input width is not the dataset's feature count, naming both.
    let mlp = |layers: Vec<u32>| {
        ModelKind::Mlp(MlpSpec {
            layers,
            softmax: ml::backend::SoftmaxKind::Relu,
            init_seed: 3,
        })
    };
    let wrong = spec(mlp(vec![30, 8, 2]), TripleKind::Ot);
    let m = bad_request(alice.submit(&wrong, &mut none).await);
    assert!(
        m.contains("mlp layers[0] (input width) = 30") && m.contains("the 2 feature columns"),
        "{m}"
    );
    assert!(!m.contains("P1"), "P0 refused it on its own: {m}");

    // P0 refuses a batch larger than the dataset, naming the rows.
    let mut big = spec(ModelKind::Logreg, TripleKind::Ot);
    big.batch_size = 64;
    let m = bad_request(alice.submit(&big, &mut none).await);
    assert!(m.contains("batch_size = 64") && m.contains("1..=50"), "{m}");

    // P1 refuses dealer triples it has no dealer for; P0 passes its answer on at once.
    let dealt = spec(ModelKind::Linreg, TripleKind::Dealer);
    let m = bad_request(alice.submit(&dealt, &mut none).await);
    assert!(
        m.contains("P1 refused the job") && m.contains("triples = dealer"),
        "{m}"
    );
    assert!(m.contains("P1 has no [dealer]"), "{m}");
    c.wait_log(1, "refused job", 1);

    // The same connection then runs a valid MLP job with α = 0.3 (not a power of two).
    let ok = spec(mlp(vec![2, 4, 2]), TripleKind::Ot);
    let mut steps = 0;
    let done = alice
        .submit(&ok, &mut |p: party::client::JobProgress| steps = p.step)
        .await
        .unwrap();
    assert_eq!(steps, 5);
    assert!(done.stats[0].online.rounds > 0 && done.stats[1].online.rounds > 0);
}
