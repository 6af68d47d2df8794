//! Arithmetic products from correlated OT: Gilboa's multiplication (CRYPTO 1999) over Z_2^64, with
//! SecureML's column reuse for matrix triples (Mohassel–Zhang, S&P 2017, §IV-B).
//!
//! To share `y · x` where the receiver holds the scalar `y` and the sender a vector `x` (length
//! `len`), run 64 correlated OTs with choice bits `y_k` and correlation `2^k·x`. Bit `k` only
//! affects the top `64 − k` bits of the product, so the `k`-th correction carries `x mod 2^(64−k)`
//! in `64 − k` bits per element: `2080·len` bits per scalar instead of `4096·len`. Concretely, with
//! `p0 = H(q)`, `p1 = H(q ⊕ Δ)` stretched to `len` words,
//!
//! * the sender sends `d_k = p0 + x − p1 mod 2^(64−k)` and keeps `−Σ_k 2^k·p0_k`;
//! * the receiver computes `Σ_k 2^k·(H(t) + y_k·d_k)`; the two sum to `y·x mod 2^64`.
//!
//! A matrix product `X·Y` (X: `len × inner`, Y: `inner × cols`) uses one scalar per entry of Y and,
//! as vector, the matching column of X — "one selection bit of V serves a whole column of U", so a
//! triple costs `64·inner·cols` OTs of `len`-element messages. Elementwise products are the case
//! `len = 1`. For shares `X = X0 + X1`, `Y = Y0 + Y1` the cross terms `X0·Y1` and `X1·Y0` run in
//! opposite directions at once ([`cross_matmul`], [`cross_elementwise`]): each party is sender
//! with its X share and receiver with its Y share.
//!
//! [`sender_correct`] and [`receiver_finish`] are the sans-I/O core on extension blocks.

use super::cot::{extend_both, Cots};
use super::exchange_words;
use super::hash::{expand_pad, tccr_batch};
use super::iknp::{ReceiverBlocks, SenderBlocks};
use crate::compute::{min_len, offload_sized};
use crate::error::{MpcError, Result};
use crate::net::Channel;
use crate::ring::RingMatrix;
use ndarray::Array2;
use rayon::prelude::*;
use std::sync::Arc;

/// Correction words per scalar for vectors of `len` words (`Σ_k (64 − k)·len` bits, rounded up).
pub fn segment_words(len: usize) -> usize {
    (2080 * len).div_ceil(64)
}

/// Target size (words) of one chunk's corrections; bounds memory and frame sizes.
const TARGET_CHUNK_WORDS: usize = 1 << 22;
/// At most this many scalars (64 OTs each) per chunk.
const MAX_CHUNK_SCALARS: usize = 1 << 15;

/// How the scalars of a batch pair with vectors and outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pairing {
    /// Scalar `i = l·cols + c` (entry `(l, c)` of Y) pairs with vector `l` (column `l` of X) and adds
    /// into output `c`.
    Matmul {
        /// Columns of Y.
        cols: usize,
    },
    /// Scalar `i` pairs with vector `i` and output `i`.
    Elementwise,
}

impl Pairing {
    fn vector(self, i: usize) -> usize {
        match self {
            Pairing::Matmul { cols } => i / cols,
            Pairing::Elementwise => i,
        }
    }

    fn output(self, i: usize) -> usize {
        match self {
            Pairing::Matmul { cols } => i % cols,
            Pairing::Elementwise => i,
        }
    }
}

/// Packs values of varying widths LSB-first, keeping the partial word in a register.
struct BitWriter<'a> {
    buf: &'a mut [u64],
    idx: usize,
    acc: u64,
    fill: usize,
}

impl<'a> BitWriter<'a> {
    fn new(buf: &'a mut [u64]) -> Self {
        Self {
            buf,
            idx: 0,
            acc: 0,
            fill: 0,
        }
    }

    /// Appends the low `w` bits of `v` (`1 ≤ w ≤ 64`; the caller masks `v`).
    #[inline]
    fn put(&mut self, v: u64, w: usize) {
        self.acc |= v << self.fill;
        let end = self.fill + w;
        if end >= 64 {
            self.buf[self.idx] = self.acc;
            self.idx += 1;
            self.acc = if self.fill == 0 {
                0
            } else {
                v >> (64 - self.fill)
            };
            self.fill = end - 64;
        } else {
            self.fill = end;
        }
    }

