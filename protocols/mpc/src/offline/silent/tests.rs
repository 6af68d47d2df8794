//! Tests of the silent extension over an in-memory channel pair: the correlation on every output
//! in both directions through the bootstrap and later iterations, fresh instance indices,
//! derandomized choices, and the bytes sent.

use super::*;
use crate::net::{mem_pair, MemChannel, Metered};
use crate::offline::iknp::setup_pair;

/// The bootstrap set for both roles: small enough for tests, and a published set.
const PRE_ONLY: SilentParams = SilentParams {
    bootstrap: FERRET_PRE,
    steady: FERRET_PRE,
};

type Taken = Vec<(ReceiverBlocks, SenderBlocks)>;

/// Both parties take `words` COT words `times` times; returns each party's blocks, the two
/// pairs and the bytes each party sent.
async fn run(
    params: SilentParams,
    words: usize,
    times: usize,
) -> ([Taken; 2], [SilentPair; 2], [u64; 2]) {
    let (a, b) = mem_pair();
    let party = |ch: MemChannel, seed: u64| async move {
        let mut ch = Metered::new(ch);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut iknp = setup_pair(&mut ch, &mut rng).await.unwrap();
        let base = ch.stats().bytes_sent;
        let mut s = SilentPair::new(params, &mut rng).unwrap();
        let mut out = Vec::new();
        for _ in 0..times {
            out.push(s.take(&mut ch, &mut iknp, words).await.unwrap());
        }
        (out, s, ch.stats().bytes_sent - base)
    };
    let ((o0, s0, b0), (o1, s1, b1)) = tokio::join!(party(a, 1), party(b, 2));
    ([o0, o1], [s0, s1], [b0, b1])
}

fn bit(words: &[u64], j: usize) -> u64 {
    (words[j / 64] >> (j % 64)) & 1
}

/// `q = t ⊕ b·Δ` on every COT handed out, both directions, across the bootstrap and two more
/// iterations (a take that spans two iterations included); indices never repeat; choices are
/// balanced; the sender's Δ is the same in every take.
#[tokio::test]
async fn every_output_is_a_cot_across_iterations() {
    let per = FERRET_PRE.n / 64 / 3 + 11;
    let ([o0, o1], [s0, _], _) = run(PRE_ONLY, per, 7).await;
    assert!(s0.iterations() >= 3, "{:?}", s0);
    for (mine, theirs) in [(&o0, &o1), (&o1, &o0)] {
        let delta = theirs[0].1.delta;
        let mut seen = std::collections::HashSet::new();
        let mut ones = 0u64;
        for ((r, _), (_, s)) in mine.iter().zip(theirs.iter()) {
            assert_eq!((r.first, r.t.len()), (s.first, s.q.len()));
            assert_eq!(s.delta, delta);
            assert!(r.first >= FIRST_INDEX && seen.insert(r.first));
            for j in 0..r.t.len() {
                let b = bit(&r.choices, j);
                assert_eq!(
                    s.q[j],
                    r.t[j] ^ (b as u128 * delta),
                    "COT {j} from #{}",
                    r.first
                );
                ones += b;
            }
        }
        let n = (64 * per * 7) as f64;
        assert!((ones as f64 / n - 0.5).abs() < 0.01, "{ones} of {n}");
        // The takes' index ranges are disjoint.
        let mut ranges: Vec<(u64, u64)> = mine
            .iter()
            .map(|(r, _)| (r.first, r.first + r.t.len() as u64))
            .collect();
        ranges.sort();
        assert!(ranges.windows(2).all(|w| w[0].1 <= w[1].0));
    }
}

/// The sender's rows differ from the receiver's (no trivial Δ = 0 or all-equal outputs) and
/// the two directions use different Δ.
#[tokio::test]
async fn outputs_are_not_trivial() {
    let ([o0, o1], _, _) = run(PRE_ONLY, 64, 1).await;
    let (r0, s0) = &o0[0];
    let (r1, s1) = &o1[0];
    assert_ne!(s0.delta, 0);
    assert_ne!(s0.delta, s1.delta);
    let distinct: std::collections::HashSet<u128> = r0.t.iter().copied().collect();
    assert_eq!(distinct.len(), r0.t.len());
    assert!(r1.t.iter().zip(&s0.q).any(|(t, q)| t != q));
}

/// Chosen choices: after [`derandomize`] the receiver's choices are the chosen ones and the
/// correlation holds with them.
#[tokio::test]
async fn derandomized_choices_are_the_chosen_ones() {
    let (a, b) = mem_pair();
    let words = 300;
    let party = |mut ch: MemChannel, seed: u64| async move {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut iknp = setup_pair(&mut ch, &mut rng).await.unwrap();
        let mut s = SilentPair::new(PRE_ONLY, &mut rng).unwrap();
        let (mut r, mut q) = s.take(&mut ch, &mut iknp, words).await.unwrap();
        let c: Vec<u64> = (0..words as u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        derandomize(&mut ch, &mut r, &mut q, c.clone())
            .await
            .unwrap();
        (r, q, c)
    };
    let ((r0, s0, c0), (r1, s1, c1)) = tokio::join!(party(a, 5), party(b, 6));
    for (r, s, c) in [(&r0, &s1, &c0), (&r1, &s0, &c1)] {
        assert_eq!(&r.choices, c);
        for j in 0..r.t.len() {
            assert_eq!(s.q[j], r.t[j] ^ (bit(c, j) as u128 * s.delta), "COT {j}");
        }
    }
}

/// Bytes: the bootstrap's IKNP columns and the GGM messages, nothing else; each steady
/// iteration adds exactly its GGM message (framing included).
#[tokio::test]
async fn bytes_sent_are_the_ggm_messages() {
    let words = FERRET_PRE.n / 64 - FERRET_PRE.seed_words();
    let (_, [s0, _], [one, _]) = run(PRE_ONLY, words, 1).await;
    assert_eq!(s0.iterations(), 1);
    let (_, [s0, _], [three, _]) = run(PRE_ONLY, words, 3).await;
    assert_eq!(s0.iterations(), 3);
    let msg = 16 * spcot::msg_blocks(&FERRET_PRE) as u64;
    let per_iteration = (three - one) / 2;
    assert!(
        per_iteration >= msg && per_iteration < msg + 64,
        "{per_iteration} vs {msg}"
    );
    let iknp = 16 * 64 * FERRET_PRE.seed_words() as u64;
    assert!(one >= iknp + msg && one < iknp + msg + 256, "{one}");
}

/// The steady Ferret set: one full iteration after the bootstrap keeps the correlation (a
/// sample of outputs, both ends of the pool).
#[tokio::test]
async fn ferret_main_iteration_is_correct() {
    let avail = FERRET_PRE.n / 64 - FERRET.steady.seed_words();
    let ([o0, o1], [s0, _], [sent, _]) = run(FERRET, avail + 1, 1).await;
    assert_eq!(s0.iterations(), 2);
    let (r, _) = &o0[0];
    let (_, s) = &o1[0];
    for j in (0..r.t.len()).step_by(997).chain(r.t.len() - 64..r.t.len()) {
        assert_eq!(
            s.q[j],
            r.t[j] ^ (bit(&r.choices, j) as u128 * s.delta),
            "COT {j}"
        );
    }
    let main = 16 * spcot::msg_blocks(&FERRET_MAIN) as u64;
    assert_eq!(main, 559_440);
    assert!(sent > main && sent < 2_000_000, "{sent}");
}
