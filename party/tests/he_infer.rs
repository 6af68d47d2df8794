//! End-to-end tests of encrypted inference: a real `party serve` process on loopback with an
//! `[inference]` section, the real `he-infer` binary and the library client.
//!
//! The served model is a tiny random-weight two-block ST-GCN (widths 1, 2; V = 5 joints on a
//! chain, T = 4 frames, C = 3) with every activation pruned, so its depth is 2 (four maps fused in
//! pairs across the pruned sites, `hegcn::open_maps`) + 2 (dense layer and logit mask) = 4 and
//! the party tailors real 128-bit parameters to it, `N14_L4_S40_Q50_P3x50_D2_128BIT`
//! (`hegcn::choose_params`; the binaries never use insecure parameters). The committed
//! BodyPose/Mocap-15 models (depth 14) need N = 2^15 (`N15_L14_S40_Q50_P5x50_D3_128BIT`); serving the
//! BodyPose one, and a BodyPose-shaped tiny model, is in `he_infer_pose.rs`. The server harness is
//! `support::serving`.
//!
//! Tolerance: `max |encrypted − plaintext logit| ≤ 1e-6 + 8·sd` (`support::serving::tol`), `sd` the flood's
//! standard deviation the server announces (`ModelInfo::flood_sd`). The evaluation error is
//! ~1e-8 (CKKS at Δ = 2^40 on logits of magnitude ~0.05); the party's noise flood dominates: the
//! tiny model is served with `eval_error_bound = 2^-24` (above its measured error), so the flood
//! hides `B = 2Δ·2^-24 + 19·(2N + 1) ≈ 2^19.5` (the fresh public-key encryption's bound
//! dominates) and adds a logit error of sd ≈ B·√(N/6)/Δ ≈ 3.6e-5 at N = 2^14. A fixed 1e-4 was
//! under 3 sd and failed about once in 25 runs; 8 sd fails with probability ~1e-15 per logit.

mod support;

use mpc::net::Channel;
use party::client::{Client, ClientError};
use party::infer::{self, InferReply, InferRequest};
use party::proto::{ClientRequest, ErrorCode, Reply};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;
use support::serving::{run_ok, tol, Server, ALICE, BOB, CAROL, HE_INFER};
use support::tiny_stgcn::{self, plain_logits, sample, SHAPE};

fn assert_refused<T: std::fmt::Debug>(
    r: Result<T, infer::InferError>,
    want: ErrorCode,
    text: &str,
) {
    match r {
        Err(infer::InferError::Client(ClientError::Refused { code, message })) => {
            assert_eq!(code, want, "{message}");
            assert!(message.contains(text), "{message:?} lacks {text:?}");
        }
        other => panic!("expected a {want:?} refusal, got {other:?}"),
    }
}