    /// Writes the last partial word.
    fn finish(self) -> usize {
        if self.fill > 0 {
            self.buf[self.idx] = self.acc;
            self.idx + 1
        } else {
            self.idx
        }
    }
}

/// Reads what [`BitWriter`] packed.
struct BitReader<'a> {
    buf: &'a [u64],
    idx: usize,
    cur: u64,
    avail: usize,
}

impl<'a> BitReader<'a> {
    fn new(buf: &'a [u64]) -> Self {
        Self {
            buf,
            idx: 0,
            cur: 0,
            avail: 0,
        }
    }

    #[inline]
    fn get(&mut self, w: usize, mask: u64) -> u64 {
        if self.avail >= w {
            let v = self.cur & mask;
            self.cur = if w == 64 { 0 } else { self.cur >> w };
            self.avail -= w;
            v
        } else {
            let next = self.buf[self.idx];
            self.idx += 1;
            let v = (self.cur | (next << self.avail)) & mask;
            let used = w - self.avail;
            self.cur = if used == 64 { 0 } else { next >> used };
            self.avail = 64 - used;
            v
        }
    }
}

#[inline]
fn low_mask(w: usize) -> u64 {
    if w == 64 {
        u64::MAX
    } else {
        (1u64 << w) - 1
    }
}

/// Sender core. `blocks` covers `64·n` OTs, scalar `s` of the chunk (global scalar index
/// `first_scalar + s`) owning OTs `64·s .. 64·s + 64`; `xs` holds the vectors (`len` words each).
/// Returns the packed corrections (`n · segment_words(len)` words) and this party's shares
/// (`n · len` words, scalar-major).
pub fn sender_correct(
    blocks: &SenderBlocks,
    xs: &[u64],
    len: usize,
    pairing: Pairing,
    first_scalar: usize,
) -> (Vec<u64>, Vec<u64>) {
    let n = blocks.q.len() / 64;
    let seg = segment_words(len);
    let mut corr = vec![0u64; n * seg];
    let mut share = vec![0u64; n * len];
    corr.par_chunks_mut(seg)
        .zip(share.par_chunks_mut(len))
        .with_min_len(min_len(64 * len))
        .enumerate()
        .for_each_init(
            || (Vec::new(), Vec::new(), vec![0u64; len], vec![0u64; len]),
            |(scratch, words, pad0, pad1), (s, (corr, share))| {
                let v = pairing.vector(first_scalar + s);
                let x = &xs[v * len..(v + 1) * len];
                let q = &blocks.q[64 * s..64 * s + 64];
                let mut h0 = [0u128; 64];
                let mut h1 = [0u128; 64];
                for k in 0..64 {
                    h0[k] = q[k];
                    h1[k] = q[k] ^ blocks.delta;
                }
                let tweak = blocks.first + 64 * s as u64;
                tccr_batch(tweak, &mut h0);
                tccr_batch(tweak, &mut h1);
                let mut wr = BitWriter::new(corr);
                for k in 0..64 {
                    expand_pad(h0[k], k, pad0, words, scratch);
                    expand_pad(h1[k], k, pad1, words, scratch);
                    let w = 64 - k;
                    let mask = low_mask(w);
                    for e in 0..len {
                        let d = pad0[e].wrapping_add(x[e]).wrapping_sub(pad1[e]);
                        wr.put(d & mask, w);
                        share[e] = share[e].wrapping_sub(pad0[e] << k);
                    }
                }
                wr.finish();
            },
        );
    (corr, share)
}

