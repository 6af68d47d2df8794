//! # offline — the two-server OT offline phase
//!
//! Makes the same correlated randomness as the trusted dealer ([`crate::triples::dealer`]) with no
//! third party: the two servers run oblivious transfers with each other (SecureML §IV-B).
//!
//! * [`base`]: Chou–Orlandi base OT on Ristretto (LATINCRYPT 2015);
//! * [`iknp`]: IKNP OT extension (CRYPTO 2003) with ALSZ correlated OT (CCS 2013), phases as types;
//! * [`hash`]: fixed-key AES tweakable correlation-robust hash (GKWY, S&P 2020) and PRGs;
//! * [`transpose`]: the cache-friendly 128 × m bit transpose;
//! * [`gilboa`]: arithmetic products from correlated OT (Gilboa, CRYPTO 1999) — elementwise triples
//!   and matrix triples with SecureML's one-choice-bit-per-column reuse (§IV-B), messages shrinking
//!   with the bit index;
//! * [`and`]: bit-sliced AND triples from two random OTs per triple;
//! * [`rlwe`] and [`he`]: SecureML's other offline variant (§IV-B, LHE-based triples) with a
//!   lattice AHE in place of Paillier, Cheetah-style (HomFC, USENIX Security 2022) — matrix cross
//!   terms by RLWE plaintext products (about 20 times fewer bytes than Gilboa's 2080 bits per
//!   scalar product on SecureML Table II).
//!
//! These are engines: the [`crate::triples::TripleSource`]s that run them are
//! [`crate::triples::OtSource`] (OT only), [`crate::triples::HeSource`] (HE cross terms, the
//! rest by OT) and [`crate::triples::ClientAided`] (the dealer run by the data owner, SecureML §V).
//!
//! Security: semi-honest, non-colluding servers; 128-bit computational security (128 base OTs,
//! AES-128, Ristretto255; RLWE with N = 16384, log Q = 250, ternary secret, σ = 3.2 for
//! [`crate::triples::HeSource`], whose circuit privacy rests on re-randomization and noise flooding at
//! statistical distance 2^-41 over a whole run, [`flood`]). Nothing here is secure against a deviating server (that would need the
//! KOS consistency check and more).

pub mod and;
pub mod base;
pub mod flood;
pub mod gilboa;
pub mod hash;
pub mod he;
pub mod iknp;
pub mod rlwe;
pub mod transpose;

use crate::error::{MpcError, Result};
use crate::net::{Channel, RING_CHUNK_WORDS};

/// Choice words (64 OTs each) per extension chunk of the one-directional drivers.
pub const CHUNK_WORDS: usize = 1 << 11;

fn to_bytes(words: &[u64]) -> Vec<u8> {
    if cfg!(target_endian = "little") {
        bytemuck::cast_slice(words).to_vec()
    } else {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
}

fn extend_from_bytes(out: &mut Vec<u64>, bytes: &[u8]) {
    if cfg!(target_endian = "little") {
        let at = out.len();
        out.resize(at + bytes.len() / 8, 0);
        bytemuck::cast_slice_mut::<u64, u8>(&mut out[at..]).copy_from_slice(bytes);
    } else {
        out.extend(
            bytes
                .chunks_exact(8)
                .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))),
        );
    }
}

/// Sends raw words in frames of at most [`RING_CHUNK_WORDS`].
pub(crate) async fn send_words<C: Channel>(ch: &mut C, words: &[u64]) -> Result<()> {
    for chunk in words.chunks(RING_CHUNK_WORDS) {
        ch.send_frame(to_bytes(chunk)).await?;
    }
    Ok(())
}

/// Receives exactly `n` words sent by [`send_words`].
pub(crate) async fn recv_words<C: Channel>(ch: &mut C, n: usize) -> Result<Vec<u64>> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let want = (n - out.len()).min(RING_CHUNK_WORDS);
        let f = ch.recv_frame(want * 8).await?;
        if f.len() != want * 8 {
            return Err(MpcError::Malformed {
                reason: format!(
                    "OT frame of {} bytes, expected {} ({} of {} words received)",
                    f.len(),
                    want * 8,
                    out.len(),
                    n
                ),
            });
        }
        extend_from_bytes(&mut out, &f);
    }
    Ok(out)
}

/// Sends `words` and receives as many from the peer, frame by frame (one flight per frame), so two
/// large simultaneous sends cannot deadlock on a flow-controlled transport.
pub(crate) async fn exchange_words<C: Channel>(ch: &mut C, words: &[u64]) -> Result<Vec<u64>> {
    let mut out = Vec::with_capacity(words.len());
    for chunk in words.chunks(RING_CHUNK_WORDS) {
        let f = ch.exchange_frame(to_bytes(chunk), chunk.len() * 8).await?;
        if f.len() != chunk.len() * 8 {
            return Err(MpcError::Malformed {
                reason: format!(
                    "OT frame of {} bytes, expected {}",
                    f.len(),
                    chunk.len() * 8
                ),
            });
        }
        extend_from_bytes(&mut out, &f);
    }
    Ok(out)
}
