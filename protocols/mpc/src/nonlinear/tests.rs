//! Two-party differential tests of the non-linear protocols against f64 / exact ring semantics,
//! with dealer triples over the in-memory channel pair.

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
    assert_eq!(stats.rounds, 3);
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

fn log_uniform(rng: &mut ChaCha20Rng, lo: f64, hi: f64) -> f64 {
    (rng.gen_range(lo.ln()..hi.ln())).exp()
}

#[tokio::test]
async fn reciprocal_and_division_within_tolerance() {
    let fp = fp();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let top = 2f64.powi(TOP as i32 + 1 - 16);
    let mut xs: Vec<f64> = vec![
        fp.ulp(),
        2.0 * fp.ulp(),
        1.0,
        0.5,
        2.0,
        3.0,
        top - fp.ulp(),
        1000.0,
    ];
    for _ in 0..400 {
        xs.push(log_uniform(&mut rng, fp.ulp(), top - 1.0));
    }
    // Compare against the encoded inputs (1/x is steep near one ulp).
    let xs: Vec<f64> = xs
        .iter()
        .map(|&v| fp.decode(fp.encode(v).unwrap()))
        .collect();
    let n_in = xs.len();
    let mut xs = xs;
    // Outside the range: 0, negatives, above the top — all give 0.
    xs.extend([0.0, -1.0, -fp.ulp(), -1e6, top, 1e9]);
    let n = xs.len();
    let a: Vec<f64> = (0..n)
        .map(|_| fp.decode(fp.encode(rng.gen_range(-4.0..4.0)).unwrap()))
        .collect();
    let xe = col(&xs
        .iter()
        .map(|&v| fp.encode(v).unwrap())
        .collect::<Vec<_>>());
    let ae = col(&a.iter().map(|&v| fp.encode(v).unwrap()).collect::<Vec<_>>());
    let it = DEFAULT_NEWTON_ITERATIONS;
    let mut reqs = reciprocal_requests((1, n), it);
    reqs.extend(divide_requests((1, n), it));
    let (o0, o1, stats) = run2(
        reqs,
        &[xe, ae],
        move |role, mut ch, mut pre, s| async move {
            let before = ch.stats();
            let r = reciprocal(&mut Session::new(&mut ch, role, fp, &mut pre), &s[0], it)
                .await
                .unwrap();
            let rounds = ch.stats().since(&before).rounds;
            let q = divide(
                &mut Session::new(&mut ch, role, fp, &mut pre),
                &s[1],
                &s[0],
                it,
            )
            .await
            .unwrap();
            ((r, q, rounds), ch, pre)
        },
    )
    .await;
    assert_eq!(o0.2, 22, "reciprocal rounds");
    assert_eq!(stats.rounds, 22 + 23);
    let r = fp.decode_matrix(&reconstruct(&o0.0, &o1.0).view());
    let q = fp.decode_matrix(&reconstruct(&o0.1, &o1.1).view());
    let mut worst = 0f64;
    for i in 0..n_in {
        let x = xs[i];
        let tol = 2f64.powi(-12) / x + 2f64.powi(-14);
        let err = (r[[0, i]] - 1.0 / x).abs();
        worst = worst.max(err / tol);
        assert!(
            err <= tol,
            "1/{x}: got {} (err {err:e}, tol {tol:e})",
            r[[0, i]]
        );
        // Division: relative error of the reciprocal times |a| plus the product's rounding.
        let expect = a[i] / x;
        if expect.abs() < 256.0 {
            let tol_q = a[i].abs() * tol + 2f64.powi(-14);
            assert!(
                (q[[0, i]] - expect).abs() <= tol_q,
                "{}/{x}: got {}",
                a[i],
                q[[0, i]]
            );
        }
    }
    for i in n_in..n {
        assert_eq!(r[[0, i]], 0.0, "clamp for 1/{}", xs[i]);
        assert_eq!(q[[0, i]], 0.0);
    }
    eprintln!("reciprocal: worst error / tolerance = {worst:.3}");
}

