//! The OT multiplexer against the plaintext `b·x` and the Beaver select: edge values and random
//! shares (proptest), dealer and IKNP preprocessing, the pool accounting of its random OTs, and
//! the documented cost.

use super::*;
use crate::triples::OtSource;
use proptest::prelude::{any, proptest, ProptestConfig, Strategy};

/// XOR shares of `bits` (P0's share from `rng`).
fn bit_shares(bits: &[u64], rng: &mut ChaCha20Rng) -> [BitShare; 2] {
    let m: Vec<u64> = bits.iter().map(|_| rng.gen_range(0..2u64)).collect();
    let o: Vec<u64> = bits.iter().zip(&m).map(|(b, m)| b ^ m).collect();
    [
        BitShare::from_bits(&col(&m).view()).unwrap(),
        BitShare::from_bits(&col(&o).view()).unwrap(),
    ]
}

/// Runs the multiplexer and the Beaver select on the same shares (dealer preprocessing, planned
/// by their planners) and checks both against `b·x`; returns P0's traffic.
async fn check_both(bits: &[u64], v: &[u64], seed: u64) -> CommStats {
    let n = v.len();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let bs = bit_shares(bits, &mut rng);
    let mut reqs = select_requests((1, n));
    reqs.extend(select_beaver_requests((1, n)));
    let (o0, o1, stats) = run2(reqs, &[col(v)], |role, mut ch, mut pre, s| {
        let b = bs[role.index()].clone();
        async move {
            let cx = &mut Session::new(&mut ch, role, fp(), &mut pre);
            let m = select(cx, &b, &s[0]).await.unwrap();
            let r = select_beaver(cx, &b, &s[0]).await.unwrap();
            ((m, r), ch, pre)
        }
    })
    .await;
    let (m, r) = (reconstruct(&o0.0, &o1.0), reconstruct(&o0.1, &o1.1));
    for i in 0..n {
        let want = bits[i].wrapping_mul(v[i]);
        assert_eq!(m[[0, i]], want, "mux: {} · {:#x}", bits[i], v[i]);
        assert_eq!(r[[0, i]], want, "beaver: {} · {:#x}", bits[i], v[i]);
    }
    stats
}

/// Edge values of the ring, each with both bits.
fn edge_pairs() -> (Vec<u64>, Vec<u64>) {
    let edges = [0, 1, u64::MAX, i64::MAX as u64, i64::MIN as u64, 1 << 16, 5];
    let v: Vec<u64> = edges.iter().flat_map(|&x| [x, x]).collect();
    let b: Vec<u64> = (0..v.len()).map(|i| (i % 2) as u64).collect();
    (b, v)
}

