//! Transport throughput and latency on loopback: 64 MiB in 1 MiB frames one way, and an 8-byte
//! ping-pong round trip, for QUIC, TLS 1.3 over TCP and plain TCP (insecure baseline), plus QUIC
//! variants of the tuning knobs discussed in `party::transport`.
//!
//! `cargo bench -p party --bench transport` (quick settings: 10 samples). On a shared or loaded
//! machine wall-clock throughput mostly measures how much CPU the benchmark got, so after the
//! criterion groups each variant also prints its CPU cost per GiB moved (user + system time of
//! this process, sender and receiver together, from `/proc/self/stat`; Linux only).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mpc::net::Channel;
use party::transport::{loopback_links, Link, PeerChannel, TransportKind, TransportOptions};
use std::time::{Duration, Instant};

const MESSAGE: usize = 1 << 20;
const TOTAL: usize = 64 << 20;

fn variants() -> Vec<(&'static str, TransportKind, TransportOptions)> {
    let d = TransportOptions::default;
    let mut v = vec![
        ("quic", TransportKind::Quic, d()),
        ("tls-tcp", TransportKind::TlsTcp, d()),
        ("tcp-insecure", TransportKind::Tcp, d()),
    ];
    if std::env::var_os("DYAD_BENCH_QUIC_VARIANTS").is_some() {
        v.push((
            "quic-payload-8k",
            TransportKind::Quic,
            TransportOptions {
                initial_mtu: 8192,
                max_udp_payload: 8192,
                mtu_discovery: false,
                ..d()
            },
        ));
        v.push((
            "quic-ack-every-16",
            TransportKind::Quic,
            TransportOptions {
                ack_eliciting_threshold: Some(15),
                ..d()
            },
        ));
        v.push((
            "quic-bbr",
            TransportKind::Quic,
            TransportOptions {
                congestion: party::transport::Congestion::Bbr,
                ..d()
            },
        ));
        v.push((
            "quic-windows-1-4",
            TransportKind::Quic,
            TransportOptions {
                stream_window: 1 << 20,
                connection_window: 4 << 20,
                send_window: 4 << 20,
                ..d()
            },
        ));
        v.push((
            "quic-windows-16-64",
            TransportKind::Quic,
            TransportOptions {
                stream_window: 16 << 20,
                connection_window: 64 << 20,
                send_window: 64 << 20,
                ..d()
            },
        ));
    }
    v
}

async fn pair(kind: TransportKind, opts: &TransportOptions) -> (PeerChannel, PeerChannel) {
    let (_, _, a, b) = links_and_pair(kind, opts).await;
    (a, b)
}

async fn links_and_pair(
    kind: TransportKind,
    opts: &TransportOptions,
) -> (Link, Link, PeerChannel, PeerChannel) {
    let (l0, l1) = loopback_links(kind, opts).await.expect("loopback links");
    let (a, b) = tokio::join!(l1.next_channel(), l0.next_channel());
    (l1, l0, a.expect("channel"), b.expect("channel"))
}

/// Sends `TOTAL` bytes from `a` to `b` in `MESSAGE`-byte frames and waits for a 1-byte ack.
async fn one_way(a: &mut PeerChannel, b: &mut PeerChannel) {
    let send = async {
        for _ in 0..TOTAL / MESSAGE {
            a.send_frame(vec![0x5a; MESSAGE]).await.expect("send");
        }
        a.flush().await.expect("flush");
        a.recv_frame(1).await.expect("ack");
    };
    let recv = async {
        for _ in 0..TOTAL / MESSAGE {
            let f = b.recv_frame(MESSAGE).await.expect("recv");
            assert_eq!(f.len(), MESSAGE);
        }
        b.send_frame(vec![1]).await.expect("ack");
        b.flush().await.expect("flush");
    };
    tokio::join!(send, recv);
}

async fn ping_pong(a: &mut PeerChannel, b: &mut PeerChannel, n: u64) {
    let ping = async {
        for i in 0..n {
            a.send_frame(i.to_le_bytes().to_vec()).await.expect("ping");
            a.recv_frame(8).await.expect("pong");
        }
    };
    let pong = async {
        for _ in 0..n {
            let f = b.recv_frame(8).await.expect("ping");
            b.send_frame(f).await.expect("pong");
            b.flush().await.expect("flush");
        }
    };
    tokio::join!(ping, pong);
}

fn cpu_cost(rt: &tokio::runtime::Runtime) {
    const ROUNDS: usize = 16;
    for (name, kind, opts) in variants() {
        let (sender, _receiver, mut a, mut b) = rt.block_on(links_and_pair(kind, &opts));
        rt.block_on(one_way(&mut a, &mut b));
        let (Some(c0), t0) = (procstat::cpu_seconds(), Instant::now()) else {
            return;
        };
        rt.block_on(async {
            for _ in 0..ROUNDS {
                one_way(&mut a, &mut b).await;
            }
        });
        let (cpu, wall) = (
            procstat::cpu_seconds().unwrap_or(c0) - c0,
            t0.elapsed().as_secs_f64(),
        );
        let gib = (ROUNDS * TOTAL) as f64 / (1u64 << 30) as f64;
        println!(
            "cpu_cost/{name}: {:.2} CPU-s per GiB ({:.2} GiB per CPU-second; wall {:.2} GiB/s, {:.2} CPUs busy)",
            cpu / gib,
            gib / cpu,
            gib / wall,
            cpu / wall
        );
        if let Some(st) = sender.quic_stats() {
            println!(
                "    sender: {} datagrams, {:.0} bytes per datagram, {} lost packets, {} congestion events, path MTU {}",
                st.udp_tx.datagrams,
                st.udp_tx.bytes as f64 / st.udp_tx.datagrams.max(1) as f64,
                st.path.lost_packets,
                st.path.congestion_events,
                st.path.current_mtu
            );
        }
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("throughput_64MiB_in_1MiB");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Bytes(TOTAL as u64));
    for (name, kind, opts) in variants() {
        let (mut a, mut b) = rt.block_on(pair(kind, &opts));
        g.bench_function(name, |bn| {
            bn.iter_custom(|iters| {
                rt.block_on(async {
                    let t = Instant::now();
                    for _ in 0..iters {
                        one_way(&mut a, &mut b).await;
                    }
                    t.elapsed()
                })
            })
        });
    }
    g.finish();

    let mut g = c.benchmark_group("ping_pong_8B_round_trip");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, kind, opts) in variants() {
        let (mut a, mut b) = rt.block_on(pair(kind, &opts));
        g.bench_function(name, |bn| {
            bn.iter_custom(|iters| {
                rt.block_on(async {
                    let t = Instant::now();
                    ping_pong(&mut a, &mut b, iters).await;
                    t.elapsed()
                })
            })
        });
    }
    g.finish();
    cpu_cost(&rt);
}

criterion_group!(benches, bench);
criterion_main!(benches);
