//! Fault tests with real processes and SIGKILL (`Child::kill`): the uploader killed mid-stream,
//! a party killed while it receives an upload, a party killed during a training job. After each,
//! nothing is visible or half-stored on either party, partial files are gone (at once, or after
//! the crashed party restarts), and a fresh upload or a retried job succeeds.

mod support;

use ndarray::Array2;
use party::client::{Client, ClientError};
use party::proto::{ClientRequest, EntryId, ErrorCode, JobSpec, ModelKind, Reply, TripleKind};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;

/// A 4 MiB share (32,768 × 16): at 1 MB/s the upload to P1 streams for about four seconds.
fn big_npy(dir: &Path) -> PathBuf {
    let x = Array2::from_shape_fn((32_768, 16), |(i, j)| ((i + j) % 97) as f64 / 97.0);
    let p = dir.join("big.npy");
    datasets::npy::write_npy(&p, &x).unwrap();
    p
}

fn small_csv(dir: &Path, rows: usize) -> PathBuf {
    let p = dir.join(format!("small{rows}.csv"));
    let mut s = String::from("a,b,c,label\n");
    for i in 0..rows {
        let (a, b) = ((i % 17) as f64 / 8.0 - 1.0, (i % 5) as f64 / 2.0 - 1.0);
        s.push_str(&format!(
            "{a},{b},{},{}\n",
            (i % 3) as f64 - 1.0,
            u8::from(a + b > 0.0)
        ));
    }
    std::fs::write(&p, s).unwrap();
    p
}

const PACE: &str = "1000000";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_uploader_killed_mid_stream_leaves_nothing_on_either_party() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(tmp.path(), 10, 64 << 20);
    let big = big_npy(tmp.path());
    let mut up = c
        .upload_cmd(ALICE, &["--name", "big", "--max-rate", PACE], &big)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    c.wait_log(1, "receiving upload", 1);
    c.wait_until("a partial upload at P1", || !c.partial_files(1).is_empty());
    c.wait_until("P0 to prepare its half", || {
        c.log_lines(0, &["prepared", "(big) of alice"]) >= 1
    });
    up.kill().unwrap();
    up.wait().unwrap();
    // P1 drops the partial file as the stream breaks; P0 aborts the seed it holds as prepared.
    c.wait_log(1, "upload failed", 1);
    c.wait_log(0, "the session ended uncommitted", 1);
    for id in 0..2 {
        assert_eq!(c.entries(id), vec![], "P{id}");
        assert_eq!(c.partial_files(id), Vec::<PathBuf>::new(), "P{id}");
    }
    let mut alice = c.client(0, ALICE).await.unwrap();
    assert_eq!(
        alice.request(&ClientRequest::List).await.unwrap(),
        Reply::Entries(vec![])
    );
    drop(alice);
    // Restarting both changes nothing; a fresh upload of the same name then succeeds.
    c.kill9(0);
    c.kill9(1);
    c.start(0);
    c.start(1);
    c.wait_linked(2);
    for id in 0..2 {
        assert_eq!(c.entries(id), vec![], "P{id}");
        assert_eq!(c.partial_files(id), Vec::<PathBuf>::new(), "P{id}");
    }
    let small = small_csv(tmp.path(), 40);
    upload_ok(c.upload(ALICE, &["--name", "big"], &small));
    let want = datasets::csv::read_csv(&small).unwrap().data;
    assert_close(&c.reconstruct("big"), &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_killed_during_an_upload_recovers_to_nothing_and_a_retry_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(tmp.path(), 5, 64 << 20);
    let big = big_npy(tmp.path());

    // P1 dies while it receives the matrix share.
    let up = c
        .upload_cmd(ALICE, &["--name", "big", "--max-rate", PACE], &big)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.wait_log(1, "receiving upload", 1);
    c.wait_until("a partial upload at P1", || !c.partial_files(1).is_empty());
    c.wait_until("P0 to prepare its half", || {
        c.log_lines(0, &["prepared", "(big) of alice"]) >= 1
    });
    c.kill9(1);
    let e = upload_err(up.wait_with_output().unwrap());
    assert!(e.contains("P1"), "{e}");
    assert_eq!(
        c.partial_files(1).len(),
        1,
        "the crash leaves the partial file"
    );
    c.wait_log(0, "the session ended uncommitted", 1);
    assert_eq!(c.entries(0), vec![]);
    c.start(1);
    c.wait_linked(2);
    assert_eq!(
        c.partial_files(1),
        Vec::<PathBuf>::new(),
        "removed on restart"
    );
    assert_eq!(c.entries(1), vec![]);

    // P0 dies with its half prepared while P1 still receives: P1 stores its half as prepared,
    // the uploader cannot commit; P0's restart aborts its half and P1 discards its own when it
    // reconnects.
    let up = c
        .upload_cmd(ALICE, &["--name", "big", "--max-rate", PACE], &big)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.wait_log(1, "receiving upload", 2);
    c.wait_until("P0 to prepare its half", || {
        c.log_lines(0, &["prepared", "(big) of alice"]) >= 2
    });
    c.kill9(0);
    let e = upload_err(up.wait_with_output().unwrap());
    assert!(e.contains("P0"), "{e}");
    assert_eq!(
        c.entries(0),
        vec![("prepared".into(), "big".into(), 32_768)]
    );
    assert_eq!(
        c.entries(1),
        vec![("prepared".into(), "big".into(), 32_768)]
    );
    c.start(0);
    c.wait_log(0, "recovery: aborting undecided upload", 1);
    c.wait_log(1, "recovery: discarded", 1);
    for id in 0..2 {
        assert_eq!(c.entries(id), vec![], "P{id}");
        assert_eq!(c.partial_files(id), Vec::<PathBuf>::new(), "P{id}");
    }
    let small = small_csv(tmp.path(), 40);
    upload_ok(c.upload(ALICE, &["--name", "big"], &small));
    assert_close(
        &c.reconstruct("big"),
        &datasets::csv::read_csv(&small).unwrap().data,
    );
}

