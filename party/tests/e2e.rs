//! End-to-end tests: two real `party serve` processes on loopback, `share-upload` and
//! `party train` as clients.
//!
//! The slowest test is `e2e_upload_train_reveal_breast_cancer` (a secure logistic regression with
//! OT triples between two processes, tens of seconds on a loaded machine).

mod support;

use party::client::{Client, ClientError};
use party::proto::{ClientRequest, ErrorCode, JobSpec, ModelKind, Reply, TripleKind};
use party::transport::{Identity, PeerCert};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

/// Largest upload the clusters of these tests accept.
const MAX_UPLOAD: u64 = 10_000_000;

/// Standardized breast cancer, split 80/20 with a fixed seed: (train CSV path, test x, test y).
fn cancer_files(
    dir: &Path,
) -> (
    PathBuf,
    ndarray::Array2<f64>,
    Vec<usize>,
    ndarray::Array2<f64>,
) {
    let ds = datasets::tabular::breast_cancer().unwrap();
    let (tr, te) = datasets::split::stratified_split(&ds, 0.2, 7).unwrap();
    let st = datasets::preprocess::Standardizer::fit(&tr.x);
    let xtr = st.transform(&tr.x).unwrap();
    let xte = st.transform(&te.x).unwrap();
    let ytr = tr.y.clone().insert_axis(ndarray::Axis(1));
    let full = ndarray::concatenate![ndarray::Axis(1), xtr, ytr];
    let p = dir.join("cancer-train.csv");
    datasets::csv::write_csv(&p, None, &full).unwrap();
    (p, xte, te.labels().unwrap(), full)
}

/// Slow (secure training between two processes): upload, train with OT triples and an intercept
/// (`party train`'s default), reveal as a `dyad-model/1` file and as CSV; the revealed model's
/// accuracy matches the plaintext twin's (on the data with its ones column) within 1 pp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_upload_train_reveal_breast_cancer() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::new(tmp.path(), 60, MAX_UPLOAD);
    let (train, xte, yte, full) = cancer_files(tmp.path());
    let out = c.upload(ALICE, &["--name", "cancer"], &train);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert_eq!(id.len(), 32);
    assert_eq!(c.states(0), vec![("committed".into(), "cancer".into())]);
    assert_eq!(c.states(1), vec![("committed".into(), "cancer".into())]);

    let wfile = tmp.path().join("model.json");
    let t = Instant::now();
    let (epochs, batch, lr, seed) = (3u64, 64u64, 0.125, 11u64);
    let out = run_ok(Command::new(PARTY).args([
        "train",
        "--p0",
        &c.client[0].to_string(),
        "--p0-cert",
        c.cert(0).to_str().unwrap(),
        "--p1",
        &c.client[1].to_string(),
        "--p1-cert",
        c.cert(1).to_str().unwrap(),
        "--token",
        ALICE,
        "--dataset",
        "cancer",
        "--model",
        "logreg",
        "--epochs",
        &epochs.to_string(),
        "--batch",
        &batch.to_string(),
        "--lr",
        &lr.to_string(),
        "--seed",
        &seed.to_string(),
        "--triples",
        "ot",
        "--reveal",
        wfile.to_str().unwrap(),
    ]));
    eprintln!(
        "party train + reveal took {:.2} s\n{out}",
        t.elapsed().as_secs_f64()
    );
    // Both parties' measurements are printed.
    assert!(
        out.contains("P0: offline") && out.contains("P1: offline"),
        "{out}"
    );
    let model = party::linear_model::LinearModel::read(&wfile).unwrap();
    assert_eq!(model.meta.kind, "logreg");
    assert_eq!(model.meta.layers, vec![30, 1]);
    assert!(model.meta.intercept);
    assert_eq!(
        (model.meta.dataset.as_str(), model.meta.rows),
        ("cancer", full.nrows() as u64)
    );
    assert_eq!(model.meta.triples, TripleKind::Ot);
    assert_eq!((model.meta.epochs, model.meta.batch_size), (epochs, batch));
    let w = model.weights[0].clone();
    assert_eq!(w.dim(), (31, 1));
    // The same model as the CSV weight column.
    let csv = tmp.path().join("w.csv");
    let job_id = model.job.to_string();
    let reveal = ["reveal", "--job", &job_id, "--out", csv.to_str().unwrap()];
    run_ok(Command::new(PARTY).args(reveal).args(c.conn_args(ALICE)));
    let back = datasets::csv::read_csv(&csv).unwrap().data;
    assert_eq!(back.dim(), w.dim());
    assert!(back.iter().zip(&w).all(|(a, b)| (a - b).abs() < 1e-9));

    // The plaintext twin: same data, schedule, hyper-parameters and zero initial weights.
    let w_plain = twin_logreg(&full, (epochs, batch, lr, seed), true).await;
    let (a, b) = (
        sign_accuracy(&w, &xte, &yte),
        sign_accuracy(&w_plain, &xte, &yte),
    );
    eprintln!("test accuracy: secure {a:.2}%, plaintext twin {b:.2}%");
    assert!((a - b).abs() <= 1.0, "secure {a}% vs plaintext {b}%");
    assert!(a > 90.0, "secure accuracy {a}%");

    // Another client cannot reveal alice's model nor train on her dataset.
    let mut bob = c.client(0, BOB).await.unwrap();
    let r = bob
        .request(&ClientRequest::Submit(JobSpec {
            model: ModelKind::Logreg,
            dataset: "cancer".into(),
            learning_rate: 0.125,
            batch_size: 64,
            epochs: 1,
            schedule_seed: 1,
            triples: TripleKind::Ot,
            intercept: false,
            ot_extension: Default::default(),
        }))
        .await;
    assert!(
        matches!(
            r,
            Err(ClientError::Refused {
                code: ErrorCode::NotFound,
                ..
            })
        ),
        "{r:?}"
    );
    let job = c
        .log_text(0)
        .lines()
        .find_map(|l| l.split("job ").nth(1)?.split(' ').next().map(String::from))
        .unwrap();
    let job = party::proto::EntryId::parse(&job).unwrap();
    let r = bob.model_share(job).await;
    assert!(
        matches!(
            r,
            Err(ClientError::Refused {
                code: ErrorCode::Forbidden,
                ..
            })
        ),
        "{r:?}"
    );
    // Delete (owner only) removes it on both parties.
    let mut alice = c.client(0, ALICE).await.unwrap();
    assert_eq!(
        alice
            .request(&ClientRequest::Delete {
                name: "cancer".into()
            })
            .await
            .unwrap(),
        Reply::Done
    );
    assert!(c.states(1).iter().all(|(_, n)| n != "cancer"));
}