/// Receiver core: the scalars are `blocks.choices` (one word per scalar); returns this party's
/// shares (`n · len` words, scalar-major).
pub fn receiver_finish(blocks: &ReceiverBlocks, corr: &[u64], len: usize) -> Result<Vec<u64>> {
    let n = blocks.choices.len();
    let seg = segment_words(len);
    if corr.len() != n * seg {
        return Err(MpcError::Malformed {
            reason: format!(
                "Gilboa corrections of {} words, expected {} ({} scalars of {} elements)",
                corr.len(),
                n * seg,
                n,
                len
            ),
        });
    }
    let mut share = vec![0u64; n * len];
    share
        .par_chunks_mut(len)
        .zip(corr.par_chunks(seg))
        .with_min_len(min_len(64 * len))
        .enumerate()
        .for_each_init(
            || (Vec::new(), Vec::new(), vec![0u64; len]),
            |(scratch, words, pad), (s, (share, corr))| {
                let y = blocks.choices[s];
                let mut h = [0u128; 64];
                h.copy_from_slice(&blocks.t[64 * s..64 * s + 64]);
                tccr_batch(blocks.first + 64 * s as u64, &mut h);
                let mut rd = BitReader::new(corr);
                for (k, hk) in h.iter().enumerate() {
                    expand_pad(*hk, k, pad, words, scratch);
                    let w = 64 - k;
                    let mask = low_mask(w);
                    let b = ((y >> k) & 1).wrapping_neg();
                    for e in 0..len {
                        let d = rd.get(w, mask);
                        share[e] = share[e].wrapping_add(pad[e].wrapping_add(d & b) << k);
                    }
                }
            },
        );
    Ok(share)
}

fn accumulate(out: &mut [u64], part: &[u64], len: usize, pairing: Pairing, first_scalar: usize) {
    for (s, p) in part.chunks(len).enumerate() {
        let o = pairing.output(first_scalar + s);
        for (a, b) in out[o * len..(o + 1) * len].iter_mut().zip(p) {
            *a = a.wrapping_add(*b);
        }
    }
}

/// Scalars per chunk for vectors of `len` words (identical on both parties).
fn chunk_scalars(len: usize, n: usize) -> usize {
    (TARGET_CHUNK_WORDS / segment_words(len))
        .clamp(1, MAX_CHUNK_SCALARS)
        .min(n.max(1))
}

/// One batch of products for [`cross_terms`]: this party's vectors and scalars and how they pair.
#[derive(Clone)]
pub struct CrossBatch {
    /// This party's vectors, `len` words each, one after the other.
    pub xs: Arc<Vec<u64>>,
    /// Words per vector.
    pub len: usize,
    /// This party's scalars.
    pub ys: Vec<u64>,
    /// How scalars meet vectors and outputs.
    pub pairing: Pairing,
    /// Number of output vectors.
    pub outputs: usize,
}

impl std::fmt::Debug for CrossBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CrossBatch({} scalars, vectors of {}, {:?})",
            self.ys.len(),
            self.len,
            self.pairing
        )
    }
}