/// The documented exp tolerance.
fn exp_tol(x: f64, n: u32) -> f64 {
    x.exp() * (x * x / 2f64.powi(n as i32 + 1) + 2f64.powi(n as i32 + 1 - 16)) + 2f64.powi(-12)
}

#[tokio::test]
async fn exp_within_tolerance_and_clamped() {
    let fp = fp();
    let params = ExpParams::default();
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let mut xs: Vec<f64> = vec![0.0, -8.0, params.max_input, 1.0, -1.0, fp.ulp(), -fp.ulp()];
    for _ in 0..400 {
        xs.push(rng.gen_range(-8.0..params.max_input));
    }
    let n_in = xs.len();
    xs.extend([-256.0, -300.0, -1e5, 7.0, 50.0, 1e5]);
    let n = xs.len();
    let xe = col(&xs
        .iter()
        .map(|&v| fp.encode(v).unwrap())
        .collect::<Vec<_>>());
    let (o0, o1, stats) = run2(
        exp_requests((1, n), params),
        &[xe],
        move |role, mut ch, mut pre, s| async move {
            let e = exp(
                &mut Session::new(&mut ch, role, fp, &mut pre),
                &s[0],
                params,
            )
            .await
            .unwrap();
            (e, ch, pre)
        },
    )
    .await;
    assert_eq!(stats.rounds, 8 + params.squarings as u64);
    let e = fp.decode_matrix(&reconstruct(&o0, &o1).view());
    let mut worst = 0f64;
    for i in 0..n_in {
        let x = xs[i];
        let tol = exp_tol(x, params.squarings);
        let err = (e[[0, i]] - x.exp()).abs();
        worst = worst.max(err / tol);
        assert!(
            err <= tol,
            "exp({x}): got {} want {} (tol {tol:e})",
            e[[0, i]],
            x.exp()
        );
    }
    eprintln!("exp: worst error / tolerance = {worst:.3}");
    for i in n_in..n {
        let x = xs[i];
        if x < 0.0 {
            assert!(
                e[[0, i]].abs() <= 2f64.powi(-12),
                "exp({x}) = {}",
                e[[0, i]]
            );
        } else {
            let m = params.max_input;
            assert!(
                (e[[0, i]] - m.exp()).abs() <= exp_tol(m, params.squarings),
                "exp({x}) clamps"
            );
        }
    }
}

