//! Two-party differential tests of the non-linear protocols against f64 / exact ring semantics,
//! with dealer triples over the in-memory channel pair: the shared harness ([`run2`] runs both
//! parties on exactly a planner's preprocessing and checks it drained) and the comparison,
//! conversion and activation tests; [`arith`], [`log`] and [`edges`] hold the rest.

use super::*;
use crate::fixed::FixedPoint;
use crate::net::{mem_pair, CommStats, MemChannel, Metered};
use crate::session::Session;
use crate::share::{reconstruct, share, Role, Share};
use crate::triples::{dealer, elementwise_entries, Preprocessing, TripleRequest, TripleSource};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::future::Future;

type Ch = Metered<MemChannel>;

async fn preprocess(reqs: &[TripleRequest]) -> (Preprocessing, Preprocessing) {
    let (mut d0, mut d1, _h) = dealer::spawn_in_process().await.unwrap();
    let (p0, p1) = tokio::join!(d0.generate(reqs), d1.generate(reqs));
    (p0.unwrap(), p1.unwrap())
}

/// Runs `f` as both parties on their shares of `inputs`, with exactly the preprocessing `reqs`;
/// checks both pools are drained afterwards and returns both outputs and P0's traffic.
async fn run2<T, F, Fut>(
    reqs: Vec<TripleRequest>,
    inputs: &[Array2<u64>],
    f: F,
) -> (T, T, CommStats)
where
    F: Fn(Role, Ch, Preprocessing, Vec<Share>) -> Fut,
    Fut: Future<Output = (T, Ch, Preprocessing)>,
{
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let mut s0 = Vec::new();
    let mut s1 = Vec::new();
    for x in inputs {
        let [a, b] = share(&x.view(), &mut rng);
        s0.push(a);
        s1.push(b);
    }
    let (pre0, pre1) = preprocess(&reqs).await;
    let (c0, c1) = mem_pair();
    let ((r0, c0, pre0), (r1, _c1, pre1)) = tokio::join!(
        f(Role::P0, Metered::new(c0), pre0, s0),
        f(Role::P1, Metered::new(c1), pre1, s1)
    );
    assert!(
        pre0.is_drained() && pre1.is_drained(),
        "planner and protocol disagree"
    );
    (r0, r1, c0.stats())
}

fn col(v: &[u64]) -> Array2<u64> {
    Array2::from_shape_vec((1, v.len()), v.to_vec()).unwrap()
}

fn fp() -> FixedPoint {
    FixedPoint::default()
}

/// Ring values covering the edges: 0, ±1, ±½ and neighbours, the fixed-point range limits, the
/// ring limits, and random values of every magnitude.
fn edge_values(rng: &mut ChaCha20Rng, random: usize) -> Vec<u64> {
    let half = 1i64 << 15;
    // The largest encodings FixedPoint accepts are ±(2^63 − 1).
    let mut v: Vec<i64> = vec![
        0,
        1,
        -1,
        half,
        -half,
        half - 1,
        half + 1,
        -half - 1,
        -half + 1,
        1 << 16,
        -(1 << 16),
        i64::MAX,
        i64::MIN,
        i64::MAX - 1,
        i64::MIN + 1,
        i64::MAX - half,
        -(i64::MAX - half),
        i64::MAX - (1 << 16),
        -(i64::MAX - (1 << 16)),
    ];
    for _ in 0..random {
        let bits = rng.gen_range(0..64);
        let x: u64 = rng.gen::<u64>() >> (63 - bits).max(0);
        v.push(x as i64);
    }
    v.into_iter().map(|x| x as u64).collect()
}

