//! The millionaires' MSB against the plaintext MSB and the GMW adder: every leaf width, edge
//! values, shares chosen to make every block equal (the longest `eq` chains), dealer and OT
//! preprocessing, and the documented cost.

use super::*;
use crate::triples::{OtSource, MAX_LEAF_BITS};
use proptest::prelude::{any, proptest, ProptestConfig, Strategy};

/// Runs the millionaires' MSB on the given share pairs with `pre` (P0's, P1's) and returns the
/// reconstructed bits and P0's traffic.
async fn run_shares(
    s0: Vec<u64>,
    s1: Vec<u64>,
    bits: u8,
    pre: (Preprocessing, Preprocessing),
) -> (Vec<u64>, CommStats) {
    let n = s0.len();
    let (c0, c1) = mem_pair();
    let one = |role: Role, ch: MemChannel, mut pre: Preprocessing, s: Vec<u64>| async move {
        let mut ch = Metered::new(ch);
        let x = Share::from_ring(col(&s));
        let cx = &mut Session::new(&mut ch, role, fp(), &mut pre);
        let m = msb_millionaire(cx, &x, bits).await.unwrap();
        assert!(pre.is_drained(), "planner and protocol disagree");
        (m, ch.stats())
    };
    let ((m0, st), (m1, _)) =
        tokio::join!(one(Role::P0, c0, pre.0, s0), one(Role::P1, c1, pre.1, s1));
    let m = reconstruct_bits(&m0, &m1);
    ((0..n).map(|i| m[[0, i]]).collect(), st)
}

/// Random shares of `v`, then checks the MSB bit by bit; returns P0's traffic.
async fn check_values(v: &[u64], bits: u8, seed: u64) -> CommStats {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let s0: Vec<u64> = v.iter().map(|_| rng.gen()).collect();
    check_shares(v, s0, bits).await
}

async fn check_shares(v: &[u64], s0: Vec<u64>, bits: u8) -> CommStats {
    let s1: Vec<u64> = v.iter().zip(&s0).map(|(x, a)| x.wrapping_sub(*a)).collect();
    let pre = preprocess(&msb_millionaire_requests((1, v.len()), bits)).await;
    let (m, stats) = run_shares(s0.clone(), s1, bits, pre).await;
    for (i, &x) in v.iter().enumerate() {
        assert_eq!(
            m[i],
            x >> 63,
            "msb of {x:#x} (share {:#x}), m = {bits}",
            s0[i]
        );
    }
    stats
}

#[tokio::test]
async fn exact_on_the_whole_ring_for_every_leaf_width() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let v = edge_values(&mut rng, 500);
    for bits in 1..=MAX_LEAF_BITS {
        let stats = check_values(&v, bits, bits as u64).await;
        let q = 63usize.div_ceil(bits as usize);
        assert_eq!(
            stats.rounds,
            2 + q.next_power_of_two().trailing_zeros() as u64
        );
    }
}

/// Shares whose low 63 bits are complements (`a + b = 2^63 − 1`: every block equal, no carry)
/// or one more (`a + b = 2^63`: carry from bit 0 through every block), and neighbours.
#[tokio::test]
async fn carry_chains_through_equal_blocks() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let mut v = Vec::new();
    let mut s0 = Vec::new();
    for _ in 0..200 {
        let a: u64 = rng.gen();
        for sum_low in [LOW63 - 1, LOW63, LOW63 + 1, 0, 1] {
            let top = rng.gen::<u64>() & (1 << 63);
            let b = (sum_low.wrapping_sub(a & LOW63) & LOW63) | top;
            v.push(a.wrapping_add(b));
            s0.push(a);
        }
    }
    for bits in 1..=MAX_LEAF_BITS {
        check_shares(&v, s0.clone(), bits).await;
    }
}