#[tokio::test]
async fn softmax_variants_match_f64() {
    let fp = fp();
    let params = ExpParams::default();
    let it = DEFAULT_NEWTON_ITERATIONS;
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let (rows, k) = (40, 10);
    let mut x = Array2::from_shape_fn((rows, k), |_| rng.gen_range(-4.0..4.0));
    // A row with no positive entry (ReLU softmax falls back to uniform), one with a single
    // positive entry, one all zero, one with ties.
    x.row_mut(0).fill(-1.5);
    x.row_mut(1).fill(-0.25);
    x[[1, 3]] = 0.75;
    x.row_mut(2).fill(0.0);
    x.row_mut(3).fill(2.0);
    let xe = fp.encode_matrix(&x.view()).unwrap();
    let mut reqs = softmax_requests((rows, k), params, it);
    reqs.extend(relu_softmax_requests((rows, k), it));
    let (o0, o1, _) = run2(reqs, &[xe], move |role, mut ch, mut pre, s| async move {
        let b0 = ch.stats();
        let a = softmax(
            &mut Session::new(&mut ch, role, fp, &mut pre),
            &s[0],
            params,
            it,
        )
        .await
        .unwrap();
        let r1 = ch.stats().since(&b0).rounds;
        let b1 = ch.stats();
        let b = relu_softmax(&mut Session::new(&mut ch, role, fp, &mut pre), &s[0], it)
            .await
            .unwrap();
        let r2 = ch.stats().since(&b1).rounds;
        ((a, b, r1, r2), ch, pre)
    })
    .await;
    assert_eq!(o0.2, 8 + 8 + 22 + 1);
    assert_eq!(o0.3, 8 + 22 + 1);
    let a = fp.decode_matrix(&reconstruct(&o0.0, &o1.0).view());
    let b = fp.decode_matrix(&reconstruct(&o0.1, &o1.1).view());
    let (mut wa, mut wb) = (0f64, 0f64);
    for i in 0..rows {
        let row = x.row(i);
        let ex: Vec<f64> = row.iter().map(|v| v.exp()).collect();
        let se: f64 = ex.iter().sum();
        let re: Vec<f64> = row.iter().map(|v| v.max(0.0)).collect();
        let sr: f64 = re.iter().sum();
        for j in 0..k {
            let pa = ex[j] / se;
            let pb = if sr == 0.0 {
                1.0 / k as f64
            } else {
                re[j] / sr
            };
            wa = wa.max((a[[i, j]] - pa).abs());
            wb = wb.max((b[[i, j]] - pb).abs());
        }
        let sum_b: f64 = b.row(i).sum();
        assert!(
            (sum_b - 1.0).abs() <= 2e-3,
            "row {i} of relu softmax sums to {sum_b}"
        );
    }
    eprintln!("softmax max abs error {wa:e}, relu softmax {wb:e}");
    // Tolerances: exp's relative error (≤ 8/512 + 2^-7 at |x| ≤ 4) enters numerator and
    // denominator; the reciprocal adds 2^-12 relative.
    assert!(wa <= 0.01, "softmax error {wa}");
    assert!(wb <= 5e-4, "relu softmax error {wb}");
    for j in 0..k {
        assert!((b[[0, j]] - 0.1).abs() <= fp.ulp(), "uniform fallback");
        assert!(
            (b[[2, j]] - 0.1).abs() <= fp.ulp(),
            "uniform fallback on zeros"
        );
    }
    assert!((b[[1, 3]] - 1.0).abs() <= 2e-3);
}

#[tokio::test]
async fn row_max_and_stable_softmax() {
    let fp = fp();
    let params = ExpParams::default();
    let it = DEFAULT_NEWTON_ITERATIONS;
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let (rows, k) = (30, 10);
    let mut x = Array2::from_shape_fn((rows, k), |_| rng.gen_range(-20.0..20.0));
    x.row_mut(0).fill(3.0); // ties
    x[[1, 9]] = 100.0; // the odd carried column wins
    let xe = fp.encode_matrix(&x.view()).unwrap();
    // Exact maxima on arbitrary ring values too (k = 7: odd widths at two levels).
    let wide = Array2::from_shape_fn((5, 7), |_| rng.gen::<u64>() >> 2);
    let mut reqs = row_max_requests((rows, k));
    reqs.extend(row_max_requests((5, 7)));
    reqs.extend(stable_softmax_requests((rows, k), params, it));
    let (o0, o1, _) = run2(
        reqs,
        &[xe.clone(), wide.clone()],
        move |role, mut ch, mut pre, s| async move {
            let m = row_max(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &s[0],
            )
            .await
            .unwrap();
            let b = ch.stats();
            let w = row_max(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &s[1],
            )
            .await
            .unwrap();
            let r = ch.stats().since(&b).rounds;
            let b = ch.stats();
            let p = stable_softmax(
                &mut Session::new(&mut ch, role, fp, &mut pre),
                &s[0],
                params,
                it,
            )
            .await
            .unwrap();
            let rs = ch.stats().since(&b).rounds;
            ((m, w, p, r, rs), ch, pre)
        },
    )
    .await;
    assert_eq!(o0.3, 3 * 8);
    assert_eq!(o0.4, 71);
    let m = reconstruct(&o0.0, &o1.0);
    let w = reconstruct(&o0.1, &o1.1);
    for i in 0..rows {
        assert_eq!(
            m[[i, 0]] as i64,
            xe.row(i).iter().map(|&v| v as i64).max().unwrap()
        );
    }
    for i in 0..5 {
        assert_eq!(
            w[[i, 0]] as i64,
            wide.row(i).iter().map(|&v| v as i64).max().unwrap()
        );
    }
    let p = fp.decode_matrix(&reconstruct(&o0.2, &o1.2).view());
    let mut worst = 0f64;
    for i in 0..rows {
        let mx = x.row(i).iter().cloned().fold(f64::MIN, f64::max);
        let ex: Vec<f64> = x.row(i).iter().map(|v| (v - mx).exp()).collect();
        let s: f64 = ex.iter().sum();
        for j in 0..k {
            worst = worst.max((p[[i, j]] - ex[j] / s).abs());
        }
    }
    eprintln!("stable softmax max abs error {worst:e}");
    assert!(worst <= 0.01, "stable softmax error {worst}");
    assert!((p[[1, 9]] - 1.0).abs() <= 1e-3);
}

