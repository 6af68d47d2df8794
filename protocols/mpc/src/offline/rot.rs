//! Random 1-out-of-2 OTs with 64-bit messages in both directions ([`crate::triples::RandomOts`],
//! the correlations of [`crate::nonlinear`]'s OT multiplexer), straight from the COTs of
//! [`super::cot::random_both`] (IKNP or the silent extension).
//!
//! Each party takes random-choice COTs as receiver and as sender and keeps the hashed rows as they
//! come: the sender both messages `H(q_j)`, `H(q_j ⊕ Δ)`, the receiver `H(t_j)`, truncated to 64
//! bits. Security is that of the COTs with the tweakable correlation-robust hash (semi-honest):
//! the message the receiver did not choose is pseudorandom given its view, and the sender's view
//! is independent of the choices.
//!
//! Cost per instance and direction: one random COT, i.e. 16 bytes of IKNP columns sent by the
//! receiver, or about 0.06 bytes with the silent extension; nothing else.

use super::cot::{random_both, Cots};
use crate::error::Result;
use crate::net::Channel;
use crate::triples::RandomOts;

/// Instances per extension chunk, a multiple of 64 so every chunk's choices fill whole words.
const CHUNK: usize = 64 << 14;

/// Both parties call it: `count` random OTs in each direction, choices drawn from `rng`;
/// `progress` gets the random OTs made per direction.
pub async fn random_ots<C: Channel, R: rand::RngCore>(
    ch: &mut C,
    pair: &mut Cots,
    count: usize,
    rng: &mut R,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<RandomOts> {
    let mut out = RandomOts::zeros(0);
    let mut done = 0;
    while done < count {
        let n = CHUNK.min(count - done);
        let (mut r, s) = random_both(ch, pair, n.div_ceil(64), rng).await?;
        if !n.is_multiple_of(64) {
            *r.choices.last_mut().expect("n > 0") &= (1 << (n % 64)) - 1;
        }
        out.pairs.extend_from_slice(&s.rot()[..n]);
        out.chosen.extend_from_slice(&r.rot()[..n]);
        // Chunks hold whole words except the last, so the choices concatenate word-wise.
        out.choice.extend_from_slice(&r.choices[..n.div_ceil(64)]);
        progress(n as u64);
        done += n;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::mem_pair;
    use crate::offline::cot::OtExtension;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    /// Across a chunk boundary and a partial last word: every receiver holds the message of its
    /// choice from the peer's pair, the other message differs, and choices are balanced.
    #[tokio::test]
    async fn random_ots_are_correct_iknp() {
        random_ots_are_correct(OtExtension::Iknp).await;
    }

    #[tokio::test]
    async fn random_ots_are_correct_silent() {
        random_ots_are_correct(OtExtension::Silent).await;
    }

    async fn random_ots_are_correct(kind: OtExtension) {
        let (mut c0, mut c1) = mem_pair();
        let none = |_| {};
        let count = CHUNK + 77;
        let (t0, t1) = tokio::join!(
            async {
                let mut rng = ChaCha20Rng::seed_from_u64(1);
                let mut p = Cots::setup(&mut c0, &mut rng, kind).await.unwrap();
                random_ots(&mut c0, &mut p, count, &mut rng, &none)
                    .await
                    .unwrap()
            },
            async {
                let mut rng = ChaCha20Rng::seed_from_u64(2);
                let mut p = Cots::setup(&mut c1, &mut rng, kind).await.unwrap();
                random_ots(&mut c1, &mut p, count, &mut rng, &none)
                    .await
                    .unwrap()
            }
        );
        for (s, r) in [(&t0, &t1), (&t1, &t0)] {
            assert_eq!((s.count(), r.count()), (count, count));
            assert_eq!(r.choice.len(), count.div_ceil(64));
            let mut ones = 0;
            for e in 0..count {
                let c = r.choice_bit(e) as usize;
                assert_eq!(s.pairs[e][c], r.chosen[e], "instance {e}");
                assert_ne!(s.pairs[e][1 - c], r.chosen[e], "instance {e}");
                ones += c;
            }
            assert!((ones as f64 / count as f64 - 0.5).abs() < 0.01);
            assert_eq!(r.choice.last().unwrap() >> (count % 64), 0);
        }
    }
}
