//! Online cost of the non-linear protocols over the in-memory channel pair: comparisons (MSB) of
//! 10^5 values and a 128 × 128 ReLU layer. Triples come from the in-process dealer and are made
//! before the clock starts (offline phase); only the online phase is timed.
//!
//! Besides criterion's report, prints medians of 11 runs with `Metered` bytes and rounds.

use criterion::{criterion_group, criterion_main, Criterion};
use mpc::net::{mem_pair, CommStats, Metered};
use mpc::nonlinear::{msb, msb_requests, relu, relu_requests};
use mpc::share::{share, Role, Share};
use mpc::triples::{dealer, Preprocessing, TripleRequest, TripleSource};
use mpc::{FixedPoint, Session};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::time::{Duration, Instant};
use tokio::runtime::Runtime;

#[derive(Clone, Copy)]
enum Op {
    Msb,
    Relu,
}

fn inputs(dim: (usize, usize)) -> [Share; 2] {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let x = Array2::from_shape_fn(dim, |_| rng.gen::<u64>());
    share(&x.view(), &mut rng)
}

fn requests(op: Op, dim: (usize, usize)) -> Vec<TripleRequest> {
    match op {
        Op::Msb => msb_requests(dim),
        Op::Relu => relu_requests(dim),
    }
}

async fn preprocess(reqs: &[TripleRequest]) -> (Preprocessing, Preprocessing) {
    let (mut d0, mut d1, _h) = dealer::spawn_in_process().await.expect("dealer");
    let (p0, p1) = tokio::join!(d0.generate(reqs), d1.generate(reqs));
    (p0.expect("p0"), p1.expect("p1"))
}

/// One online run: (wall time, P0's traffic, P1's traffic).
async fn online(
    op: Op,
    x: &[Share; 2],
    mut pre: (Preprocessing, Preprocessing),
) -> (Duration, CommStats, CommStats) {
    let (c0, c1) = mem_pair();
    let (mut c0, mut c1) = (Metered::new(c0), Metered::new(c1));
    let start = Instant::now();
    let (a, b) = tokio::join!(
        async {
            match op {
                Op::Msb => msb(
                    &mut Session::new(&mut c0, Role::P0, FixedPoint::default(), &mut pre.0),
                    &x[0],
                )
                .await
                .map(|_| ()),
                Op::Relu => relu(
                    &mut Session::new(&mut c0, Role::P0, FixedPoint::default(), &mut pre.0),
                    &x[0],
                )
                .await
                .map(|_| ()),
            }
        },
        async {
            match op {
                Op::Msb => msb(
                    &mut Session::new(&mut c1, Role::P1, FixedPoint::default(), &mut pre.1),
                    &x[1],
                )
                .await
                .map(|_| ()),
                Op::Relu => relu(
                    &mut Session::new(&mut c1, Role::P1, FixedPoint::default(), &mut pre.1),
                    &x[1],
                )
                .await
                .map(|_| ()),
            }
        }
    );
    let t = start.elapsed();
    a.expect("P0");
    b.expect("P1");
    (t, c0.stats(), c1.stats())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("finite"));
    v[v.len() / 2]
}

fn report(rt: &Runtime, name: &str, op: Op, dim: (usize, usize)) {
    let n = dim.0 * dim.1;
    let x = inputs(dim);
    let reqs = requests(op, dim);
    let (mut online_s, mut offline_s) = (Vec::new(), Vec::new());
    let mut stats = None;
    for _ in 0..11 {
        let t0 = Instant::now();
        let pre = rt.block_on(preprocess(&reqs));
        offline_s.push(t0.elapsed().as_secs_f64());
        let (t, s0, s1) = rt.block_on(online(op, &x, pre));
        online_s.push(t.as_secs_f64());
        stats = Some((s0, s1));
    }
    let (s0, s1) = stats.expect("ran");
    let on = median(online_s);
    println!(
        "{name}: n = {n}; online median {:.2} ms ({:.0} values/s); dealer preprocessing median \
         {:.2} ms; P0 sent {} B ({:.2} B/value), P1 sent {} B ({:.2} B/value); rounds {}",
        on * 1e3,
        n as f64 / on,
        median(offline_s) * 1e3,
        s0.bytes_sent,
        s0.bytes_sent as f64 / n as f64,
        s1.bytes_sent,
        s1.bytes_sent as f64 / n as f64,
        s0.rounds
    );
}

fn bench(c: &mut Criterion) {
    let rt = Runtime::new().expect("runtime");
    report(&rt, "msb (comparison)", Op::Msb, (1, 100_000));
    report(&rt, "relu layer 128x128", Op::Relu, (128, 128));

    let mut g = c.benchmark_group("nonlinear");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    for (name, op, dim) in [
        ("msb_1e5", Op::Msb, (1, 100_000)),
        ("relu_128x128", Op::Relu, (128, 128)),
    ] {
        let x = inputs(dim);
        let reqs = requests(op, dim);
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let pre = rt.block_on(preprocess(&reqs));
                    total += rt.block_on(online(op, &x, pre)).0;
                }
                total
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