#[tokio::test]
async fn empty_inputs_and_shapes_are_handled() {
    let fp = fp();
    let dim = (0, 5);
    assert!(relu_requests(dim).is_empty() && reciprocal_requests(dim, 3).is_empty());
    let x = Array2::<u64>::zeros(dim);
    let (o0, o1, stats) = run2(
        Vec::new(),
        std::slice::from_ref(&x),
        move |role, mut ch, mut pre, s| async move {
            let r = relu(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &s[0],
            )
            .await
            .unwrap();
            let q = reciprocal(&mut Session::new(&mut ch, role, fp, &mut pre), &s[0], 3)
                .await
                .unwrap();
            let e = exp(
                &mut Session::new(&mut ch, role, fp, &mut pre),
                &s[0],
                ExpParams::default(),
            )
            .await
            .unwrap();
            ((r.dim(), q.dim(), e.dim()), ch, pre)
        },
    )
    .await;
    assert_eq!(o0, (dim, dim, dim));
    assert_eq!(o0, o1);
    assert_eq!(stats.rounds, 0);
    // Shapes are kept, and a wrong shape is refused.
    let x = Array2::from_shape_fn((3, 70), |(i, j)| (i * 70 + j) as u64);
    let (o0, o1, _) = run2(
        relu_requests((3, 70)),
        std::slice::from_ref(&x),
        |role, mut ch, mut pre, s| async move {
            let r = relu(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &s[0],
            )
            .await
            .unwrap();
            let bad = select(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &BitShare::from_bits(&Array2::zeros((70, 3)).view()).unwrap(),
                &s[0],
            )
            .await;
            ((r, bad.is_err()), ch, pre)
        },
    )
    .await;
    assert_eq!(reconstruct(&o0.0, &o1.0), x);
    assert!(o0.1 && o1.1);
    // Invalid exp parameters are errors, not silent garbage.
    let (mut p0, _) = preprocess(&[]).await;
    let (mut c0, _c1) = mem_pair();
    let bad = ExpParams {
        squarings: 17,
        ..ExpParams::default()
    };
    let r = exp(
        &mut Session::new(&mut c0, Role::P0, fp, &mut p0),
        &Share::zeros(1, 1),
        bad,
    )
    .await;
    assert!(
        matches!(r, Err(crate::MpcError::InvalidShift { bits: 17, .. })),
        "{r:?}"
    );
    let bad = ExpParams {
        max_input: -1e3,
        ..ExpParams::default()
    };
    let r = exp(
        &mut Session::new(&mut c0, Role::P0, fp, &mut p0),
        &Share::zeros(1, 1),
        bad,
    )
    .await;
    assert!(
        matches!(r, Err(crate::MpcError::OutOfRange { .. })),
        "{r:?}"
    );
}

