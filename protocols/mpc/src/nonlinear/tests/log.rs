//! The natural logarithm against f64 over its whole input range at f = 16, its out-of-range
//! clamp, its cost, and its preprocessing with exact truncation.

use super::*;
use crate::trunc::Truncation;

/// The documented bound on encoded inputs in `[2^−f, 2^(TOP+1−f))`.
const LN_TOL: f64 = 1.0 / 8192.0;

/// Runs `ln_with(mode)` on the encodings `xe` as both parties; the decoded result and P0's
/// traffic.
async fn ln_on_shares(xe: Vec<u64>, mode: Truncation) -> (Vec<f64>, crate::net::CommStats) {
    let fp = fp();
    let n = xe.len();
    let (o0, o1, stats) = run2(
        ln_requests_with((1, n), mode),
        &[col(&xe)],
        move |role, mut ch, mut pre, s| async move {
            let cx = &mut Session::new(&mut ch, role, fp, &mut pre);
            let r = ln_with(cx, &s[0], mode).await.unwrap();
            (r, ch, pre)
        },
    )
    .await;
    let r = fp.decode_matrix(&reconstruct(&o0, &o1).view());
    (r.iter().copied().collect(), stats)
}

#[tokio::test]
async fn ln_within_tolerance_over_the_range_and_clamped_outside() {
    let fp = fp();
    let top = 2f64.powi(TOP as i32 + 1 - 16);
    let mut rng = ChaCha20Rng::seed_from_u64(21);
    // Every leading-one position, its edges, the values the log-losses take ([1, k]), and
    // log-uniform values over the whole range.
    let mut xe: Vec<u64> = Vec::new();
    for j in 0..=TOP {
        xe.extend([1u64 << j, (1u64 << (j + 1)) - 1]);
    }
    xe.extend([fp.encode(1.0).unwrap(), fp.encode(2.0).unwrap()]);
    for _ in 0..200 {
        xe.push(fp.encode(rng.gen_range(1.0..10.0)).unwrap());
    }
    while xe.len() < 640 - 8 {
        let v = rng.gen_range(fp.ulp().ln()..top.ln()).exp();
        xe.push(fp.encode(v).unwrap().max(1));
    }
    let n_in = xe.len();
    // Outside: 0, negatives, the top and above; all give ≈ 0.
    for v in [0.0, -fp.ulp(), -1.0, -1e6, top, 2.0 * top, 1e9, -1e9] {
        xe.push(fp.encode(v).unwrap());
    }
    let (r, stats) = ln_on_shares(xe.clone(), Truncation::Local).await;
    let mut worst = 0f64;
    for i in 0..n_in {
        let x = fp.decode(xe[i]);
        let err = (r[i] - x.ln()).abs();
        worst = worst.max(err);
        assert!(err <= LN_TOL, "ln({x}) = {} (err {err:e})", r[i]);
    }
    for i in n_in..xe.len() {
        assert!(
            r[i].abs() <= LN_TOL,
            "clamp: ln({}) gave {}",
            fp.decode(xe[i]),
            r[i]
        );
    }
    eprintln!("ln: worst error {worst:e} = {:.2} ulp", worst / fp.ulp());
    // 7 + 6 + 1 rounds of normalization, 1 of reduction, 3 of powers.
    assert_eq!(stats.rounds, 18);
    let n = xe.len();
    let gates: usize = a2b_and_gates().iter().sum::<usize>() + 162;
    let bytes = gates * n / 4 + 16 * (TOP + 2) * n + 16 * 7 * n + 4 * 18;
    assert_eq!(stats.bytes_sent, bytes as u64);
    eprintln!("ln: {:.2} bytes sent per value", bytes as f64 / n as f64);
}

/// Exact truncation: the same bound, one more round per truncating round, and exactly one
/// elementwise triple entry more per truncated value.
#[tokio::test]
async fn ln_with_exact_truncation() {
    let fp = fp();
    let mut rng = ChaCha20Rng::seed_from_u64(22);
    let xs: Vec<f64> = (0..100).map(|_| rng.gen_range(0.01..1000.0)).collect();
    let xe: Vec<u64> = xs.iter().map(|&v| fp.encode(v).unwrap()).collect();
    let (r, stats) = ln_on_shares(xe.clone(), Truncation::Exact).await;
    for (i, &e) in xe.iter().enumerate() {
        let x = fp.decode(e);
        assert!((r[i] - x.ln()).abs() <= LN_TOL, "ln({x}) = {}", r[i]);
    }
    assert_eq!(stats.rounds, 18 + 5);
    let extra = elementwise_entries(&ln_requests_with((3, 7), Truncation::Exact))
        - elementwise_entries(&ln_requests((3, 7)));
    assert_eq!(extra, ln_truncations(21));
}