/// `he-infer` as a process: keys, upload, encrypted inference, decryption; its top class and
/// logits match the plaintext model run in the test.
#[test]
fn he_infer_binary_matches_the_plaintext_model() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start(tmp.path());
    let x = sample(1);
    let want = plain_logits(&s.model, &x);
    // CSV: one line per frame, joint-major x,y,z.
    let (c, t, v, _) = SHAPE;
    let mut csv = String::from("# a test clip\n");
    for ti in 0..t {
        let row: Vec<String> = (0..v)
            .flat_map(|vi| (0..c).map(move |ci| (ci, vi)))
            .map(|(ci, vi)| format!("{:.17e}", x[[ci, ti, vi, 0]]))
            .collect();
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    let input = tmp.path().join("clip.csv");
    std::fs::write(&input, csv).unwrap();
    let client_toml = tmp.path().join("alice.toml");
    std::fs::write(
        &client_toml,
        format!(
            "server = \"{}\"\nserver_cert = \"p0/cert.pem\"\ntoken = \"{ALICE}\"\n",
            s.addr
        ),
    )
    .unwrap();
    let t0 = Instant::now();
    let out = run_ok(Command::new(HE_INFER).args([
        "--client",
        client_toml.to_str().unwrap(),
        "--model",
        "tiny",
        "--input",
        input.to_str().unwrap(),
        "--top",
        "4",
        "--check",
        s.model_json.to_str().unwrap(),
    ]));
    eprintln!("he-infer took {:.2}s:\n{out}", t0.elapsed().as_secs_f64());
    assert!(
        out.contains("preset N14_L4_S40_Q50_P3x50_D2_128BIT"),
        "{out}"
    );
    // "... adds a logit error of sd 3.58e-5": the tolerance follows the announced flood.
    let flood_sd: f64 = out
        .split("logit error of sd ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no flood sd in {out}"));
    let tol = tol(flood_sd);
    // The printed ranking: "  1. name   value".
    let ranked: Vec<(String, f64)> = out
        .lines()
        .filter_map(|l| {
            let (rank, rest) = l.trim().split_once(". ")?;
            rank.parse::<usize>().ok()?;
            let mut it = rest.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.parse().ok()?))
        })
        .collect();
    assert_eq!(ranked.len(), 4, "{out}");
    let names = tiny_stgcn::CLASSES;
    let best = infer::top_k(&want, 1)[0];
    assert_eq!(ranked[0].0, names[best], "{out}");
    for (name, val) in &ranked {
        let q = names.iter().position(|n| n == name).unwrap();
        assert!((val - want[q]).abs() <= tol, "{name}: {val} vs {}", want[q]);
    }
    let err: f64 = out
        .split("max |logit error| = ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .and_then(|e| e.parse().ok())
        .unwrap_or_else(|| panic!("no check line in {out}"));
    assert!(err <= tol, "{out}");
    assert!(out.contains(": agrees"), "{out}");
    // The session was closed at the end, and the server logged the inference.
    let log = s.log();
    assert!(log.contains("closed"), "{log}");
    assert!(log.contains("inference on \"tiny\""), "{log}");

    // An input file with a bad value is refused with file, line, column and value.
    std::fs::write(&input, "1,2,3\n").unwrap();
    let bad = Command::new(HE_INFER)
        .args([
            "--client",
            client_toml.to_str().unwrap(),
            "--model",
            "tiny",
            "--input",
            input.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("clip.csv:1: 3 values, the model needs 15 per frame"),
        "{err}"
    );
}

/// Sessions are bound to the client that opened them; limits and validation refuse bad
/// uploads without disturbing the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_bound_to_their_client_and_uploads_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Server::start(tmp.path());
    let mut alice = s.client(ALICE).await;
    let mut bob = s.client(BOB).await;

    assert_eq!(alice.list_models().await.unwrap(), vec!["tiny".to_string()]);
    let info = alice.model_info("tiny").await.unwrap();
    let params = infer::params_for(&info).unwrap();
    assert_refused(
        alice.model_info("nope").await,
        ErrorCode::NotFound,
        "no model \"nope\"",
    );

    // Bob uploads a malformed relinearization key: every announced byte is read, then refused;
    // his connection keeps working.
    let r = bob
        .client()
        .request(&ClientRequest::Inference(InferRequest::OpenSession {
            model: "tiny".into(),
            key_lens: vec![100],
            public_key_len: 50,
        }))
        .await
        .unwrap();
    assert_eq!(r, Reply::Inference(InferReply::Ready));
    for len in [100, 50] {
        bob.client()
            .channel()
            .send_frame(vec![7u8; len])
            .await
            .unwrap();
    }
    bob.client().channel().flush().await.unwrap();
    let r = bob.client().recv().await;
    match r {
        Err(ClientError::Refused { code, message }) => {
            assert_eq!(code, ErrorCode::BadRequest);
            assert!(message.contains("relinearization key"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(bob.model_info("tiny").await.unwrap(), info);

    // An oversized upload is refused before any key byte moves; the server keeps serving.
    assert_refused(
        alice
            .client()
            .request(&ClientRequest::Inference(InferRequest::OpenSession {
                model: "tiny".into(),
                key_lens: vec![1 << 20, 2 << 30],
                public_key_len: 100,
            }))
            .await
            .map_err(Into::into),
        ErrorCode::Limit,
        "exceeds max_key_bytes = 1073741824",
    );
    assert_eq!(alice.model_info("tiny").await.unwrap(), info);

    // Alice opens a session with real keys.
    let sk = Arc::new(ckks::KeyGenerator::new(&params).secret_key());
    let keys = infer::generate_keys(
        &params,
        sk.clone(),
        &info.rotation_keys(),
        info.output_level as usize,
    )
    .unwrap();
    let total = keys.total_bytes();
    let t0 = Instant::now();
    let (session, ttl) = alice.open_session("tiny", keys).await.unwrap();
    eprintln!(
        "keys: {} bytes generated and uploaded in {:.2}s",
        total,
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(ttl, 600);

    let x = sample(2);
    let cts = infer::encrypt_input(&info, &params, &sk, x.view()).unwrap();
    let limit = infer::max_ciphertext_bytes(&params);

    // Bob cannot use or close Alice's session.
    assert_refused(
        bob.infer(session, &cts, limit).await,
        ErrorCode::Forbidden,
        "belongs to another client",
    );
    assert_refused(
        bob.close_session(session).await,
        ErrorCode::Forbidden,
        "belongs to another client",
    );
    // Alice's one-session limit.
    assert_refused(
        alice
            .client()
            .request(&ClientRequest::Inference(InferRequest::OpenSession {
                model: "tiny".into(),
                key_lens: vec![1000],
                public_key_len: 100,
            }))
            .await
            .map_err(Into::into),
        ErrorCode::Limit,
        "max_sessions_per_client = 1",
    );
    // A wrong number of input ciphertexts.
    assert_refused(
        alice.infer(session, &cts[..1], limit).await,
        ErrorCode::BadRequest,
        "input ciphertexts announced",
    );

    // Alice's inference matches the plaintext model, twice in one session.
    let want = plain_logits(&s.model, &x);
    let tol = tol(info.flood_sd);
    for _ in 0..2 {
        let t0 = Instant::now();
        let r = alice.infer(session, &cts, limit).await.unwrap();
        let got = infer::decrypt_logits(&params, &sk, &r.cts, &r.positions).unwrap();
        let err = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        eprintln!(
            "request {:.3}s (server {:.3}s, {} rotations), max |logit error| {err:.2e}",
            t0.elapsed().as_secs_f64(),
            r.eval_seconds,
            r.counts.rotate
        );
        assert!(err <= tol, "{got:?} vs {want:?}");
        assert_eq!(infer::top_k(&got, 1), infer::top_k(&want, 1));
        assert!(r.counts.rotate > 0 && r.counts.rescale > 0);
    }

    // Closing ends the session for good.
    alice.close_session(session).await.unwrap();
    assert_refused(
        alice.infer(session, &cts, limit).await,
        ErrorCode::NotFound,
        "closed or expired",
    );
    let log = s.log();
    assert!(
        log.contains("refused inference of bob: session")
            && log.contains("belongs to another client"),
        "{log}"
    );
    assert!(
        log.contains("refused open session of alice: key upload of"),
        "{log}"
    );
    // The server still serves.
    assert_eq!(bob.list_models().await.unwrap(), vec!["tiny".to_string()]);
}

/// What one concurrent `OpenSession` attempt got.
#[derive(Debug)]
enum Attempt {
    /// The connection itself was refused (`Limit`), with this message.
    Connection(String),
    /// The open was refused (`Limit`), with this message.
    Open(String),
    /// The party asked for the keys: an upload in progress.
    Ready,
    /// Anything else (a failure of the test).
    Unexpected(String),
}

/// A `Limit` refusal's message, or what came instead.
fn limit_refusal<T: std::fmt::Debug>(r: Result<T, ClientError>) -> Result<String, String> {
    match r {
        Err(ClientError::Refused {
            code: ErrorCode::Limit,
            message,
        }) => Ok(message),
        other => Err(format!("{other:?}")),
    }
}

/// An `OpenSession` for `key_lens` evaluation keys and a public key of `public_key_len` bytes.
fn open_request(key_lens: &[u64], public_key_len: u64) -> ClientRequest {
    ClientRequest::Inference(InferRequest::OpenSession {
        model: "tiny".into(),
        key_lens: key_lens.to_vec(),
        public_key_len,
    })
}

fn limit_message(r: Result<Reply, ClientError>) -> String {
    limit_refusal(r).unwrap_or_else(|e| panic!("expected a Limit refusal, got {e}"))
}

/// Streams `keys` (the evaluation keys, then the public key) after `Ready` and returns the
/// opened session.
async fn send_keys(c: &mut Client, keys: &[Vec<u8>]) -> party::proto::EntryId {
    for k in keys {
        for chunk in k.chunks(party::proto::UPLOAD_CHUNK) {
            c.channel().send_frame(chunk.to_vec()).await.unwrap();
        }
    }
    c.channel().flush().await.unwrap();
    match c.recv().await.unwrap() {
        Reply::Inference(InferReply::SessionOpened { session, .. }) => session,
        other => panic!("{other:?}"),
    }
}

/// Many concurrent `OpenSession` attempts from one and from several clients against limits
/// of 8 connections (3 per client), 2 key uploads in progress (1 per client) and 2 sessions
/// (1 per client): no more uploads are in progress at once than allowed, every refusal is a
/// `Limit` naming its limit, clients that disconnect mid-upload leave no slot behind (a later
/// open succeeds), installed sessions are bounded, and the server keeps serving. The default
/// `max_key_bytes` is what the model's keys need plus 1/64.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_session_opens_stay_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let s = Arc::new(Server::start_limited(
        tmp.path(),
        "max_sessions_per_client = 1\nmax_sessions = 2\nsession_ttl_s = 600\n\
         max_key_uploads = 2\nmax_key_uploads_per_client = 1\n",
        "max_connections = 8\nmax_connections_per_client = 3\n",
    ));
    let mut alice = s.client(ALICE).await;
    let info = alice.model_info("tiny").await.unwrap();
    let params = infer::params_for(&info).unwrap();
    let sk = Arc::new(ckks::KeyGenerator::new(&params).secret_key());
    let out = info.output_level as usize;
    let mut stream = infer::generate_keys(&params, sk, &info.rotation_keys(), out).unwrap();
    let lens = stream.lens.clone();
    let pk_len = stream.public_key.len() as u64;
    let mut keys = Vec::new();
    for _ in &lens {
        keys.push(stream.rx.recv().await.unwrap().unwrap());
    }
    keys.push(stream.public_key.clone());
    let total: u64 = lens.iter().sum();
    eprintln!(
        "{} key objects, {total} bytes, public key {pk_len} bytes",
        lens.len()
    );
    // What the model needs: its evaluation keys and the largest public key at the logits' level.
    let need = total + infer::max_public_key_bytes(&params, out);
    assert_eq!(info.max_key_bytes, need + need / 64, "{need} bytes of keys");
    assert!(
        s.log().contains(&format!(
            "max_key_bytes = {} (what the served",
            info.max_key_bytes
        )),
        "{}",
        s.log()
    );

    // 9 concurrent attempts, 3 per client; alice's first connection counts too.
    let n = 9;
    let barrier = Arc::new(tokio::sync::Barrier::new(n));
    let tasks: Vec<_> = [ALICE, BOB, CAROL]
        .iter()
        .flat_map(|&t| std::iter::repeat_n(t, 3))
        .map(|token| {
            let (s, barrier, lens) = (s.clone(), barrier.clone(), lens.clone());
            tokio::spawn(async move {
                // No panic before the barrier: every attempt must reach it.
                let (got, conn) = match s.connect(token).await {
                    Err(e) => match limit_refusal::<()>(Err(e)) {
                        Ok(m) => (Attempt::Connection(m), None),
                        Err(e) => (Attempt::Unexpected(e), None),
                    },
                    Ok(mut c) => match c.request(&open_request(&lens, pk_len)).await {
                        Ok(Reply::Inference(InferReply::Ready)) => (Attempt::Ready, Some(c)),
                        r => match limit_refusal(r) {
                            Ok(m) => (Attempt::Open(m), Some(c)),
                            Err(e) => (Attempt::Unexpected(e), Some(c)),
                        },
                    },
                };
                // Every attempt holds what it got until all have answered.
                barrier.wait().await;
                if let (Attempt::Ready, Some(mut c)) = (&got, conn) {
                    // Part of the first key, then the client disconnects mid-upload.
                    c.channel().send_frame(vec![1; 1000]).await.unwrap();
                    c.channel().flush().await.unwrap();
                }
                (token, got)
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    eprintln!("{outcomes:?}");
    let count =
        |f: &dyn Fn(&str, &Attempt) -> bool| outcomes.iter().filter(|(t, a)| f(t, a)).count();
    let ready = count(&|_, a| matches!(a, Attempt::Ready));
    assert!(
        (1..=2).contains(&ready),
        "max_key_uploads = 2: {outcomes:?}"
    );
    for token in [ALICE, BOB, CAROL] {
        let r = count(&|t, a| t == token && matches!(a, Attempt::Ready));
        assert!(r <= 1, "max_key_uploads_per_client = 1: {outcomes:?}");
        let conns = count(&|t, a| t == token && !matches!(a, Attempt::Connection(_)));
        assert!(conns + usize::from(token == ALICE) <= 3, "{outcomes:?}");
    }
    let connected = count(&|_, a| !matches!(a, Attempt::Connection(_)));
    assert!(
        connected < 8,
        "max_connections = 8 with alice's first: {outcomes:?}"
    );
    assert!(
        count(&|_, a| matches!(a, Attempt::Open(_))) >= 1,
        "{outcomes:?}"
    );
    for (_, a) in &outcomes {
        match a {
            Attempt::Connection(m) => assert!(
                m.contains("max_connections = 8") || m.contains("max_connections_per_client = 3"),
                "{m}"
            ),
            Attempt::Open(m) => assert!(
                m.contains("max_key_uploads = 2")
                    || m.contains("max_key_uploads_per_client = 1")
                    || m.contains("max_sessions"),
                "{m}"
            ),
            Attempt::Ready => {}
            Attempt::Unexpected(e) => panic!("an attempt got {e}"),
        }
    }

    // The abandoned uploads leave nothing reserved: alice opens a session once the party has
    // seen them end (at most a few seconds), then bob with the same public keys.
    let t0 = Instant::now();
    let a = alice.client();
    loop {
        match a.request(&open_request(&lens, pk_len)).await {
            Ok(Reply::Inference(InferReply::Ready)) => break,
            r => {
                let m = limit_message(r);
                assert!(t0.elapsed().as_secs() < 20, "slots stay taken: {m}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    let session = send_keys(a, &keys).await;
    let mut bob = s.connect(BOB).await.unwrap();
    let r = bob.request(&open_request(&lens, pk_len)).await.unwrap();
    assert_eq!(r, Reply::Inference(InferReply::Ready));
    send_keys(&mut bob, &keys).await;

    // Installed sessions are bounded per client and in total.
    let mut alice2 = s.connect(ALICE).await.unwrap();
    let m = limit_message(alice2.request(&open_request(&lens, pk_len)).await);
    assert!(m.contains("max_sessions_per_client = 1"), "{m}");
    let mut carol = s.connect(CAROL).await.unwrap();
    let m = limit_message(carol.request(&open_request(&lens, pk_len)).await);
    assert!(m.contains("max_sessions = 2"), "{m}");
    // Closing one frees its slot; the server still serves.
    alice.close_session(session).await.unwrap();
    let r = carol.request(&open_request(&lens, pk_len)).await.unwrap();
    assert_eq!(r, Reply::Inference(InferReply::Ready));
    drop(carol);
    assert_eq!(alice.list_models().await.unwrap(), vec!["tiny".to_string()]);
    // Alice holds 2 connections: a third is admitted, a fourth refused.
    let _third = s.connect(ALICE).await.unwrap();
    let m = limit_refusal(s.connect(ALICE).await).unwrap();
    assert!(m.contains("max_connections_per_client = 3"), "{m}");
    let log = s.log();
    assert!(log.contains("refused open session of"), "{log}");
}