/// What the parties report at the end of a job: both phases took time and traffic, and what one
/// party sent on the online channel is exactly what the other received (same framing layer).
fn check_job_stats(stats: &[party::proto::JobStats; 2]) {
    let [p0, p1] = stats;
    for s in stats {
        assert!(s.online_s > 0.0 && s.offline_s > 0.0, "{stats:?}");
        assert!(s.offline.bytes_sent > 0 && s.online.rounds > 0, "{stats:?}");
    }
    assert_eq!(p0.online.bytes_sent, p1.online.bytes_received, "{stats:?}");
    assert_eq!(p1.online.bytes_sent, p0.online.bytes_received, "{stats:?}");
    assert_eq!(
        p0.online.frames_sent, p1.online.frames_received,
        "{stats:?}"
    );
}

fn small_csv(dir: &Path) -> PathBuf {
    let p = dir.join("small.csv");
    let mut s = String::from("a,b,label\n");
    for i in 0..50 {
        s.push_str(&format!(
            "{},{},{}\n",
            i as f64 / 10.0,
            -(i as f64) / 7.0,
            i % 2
        ));
    }
    std::fs::write(&p, s).unwrap();
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_refusals_and_malformed_frames() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::new(tmp.path(), 30, MAX_UPLOAD);
    // Unknown token.
    let r = c.client(0, "not-a-token").await;
    assert!(
        matches!(
            r,
            Err(ClientError::Refused {
                code: ErrorCode::Unauthorized,
                ..
            })
        ),
        "{r:?}"
    );
    c.wait_log(0, "refused client", 1);
    // A client registered by certificate fingerprint is admitted without a token; another
    // certificate is not.
    let p1 = PeerCert::load(&c.cert(1)).unwrap();
    let carol = Identity::load(&tmp.path().join("carol")).unwrap();
    let cc = Client::connect(c.client[1], &p1, &carol, None)
        .await
        .unwrap();
    assert_eq!(cc.role(), 1);
    let stranger = Identity::generate("carol").unwrap();
    let r = Client::connect(c.client[1], &p1, &stranger, None).await;
    assert!(
        matches!(
            r,
            Err(ClientError::Refused {
                code: ErrorCode::Unauthorized,
                ..
            })
        ),
        "{r:?}"
    );
    c.wait_log(1, "refused client", 1);
    // A third process posing as P1 with another certificate.
    let fake = Identity::generate("dyad-p1").unwrap();
    let p0 = PeerCert::load(&c.cert(0)).unwrap();
    let opts = party::transport::TransportOptions {
        connect_timeout: Duration::from_secs(2),
        ..Default::default()
    };
    let r = party::transport::connect(
        party::transport::TransportKind::TlsTcp,
        SocketAddr::from(([127, 0, 0, 1], c.peer_port)),
        fake,
        &p0,
        &opts,
    )
    .await;
    if let Ok(link) = r {
        // TLS 1.3 may complete on the client side before the server's verdict arrives.
        assert!(link.next_channel().await.is_err());
    }
    c.wait_log(0, "refused peer connection", 1);
    // Malformed and oversized frames: the connection is answered or closed, the server goes on.
    let mut raw = c.client(0, ALICE).await.unwrap();
    use mpc::net::Channel;
    raw.channel().send_frame(vec![0xff; 40]).await.unwrap();
    raw.channel().flush().await.unwrap();
    assert!(matches!(
        raw.recv().await,
        Err(ClientError::Refused {
            code: ErrorCode::BadRequest,
            ..
        })
    ));
    // The server may already be closing this connection, so the write itself may fail (broken
    // pipe); either way the oversized frame must not be answered.
    let sent = raw.channel().send_frame(vec![0u8; 200_000]).await;
    let _ = raw.channel().flush().await;
    assert!(sent.is_err() || raw.recv().await.is_err());
    // Oversized upload.
    let mut up = c.client(1, ALICE).await.unwrap();
    let r = up
        .upload(
            party::proto::UploadHeader {
                id: party::proto::EntryId::random(),
                name: "big".into(),
                rows: 1_000_000,
                cols: 2,
                label_column: 1,
                frac_bits: mpc::FracBits::new(16).unwrap(),
                form: party::proto::ShareForm::Matrix,
                digest: [0; 32],
                len: 16_000_000,
            },
            &[],
            &|_| {},
        )
        .await;
    assert!(matches!(r, Err(ClientError::Refused { .. })), "{r:?}");
    // Still serving: a normal upload works.
    let out = c.upload(ALICE, &["--name", "small"], &small_csv(tmp.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut alice = c.client(0, ALICE).await.unwrap();
    match alice.request(&ClientRequest::List).await.unwrap() {
        Reply::Entries(e) => assert_eq!(e.len(), 1),
        r => panic!("{r:?}"),
    }
    // Bad values are refused by share-upload, naming line, column and value.
    let bad = tmp.path().join("bad.csv");
    std::fs::write(&bad, "1,2,0\n3,1e20,1\n").unwrap();
    let out = c.upload(ALICE, &["--name", "bad"], &bad);
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        msg.contains("line 2") && msg.contains("column 2") && msg.contains("100000000000000000000"),
        "{msg}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_crashes_during_upload_and_commit_leave_stores_consistent() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(tmp.path(), 30, MAX_UPLOAD);
    let csv = small_csv(tmp.path());
    // P0 dies right after deciding to commit (before P1 heard of it).
    c.kill9(0);
    c.start_with_fault(0, Some("abort-after-decide"));
    c.wait_log(0, "peer connected from", 2);
    let out = c.upload(ALICE, &["--name", "d1"], &csv);
    assert!(!out.status.success());
    c.wait_exit(0);
    assert_eq!(c.states(0), vec![("decided".into(), "d1".into())]);
    assert_eq!(c.states(1), vec![("prepared".into(), "d1".into())]);
    c.start(0);
    c.wait_log(0, "recovery: finished commit", 1);
    assert_eq!(c.states(0), vec![("committed".into(), "d1".into())]);
    assert_eq!(c.states(1), vec![("committed".into(), "d1".into())]);

    // P1 dies (kill -9 equivalent: abort) right after storing its half of an upload.
    c.kill9(1);
    c.start_with_fault(1, Some("abort-after-prepare"));
    c.wait_log(0, "peer connected from", 3);
    let out = c.upload(ALICE, &["--name", "d2"], &csv);
    assert!(!out.status.success());
    c.wait_exit(1);
    c.start(1);
    c.wait_log(1, "recovery: discarded", 1);
    // P0 never committed d2; whatever P0 prepared stays invisible and P1 discarded its half.
    assert!(c.states(1).iter().all(|(_, n)| n != "d2"));
    let mut alice = c.client(0, ALICE).await.unwrap();
    match alice.request(&ClientRequest::List).await.unwrap() {
        Reply::Entries(e) => assert_eq!(
            e.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
            vec!["d1"]
        ),
        r => panic!("{r:?}"),
    }
    // A retry of the same name then succeeds on both.
    let out = c.upload(ALICE, &["--name", "d2"], &csv);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(c.states(1).contains(&("committed".into(), "d2".into())));

    // kill -9 of P1 (SIGKILL) and restart: nothing lost, nothing partial.
    c.kill9(1);
    c.start(1);
    c.wait_log(0, "peer connected from", 4);
    let names: Vec<_> = c.states(1).into_iter().map(|(_, n)| n).collect();
    assert_eq!(names, vec!["d1", "d2"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_vanished_peer_fails_the_job_within_the_timeout() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::new(tmp.path(), 2, MAX_UPLOAD);
    let out = c.upload(ALICE, &["--name", "small"], &small_csv(tmp.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = c.procs[1].as_ref().unwrap().id().to_string();
    run_ok(Command::new("kill").args(["-STOP", &pid]));
    let mut alice = c.client(0, ALICE).await.unwrap();
    let t = Instant::now();
    let r = alice
        .request(&ClientRequest::Submit(JobSpec {
            model: ModelKind::Logreg,
            dataset: "small".into(),
            learning_rate: 0.125,
            batch_size: 16,
            epochs: 1,
            schedule_seed: 1,
            triples: TripleKind::Ot,
            intercept: false,
            ot_extension: Default::default(),
        }))
        .await;
    let took = t.elapsed();
    run_ok(Command::new("kill").args(["-CONT", &pid]));
    assert!(matches!(r, Err(ClientError::Refused { .. })), "{r:?}");
    assert!(
        took < Duration::from_secs(c.timeout_s * 5),
        "failed after {took:?}"
    );
}

/// Dealer triples: both parties connect to a `dealer` process named in their configurations.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_job_with_dealer_triples() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(tmp.path(), 30, MAX_UPLOAD);
    let ddir = tmp.path().join("dealer");
    run_ok(Command::new(env!("CARGO_BIN_EXE_dealer")).args([
        "init",
        "--dir",
        ddir.to_str().unwrap(),
    ]));
    let port = free_port();
    let mut dealer = Command::new(env!("CARGO_BIN_EXE_dealer"))
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--cert-dir",
            ddir.to_str().unwrap(),
            "--p0-cert",
            c.cert(0).to_str().unwrap(),
            "--p1-cert",
            c.cert(1).to_str().unwrap(),
            "--transport",
            "tls-tcp",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(dealer.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().contains("dealer listening"));
    for id in 0..2 {
        let p = tmp.path().join(format!("p{id}/party.toml"));
        let mut cfg = std::fs::read_to_string(&p).unwrap();
        cfg.push_str(&format!(
            "[dealer]\naddress = \"127.0.0.1:{port}\"\ncertificate = \"{}\"\n",
            ddir.join("cert.pem").display()
        ));
        std::fs::write(&p, cfg).unwrap();
        c.kill9(id);
    }
    c.start(0);
    c.start(1);
    c.wait_log(0, "peer connected from", 2);
    let out = c.upload(ALICE, &["--name", "small"], &small_csv(tmp.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut alice = c.client(0, ALICE).await.unwrap();
    alice
        .send(&ClientRequest::Submit(JobSpec {
            model: ModelKind::Linreg,
            dataset: "small".into(),
            learning_rate: 0.125,
            batch_size: 16,
            epochs: 2,
            schedule_seed: 3,
            triples: TripleKind::Dealer,
            intercept: false,
            ot_extension: Default::default(),
        }))
        .await
        .unwrap();
    let job = loop {
        match alice.recv().await.unwrap() {
            Reply::Progress { .. } => {}
            Reply::JobDone { job, stats } => {
                check_job_stats(&stats);
                break job;
            }
            r => panic!("{r:?}"),
        }
    };
    let (s0, f) = alice.model_share(job).await.unwrap();
    let (s1, _) = c
        .client(1, ALICE)
        .await
        .unwrap()
        .model_share(job)
        .await
        .unwrap();
    let fp = mpc::FixedPoint::new(f);
    let w = fp.decode_matrix(&mpc::share::reconstruct(&s0, &s1).view());
    assert_eq!(w.dim(), (2, 1));
    assert!(w.iter().all(|v| v.is_finite() && v.abs() < 100.0), "{w:?}");
    let _ = dealer.kill();
    let _ = dealer.wait();
}