fn long_job() -> JobSpec {
    JobSpec {
        model: ModelKind::Logreg,
        dataset: "d".into(),
        learning_rate: 0.125,
        batch_size: 2,
        epochs: 8,
        schedule_seed: 3,
        triples: TripleKind::Ot,
        intercept: false,
        ot_extension: Default::default(),
    }
}

/// Submits `spec`, waits for its first progress report.
async fn start_job(alice: &mut Client, spec: JobSpec) {
    alice.send(&ClientRequest::Submit(spec)).await.unwrap();
    match alice.recv().await {
        Ok(Reply::Progress { .. }) => {}
        r => panic!("expected progress, got {r:?}"),
    }
}

/// Runs `spec` to the end; returns the job.
async fn run_job(c: &Cluster, spec: JobSpec) -> EntryId {
    let mut alice = c.client(0, ALICE).await.unwrap();
    alice.send(&ClientRequest::Submit(spec)).await.unwrap();
    loop {
        match alice.recv().await.unwrap() {
            Reply::Progress { .. } => {}
            Reply::JobDone { job, .. } => return job,
            r => panic!("{r:?}"),
        }
    }
}

fn models(c: &Cluster, id: usize) -> Vec<(String, String, u64)> {
    c.entries(id)
        .into_iter()
        .filter(|(_, n, _)| n.starts_with("model-"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_party_killed_during_training_fails_the_job_in_time_and_a_retry_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Cluster::new(tmp.path(), 5, 64 << 20);
    upload_ok(c.upload(ALICE, &["--name", "d"], &small_csv(tmp.path(), 200)));
    let quick = JobSpec {
        batch_size: 64,
        epochs: 1,
        ..long_job()
    };

    // P1 killed during the online phase: P0 fails the job with a message naming it.
    let mut alice = c.client(0, ALICE).await.unwrap();
    start_job(&mut alice, long_job()).await;
    let t = Instant::now();
    c.kill9(1);
    let r = loop {
        match alice.recv().await {
            Ok(Reply::Progress { .. }) => {}
            other => break other,
        }
    };
    let took = t.elapsed();
    eprintln!("P1 killed: the job failed after {took:?}: {r:?}");
    match r {
        Err(ClientError::Refused {
            code: ErrorCode::Peer,
            message,
        }) => assert!(
            message.contains("job") && message.contains("failed"),
            "{message}"
        ),
        r => panic!("{r:?}"),
    }
    assert!(took < Duration::from_secs(c.timeout_s + 5), "{took:?}");
    assert_eq!(models(&c, 0), vec![], "no half-stored model at P0");
    c.start(1);
    c.wait_linked(2);
    assert_eq!(models(&c, 1), vec![]);
    let job = run_job(&c, quick.clone()).await;
    for id in 0..2 {
        assert_eq!(
            models(&c, id),
            vec![("committed".into(), format!("model-{job}"), 3)],
            "P{id}"
        );
    }

    // P0 killed during the online phase: P1 fails its half within the timeout, keeps nothing,
    // and the retried job completes after P0's restart.
    let mut alice = c.client(0, ALICE).await.unwrap();
    start_job(&mut alice, long_job()).await;
    let failed = c.log_lines(1, &["job", "failed"]);
    let t = Instant::now();
    c.kill9(0);
    // Progress reports already in flight arrive, then the connection's end.
    loop {
        match alice.recv().await {
            Ok(Reply::Progress { .. }) => {}
            Ok(r) => panic!("the job went on without P0: {r:?}"),
            Err(_) => break,
        }
    }
    c.wait_until("P1 to fail the job", || {
        c.log_lines(1, &["job", "failed"]) > failed
    });
    let took = t.elapsed();
    eprintln!("P0 killed: P1 failed the job after {took:?}");
    assert!(took < Duration::from_secs(c.timeout_s + 5), "{took:?}");
    c.start(0);
    c.wait_linked(3);
    let job2 = run_job(&c, quick).await;
    for id in 0..2 {
        let m = models(&c, id);
        assert_eq!(m.len(), 2, "P{id}: {m:?}");
        assert!(m.iter().all(|(s, _, _)| s == "committed"), "P{id}: {m:?}");
        assert!(
            m.iter().any(|(_, n, _)| n == &format!("model-{job2}")),
            "P{id}"
        );
        assert_eq!(c.partial_files(id), Vec::<PathBuf>::new(), "P{id}");
    }
    // The retried model reveals from both shares.
    let (s0, f) = c
        .client(0, ALICE)
        .await
        .unwrap()
        .model_share(job2)
        .await
        .unwrap();
    let (s1, _) = c
        .client(1, ALICE)
        .await
        .unwrap()
        .model_share(job2)
        .await
        .unwrap();
    let fp = mpc::FixedPoint::new(f);
    let w = fp.decode_matrix(&mpc::share::reconstruct(&s0, &s1).view());
    assert!(w.iter().all(|v| v.is_finite() && v.abs() < 100.0), "{w:?}");
}
