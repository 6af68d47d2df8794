//! Edge and cost tests of the non-linear protocols: empty inputs and mismatched shapes, a pool
//! that does not match the call, and the bytes and rounds of the module docs' table.

use super::*;

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
    // The millionaires' comparison (42.5 bytes per value, 6 flights), then one multiplexer
    // (a correction bit and a word per value, 2 flights).
    let comparison = |n: usize| 85 * n / 2 + 4 * 6;
    let mux = |n: usize| n / 8 + 8 * n + 4 * 2;
    assert_eq!(s.bytes_sent, (comparison(n) + mux(n)) as u64);
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
    reqs.extend(select_beaver_requests((1, n)));
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
            let b = ch.stats();
            select_beaver(
                &mut Session::new(&mut ch, role, FixedPoint::default(), &mut pre),
                &bits,
                &s[0],
            )
            .await
            .unwrap();
            out.push(("select_beaver", ch.stats().since(&b)));
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
    // Sigmoid: both comparisons in one pass, both multiplexers in one pass.
    assert_eq!(o[0].1.bytes_sent, (comparison(2 * n) + mux(2 * n)) as u64);
    assert_eq!(o[3].1.bytes_sent, (16 * n + 4) as u64);
    assert_eq!((o[4].1.bytes_sent, o[4].1.rounds), (mux(n) as u64, 2));
    assert_eq!((o[5].1.bytes_sent, o[5].1.rounds), ((32 * n + 4) as u64, 1));
}
