//! Tests of the IKNP extension: base-OT setup, random and correlated OT in both phases, chunked
//! drivers and their failure modes.

use super::*;
use crate::net::mem_pair;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn fixed_pair(
    seed: u64,
) -> (
    Sender<state::Extension>,
    Receiver<state::Extension>,
    Vec<u8>,
) {
    let mut rs = ChaCha20Rng::seed_from_u64(seed);
    let mut rr = ChaCha20Rng::seed_from_u64(seed + 1);
    let (r, setup) = Receiver::new(&mut rr);
    let (s, reply) = Sender::new(&mut rs).receive_base(&setup, &mut rs).unwrap();
    let r = r.finish_base(&reply).unwrap();
    let mut transcript = setup.a.to_vec();
    for b in &reply.b {
        transcript.extend_from_slice(b);
    }
    (s, r, transcript)
}

fn random_words(rng: &mut ChaCha20Rng, n: usize) -> Vec<u64> {
    (0..n).map(|_| rng.next_u64()).collect()
}

#[test]
fn extension_rows_are_delta_correlated() {
    let (mut s, mut r, _) = fixed_pair(1);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    for words in [1, 2, 7] {
        let choices = random_words(&mut rng, words);
        let (msg, rb) = r.extend(&choices);
        let sb = s.extend(words, &msg).unwrap();
        assert_eq!(sb.first, rb.first);
        for j in 0..words * 64 {
            let bit = (choices[j / 64] >> (j % 64)) & 1;
            let expect = rb.t[j] ^ if bit == 1 { sb.delta } else { 0 };
            assert_eq!(sb.q[j], expect, "instance {j}");
        }
    }
}

#[test]
fn rot_and_cot_deliver_the_chosen_message() {
    let (mut s, mut r, _) = fixed_pair(3);
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let choices = random_words(&mut rng, 40);
    let (msg, rb) = r.extend(&choices);
    let sb = s.extend(40, &msg).unwrap();
    let pairs = sb.rot();
    let got = rb.rot();
    for j in 0..40 * 64 {
        let bit = ((choices[j / 64] >> (j % 64)) & 1) as usize;
        assert_eq!(got[j], pairs[j][bit]);
        assert_ne!(got[j], pairs[j][1 - bit]);
    }
    let corr = random_words(&mut rng, 40 * 64);
    let (x, d) = sb.cot(&corr).unwrap();
    let y = rb.cot(&d).unwrap();
    for j in 0..40 * 64 {
        let bit = (choices[j / 64] >> (j % 64)) & 1;
        assert_eq!(y[j], x[j].wrapping_add(bit * corr[j]));
    }
    // Vectors of 5 words.
    let corr = random_words(&mut rng, 40 * 64 * 5);
    let (x, d) = sb.cot_vec(&corr, 5).unwrap();
    let y = rb.cot_vec(&d, 5).unwrap();
    for j in 0..40 * 64 {
        let bit = (choices[j / 64] >> (j % 64)) & 1;
        for e in 0..5 {
            let k = 5 * j + e;
            assert_eq!(y[k], x[k].wrapping_add(bit * corr[k]));
        }
    }
}

/// The receiver's columns are not its choice vector: each is at Hamming distance about m/2
/// from it, and flipping every choice leaves the distribution of column weights alike.
#[test]
fn extension_message_hides_choices() {
    let (_, mut r, _) = fixed_pair(5);
    let words = 64;
    let m = (words * 64) as i64;
    for choices in [vec![0u64; words], vec![u64::MAX; words]] {
        let (msg, _) = r.extend(&choices);
        for i in 0..BASE_OTS {
            let col = &msg.u[i * words..(i + 1) * words];
            let dist: i64 = col
                .iter()
                .zip(&choices)
                .map(|(a, b)| (a ^ b).count_ones() as i64)
                .sum();
            // 4096 fair bits: standard deviation 32; 8 sigma.
            assert!(
                (dist - m / 2).abs() < 256,
                "column {i}: distance {dist} of {m}"
            );
        }
    }
}

