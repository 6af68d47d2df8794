//! The real `dealer` binary as its own process: two in-test parties connect over each secure
//! transport, get triples, and the reconstructed triples satisfy Z = U·V.

use mpc::ring;
use mpc::share::reconstruct;
use mpc::triples::dealer::DealerClient;
use mpc::triples::{Lhs, TripleRequest, TripleSource};
use mpc::Role;
use party::transport::{connect, Identity, PeerCert, TransportKind, TransportOptions};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const GUARD: Duration = Duration::from_secs(60);

async fn dealer_session(kind: TransportKind) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let status = Command::new(env!("CARGO_BIN_EXE_dealer"))
        .args(["init", "--dir"])
        .arg(d.join("dealer"))
        .stdout(Stdio::null())
        .status()
        .await
        .unwrap();
    assert!(status.success());
    let p0 = Identity::generate("dyad-p0").unwrap();
    let p1 = Identity::generate("dyad-p1").unwrap();
    p0.save(&d.join("p0")).unwrap();
    p1.save(&d.join("p1")).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_dealer"))
        .args(["--listen", "127.0.0.1:0", "--transport", kind.as_str()])
        .args(["--sessions", "1", "--cert-dir"])
        .arg(d.join("dealer"))
        .arg("--p0-cert")
        .arg(d.join("p0/cert.pem"))
        .arg("--p1-cert")
        .arg(d.join("p1/cert.pem"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(GUARD, lines.next_line())
        .await
        .expect("dealer starts")
        .unwrap()
        .expect("a first line");
    let addr: SocketAddr = first
        .strip_prefix("dealer listening on ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .parse()
        .unwrap();
    let dealer_cert = PeerCert::load(&d.join("dealer/cert.pem")).unwrap();

    let opts = TransportOptions::default();
    let party = |dir: &Path, role: Role| {
        let me = Identity::load(dir).unwrap();
        let (dealer_cert, opts) = (dealer_cert.clone(), opts.clone());
        async move {
            let link = connect(kind, addr, me, &dealer_cert, &opts).await.unwrap();
            let ch = link.next_channel().await.unwrap();
            let client = DealerClient::connect(ch, role).await.unwrap();
            (link, client)
        }
    };
    let ((_k0, mut c0), (_k1, mut c1)) = tokio::time::timeout(GUARD, async {
        tokio::join!(
            party(&d.join("p0"), Role::P0),
            party(&d.join("p1"), Role::P1)
        )
    })
    .await
    .expect("both parties connect");

    let reqs = vec![
        TripleRequest::Matmul {
            lhs: Lhs::Fresh { rows: 4, inner: 6 },
            cols: 3,
        },
        TripleRequest::Matmul {
            lhs: Lhs::Fresh {
                rows: 64,
                inner: 128,
            },
            cols: 32,
        },
        TripleRequest::Elementwise { rows: 5, cols: 7 },
    ];
    let (r0, r1) = tokio::time::timeout(GUARD, async {
        tokio::join!(c0.generate(&reqs), c1.generate(&reqs))
    })
    .await
    .expect("triples arrive");
    let (mut t0, mut t1) = (r0.unwrap(), r1.unwrap());
    for (rows, inner, cols) in [(4, 6, 3), (64, 128, 32)] {
        let lhs = Lhs::Fresh { rows, inner };
        let (a, b) = (
            t0.next_matmul(&lhs, cols).unwrap(),
            t1.next_matmul(&lhs, cols).unwrap(),
        );
        let u = reconstruct(a.u.as_ref().unwrap(), b.u.as_ref().unwrap());
        let v = reconstruct(&a.v, &b.v);
        let z = reconstruct(&a.z, &b.z);
        assert_eq!(u.dim(), (rows, inner));
        assert_eq!(z, ring::matmul(&u.view(), &v.view()));
        assert_ne!(z, ndarray::Array2::<u64>::zeros((rows, cols)));
    }
    let (a, b) = (
        t0.next_elementwise((5, 7)).unwrap(),
        t1.next_elementwise((5, 7)).unwrap(),
    );
    let (x, y) = (reconstruct(&a.a, &b.a), reconstruct(&a.b, &b.b));
    assert_eq!(
        reconstruct(&a.c, &b.c),
        ring::hadamard(&x.view(), &y.view())
    );

    c0.finish().await.unwrap();
    c1.finish().await.unwrap();
    // `--sessions 1`: the dealer exits on its own, successfully, once both said Done.
    let status = tokio::time::timeout(GUARD, child.wait())
        .await
        .expect("dealer exits")
        .unwrap();
    assert!(status.success(), "dealer exit status {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dealer_process_serves_triples_over_tls_tcp() {
    dealer_session(TransportKind::TlsTcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dealer_process_serves_triples_over_quic() {
    dealer_session(TransportKind::Quic).await;
}

/// A party whose certificate the dealer does not pin is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dealer_refuses_an_unknown_party() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let dealer = Identity::generate("dyad-dealer").unwrap();
    dealer.save(&d.join("dealer")).unwrap();
    for (n, name) in ["p0", "p1"].iter().enumerate() {
        Identity::generate(&format!("dyad-p{n}"))
            .unwrap()
            .save(&d.join(name))
            .unwrap();
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_dealer"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--transport",
            "tls-tcp",
            "--cert-dir",
        ])
        .arg(d.join("dealer"))
        .arg("--p0-cert")
        .arg(d.join("p0/cert.pem"))
        .arg("--p1-cert")
        .arg(d.join("p1/cert.pem"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next_line().await.unwrap().unwrap();
    let addr: SocketAddr = first
        .trim_start_matches("dealer listening on ")
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let r = connect(
        TransportKind::TlsTcp,
        addr,
        Identity::generate("dyad-p0").unwrap(),
        dealer.certificate(),
        &TransportOptions::default(),
    )
    .await;
    assert!(
        matches!(
            r,
            Err(party::transport::TransportError::PeerRejected { .. })
        ),
        "{r:?}"
    );
    child.kill().await.unwrap();
}
