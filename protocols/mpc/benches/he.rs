//! HE offline-phase benchmarks ([`mpc::triples::HeSource`], in-memory channel pair).
//!
//! * criterion: one query encryption, one response (a full plaintext product, re-randomization,
//!   flooding, modulus switching) and one decryption at N = 16384;
//! * plain timed runs printed once: the SecureML Table II linear-regression setting (n = 10,000,
//!   d = 1,000, |B| = 128, E = 2: one reusable mask and, per batch, a forward U_B·V and a backward
//!   U_Bᵀ·V' triple) and a 128×784 · 784×128 fresh triple — the same requests as `benches/ot.rs`.
//!
//! `DYAD_HE_BATCHES=k` limits the Table II run to k batches (default: all 156);
//! `DYAD_HE_SKIP_LARGE=1` skips the plain runs.

use criterion::Criterion;
use mpc::net::{mem_pair, CommStats, Metered};
use mpc::offline::flood::FloodLedger;
use mpc::offline::he::choose_blocks;
use mpc::offline::rlwe::{respond, RlweParams, SecretKey, MAX_RESPONSE_NNZ};
use mpc::share::Role;
use mpc::triples::HeSource;
use mpc::triples::{Lhs, TripleRequest, TripleSource};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::time::{Duration, Instant};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn bench_ops(c: &mut Criterion) {
    let p = RlweParams::standard();
    let n = p.degree();
    let mut g = ChaCha20Rng::from_entropy();
    let sk = SecretKey::generate(&p, &mut g);
    let pk = sk.public_key(&p, &mut g);
    let m: Vec<u64> = (0..n).map(|_| g.next_u64()).collect();
    let q = sk.encrypt(&p, &m, &mut g).expand(&p);
    let w: Vec<i64> = (0..n).map(|_| g.next_u64() as i64).collect();
    let wp = mpc::offline::rlwe::Poly::from_signed(&p, &w, mpc::offline::rlwe::PRIMES).into_ntt(&p);
    let outputs: Vec<usize> = (0..64).map(|i| 128 * i + 127).collect();
    let ledger = FloodLedger::default();
    let (resp, _) = respond(
        &p,
        &pk,
        &[(&q, &wp)],
        n.min(MAX_RESPONSE_NNZ),
        &outputs,
        &ledger,
        &mut g,
    )
    .expect("respond");
    let mut grp = c.benchmark_group("rlwe_n16384");
    grp.sample_size(20);
    grp.warm_up_time(Duration::from_secs(1));
    grp.measurement_time(Duration::from_secs(4));
    grp.bench_function("encrypt", |b| b.iter(|| sk.encrypt(&p, &m, &mut g)));
    grp.bench_function("respond_1_product_64_outputs", |b| {
        b.iter(|| {
            respond(
                &p,
                &pk,
                &[(&q, &wp)],
                n.min(MAX_RESPONSE_NNZ),
                &outputs,
                &ledger,
                &mut g,
            )
        })
    });
    grp.bench_function("decrypt_64_outputs", |b| {
        b.iter(|| sk.decrypt(&p, &resp, &outputs).expect("decrypt"))
    });
    grp.finish();
}

/// Runs `requests` through a fresh pair of HE sources; returns (seconds, P0 stats, P1 stats).
fn timed_generate(
    rt: &tokio::runtime::Runtime,
    requests: &[TripleRequest],
) -> (f64, CommStats, CommStats) {
    let cpu = procstat::cpu_seconds().unwrap_or(0.0);
    let out = timed_generate_inner(rt, requests);
    println!(
        "[he] CPU time of the run (both parties): {:.2} s",
        procstat::cpu_seconds().unwrap_or(0.0) - cpu
    );
    out
}

fn timed_generate_inner(
    rt: &tokio::runtime::Runtime,
    requests: &[TripleRequest],
) -> (f64, CommStats, CommStats) {
    rt.block_on(async {
        let (a, b) = mem_pair();
        let t = Instant::now();
        let (s0, s1) = tokio::join!(
            HeSource::setup(Metered::new(a), Role::P0),
            HeSource::setup(Metered::new(b), Role::P1)
        );
        let (mut s0, mut s1) = (s0.expect("setup"), s1.expect("setup"));
        let (p0, p1) = tokio::join!(s0.generate(requests), s1.generate(requests));
        let dt = t.elapsed().as_secs_f64();
        p0.expect("P0");
        p1.expect("P1");
        (dt, s0.channel().stats(), s1.channel().stats())
    })
}

fn report(name: &str, (dt, s0, s1): (f64, CommStats, CommStats)) {
    println!(
        "[he] {name}: {dt:.2} s (setup included); P0 sent {:.4} GB ({} rounds), P1 sent {:.4} GB",
        s0.bytes_sent as f64 / 1e9,
        s0.rounds,
        s1.bytes_sent as f64 / 1e9
    );
}

fn large_runs() {
    let rt = runtime();
    let p = RlweParams::standard();
    for (n, k, m) in [(128, 1000, 1), (1000, 128, 1), (128, 784, 128)] {
        let b = choose_blocks(&p, n, k, m);
        println!(
            "[he] blocks for {n}x{k} * {k}x{m}: {}x{}x{} -> {} queries, {} plaintexts, {} responses, {} B per party",
            b.bn,
            b.bk,
            b.bm,
            b.queries(),
            b.plaintexts(),
            b.responses(),
            b.bytes(&p)
        );
    }
    // SecureML Table II: n = 10,000, d = 1,000, |B| = 128, E = 2.
    let (n, d, b, epochs) = (10_000usize, 1_000usize, 128usize, 2usize);
    let per_epoch = n / b;
    let all = epochs * per_epoch;
    let batches = std::env::var("DYAD_HE_BATCHES")
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
    bench_ops(&mut c);
    c.final_summary();
    if std::env::var("DYAD_HE_SKIP_LARGE").is_err() {
        large_runs();
    }
}
