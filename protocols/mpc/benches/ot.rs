//! OT offline-phase benchmarks (in-memory channel pair; the QUIC figures come from the `party`
//! crate's benches).
//!
//! * criterion, local kernels (`ot_kernels`): the column PRG (AES-128-CTR), the 128 × 128 tile
//!   transpose, the correlation-robust hash, and one whole local extension (receiver's message and
//!   rows, sender's rows) — 1024 instances each;
//! * criterion: correlated OT over Z_2^64 and random OT, 2^22 instances per iteration;
//! * plain timed runs printed once (too long for criterion's repetitions): the SecureML Table II
//!   linear-regression setting (n = 10,000, d = 1,000, |B| = 128, E = 2: one reusable mask and, per
//!   batch, a forward U_B·V and a backward U_Bᵀ·V' triple) and a 128×784 · 784×128 fresh triple.
//!
//! `DYAD_OT_BATCHES=k` limits the Table II run to k batches (default: all 156);
//! `DYAD_OT_SKIP_LARGE=1` skips the plain runs.

use criterion::{Criterion, Throughput};
use mpc::net::{mem_pair, CommStats, MemChannel, Metered};
use mpc::offline::hash::{tccr_batch, ColumnPrg};
use mpc::offline::iknp::{self, state, Receiver, Sender};
use mpc::offline::transpose::transpose_tile;
use mpc::share::Role;
use mpc::triples::OtSource;
use mpc::triples::{Lhs, TripleRequest, TripleSource};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::time::{Duration, Instant};

const LOG_N: usize = 22;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

struct OneWay {
    a: Metered<MemChannel>,
    b: Metered<MemChannel>,
    s: Sender<state::Extension>,
    r: Receiver<state::Extension>,
}

fn one_way(rt: &tokio::runtime::Runtime) -> OneWay {
    rt.block_on(async {
        let (a, b) = mem_pair();
        let (mut a, mut b) = (Metered::new(a), Metered::new(b));
        let (mut g1, mut g2) = (ChaCha20Rng::from_entropy(), ChaCha20Rng::from_entropy());
        let (s, r) = tokio::join!(
            iknp::setup_sender(&mut a, &mut g1),
            iknp::setup_receiver(&mut b, &mut g2)
        );
        OneWay {
            a,
            b,
            s: s.expect("sender"),
            r: r.expect("receiver"),
        }
    })
}

fn run_cot(rt: &tokio::runtime::Runtime, w: &mut OneWay, corr: &[u64], choices: &[u64]) {
    rt.block_on(async {
        let (x, y) = tokio::join!(
            iknp::send_cot(&mut w.a, &mut w.s, corr),
            iknp::receive_cot(&mut w.b, &mut w.r, choices)
        );
        assert_eq!(x.expect("send").len(), y.expect("receive").len());
    });
}

fn run_rot(rt: &tokio::runtime::Runtime, w: &mut OneWay, choices: &[u64]) {
    rt.block_on(async {
        let (x, y) = tokio::join!(
            iknp::send_rot(&mut w.a, &mut w.s, choices.len()),
            iknp::receive_rot(&mut w.b, &mut w.r, choices)
        );
        assert_eq!(x.expect("send").len(), y.expect("receive").len());
    });
}

/// Instances per iteration of the kernel benches.
const KERNEL_OTS: usize = 1024;

fn bench_kernels(c: &mut Criterion) {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut g = c.benchmark_group("ot_kernels");
    g.throughput(Throughput::Elements(KERNEL_OTS as u64));
    let prg = ColumnPrg::new(&[7u8; 16]);
    let mut blocks = vec![0u128; KERNEL_OTS];
    g.bench_function("column_prg_1024_blocks", |b| {
        b.iter(|| prg.blocks(std::hint::black_box(5), &mut blocks))
    });
    let mut tiles: Vec<[u128; 128]> = (0..KERNEL_OTS / 128)
        .map(|_| {
            core::array::from_fn(|_| ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128)
        })
        .collect();
    g.bench_function("transpose_8_tiles", |b| {
        b.iter(|| tiles.iter_mut().for_each(transpose_tile))
    });
    g.bench_function("tccr_1024", |b| {
        b.iter(|| tccr_batch(std::hint::black_box(9), &mut blocks))
    });
    let (s, r) = local_pair(&mut rng);
    let (mut s, mut r) = (s, r);
    let choices: Vec<u64> = (0..KERNEL_OTS / 64).map(|_| rng.next_u64()).collect();
    g.bench_function("extend_local_1024", |b| {
        b.iter(|| {
            let (msg, rb) = r.extend(&choices);
            let sb = s.extend(choices.len(), &msg).expect("extend");
            (rb.t.len(), sb.q.len())
        })
    });
    g.finish();
}