const LOW63: u64 = (1 << 63) - 1;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// Random values and shares of every magnitude agree with the plaintext MSB and the adder.
    #[test]
    fn agrees_with_the_plaintext_msb_and_the_adder(
        v in proptest::collection::vec(any::<i64>().prop_map(|x| x as u64), 1..80),
        shift in 0u32..64,
        seed in any::<u64>(),
        bits in 1u8..=MAX_LEAF_BITS,
    ) {
        let v: Vec<u64> = v.iter().map(|x| ((*x as i64) >> shift) as u64).collect();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            check_values(&v, bits, seed).await;
            let x = col(&v);
            let (a0, a1, _) = run2(msb_requests((1, v.len())), &[x], |role, mut ch, mut pre, s| {
                async move {
                    let cx = &mut Session::new(&mut ch, role, fp(), &mut pre);
                    (msb(cx, &s[0]).await.unwrap(), ch, pre)
                }
            })
            .await;
            let adder = reconstruct_bits(&a0, &a1);
            for (i, x) in v.iter().enumerate() {
                assert_eq!(adder[[0, i]], x >> 63);
            }
        });
    }
}

/// A real two-party run on leaf OTs and AND triples made by IKNP ([`OtSource`]).
#[tokio::test]
async fn exact_on_ot_preprocessing() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let v = edge_values(&mut rng, 300);
    let reqs = msb_millionaire_requests((1, v.len()), LEAF_BITS);
    let (a, b) = mem_pair();
    let (s0, s1) = tokio::join!(OtSource::setup(a, Role::P0), OtSource::setup(b, Role::P1));
    let (mut s0, mut s1) = (s0.unwrap(), s1.unwrap());
    let (p0, p1) = tokio::join!(s0.generate(&reqs), s1.generate(&reqs));
    let s0v: Vec<u64> = v.iter().map(|_| rng.gen()).collect();
    let s1v: Vec<u64> = v
        .iter()
        .zip(&s0v)
        .map(|(x, a)| x.wrapping_sub(*a))
        .collect();
    let (m, _) = run_shares(s0v, s1v, LEAF_BITS, (p0.unwrap(), p1.unwrap())).await;
    for (i, &x) in v.iter().enumerate() {
        assert_eq!(m[i], x >> 63, "msb of {x:#x}");
    }
}

/// The module docs' online figures at m = 4 and n = 6400 (no padding): 4-bit shifts and 16
/// two-bit messages for half of the 16 leaves per value, 26 AND gates of 2 bits, one 4-byte
/// header per flight; and the preprocessing: 8 leaf OTs per value and direction, 26 AND triples.
#[tokio::test]
async fn cost_matches_the_module_docs() {
    let n = 6400;
    let v = vec![5u64; n];
    let s = check_values(&v, LEAF_BITS, 3).await;
    assert_eq!(s.rounds, 6);
    assert_eq!(
        s.bytes_sent,
        (n * 8 * 4 / 8 + n * 8 * 32 / 8 + n * 26 / 4 + 4 * 6) as u64
    );
    let reqs = msb_millionaire_requests((1, n), LEAF_BITS);
    let and_words: usize = reqs
        .iter()
        .map(|r| match r {
            TripleRequest::And { words } => *words,
            _ => 0,
        })
        .sum();
    assert_eq!(and_words * 64, 26 * n);
    assert_eq!(
        reqs[0],
        TripleRequest::LeafOt {
            count: 8 * n,
            bits: 4
        }
    );
}

#[tokio::test]
async fn a_bad_leaf_width_is_refused() {
    let mut pre = Preprocessing::new();
    let (mut c0, _c1) = mem_pair();
    let cx = &mut Session::new(&mut c0, Role::P0, fp(), &mut pre);
    for bits in [0, MAX_LEAF_BITS + 1] {
        let e = msb_millionaire(cx, &Share::zeros(1, 3), bits)
            .await
            .unwrap_err();
        assert!(e.to_string().contains(&format!("bits = {bits}")), "{e}");
    }
}