#[tokio::test]
async fn exact_on_edge_values() {
    let (b, v) = edge_pairs();
    for seed in 0..8 {
        check_both(&b, &v, seed).await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    /// Random bits, values of every magnitude (and the ring's edges) and random shares: the
    /// multiplexer, the Beaver select and the plaintext agree.
    #[test]
    fn agrees_with_the_plaintext_and_the_beaver_select(
        v in proptest::collection::vec(any::<i64>().prop_map(|x| x as u64), 1..150),
        bits in proptest::collection::vec(0u64..2, 150),
        shift in 0u32..64,
        seed in any::<u64>(),
    ) {
        let (eb, ev) = edge_pairs();
        let mut vals: Vec<u64> = v.iter().map(|x| ((*x as i64) >> shift) as u64).collect();
        let mut bs = bits[..vals.len()].to_vec();
        vals.extend(ev);
        bs.extend(eb);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(check_both(&bs, &vals, seed));
    }
}

/// A real two-party run on random OTs made by IKNP ([`OtSource`]), with a ReLU on top.
#[tokio::test]
async fn exact_on_ot_preprocessing() {
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let v = edge_values(&mut rng, 300);
    let n = v.len();
    let bits: Vec<u64> = (0..n).map(|_| rng.gen_range(0..2u64)).collect();
    let bs = bit_shares(&bits, &mut rng);
    let mut reqs = select_requests((1, n));
    reqs.extend(relu_requests((1, n)));
    let (a, b) = mem_pair();
    let (s0, s1) = tokio::join!(OtSource::setup(a, Role::P0), OtSource::setup(b, Role::P1));
    let (mut s0, mut s1) = (s0.unwrap(), s1.unwrap());
    let (p0, p1) = tokio::join!(s0.generate(&reqs), s1.generate(&reqs));
    let [x0, x1] = share(&col(&v).view(), &mut rng);
    let (c0, c1) = mem_pair();
    let one = |role: Role, mut ch: MemChannel, mut pre: Preprocessing, x: Share| {
        let b = bs[role.index()].clone();
        async move {
            let cx = &mut Session::new(&mut ch, role, fp(), &mut pre);
            let m = select(cx, &b, &x).await.unwrap();
            let r = relu(cx, &x).await.unwrap();
            assert!(pre.is_drained());
            (m, r)
        }
    };
    let ((m0, r0), (m1, r1)) = tokio::join!(
        one(Role::P0, c0, p0.unwrap(), x0),
        one(Role::P1, c1, p1.unwrap(), x1)
    );
    let (m, r) = (reconstruct(&m0, &m1), reconstruct(&r0, &r1));
    for i in 0..n {
        assert_eq!(m[[0, i]], bits[i].wrapping_mul(v[i]), "mux {i}");
        let pos = (v[i] as i64) >= 0;
        assert_eq!(r[[0, i]], if pos { v[i] } else { 0 }, "relu {i}");
    }
}

/// Each random OT serves one multiplexer entry once: a call asks for exactly one block of `n`,
/// consumes it, and a second call on the same pool finds it gone (the next block, of another
/// size, is refused rather than reused).
#[tokio::test]
async fn every_random_ot_is_consumed_once() {
    let n = 37;
    assert_eq!(
        select_requests((1, n)),
        vec![TripleRequest::Rot { count: n }]
    );
    let mut reqs = select_requests((1, n));
    reqs.push(TripleRequest::Rot { count: n + 1 });
    let (mut p0, mut p1) = preprocess(&reqs).await;
    let (mut c0, mut c1) = mem_pair();
    let zero = (BitShare::zeros((1, n)), Share::zeros(1, n));
    let (r0, r1) = tokio::join!(
        async {
            let cx = &mut Session::new(&mut c0, Role::P0, fp(), &mut p0);
            let first = select(cx, &zero.0, &zero.1).await.map(|_| ());
            (first, select(cx, &zero.0, &zero.1).await.map(|_| ()))
        },
        async {
            let cx = &mut Session::new(&mut c1, Role::P1, fp(), &mut p1);
            let first = select(cx, &zero.0, &zero.1).await.map(|_| ());
            (first, select(cx, &zero.0, &zero.1).await.map(|_| ()))
        }
    );
    for (first, second) in [r0, r1] {
        assert!(first.is_ok());
        let e = second.unwrap_err().to_string();
        assert!(
            e.contains("37 random OTs") && e.contains("38 random OTs"),
            "{e}"
        );
    }
    assert!(p0.is_drained() && p1.is_drained());
}

/// The module docs' figures: 1 bit and one word per entry and party in 2 flights (n = 6400, no
/// padding), one random OT per entry and direction.
#[tokio::test]
async fn cost_matches_the_module_docs() {
    let n = 6400;
    let bits = vec![1u64; n];
    let v = vec![7u64; n];
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let bs = bit_shares(&bits, &mut rng);
    let (_, _, s) = run2(
        select_requests((1, n)),
        &[col(&v)],
        |role, mut ch, mut pre, s| {
            let b = bs[role.index()].clone();
            async move {
                let cx = &mut Session::new(&mut ch, role, fp(), &mut pre);
                (select(cx, &b, &s[0]).await.unwrap(), ch, pre)
            }
        },
    )
    .await;
    assert_eq!(
        (s.bytes_sent, s.rounds),
        ((n / 8 + 8 * n + 4 * 2) as u64, 2)
    );
    // With the ReLU's comparison: its requests plus one block of n random OTs.
    let relu = relu_requests((1, n));
    assert_eq!(relu.last(), Some(&TripleRequest::Rot { count: n }));
    assert_eq!(elementwise_entries(&relu), 0);
}