#[tokio::test]
async fn msb_and_drelu_are_exact_on_the_whole_ring() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let v = edge_values(&mut rng, 1000);
    let x = col(&v);
    let n = v.len();
    let (m0, m1, stats) = run2(
        msb_requests((1, n)),
        std::slice::from_ref(&x),
        |role, mut ch, mut pre, s| async move {
            let m = msb(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &s[0],
            )
            .await
            .unwrap();
            (m, ch, pre)
        },
    )
    .await;
    let m = reconstruct_bits(&m0, &m1);
    for (i, &val) in v.iter().enumerate() {
        assert_eq!(m[[0, i]], val >> 63, "msb of {val:#x}");
    }
    assert_eq!(stats.rounds, 7);

    let (d0, d1, _) = run2(
        drelu_requests((1, n)),
        &[x],
        |role, mut ch, mut pre, s| async move {
            let d = drelu(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &s[0],
            )
            .await
            .unwrap();
            (d, ch, pre)
        },
    )
    .await;
    let d = reconstruct_bits(&d0, &d1);
    for (i, &val) in v.iter().enumerate() {
        assert_eq!(d[[0, i]], 1 - (val >> 63));
    }
}

#[tokio::test]
async fn a2b_gives_every_bit() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let v = edge_values(&mut rng, 300);
    let x = Array2::from_shape_vec((1, v.len()), v.clone()).unwrap();
    let (b0, b1, stats) = run2(
        a2b_requests(x.dim()),
        &[x],
        |role, mut ch, mut pre, s| async move {
            let b = a2b(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &s[0],
            )
            .await
            .unwrap();
            (b, ch, pre)
        },
    )
    .await;
    assert_eq!(stats.rounds, 7);
    for (i, &val) in v.iter().enumerate() {
        let mut got = 0u64;
        for j in 0..64 {
            got |= reconstruct_bits(&b0[j], &b1[j])[[0, i]] << j;
        }
        assert_eq!(got, val);
    }
}

#[tokio::test]
async fn b2a_and_select_are_exact() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let (r, c) = (7, 19);
    let bits = Array2::from_shape_fn((r, c), |_| rng.gen_range(0..2u64));
    let x = Array2::from_shape_fn((r, c), |_| rng.gen::<u64>());
    // XOR-share the bits.
    let mask = Array2::from_shape_fn((r, c), |_| rng.gen_range(0..2u64));
    let b0 = BitShare::from_bits(&mask.view()).unwrap();
    let b1 = BitShare::from_bits(&(&bits ^ &mask).view()).unwrap();
    let bs = [b0, b1];
    let other = Array2::from_shape_fn((r, c), |_| rng.gen_range(0..2u64));
    let mask2 = Array2::from_shape_fn((r, c), |_| rng.gen_range(0..2u64));
    let o0 = BitShare::from_bits(&mask2.view()).unwrap();
    let o1 = BitShare::from_bits(&(&other ^ &mask2).view()).unwrap();
    let os = [o0, o1];
    let mut reqs = b2a_requests((r, c));
    reqs.extend(select_requests((r, c)));
    reqs.extend(and_requests((r, c)));
    let (o0, o1, stats) = run2(
        reqs,
        std::slice::from_ref(&x),
        |role, mut ch, mut pre, s| {
            let b = bs[role.index()].clone();
            let o = os[role.index()].clone();
            async move {
                let a = b2a(
                    &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                    &b,
                )
                .await
                .unwrap();
                let y = select(
                    &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                    &b,
                    &s[0],
                )
                .await
                .unwrap();
                let z = and(
                    &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                    &b,
                    &o,
                )
                .await
                .unwrap();
                ((a, y, z), ch, pre)
            }
        },
    )
    .await;
    assert_eq!(stats.rounds, 4);
    assert_eq!(reconstruct(&o0.0, &o1.0), bits);
    assert_eq!(reconstruct_bits(&o0.2, &o1.2), &bits & &other);
    let expect = Array2::from_shape_fn((r, c), |(i, j)| bits[[i, j]].wrapping_mul(x[[i, j]]));
    assert_eq!(reconstruct(&o0.1, &o1.1), expect);
}

