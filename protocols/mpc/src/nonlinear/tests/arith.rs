//! Tests of the arithmetic protocols on fixed-point values: reciprocal and division, exp, the
//! softmax variants and the row maximum, with local and exact truncation, against f64.

use super::*;

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