/// An extension pair set up without a channel (base OTs run directly).
fn local_pair(rng: &mut ChaCha20Rng) -> (Sender<state::Extension>, Receiver<state::Extension>) {
    let (r, setup) = Receiver::new(rng);
    let (s, reply) = Sender::new(rng)
        .receive_base(&setup, rng)
        .expect("base OTs");
    (s, r.finish_base(&reply).expect("base OTs"))
}

fn bench_extension(c: &mut Criterion) {
    let rt = runtime();
    let n = 1usize << LOG_N;
    let corr: Vec<u64> = (0..n as u64).map(|i| i.wrapping_mul(0x9e37_79b9)).collect();
    let choices: Vec<u64> = (0..(n / 64) as u64)
        .map(|i| i.wrapping_mul(0x2545_f491_4f6c_dd1d))
        .collect();
    let mut w = one_way(&rt);
    let mut g = c.benchmark_group("ot_extension");
    g.throughput(Throughput::Elements(n as u64));
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(8));
    g.bench_function(format!("cot_u64_2^{LOG_N}"), |bch| {
        bch.iter(|| run_cot(&rt, &mut w, &corr, &choices))
    });
    g.bench_function(format!("rot_u64_2^{LOG_N}"), |bch| {
        bch.iter(|| run_rot(&rt, &mut w, &choices))
    });
    g.finish();

    // One metered run each, printed.
    for (name, cot) in [("COT", true), ("ROT", false)] {
        let before = (w.a.stats(), w.b.stats());
        let t = Instant::now();
        if cot {
            run_cot(&rt, &mut w, &corr, &choices);
        } else {
            run_rot(&rt, &mut w, &choices);
        }
        let dt = t.elapsed().as_secs_f64();
        let (s, r) = (w.a.stats().since(&before.0), w.b.stats().since(&before.1));
        println!(
            "[ot] {name} 2^{LOG_N}: {:.3} s, {:.2} M/s; sender sent {} B, receiver sent {} B",
            dt,
            n as f64 / dt / 1e6,
            s.bytes_sent,
            r.bytes_sent
        );
    }
}

/// Runs `requests` through a fresh pair of OT sources; returns (seconds, P0 stats, P1 stats).
fn timed_generate(
    rt: &tokio::runtime::Runtime,
    requests: &[TripleRequest],
) -> (f64, CommStats, CommStats) {
    rt.block_on(async {
        let (a, b) = mem_pair();
        let (s0, s1) = tokio::join!(
            OtSource::setup(Metered::new(a), Role::P0),
            OtSource::setup(Metered::new(b), Role::P1)
        );
        let (mut s0, mut s1) = (s0.expect("setup"), s1.expect("setup"));
        let before = (s0.channel().stats(), s1.channel().stats());
        let t = Instant::now();
        let (p0, p1) = tokio::join!(s0.generate(requests), s1.generate(requests));
        let dt = t.elapsed().as_secs_f64();
        p0.expect("P0");
        p1.expect("P1");
        (
            dt,
            s0.channel().stats().since(&before.0),
            s1.channel().stats().since(&before.1),
        )
    })
}

fn report(name: &str, (dt, s0, s1): (f64, CommStats, CommStats)) {
    println!(
        "[ot] {name}: {dt:.2} s; P0 sent {:.3} GB ({} rounds), P1 sent {:.3} GB",
        s0.bytes_sent as f64 / 1e9,
        s0.rounds,
        s1.bytes_sent as f64 / 1e9
    );
}

fn large_runs() {
    let rt = runtime();
    // SecureML Table II: n = 10,000, d = 1,000, |B| = 128, E = 2.
    let (n, d, b, epochs) = (10_000usize, 1_000usize, 128usize, 2usize);
    let per_epoch = n / b;
    let all = epochs * per_epoch;
    let batches = std::env::var("DYAD_OT_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(all)
        .min(all);
    let mut reqs = vec![TripleRequest::Mask {
        id: 0,
        rows: n,
        cols: d,
    }];
    for k in 0..batches {
        let start = (k % per_epoch) * b;
        let rows: Vec<usize> = (start..start + b).collect();
        for transpose in [false, true] {
            reqs.push(TripleRequest::Matmul {
                lhs: Lhs::Mask {
                    id: 0,
                    rows: rows.clone(),
                    transpose,
                },
                cols: 1,
            });
        }
    }
    report(
        &format!("linreg n={n} d={d} |B|={b} E={epochs}: {batches} of {all} batches"),
        timed_generate(&rt, &reqs),
    );
    let fresh = [TripleRequest::Matmul {
        lhs: Lhs::Fresh {
            rows: 128,
            inner: 784,
        },
        cols: 128,
    }];
    report("fresh 128x784 * 784x128", timed_generate(&rt, &fresh));
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_kernels(&mut c);
    bench_extension(&mut c);
    c.final_summary();
    if std::env::var("DYAD_OT_SKIP_LARGE").is_err() {
        large_runs();
    }
}