/// Same seeds, same transcript and outputs (a regression vector recorded from this code).
#[test]
fn fixed_seeds_give_a_fixed_transcript() {
    let run = || {
        let (mut s, mut r, mut transcript) = fixed_pair(11);
        let choices: Vec<u64> = (0..4u64)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        let (msg, rb) = r.extend(&choices);
        let sb = s.extend(4, &msg).unwrap();
        let corr: Vec<u64> = (0..256).collect();
        let (_, d) = sb.cot(&corr).unwrap();
        for w in msg.u.iter().chain(&d).chain(&rb.cot(&d).unwrap()) {
            transcript.extend_from_slice(&w.to_le_bytes());
        }
        blake3::hash(&transcript).to_hex().to_string()
    };
    let a = run();
    assert_eq!(a, run());
    assert_eq!(a, KAT_IKNP);
}
const KAT_IKNP: &str = "4eed611d029f94f3442b2cb28496f52265b5aff1de2d2556aaa938355af7b67b";

#[tokio::test]
async fn drivers_run_cot_and_rot_in_chunks() {
    let (mut a, mut b) = mem_pair();
    let words = CHUNK_WORDS + 3;
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let choices = random_words(&mut rng, words);
    let corr = random_words(&mut rng, words * 64);
    let (c2, corr2) = (choices.clone(), corr.clone());
    let (xs, ys) = tokio::join!(
        async move {
            let mut rng = ChaCha20Rng::from_entropy();
            let mut s = setup_sender(&mut a, &mut rng).await.unwrap();
            let x = send_cot(&mut a, &mut s, &corr2).await.unwrap();
            let p = send_rot(&mut a, &mut s, 2).await.unwrap();
            (x, p)
        },
        async move {
            let mut rng = ChaCha20Rng::from_entropy();
            let mut r = setup_receiver(&mut b, &mut rng).await.unwrap();
            let y = receive_cot(&mut b, &mut r, &c2).await.unwrap();
            let q = receive_rot(&mut b, &mut r, &[5, 6]).await.unwrap();
            (y, q)
        }
    );
    for j in 0..words * 64 {
        let bit = (choices[j / 64] >> (j % 64)) & 1;
        assert_eq!(ys.0[j], xs.0[j].wrapping_add(bit * corr[j]));
    }
    let ch = [5u64, 6];
    for j in 0..128 {
        let bit = ((ch[j / 64] >> (j % 64)) & 1) as usize;
        assert_eq!(ys.1[j], xs.1[j][bit]);
    }
}

#[tokio::test]
async fn pair_setup_gives_two_working_directions() {
    let (mut a, mut b) = mem_pair();
    let (mut g1, mut g2) = (ChaCha20Rng::seed_from_u64(1), ChaCha20Rng::seed_from_u64(2));
    let (pa, pb) = tokio::join!(setup_pair(&mut a, &mut g1), setup_pair(&mut b, &mut g2));
    let (mut pa, mut pb) = (pa.unwrap(), pb.unwrap());
    let (ca, cb) = (vec![0xdead_beefu64, 3], vec![77u64, u64::MAX]);
    let (ra, rb) = tokio::join!(
        extend_both(&mut a, &mut pa, ca.clone()),
        extend_both(&mut b, &mut pb, cb.clone())
    );
    let ((ra, sa), (rb, sb)) = (ra.unwrap(), rb.unwrap());
    // a's sender pairs with b's receiver and vice versa.
    for (s, r, c) in [(&sa, &rb, &cb), (&sb, &ra, &ca)] {
        for j in 0..128 {
            let bit = (c[j / 64] >> (j % 64)) & 1;
            assert_eq!(s.q[j], r.t[j] ^ if bit == 1 { s.delta } else { 0 });
        }
    }
}