#[tokio::test]
async fn mismatched_preprocessing_is_an_error() {
    // No preprocessing at all.
    let x = col(&[1, 2, 3]);
    let (o0, o1, _) = run2(Vec::new(), &[x], |role, mut ch, mut pre, s| async move {
        let r = relu(
            &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
            &s[0],
        )
        .await;
        (r.is_err(), ch, pre)
    })
    .await;
    assert!(o0 && o1);
    // Planned for 3 values (one word per bit plane), asked for 70 (two words): refused before
    // anything is sent.
    let (mut p0, _p1) = preprocess(&msb_requests((1, 3))).await;
    let (mut c0, _c1) = mem_pair();
    let r = msb(
        &mut Session::new(&mut c0, Role::P0, FixedPoint::default(), &mut p0),
        &Share::zeros(1, 70),
    )
    .await;
    assert!(
        matches!(r, Err(crate::MpcError::Preprocessing { .. })),
        "{r:?}"
    );
}

/// Bytes and rounds per operation, measured with `Metered` — the figures of the module docs.
#[tokio::test]
async fn cost_matches_the_documented_table() {
    let n = 6400; // a multiple of 64: no padding in the figures
    let x = col(&vec![5u64; n]);
    let gates_msb: usize = msb_and_gates().iter().sum();
    let gates_a2b: usize = a2b_and_gates().iter().sum();
    assert_eq!(gates_msb, 181);
    assert_eq!(msb_and_gates().len(), 7);
    let (_, _, s) = run2(
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
    // 2 bits per gate, plus a 4-byte header per flight.
    assert_eq!(s.bytes_sent, (gates_msb * n / 4 + 4 * 7) as u64);
    assert_eq!(s.rounds, 7);
    let (_, _, s) = run2(
        a2b_requests((1, n)),
        std::slice::from_ref(&x),
        |role, mut ch, mut pre, s| async move {
            let m = a2b(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &s[0],
            )
            .await
            .unwrap();
            (m, ch, pre)
        },
    )
    .await;
    assert_eq!(s.bytes_sent, (gates_a2b * n / 4 + 4 * 7) as u64);
    let (_, _, s) = run2(
        relu_requests((1, n)),
        &[x],
        |role, mut ch, mut pre, s| async move {
            let m = relu(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &s[0],
            )
            .await
            .unwrap();
            (m, ch, pre)
        },
    )
    .await;
    assert_eq!(s.bytes_sent, (gates_msb * n / 4 + 32 * n + 4 * 8) as u64);
    assert_eq!(s.rounds, 8);
    eprintln!("gates: msb {:?} a2b {:?}", msb_and_gates(), a2b_and_gates());

    // Per-value bytes of the composite protocols (printed for the module docs).
    let fp = fp();
    let x = col(&vec![fp.encode(1.5).unwrap(); n]);
    let it = DEFAULT_NEWTON_ITERATIONS;
    let params = ExpParams::default();
    let mut reqs = piecewise_sigmoid_requests((1, n));
    reqs.extend(reciprocal_requests((1, n), it));
    reqs.extend(exp_requests((1, n), params));
    reqs.extend(b2a_requests((1, n)));
    reqs.extend(select_requests((1, n)));
    let (o, _, _) = run2(
        reqs,
        std::slice::from_ref(&x),
        move |role, mut ch, mut pre, s| async move {
            let mut out = Vec::new();
            let b = ch.stats();
            piecewise_sigmoid(&mut Session::new(&mut ch, role, fp, &mut pre), &s[0])
                .await
                .unwrap();
            out.push(("sigmoid", ch.stats().since(&b)));
            let b = ch.stats();
            reciprocal(&mut Session::new(&mut ch, role, fp, &mut pre), &s[0], it)
                .await
                .unwrap();
            out.push(("reciprocal", ch.stats().since(&b)));
            let b = ch.stats();
            exp(
                &mut Session::new(&mut ch, role, fp, &mut pre),
                &s[0],
                params,
            )
            .await
            .unwrap();
            out.push(("exp", ch.stats().since(&b)));
            let bits = BitShare::from_bits(&Array2::zeros((1, n)).view()).unwrap();
            let b = ch.stats();
            b2a(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &bits,
            )
            .await
            .unwrap();
            out.push(("b2a", ch.stats().since(&b)));
            let b = ch.stats();
            select(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &bits,
                &s[0],
            )
            .await
            .unwrap();
            out.push(("select", ch.stats().since(&b)));
            (out, ch, pre)
        },
    )
    .await;
    for (name, st) in &o {
        eprintln!(
            "{name}: {} rounds, {:.2} bytes sent per value",
            st.rounds,
            st.bytes_sent as f64 / n as f64
        );
    }
    assert_eq!(
        o[0].1.bytes_sent,
        (2 * gates_msb * n / 4 + 8 * 3 * 2 * n + 4 * 8) as u64
    );
    assert_eq!(o[3].1.bytes_sent, (16 * n + 4) as u64);
    assert_eq!(o[4].1.bytes_sent, (32 * n + 4) as u64);
}

/// The softmax variants with exact truncation: every truncation takes one elementwise triple per
/// value (so the `*_truncations` counters are checked against the planners), the planners match
/// consumption, and the results stay within the local variants' tolerances.
#[tokio::test]
async fn exact_truncation_softmax_matches_f64_and_counts() {
    let fp = fp();
    let params = ExpParams::default();
    let it = DEFAULT_NEWTON_ITERATIONS;
    let (rows, k) = (20, 10);
    let exact = crate::trunc::Truncation::Exact;
    let local = crate::trunc::Truncation::Local;
    let relu_extra = elementwise_entries(&relu_softmax_requests_with((rows, k), it, exact))
        - elementwise_entries(&relu_softmax_requests_with((rows, k), it, local));
    assert_eq!(relu_extra, relu_softmax_truncations((rows, k), it));
    let stable_extra =
        elementwise_entries(&stable_softmax_requests_with((rows, k), params, it, exact))
            - elementwise_entries(&stable_softmax_requests((rows, k), params, it));
    assert_eq!(
        stable_extra,
        stable_softmax_truncations((rows, k), params, it)
    );
    assert_eq!(
        elementwise_entries(&super::exp::exp_requests_with((rows, k), params, exact))
            - elementwise_entries(&exp_requests((rows, k), params)),
        exp_truncations((rows, k), params)
    );
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let x = Array2::from_shape_fn((rows, k), |_| rng.gen_range(-4.0..4.0));
    let xe = fp.encode_matrix(&x.view()).unwrap();
    let mut reqs = relu_softmax_requests_with((rows, k), it, exact);
    reqs.extend(stable_softmax_requests_with((rows, k), params, it, exact));
    let (o0, o1, _) = run2(reqs, &[xe], move |role, mut ch, mut pre, s| async move {
        let a = relu_softmax_with(
            &mut Session::new(&mut ch, role, fp, &mut pre),
            &s[0],
            (it, exact),
        )
        .await
        .unwrap();
        let b = stable_softmax_with(
            &mut Session::new(&mut ch, role, fp, &mut pre),
            &s[0],
            (params, it, exact),
        )
        .await
        .unwrap();
        ((a, b), ch, pre)
    })
    .await;
    let a = fp.decode_matrix(&reconstruct(&o0.0, &o1.0).view());
    let b = fp.decode_matrix(&reconstruct(&o0.1, &o1.1).view());
    let (mut wa, mut wb) = (0f64, 0f64);
    for i in 0..rows {
        let row = x.row(i);
        let re: Vec<f64> = row.iter().map(|v| v.max(0.0)).collect();
        let sr: f64 = re.iter().sum();
        let mx = row.iter().cloned().fold(f64::MIN, f64::max);
        let ex: Vec<f64> = row.iter().map(|v| (v - mx).exp()).collect();
        let se: f64 = ex.iter().sum();
        for j in 0..k {
            let pa = if sr == 0.0 { 0.1 } else { re[j] / sr };
            wa = wa.max((a[[i, j]] - pa).abs());
            wb = wb.max((b[[i, j]] - ex[j] / se).abs());
        }
    }
    assert!(wa <= 5e-4, "exact relu softmax error {wa}");
    assert!(wb <= 0.01, "exact stable softmax error {wb}");
}
