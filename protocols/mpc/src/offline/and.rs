//! Bit-sliced AND (boolean Beaver) triples from random OT: two ROTs per triple, one in each
//! direction (the standard construction, e.g. ALSZ CCS 2013 §5 / Demmler–Schneider–Zohner, ABY,
//! NDSS 2015, §III-B).
//!
//! Party P as ROT receiver with a random choice bit `a_P` gets `u_P = m_{a_P}` from the peer's pair
//! `(m_0, m_1)`; as ROT sender with its own pair `(x_0, x_1)` it sets `b_P = x_0 ⊕ x_1` and keeps
//! `x_0`. Then `a_Q·b_P = u_Q ⊕ x_0` for the peer Q, so `c_P = a_P·b_P ⊕ u_P ⊕ x_0` are XOR shares of
//! `(a_0 ⊕ a_1)·(b_0 ⊕ b_1)`. No message beyond the OT extension's own is needed (IKNP's columns,
//! or nothing per triple with the silent extension, [`super::cot`]). 64 triples per word.

use super::cot::{random_both, Cots};
use super::iknp::{ReceiverBlocks, SenderBlocks};
use crate::compute::offload_sized;
use crate::error::Result;
use crate::net::Channel;
use crate::triples::AndTriples;

/// Choice words per chunk.
const CHUNK: usize = 1 << 14;

fn pack(bits: impl Iterator<Item = u64>, words: usize) -> Vec<u64> {
    let mut out = vec![0u64; words];
    for (j, b) in bits.enumerate() {
        out[j / 64] |= (b & 1) << (j % 64);
    }
    out
}

/// Sans-I/O core: this party's AND-triple shares from its receiver blocks (choices = its `a`) and
/// its sender blocks of the same length.
pub fn and_triples_local(recv: &ReceiverBlocks, send: &SenderBlocks) -> AndTriples {
    let words = recv.choices.len();
    let u = pack(recv.rot().into_iter(), words);
    let pairs = send.rot();
    let x0 = pack(pairs.iter().map(|p| p[0]), words);
    let b = pack(pairs.iter().map(|p| p[0] ^ p[1]), words);
    let a = recv.choices.clone();
    let c = a
        .iter()
        .zip(&b)
        .zip(u.iter().zip(&x0))
        .map(|((a, b), (u, x))| (a & b) ^ u ^ x)
        .collect();
    AndTriples { a, b, c }
}

/// Both parties call it: `words · 64` AND triples, `a` the random choices of the COTs
/// ([`random_both`]; drawn from `rng` under IKNP).
pub async fn and_triples<C: Channel, R: rand::RngCore>(
    ch: &mut C,
    pair: &mut Cots,
    words: usize,
    rng: &mut R,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<AndTriples> {
    let mut out = AndTriples {
        a: Vec::with_capacity(words),
        b: Vec::with_capacity(words),
        c: Vec::with_capacity(words),
    };
    let mut done = 0;
    while done < words {
        let n = CHUNK.min(words - done);
        let (r, s) = random_both(ch, pair, n, rng).await?;
        let t = offload_sized(n * 64 * 8, move || and_triples_local(&r, &s)).await;
        out.a.extend(t.a);
        out.b.extend(t.b);
        out.c.extend(t.c);
        progress(64 * n as u64);
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

    #[tokio::test]
    async fn and_triples_are_correct_iknp() {
        and_triples_are_correct(OtExtension::Iknp).await;
    }

    #[tokio::test]
    async fn and_triples_are_correct_silent() {
        and_triples_are_correct(OtExtension::Silent).await;
    }

    async fn and_triples_are_correct(kind: OtExtension) {
        let (mut c0, mut c1) = mem_pair();
        let none = |_| {};
        let words = CHUNK + 5;
        let (t0, t1) = tokio::join!(
            async {
                let mut rng = ChaCha20Rng::seed_from_u64(1);
                let mut p = Cots::setup(&mut c0, &mut rng, kind).await.unwrap();
                and_triples(&mut c0, &mut p, words, &mut rng, &none)
                    .await
                    .unwrap()
            },
            async {
                let mut rng = ChaCha20Rng::seed_from_u64(2);
                let mut p = Cots::setup(&mut c1, &mut rng, kind).await.unwrap();
                and_triples(&mut c1, &mut p, words, &mut rng, &none)
                    .await
                    .unwrap()
            }
        );
        let mut ones = [0u64; 3];
        for i in 0..words {
            let (a, b, c) = (t0.a[i] ^ t1.a[i], t0.b[i] ^ t1.b[i], t0.c[i] ^ t1.c[i]);
            assert_eq!(a & b, c, "word {i}");
            ones[0] += a.count_ones() as u64;
            ones[1] += b.count_ones() as u64;
            ones[2] += c.count_ones() as u64;
        }
        // a and b uniform (about half ones), c = a ∧ b about a quarter.
        let n = (words * 64) as f64;
        assert!((ones[0] as f64 / n - 0.5).abs() < 0.01);
        assert!((ones[1] as f64 / n - 0.5).abs() < 0.01);
        assert!((ones[2] as f64 / n - 0.25).abs() < 0.01);
    }
}
