//! Transports over real sockets on 127.0.0.1: typed messages, large simultaneous matrix exchanges,
//! pinned-certificate refusals in both directions, oversized frames, vanished peers, retries.

use mpc::net::{Channel, ChannelExt};
use mpc::MpcError;
use ndarray::Array2;
use party::transport::*;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::time::timeout;

/// Guard against hangs: every scenario must finish well within this.
const GUARD: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Hello {
    round: u32,
    name: String,
    shares: Vec<u64>,
}

fn local() -> SocketAddr {
    (std::net::Ipv4Addr::LOCALHOST, 0).into()
}

fn quick() -> TransportOptions {
    TransportOptions {
        connect_timeout: Duration::from_secs(5),
        handshake_timeout: Duration::from_secs(3),
        ..TransportOptions::default()
    }
}

async fn typed_and_large(kind: TransportKind) {
    let (mut a, mut b) = loopback_pair(kind).await.unwrap();
    assert_eq!((a.kind(), b.kind()), (kind, kind));
    let m = Hello {
        round: 3,
        name: "p0".into(),
        shares: (0..1000).collect(),
    };
    a.send(&m).await.unwrap();
    let got: Hello = b.recv(1 << 16).await.unwrap();
    assert_eq!(got, m);
    b.send(&(got.round + 1)).await.unwrap();
    assert_eq!(a.recv::<u32>(4).await.unwrap(), 4);

    // 8M words each way at the same time: the case that deadlocks without concurrent
    // send and receive once the transport's buffers are full.
    let (rows, cols) = (2048, 4096);
    let x = Array2::from_shape_fn((rows, cols), |(i, j)| (i * cols + j) as u64);
    let y = x.mapv(|v| v.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let (xv, yv) = (x.view(), y.view());
    let (xa, yb) = timeout(GUARD, async {
        tokio::join!(a.exchange_ring(&xv), b.exchange_ring(&yv))
    })
    .await
    .expect("exchange of 64 MiB each way finished");
    assert_eq!(xa.unwrap(), y);
    assert_eq!(yb.unwrap(), x);

    // And one way, sent whole before it is received.
    let (s, r) = tokio::join!(a.send_ring(&xv), b.recv_ring(rows, cols));
    s.unwrap();
    assert_eq!(r.unwrap(), x);
    a.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_carries_typed_messages_and_large_simultaneous_matrices() {
    typed_and_large(TransportKind::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_tcp_carries_typed_messages_and_large_simultaneous_matrices() {
    typed_and_large(TransportKind::TlsTcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_carries_typed_messages_and_large_simultaneous_matrices() {
    typed_and_large(TransportKind::Tcp).await;
}

/// A third party with its own certificate poses as the peer, once as the listener and once as
/// the connecting side; both times the honest side refuses with the fingerprints involved.
async fn impostors_are_refused(kind: TransportKind) {
    let p0 = Identity::generate("dyad-p0").unwrap();
    let p1 = Identity::generate("dyad-p1").unwrap();
    let mallory = Identity::generate("dyad-p0").unwrap(); // same name, other key
    let (c0, c1, cm) = (
        p0.certificate().clone(),
        p1.certificate().clone(),
        mallory.certificate().clone(),
    );

    // 1. Mallory listens where P1 expects P0.
    let rogue = listen(
        kind,
        local(),
        Identity::generate("dyad-p0").unwrap(),
        std::slice::from_ref(&c1),
        &quick(),
    )
    .await
    .unwrap();
    let opts = quick();
    let (r, acc) = timeout(GUARD, async {
        tokio::join!(
            connect(kind, rogue.local_addr(), p1, &c0, &opts),
            rogue.accept()
        )
    })
    .await
    .expect("no hang");
    match r {
        Err(TransportError::PeerCertificateMismatch {
            expected_fingerprints,
            got_fingerprint,
            ..
        }) => {
            assert_eq!(expected_fingerprints, vec![c0.fingerprint()]);
            assert_ne!(got_fingerprint, c0.fingerprint());
        }
        other => panic!("expected a certificate mismatch, got {other:?}"),
    }
    assert!(acc.is_err(), "the rogue listener got no link: {acc:?}");

    // 2. Mallory connects to P0, which pins P1.
    let l0 = listen(kind, local(), p0, &[c1], &quick()).await.unwrap();
    let addr = l0.local_addr();
    let (acc, con) = timeout(GUARD, async {
        tokio::join!(l0.accept(), connect(kind, addr, mallory, &c0, &opts))
    })
    .await
    .expect("no hang");
    match acc {
        Err(TransportError::PeerCertificateMismatch {
            got_fingerprint, ..
        }) => assert_eq!(got_fingerprint, cm.fingerprint()),
        other => panic!("listener should refuse the impostor, got {other:?}"),
    }
    match con {
        Err(TransportError::PeerRejected { .. }) => {}
        other => panic!("impostor should learn it was refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_refuses_impostors_in_both_directions() {
    impostors_are_refused(TransportKind::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_tcp_refuses_impostors_in_both_directions() {
    impostors_are_refused(TransportKind::TlsTcp).await;
}

/// A frame above the receiver's limit is refused without panic; that channel closes (and the
/// sender notices), while a new channel on the same link works.
async fn oversized_frames(kind: TransportKind) {
    let (l0, l1) = loopback_links(kind, &quick()).await.unwrap();
    let (a, b) = tokio::join!(l0.next_channel(), l1.next_channel());
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    b.send_frame(vec![7u8; 100_000]).await.unwrap();
    b.flush().await.unwrap();
    assert!(matches!(
        a.recv_frame(1000).await,
        Err(MpcError::FrameTooLarge {
            len: 100_000,
            max: 1000
        })
    ));
    assert!(a.is_closed());
    assert!(matches!(
        a.recv_frame(1 << 20).await,
        Err(MpcError::ChannelClosed { .. })
    ));
    // The sender's channel fails soon instead of hanging.
    let r = timeout(GUARD, async {
        loop {
            if let Err(e) = b.send_frame(vec![0u8; 1 << 16]).await {
                return e;
            }
            if let Err(e) = b.flush().await {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the sender notices the closed channel");
    assert!(matches!(r, MpcError::ChannelClosed { .. }), "{r:?}");

    let (a2, b2) = tokio::join!(l0.next_channel(), l1.next_channel());
    let (mut a2, mut b2) = (a2.unwrap(), b2.unwrap());
    assert_eq!((a2.index(), b2.index()), (1, 1));
    b2.send(&42u64).await.unwrap();
    assert_eq!(a2.recv::<u64>(8).await.unwrap(), 42);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_refuses_oversized_frames_and_the_link_survives() {
    oversized_frames(TransportKind::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_tcp_refuses_oversized_frames_and_the_link_survives() {
    oversized_frames(TransportKind::TlsTcp).await;
}

/// Several channels opened concurrently pair up by call order on both sides.
async fn many_channels(kind: TransportKind) {
    let (l0, l1) = loopback_links(kind, &quick()).await.unwrap();
    let (a, b) = tokio::join!(
        async { tokio::join!(l0.next_channel(), l0.next_channel(), l0.next_channel()) },
        async { tokio::join!(l1.next_channel(), l1.next_channel(), l1.next_channel()) }
    );
    let mut a = [a.0.unwrap(), a.1.unwrap(), a.2.unwrap()];
    let mut b = [b.0.unwrap(), b.1.unwrap(), b.2.unwrap()];
    a.sort_by_key(|c| c.index());
    b.sort_by_key(|c| c.index());
    for (x, y) in a.iter_mut().zip(b.iter_mut()) {
        assert_eq!(x.index(), y.index());
        x.send(&x.index()).await.unwrap();
        y.send(&(y.index() + 100)).await.unwrap();
        assert_eq!(y.recv::<u32>(4).await.unwrap(), y.index());
        assert_eq!(x.recv::<u32>(4).await.unwrap(), x.index() + 100);
    }
    assert!(l0.peer().is_some() == kind.is_secure());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_links_carry_independent_channels() {
    many_channels(TransportKind::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_tcp_links_carry_independent_channels() {
    many_channels(TransportKind::TlsTcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_tcp_links_carry_independent_channels() {
    many_channels(TransportKind::Tcp).await;
}

/// A TCP peer that goes away: the other side's receive fails (EOF) instead of waiting forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_tls_peer_is_an_error() {
    let (mut a, b) = loopback_pair(TransportKind::TlsTcp).await.unwrap();
    drop(b);
    let r = timeout(GUARD, a.recv_frame(64)).await.expect("no hang");
    assert!(matches!(r, Err(MpcError::ChannelClosed { .. })), "{r:?}");
}

/// Forwards UDP datagrams between a client and `server` until aborted; aborting it makes the
/// peers vanish for each other without any close message.
async fn udp_relay(server: SocketAddr) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let sock = tokio::net::UdpSocket::bind(local()).await.unwrap();
    let addr = sock.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65536];
        let mut client = None;
        loop {
            let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                return;
            };
            let to = if from == server {
                match client {
                    Some(c) => c,
                    None => continue,
                }
            } else {
                client = Some(from);
                server
            };
            let _ = sock.send_to(&buf[..n], to).await;
        }
    });
    (addr, task)
}

/// A QUIC peer that vanishes silently (no close frame, like a crashed machine): the idle timeout
/// turns the waiting receive into an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_vanished_quic_peer_times_out() {
    let opts = TransportOptions {
        idle_timeout: Duration::from_millis(1500),
        keep_alive_interval: Duration::from_millis(300),
        ..quick()
    };
    let p0 = Identity::generate("dyad-p0").unwrap();
    let p1 = Identity::generate("dyad-p1").unwrap();
    let (c0, c1) = (p0.certificate().clone(), p1.certificate().clone());
    let l = listen(TransportKind::Quic, local(), p0, &[c1], &opts)
        .await
        .unwrap();
    let (relay, task) = udp_relay(l.local_addr()).await;
    let (k0, k1) = tokio::join!(
        l.accept(),
        connect(TransportKind::Quic, relay, p1, &c0, &opts)
    );
    let (k0, k1) = (k0.unwrap(), k1.unwrap());
    let (a, b) = tokio::join!(k0.next_channel(), k1.next_channel());
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    b.send(&1u8).await.unwrap();
    assert_eq!(a.recv::<u8>(1).await.unwrap(), 1);
    // Keep-alives hold an idle link open well past the idle timeout.
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.send(&2u8).await.unwrap();
    assert_eq!(a.recv::<u8>(1).await.unwrap(), 2);
    task.abort();
    let r = timeout(GUARD, a.recv_frame(64)).await.expect("no hang");
    assert!(matches!(r, Err(MpcError::ChannelClosed { .. })), "{r:?}");
    let r = timeout(GUARD, b.recv_frame(64)).await.expect("no hang");
    assert!(matches!(r, Err(MpcError::ChannelClosed { .. })), "{r:?}");
}

/// `connect` keeps retrying until the listener comes up, and gives up with a timeout otherwise.
async fn retries(kind: TransportKind) {
    let p0 = Identity::generate("dyad-p0").unwrap();
    let p1 = Identity::generate("dyad-p1").unwrap();
    let (c0, c1) = (p0.certificate().clone(), p1.certificate().clone());
    // Find a free port, release it, and bind it again only later.
    let port = match kind {
        TransportKind::Quic => std::net::UdpSocket::bind(local())
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
        _ => std::net::TcpListener::bind(local())
            .unwrap()
            .local_addr()
            .unwrap()
            .port(),
    };
    let addr: SocketAddr = (std::net::Ipv4Addr::LOCALHOST, port).into();
    let opts = TransportOptions {
        connect_timeout: Duration::from_secs(20),
        handshake_timeout: Duration::from_millis(700),
        ..quick()
    };
    let dialer = tokio::spawn({
        let opts = opts.clone();
        async move { connect(kind, addr, p1, &c0, &opts).await }
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    let l = listen(kind, addr, p0, std::slice::from_ref(&c1), &opts)
        .await
        .unwrap();
    let k0 = timeout(GUARD, l.accept()).await.expect("no hang").unwrap();
    let k1 = timeout(GUARD, dialer)
        .await
        .expect("no hang")
        .unwrap()
        .unwrap();
    let (a, b) = tokio::join!(k0.next_channel(), k1.next_channel());
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    a.send(&5u16).await.unwrap();
    assert_eq!(b.recv::<u16>(2).await.unwrap(), 5);
    drop(l);

    // Nobody listening at all: a timeout error after `connect_timeout`.
    let short = TransportOptions {
        connect_timeout: Duration::from_millis(1200),
        handshake_timeout: Duration::from_millis(400),
        ..quick()
    };
    let free = std::net::TcpListener::bind(local())
        .unwrap()
        .local_addr()
        .unwrap();
    let r = timeout(
        GUARD,
        connect(kind, free, Identity::generate("x").unwrap(), &c1, &short),
    )
    .await
    .expect("no hang");
    assert!(matches!(r, Err(TransportError::Timeout { .. })), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_connect_retries_until_the_listener_is_up() {
    retries(TransportKind::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_tcp_connect_retries_until_the_listener_is_up() {
    retries(TransportKind::TlsTcp).await;
}

#[test]
fn transport_kinds_parse_from_config_strings() {
    for k in TransportKind::ALL {
        assert_eq!(k.as_str().parse::<TransportKind>().unwrap(), k);
        let json = format!("\"{}\"", k.as_str());
        let back: TransportKind = serde_json_free_parse(&json);
        assert_eq!(back, k);
    }
    assert!(matches!(
        "tcp".parse::<TransportKind>(),
        Err(TransportError::UnknownTransport { .. })
    ));
}

/// Deserializes a quoted string through serde's value machinery without a JSON dependency.
fn serde_json_free_parse(quoted: &str) -> TransportKind {
    use serde::de::value::{Error, StrDeserializer};
    use serde::de::IntoDeserializer;
    let s = quoted.trim_matches('"');
    let d: StrDeserializer<'_, Error> = s.into_deserializer();
    TransportKind::deserialize(d).unwrap()
}
