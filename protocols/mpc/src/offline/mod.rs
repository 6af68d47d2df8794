//! # offline — the two-server OT offline phase
//!
//! Makes the same correlated randomness as the trusted dealer ([`crate::triples::dealer`]) with no
//! third party: the two servers run oblivious transfers with each other (SecureML §IV-B).
//!
//! * [`base`]: Chou–Orlandi base OT on Ristretto (LATINCRYPT 2015);
//! * [`iknp`]: IKNP OT extension (CRYPTO 2003) with ALSZ correlated OT (CCS 2013), phases as types;
//! * [`silent`]: Ferret-style silent correlated OT (CCS 2020; GGM trees, regular-noise LPN),
//!   bootstrapped from IKNP, about 0.06 bytes per COT against IKNP's 16;
//! * [`cot`]: where the consumers below get their COTs — IKNP alone or the silent extension
//!   ([`cot::OtExtension`], silent by default);
//! * [`hash`]: fixed-key AES tweakable correlation-robust hash (GKWY, S&P 2020) and PRGs;
//! * [`transpose`]: the cache-friendly 128 × m bit transpose;
//! * [`gilboa`]: arithmetic products from correlated OT (Gilboa, CRYPTO 1999) — elementwise triples
//!   and matrix triples with SecureML's one-choice-bit-per-column reuse (§IV-B), messages shrinking
//!   with the bit index;
//! * [`and`]: bit-sliced AND triples from two random OTs per triple;
//! * [`leaf`]: random 1-out-of-2^m OTs with 2-bit messages from m random OTs (the leaves of the
//!   millionaires' comparison);
//! * [`rot`]: random 1-out-of-2 OTs with 64-bit messages (the OT multiplexer's correlations);
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
//! AES-128, Ristretto255; LPN with regular noise at Ferret's parameters for [`silent`]; RLWE with N = 16384, log Q = 250, ternary secret, σ = 3.2 for
//! [`crate::triples::HeSource`], whose circuit privacy rests on re-randomization and noise flooding at
//! statistical distance 2^-41 over a whole run, [`flood`]). Nothing here is secure against a deviating server (that would need the
//! KOS consistency check and more).

pub mod and;
pub mod base;
pub mod cot;
pub mod flood;
pub mod gilboa;
pub mod hash;
pub mod he;
pub mod iknp;
pub mod leaf;
pub mod rlwe;
pub mod rot;
pub mod silent;
pub mod transpose;

use crate::error::{MpcError, Result};
use crate::net::{Channel, RING_CHUNK_WORDS};

/// Choice words (64 OTs each) per extension chunk of the one-directional drivers.
pub const CHUNK_WORDS: usize = 1 << 11;

/// Bytes per frame of the OT messages: frames stay within the channels' usual size.
pub(crate) const FRAME_BYTES: usize = 8 * RING_CHUNK_WORDS;

fn to_bytes(words: &[u64]) -> Vec<u8> {
    if cfg!(target_endian = "little") {
        bytemuck::cast_slice(words).to_vec()
    } else {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }
}

fn words_from_bytes(bytes: &[u8]) -> Vec<u64> {
    if cfg!(target_endian = "little") {
        let mut out = vec![0u64; bytes.len() / 8];
        bytemuck::cast_slice_mut::<u64, u8>(&mut out).copy_from_slice(bytes);
        out
    } else {
        bytes
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
            .collect()
    }
}

/// Sends `bytes` in frames of at most [`FRAME_BYTES`] (one frame, not copied, when it fits).
pub(crate) async fn send_bytes<C: Channel>(ch: &mut C, bytes: Vec<u8>) -> Result<()> {
    if bytes.is_empty() {
        return Ok(());
    }
    if bytes.len() <= FRAME_BYTES {
        return ch.send_frame(bytes).await;
    }
    for chunk in bytes.chunks(FRAME_BYTES) {
        ch.send_frame(chunk.to_vec()).await?;
    }
    Ok(())
}

fn check_frame(got: usize, want: usize, at: usize, n: usize) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(MpcError::Malformed {
        reason: format!("OT frame of {got} bytes, expected {want} ({at} of {n} bytes received)"),
    })
}

/// Receives exactly `n` bytes sent by [`send_bytes`] (a single frame is returned as it came).
pub(crate) async fn recv_bytes<C: Channel>(ch: &mut C, n: usize) -> Result<Vec<u8>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if n <= FRAME_BYTES {
        let f = ch.recv_frame(n).await?;
        check_frame(f.len(), n, 0, n)?;
        return Ok(f);
    }
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let want = (n - out.len()).min(FRAME_BYTES);
        let f = ch.recv_frame(want).await?;
        check_frame(f.len(), want, out.len(), n)?;
        out.extend_from_slice(&f);
    }
    Ok(out)
}

/// Sends `bytes` and receives as many from the peer, frame by frame (one flight per frame), so two
/// large simultaneous sends cannot deadlock on a flow-controlled transport.
pub(crate) async fn exchange_bytes<C: Channel>(ch: &mut C, bytes: Vec<u8>) -> Result<Vec<u8>> {
    let n = bytes.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    if n <= FRAME_BYTES {
        let f = ch.exchange_frame(bytes, n).await?;
        check_frame(f.len(), n, 0, n)?;
        return Ok(f);
    }
    let mut out = Vec::with_capacity(n);
    for chunk in bytes.chunks(FRAME_BYTES) {
        let f = ch.exchange_frame(chunk.to_vec(), chunk.len()).await?;
        check_frame(f.len(), chunk.len(), out.len(), n)?;
        out.extend_from_slice(&f);
    }
    Ok(out)
}

/// [`exchange_bytes`] on little-endian words.
pub(crate) async fn exchange_words<C: Channel>(ch: &mut C, words: &[u64]) -> Result<Vec<u64>> {
    Ok(words_from_bytes(
        &exchange_bytes(ch, to_bytes(words)).await?,
    ))
}
