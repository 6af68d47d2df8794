//! Random 1-out-of-2^m OT with 2-bit messages from m random 1-out-of-2 OTs, in both directions
//! ([`crate::triples::LeafOts`], the leaf correlations of [`crate::nonlinear`]'s millionaires'
//! comparison).
//!
//! Construction (Naor–Pinkas style, the key expansion replaced by the random-OT messages
//! themselves): instance `e` uses m random OTs whose 64-bit messages are `k_{i,0}, k_{i,1}`
//! (sender) and `k_{i,c_i}` (receiver, choice bits `c_i`). Read a message as 32 two-bit slots; the
//! message for index `j ∈ [0, 2^m)` is
//!
//! `R[j] = ⊕_i slot(k_{i, j_i}, j without bit i)`,
//!
//! (`j without bit i` is the (m−1)-bit index left when bit `i` is deleted, so m ≤ 6 fits 32
//! slots). The receiver computes `R[c]` from its keys. For `j ≠ c` pick `i` with `j_i ≠ c_i`:
//! slot `j without bit i` of `k_{i, 1−c_i}` enters `R[j]` and no other message (it fixes `i`,
//! `j_i` and all other bits of `j`), and the receiver never sees `k_{i, 1−c_i}`; so the messages
//! other than `R[c]` are jointly uniform given the receiver's view, and the sender's view (the
//! random-OT sender's) is independent of `c`. Security is that of the random OTs: IKNP or the
//! silent extension with the correlation-robust hash ([`super::cot`]), semi-honest.
//!
//! Cost per instance and direction: m random COTs ([`super::cot::random_both`]), i.e. 16·m bytes
//! of IKNP columns sent by the receiver, or about 0.06·m bytes with the silent extension; nothing
//! else. The sender's output share `mask` is drawn from its own generator.

use super::cot::{random_both, Cots};
use crate::compute::offload_sized;
use crate::error::Result;
use crate::net::Channel;
use crate::triples::{check_leaf_bits, LeafOts};

/// Instances per extension chunk, a multiple of 64 so every chunk's random OTs fill whole words.
const CHUNK_INSTANCES: usize = 64 * 2048;

/// `j` with bit `i` deleted.
fn without(j: usize, i: usize) -> usize {
    (j & ((1 << i) - 1)) | ((j >> (i + 1)) << i)
}

/// Two-bit slot `p` of a random-OT message.
fn slot(k: u64, p: usize) -> u8 {
    ((k >> (2 * p)) & 3) as u8
}

/// The sender's `2^m` messages from its m random-OT pairs (`pairs[i] = [k_{i,0}, k_{i,1}]`).
pub fn sender_table(pairs: &[[u64; 2]], out: &mut [u8]) {
    for (j, o) in out.iter_mut().enumerate() {
        *o = pairs
            .iter()
            .enumerate()
            .fold(0, |acc, (i, p)| acc ^ slot(p[(j >> i) & 1], without(j, i)));
    }
}

/// The receiver's message `R[c]` from its m chosen random-OT messages.
pub fn receiver_message(keys: &[u64], choice: usize) -> u8 {
    keys.iter()
        .enumerate()
        .fold(0, |acc, (i, &k)| acc ^ slot(k, without(choice, i)))
}

/// Sans-I/O core for `count` instances: this party's leaf OTs from its random-OT receiver
/// outputs (`chosen_keys`, choices packed LSB first in `choices`) and sender pairs (`pairs`),
/// m = `bits` consecutive random OTs per instance, with the sender's output shares `mask`.
pub fn leaf_ots_local(
    bits: u8,
    choices: &[u64],
    chosen_keys: &[u64],
    pairs: &[[u64; 2]],
    mask: Vec<u8>,
) -> LeafOts {
    let m = bits as usize;
    let count = mask.len();
    let mut table = vec![0u8; count << m];
    for (e, t) in table.chunks_mut(1 << m).enumerate() {
        sender_table(&pairs[e * m..(e + 1) * m], t);
    }
    let bit = |r: usize| ((choices[r / 64] >> (r % 64)) & 1) as usize;
    let choice: Vec<u8> = (0..count)
        .map(|e| (0..m).fold(0, |c, i| c | (bit(e * m + i) << i)) as u8)
        .collect();
    let chosen = (0..count)
        .map(|e| receiver_message(&chosen_keys[e * m..(e + 1) * m], choice[e] as usize))
        .collect();
    LeafOts {
        bits,
        table,
        mask,
        choice,
        chosen,
    }
}