/// The symmetric engine: this party's share of `Σ_i y_i^peer · x_i^mine + y_i^mine · x_i^peer`
/// accumulated per output (`outputs × len` words). Both parties call it with batches of the same
/// shape. Calls `progress(ots)` after each chunk with the OTs done in it (per direction).
pub async fn cross_terms<C: Channel>(
    ch: &mut C,
    pair: &mut Cots,
    batch: CrossBatch,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<Vec<u64>> {
    let CrossBatch {
        xs,
        len,
        ys,
        pairing,
        outputs,
    } = batch;
    let mut out = vec![0u64; outputs * len];
    if len == 0 || ys.is_empty() {
        return Ok(out);
    }
    let step = chunk_scalars(len, ys.len());
    let mut at = 0;
    while at < ys.len() {
        let n = step.min(ys.len() - at);
        let (rblocks, sblocks) = extend_both(ch, pair, ys[at..at + n].to_vec()).await?;
        let xs2 = xs.clone();
        let work = 64 * n * len;
        let (corr, sshare) = offload_sized(work, move || {
            sender_correct(&sblocks, &xs2, len, pairing, at)
        })
        .await;
        let peer_corr = exchange_words(ch, &corr).await?;
        drop(corr);
        out = offload_sized(work, move || -> Result<Vec<u64>> {
            let rshare = receiver_finish(&rblocks, &peer_corr, len)?;
            accumulate(&mut out, &sshare, len, pairing, at);
            accumulate(&mut out, &rshare, len, pairing, at);
            Ok(out)
        })
        .await?;
        progress(64 * n as u64);
        at += n;
    }
    Ok(out)
}

/// This party's share of `X0·Y1 + X1·Y0` where it holds `x` (`len × inner`) and `y`
/// (`inner × cols`) and the peer holds the other shares of the same shapes.
pub async fn cross_matmul<C: Channel>(
    ch: &mut C,
    pair: &mut Cots,
    x: &RingMatrix,
    y: &RingMatrix,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<RingMatrix> {
    let (len, inner) = x.dim();
    let (inner2, cols) = y.dim();
    if inner != inner2 {
        return Err(MpcError::ShapeMismatch {
            op: "cross_matmul",
            left: x.dim(),
            right: y.dim(),
        });
    }
    // Vector l = column l of X, stored contiguously.
    let xt: Vec<u64> = x.t().iter().copied().collect();
    let ys: Vec<u64> = y.iter().copied().collect();
    let batch = CrossBatch {
        xs: Arc::new(xt),
        len,
        ys,
        pairing: Pairing::Matmul { cols },
        outputs: cols,
    };
    let out = cross_terms(ch, pair, batch, progress).await?;
    // out is cols × len; Z is len × cols.
    let zt = Array2::from_shape_vec((cols, len), out).expect("shape");
    Ok(zt.t().as_standard_layout().into_owned())
}

/// This party's share of `a0 ⊙ b1 + a1 ⊙ b0` where it holds `a` and `b` of the same shape.
pub async fn cross_elementwise<C: Channel>(
    ch: &mut C,
    pair: &mut Cots,
    a: &RingMatrix,
    b: &RingMatrix,
    progress: &(dyn Fn(u64) + Send + Sync),
) -> Result<RingMatrix> {
    if a.dim() != b.dim() {
        return Err(MpcError::ShapeMismatch {
            op: "cross_elementwise",
            left: a.dim(),
            right: b.dim(),
        });
    }
    let xs: Vec<u64> = a.iter().copied().collect();
    let ys: Vec<u64> = b.iter().copied().collect();
    let n = ys.len();
    let batch = CrossBatch {
        xs: Arc::new(xs),
        len: 1,
        ys,
        pairing: Pairing::Elementwise,
        outputs: n,
    };
    let out = cross_terms(ch, pair, batch, progress).await?;
    Ok(Array2::from_shape_vec(a.dim(), out).expect("shape"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::mem_pair;
    use crate::offline::cot::OtExtension;
    use crate::offline::iknp::{Receiver, Sender};
    use crate::ring;
    use rand::{RngCore, SeedableRng};
    use rand_chacha::ChaCha20Rng;

    fn blocks(seed: u64, ys: &[u64]) -> (SenderBlocks, ReceiverBlocks) {
        let mut rs = ChaCha20Rng::seed_from_u64(seed);
        let mut rr = ChaCha20Rng::seed_from_u64(seed + 1);
        let (r, setup) = Receiver::new(&mut rr);
        let (mut s, reply) = Sender::new(&mut rs).receive_base(&setup, &mut rs).unwrap();
        let mut r = r.finish_base(&reply).unwrap();
        let (msg, rb) = r.extend(ys);
        (s.extend(ys.len(), &msg).unwrap(), rb)
    }

    #[test]
    fn bit_packing_round_trips() {
        let mut buf = vec![0u64; segment_words(3)];
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let vals: Vec<u64> = (0..64 * 3).map(|_| rng.next_u64()).collect();
        let mut wr = BitWriter::new(&mut buf);
        for k in 0..64 {
            for e in 0..3 {
                wr.put(vals[3 * k + e] & low_mask(64 - k), 64 - k);
            }
        }
        assert_eq!(wr.finish(), segment_words(3));
        let mut rd = BitReader::new(&buf);
        for k in 0..64 {
            for e in 0..3 {
                assert_eq!(
                    rd.get(64 - k, low_mask(64 - k)),
                    vals[3 * k + e] & low_mask(64 - k)
                );
            }
        }
    }

    /// The sans-I/O core: y·x for random scalars and vectors, lengths 1, 2 and 5.
    #[test]
    fn core_shares_sum_to_the_product() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        for len in [1usize, 2, 5] {
            let n = 9;
            let ys: Vec<u64> = (0..n).map(|_| rng.next_u64()).collect();
            let xs: Vec<u64> = (0..n * len).map(|_| rng.next_u64()).collect();
            let (sb, rb) = blocks(len as u64, &ys);
            let (corr, s) = sender_correct(&sb, &xs, len, Pairing::Elementwise, 0);
            assert_eq!(corr.len(), n * segment_words(len));
            let r = receiver_finish(&rb, &corr, len).unwrap();
            for i in 0..n {
                for e in 0..len {
                    assert_eq!(
                        s[i * len + e].wrapping_add(r[i * len + e]),
                        ys[i].wrapping_mul(xs[i * len + e]),
                        "len {len}, scalar {i}, element {e}"
                    );
                }
            }
            assert!(receiver_finish(&rb, &corr[1..], len).is_err());
        }
    }

    /// Same seeds, same corrections (a regression vector recorded from this code).
    #[test]
    fn core_known_answer() {
        let ys = [0x0123_4567_89ab_cdefu64, 42];
        let xs = [7u64, u64::MAX, 1 << 63, 5];
        let (sb, _) = blocks(77, &ys);
        let (corr, share) = sender_correct(&sb, &xs, 2, Pairing::Elementwise, 0);
        let mut bytes = Vec::new();
        for w in corr.iter().chain(&share) {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        assert_eq!(blake3::hash(&bytes).to_hex().as_str(), KAT_GILBOA);
    }
    const KAT_GILBOA: &str = "2f9307349fafe03fe700106afa7e68b023c941144429134eede543d5c2014d40";

    #[tokio::test]
    async fn cross_terms_give_products_iknp() {
        cross_terms_give_products(OtExtension::Iknp).await;
    }

    #[tokio::test]
    async fn cross_terms_give_products_silent() {
        cross_terms_give_products(OtExtension::Silent).await;
    }

    async fn cross_terms_give_products(kind: OtExtension) {
        let (mut c0, mut c1) = mem_pair();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let x0 = ring::random(&mut rng, 3, 4);
        let x1 = ring::random(&mut rng, 3, 4);
        let y0 = ring::random(&mut rng, 4, 2);
        let y1 = ring::random(&mut rng, 4, 2);
        let a0 = ring::random(&mut rng, 5, 3);
        let a1 = ring::random(&mut rng, 5, 3);
        let b0 = ring::random(&mut rng, 5, 3);
        let b1 = ring::random(&mut rng, 5, 3);
        let none = |_| {};
        let (r0, r1) = tokio::join!(
            async {
                let mut p = Cots::setup(&mut c0, &mut ChaCha20Rng::from_entropy(), kind)
                    .await
                    .unwrap();
                let m = cross_matmul(&mut c0, &mut p, &x0, &y0, &none)
                    .await
                    .unwrap();
                let e = cross_elementwise(&mut c0, &mut p, &a0, &b0, &none)
                    .await
                    .unwrap();
                (m, e)
            },
            async {
                let mut p = Cots::setup(&mut c1, &mut ChaCha20Rng::from_entropy(), kind)
                    .await
                    .unwrap();
                let m = cross_matmul(&mut c1, &mut p, &x1, &y1, &none)
                    .await
                    .unwrap();
                let e = cross_elementwise(&mut c1, &mut p, &a1, &b1, &none)
                    .await
                    .unwrap();
                (m, e)
            }
        );
        let want = ring::add(
            &ring::matmul(&x0.view(), &y1.view()).view(),
            &ring::matmul(&x1.view(), &y0.view()).view(),
        );
        assert_eq!(ring::add(&r0.0.view(), &r1.0.view()), want);
        let want = ring::add(
            &ring::hadamard(&a0.view(), &b1.view()).view(),
            &ring::hadamard(&a1.view(), &b0.view()).view(),
        );
        assert_eq!(ring::add(&r0.1.view(), &r1.1.view()), want);
    }
}