#[tokio::test]
async fn relu_and_its_derivative_are_exact() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let v = edge_values(&mut rng, 500);
    let x = col(&v);
    let (o0, o1, stats) = run2(
        relu_requests(x.dim()),
        &[x],
        |role, mut ch, mut pre, s| async move {
            let o = relu_with_derivative(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &s[0],
            )
            .await
            .unwrap();
            (o, ch, pre)
        },
    )
    .await;
    assert_eq!(stats.rounds, 8);
    let r = reconstruct(&o0.0, &o1.0);
    let d = reconstruct_bits(&o0.1, &o1.1);
    for (i, &val) in v.iter().enumerate() {
        let pos = (val as i64) >= 0;
        assert_eq!(r[[0, i]], if pos { val } else { 0 }, "relu({})", val as i64);
        assert_eq!(d[[0, i]], pos as u64);
    }
}

#[tokio::test]
async fn piecewise_sigmoid_is_exact() {
    let fp = fp();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let half = 1i64 << 15;
    let outer = i64::MAX - half + 1; // |X| below this (the documented range)
    let mut v: Vec<u64> = edge_values(&mut rng, 400)
        .into_iter()
        .filter(|&x| (x as i64).unsigned_abs() < outer as u64)
        .collect();
    for _ in 0..300 {
        v.push(fp.encode(rng.gen_range(-2.0..2.0)).unwrap());
    }
    let x = col(&v);
    let (o0, o1, stats) = run2(
        piecewise_sigmoid_requests(x.dim()),
        &[x],
        move |role, mut ch, mut pre, s| async move {
            let o = piecewise_sigmoid(&mut Session::new(&mut ch, role, fp, &mut pre), &s[0])
                .await
                .unwrap();
            (o, ch, pre)
        },
    )
    .await;
    assert_eq!(stats.rounds, 8);
    let o = reconstruct(&o0, &o1);
    for (i, &val) in v.iter().enumerate() {
        let xi = val as i64;
        let expect = if xi < -half {
            0
        } else if xi < half {
            (xi + half) as u64
        } else {
            1 << 16
        };
        assert_eq!(o[[0, i]], expect, "sigmoid({})", fp.decode(val));
        // And against the real function.
        let real = (fp.decode(val) + 0.5).clamp(0.0, 1.0);
        assert!((fp.decode(o[[0, i]]) - real).abs() <= fp.ulp());
    }
}

#[tokio::test]
async fn less_than_and_clamp_are_exact() {
    let fp = fp();
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let n = 500;
    let a: Vec<f64> = (0..n).map(|_| rng.gen_range(-10.0..10.0)).collect();
    let mut b: Vec<f64> = (0..n).map(|_| rng.gen_range(-10.0..10.0)).collect();
    b[0] = a[0];
    b[1] = a[1] + fp.ulp();
    let xa = col(&a.iter().map(|&v| fp.encode(v).unwrap()).collect::<Vec<_>>());
    let xb = col(&b.iter().map(|&v| fp.encode(v).unwrap()).collect::<Vec<_>>());
    let (lo, hi) = (fp.encode(-3.0).unwrap(), fp.encode(2.5).unwrap());
    let mut reqs = less_than_requests((1, n));
    reqs.extend(clamp_requests((1, n)));
    let (o0, o1, _) = run2(
        reqs,
        &[xa.clone(), xb.clone()],
        move |role, mut ch, mut pre, s| async move {
            let lt = less_than(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &s[0],
                &s[1],
            )
            .await
            .unwrap();
            let c = clamp(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &s[0],
                lo,
                hi,
            )
            .await
            .unwrap();
            ((lt, c), ch, pre)
        },
    )
    .await;
    let lt = reconstruct_bits(&o0.0, &o1.0);
    let c = reconstruct(&o0.1, &o1.1);
    for i in 0..n {
        let (x, y) = (xa[[0, i]] as i64, xb[[0, i]] as i64);
        assert_eq!(lt[[0, i]], (x < y) as u64);
        assert_eq!(c[[0, i]] as i64, x.clamp(lo as i64, hi as i64));
    }
}

mod arith;
mod edges;
mod log;
mod millionaire;
mod mux;