/// Both parties call it: `count` random 1-out-of-2^`bits` OTs in each direction, choices and
/// output shares drawn from `rng`; `progress` gets the random OTs made per direction.
pub async fn leaf_ots<C: Channel, R: rand::RngCore>(
    ch: &mut C,
    pair: &mut Cots,
    count: usize,
    bits: u8,
    rng: &mut R,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<LeafOts> {
    check_leaf_bits(bits)?;
    let m = bits as usize;
    let mut out = LeafOts::zeros(0, bits);
    let mut done = 0;
    while done < count {
        let n = CHUNK_INSTANCES.min(count - done);
        let (r, s) = random_both(ch, pair, (n * m).div_ceil(64), rng).await?;
        let mut mask = vec![0u8; n];
        rng.fill_bytes(&mut mask);
        mask.iter_mut().for_each(|b| *b &= 3);
        let t = offload_sized(n << (m + 2), move || {
            leaf_ots_local(bits, &r.choices, &r.rot(), &s.rot(), mask)
        })
        .await;
        out.table.extend(t.table);
        out.mask.extend(t.mask);
        out.choice.extend(t.choice);
        out.chosen.extend(t.chosen);
        progress((n * m) as u64);
        done += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::mem_pair;
    use crate::offline::cot::OtExtension;
    use proptest::prelude::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    proptest! {
        /// The receiver's message is the sender's message at its choice, for every m and choice.
        #[test]
        fn receiver_gets_the_chosen_message(
            keys in proptest::collection::vec(any::<[u64; 2]>(), 6),
            m in 1usize..=6,
            c in any::<usize>(),
        ) {
            let c = c % (1 << m);
            let mut table = vec![0u8; 1 << m];
            sender_table(&keys[..m], &mut table);
            let chosen: Vec<u64> = (0..m).map(|i| keys[i][(c >> i) & 1]).collect();
            prop_assert_eq!(receiver_message(&chosen, c), table[c]);
        }
    }

    /// Every message other than the chosen one depends on a slot of a key the receiver lacks,
    /// and that slot enters no other message: flipping it changes exactly that message.
    #[test]
    fn every_other_message_has_a_private_slot() {
        for m in 1..=6usize {
            for c in 0..1usize << m {
                let mut owner = std::collections::HashMap::new();
                for j in 0..1usize << m {
                    for i in 0..m {
                        if (j >> i) & 1 != (c >> i) & 1 {
                            let key = (i, without(j, i));
                            assert!(owner.insert(key, j).is_none(), "m={m} c={c} slot {key:?}");
                        }
                    }
                }
                let covered: std::collections::HashSet<usize> = owner.values().copied().collect();
                assert_eq!(covered.len(), (1 << m) - 1, "m={m} c={c}");
                assert!(!covered.contains(&c));
            }
        }
    }

    #[tokio::test]
    async fn leaf_ots_are_correct_iknp() {
        leaf_ots_are_correct(OtExtension::Iknp).await;
    }

    #[tokio::test]
    async fn leaf_ots_are_correct_silent() {
        leaf_ots_are_correct(OtExtension::Silent).await;
    }

    async fn leaf_ots_are_correct(kind: OtExtension) {
        let (mut c0, mut c1) = mem_pair();
        let none = |_| {};
        let (count, bits) = (CHUNK_INSTANCES + 77, 4u8);
        let (t0, t1) = tokio::join!(
            async {
                let mut rng = ChaCha20Rng::seed_from_u64(1);
                let mut p = Cots::setup(&mut c0, &mut rng, kind).await.unwrap();
                leaf_ots(&mut c0, &mut p, count, bits, &mut rng, &none)
                    .await
                    .unwrap()
            },
            async {
                let mut rng = ChaCha20Rng::seed_from_u64(2);
                let mut p = Cots::setup(&mut c1, &mut rng, kind).await.unwrap();
                leaf_ots(&mut c1, &mut p, count, bits, &mut rng, &none)
                    .await
                    .unwrap()
            }
        );
        let n = 1usize << bits;
        let mut hist = vec![0usize; n];
        for (s, r) in [(&t0, &t1), (&t1, &t0)] {
            assert_eq!((s.count(), r.count()), (count, count));
            for e in 0..count {
                let c = r.choice[e] as usize;
                assert_eq!(s.table[e * n + c], r.chosen[e], "instance {e}");
                hist[c] += 1;
            }
        }
        // Choices uniform over the 2^m indices (each about 1/16 of 2·count).
        let expect = (2 * count) as f64 / n as f64;
        assert!(hist.iter().all(|&h| (h as f64 / expect - 1.0).abs() < 0.05));
        // Messages and masks take all four values, about equally often.
        let ones: usize = t0.table.iter().map(|b| b.count_ones() as usize).sum();
        assert!((ones as f64 / (2 * t0.table.len()) as f64 - 0.5).abs() < 0.01);
        assert!(t0.mask.iter().all(|&b| b < 4) && t0.mask.contains(&3));
    }
}
