//! Token credentials are per party: what a token client sends one party does not authenticate
//! at the other. A curious P0 (a TLS server with P0's real identity) captures the hello of an
//! honest client and replays it, byte for byte, at the real P1, which must refuse it; the same
//! bytes replayed at the real P0 are admitted (the capture is a working credential there).

mod support;

use mpc::net::{Channel, ChannelExt, StreamChannel};
use party::client::{Client, ClientChannel};
use party::proto::{decode, ClientHello, ErrorCode, Reply, MAX_CONTROL_FRAME};
use party::server::auth;
use party::transport::{Identity, PeerCert};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use support::*;

/// A curious P0: accepts one client connection with P0's real certificate and key, and
/// returns the first frame the client sent (its hello), as bytes.
async fn capture_hello(p0: &Identity, token: &str) -> Vec<u8> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(auth::server_config(p0).unwrap()));
    let pinned = p0.certificate().clone();
    let token = token.to_string();
    let honest = tokio::spawn(async move {
        let me = Identity::generate("honest-client").unwrap();
        // The curious party never answers: the client's connect fails, after sending its hello.
        let _ = Client::connect(addr, &pinned, &me, Some(&token)).await;
    });
    let (tcp, _) = listener.accept().await.unwrap();
    let tls = acceptor.accept(tcp).await.unwrap();
    let (r, w) = tokio::io::split(tls);
    let mut ch = StreamChannel::new(r, w);
    let hello = tokio::time::timeout(Duration::from_secs(30), ch.recv_frame(MAX_CONTROL_FRAME))
        .await
        .expect("the client sends a hello")
        .unwrap();
    drop(ch);
    honest.await.unwrap();
    hello
}

/// Connects to `addr` (pinning `cert`) with a fresh client certificate, sends `hello` as the
/// first frame and returns the party's answer.
async fn replay(addr: SocketAddr, cert: &PeerCert, hello: &[u8]) -> (Reply, ClientChannel) {
    let anyone = Identity::generate("replayer").unwrap();
    let mut ch = Client::connect_raw(addr, cert, &anyone).await.unwrap();
    ch.send_frame(hello.to_vec()).await.unwrap();
    ch.flush().await.unwrap();
    let reply = ch.recv::<Reply>(MAX_CONTROL_FRAME).await.unwrap();
    (reply, ch)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_client_credential_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::new(tmp.path(), 30, 1_000_000);
    let p0_identity = Identity::load(&tmp.path().join("p0")).unwrap();
    let hello = capture_hello(&p0_identity, ALICE).await;

    // What P0 received is a credential, not the token.
    let decoded: ClientHello = decode(&hello, MAX_CONTROL_FRAME).unwrap();
    assert!(decoded.credential.is_some());
    assert!(
        !hello.windows(ALICE.len()).any(|w| w == ALICE.as_bytes()),
        "the hello carries the token itself"
    );

    // Replayed at P1 with a fresh certificate: refused.
    let p1 = PeerCert::load(&c.cert(1)).unwrap();
    let (reply, _) = replay(c.client[1], &p1, &hello).await;
    assert!(
        matches!(
            reply,
            Reply::Error {
                code: ErrorCode::Unauthorized,
                ..
            }
        ),
        "P1 admitted a hello captured by P0: {reply:?}"
    );
    c.wait_log(1, "refused client", 1);

    // The capture itself is sound: the same bytes authenticate at P0, whose credential they are.
    let p0 = PeerCert::load(&c.cert(0)).unwrap();
    let (reply, _) = replay(c.client[0], &p0, &hello).await;
    assert!(matches!(reply, Reply::Welcome { role: 0 }), "{reply:?}");

    // The honest client still works with both parties: an upload, then a listing at each.
    let csv = tmp.path().join("tiny.csv");
    std::fs::write(&csv, "a,b,y\n1,2,0\n3,4,1\n5,6,0\n").unwrap();
    upload_ok(c.upload(ALICE, &["--name", "tiny"], &csv));
    for id in 0..2 {
        let mut client = c.client(id, ALICE).await.unwrap();
        assert_eq!(client.role() as usize, id);
        let names: Vec<String> = client
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, vec!["tiny".to_string()], "P{id}");
    }
}

/// `party hash-token` prints each party's own value (different per party, equal to what the
/// client derives for that party's certificate); `--config` prints the line of that party, also
/// for a configuration that `party serve` refuses for its old `token_sha256` entry.
#[test]
fn hash_token_prints_one_value_per_party() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |id: usize| tmp.path().join(format!("p{id}"));
    let party = || std::process::Command::new(PARTY);
    for id in 0..2 {
        let d = dir(id);
        run_ok(party().args([
            "init",
            "--id",
            &id.to_string(),
            "--dir",
            d.to_str().unwrap(),
        ]));
    }
    let cert = |id: usize| dir(id).join("cert.pem").to_str().unwrap().to_string();
    let config = |id: usize| dir(id).join("party.toml").to_str().unwrap().to_string();
    let value = |line: &str| line.split('"').nth(1).unwrap().to_string();
    let both = run_ok(party().args([
        "hash-token",
        ALICE,
        "--p0-cert",
        &cert(0),
        "--p1-cert",
        &cert(1),
    ]));
    let lines: Vec<&str> = both.lines().collect();
    assert_eq!(lines.len(), 2, "{both}");
    assert_ne!(value(lines[0]), value(lines[1]));
    for (id, line) in lines.iter().enumerate() {
        let fp = PeerCert::load(std::path::Path::new(&cert(id)))
            .unwrap()
            .fingerprint();
        assert_eq!(value(line), auth::credential_sha256(ALICE, &fp), "{line}");
        assert!(line.starts_with("credential_sha256 = ") && line.contains(&format!("at P{id}")));
        let own = run_ok(party().args(["hash-token", ALICE, "--config", &config(id)]));
        assert_eq!(own.lines().count(), 1, "{own}");
        assert_eq!(value(&own), value(line), "P{id}");
    }
    // An old registration: `serve` refuses the configuration and names the fix, which works.
    let old = std::fs::read_to_string(config(1)).unwrap().replace(
        "[limits]",
        "[[clients.allow]]\nname = \"alice\"\ntoken_sha256 = \"00\"\n[limits]",
    );
    std::fs::write(config(1), old).unwrap();
    let out = party()
        .args(["serve", "--config", &config(1)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("token_sha256") && err.contains("party hash-token TOKEN --config"),
        "{err}"
    );
    let own = run_ok(party().args(["hash-token", ALICE, "--config", &config(1)]));
    assert_eq!(value(&own), value(lines[1]));
    let none = party().args(["hash-token", ALICE]).output().unwrap();
    assert!(!none.status.success());
    assert!(String::from_utf8_lossy(&none.stderr).contains("--p0-cert"));
}
