//! IKNP OT extension (Ishai–Kilian–Nissim–Petrank, CRYPTO 2003) with the correlated-OT
//! optimisation of Asharov–Lindell–Schneider–Zohner (CCS 2013, §5.4); semi-honest.
//!
//! Setup: the extension *receiver* is the sender of 128 base OTs ([`super::base`]) and gets seed
//! pairs `(k_i^0, k_i^1)`; the extension *sender* draws Δ ∈ {0,1}^128 and receives `k_i^{Δ_i}`.
//! Extending `m` OTs with choices `r ∈ {0,1}^m`: the receiver sends the columns
//! `u_i = G(k_i^0) ⊕ G(k_i^1) ⊕ r` ([`ExtendMsg`]); the sender forms `q_i = G(k_i^{Δ_i}) ⊕ Δ_i·u_i`.
//! After the 128 × m transpose ([`super::transpose`]), row `j` satisfies `q_j = t_j ⊕ r_j·Δ`
//! ([`SenderBlocks`], [`ReceiverBlocks`]). Both sides work a group of up to 8192 OTs at a
//! time, PRG, transpose and hash in cache; the chunked drivers
//! ([`send_cot`], [`receive_cot`], [`send_rot`], [`receive_rot`]) go from message to outputs
//! without storing rows and overlap one chunk's work with the next chunk's transfer.
//! Hashing with the tweakable correlation-robust hash
//! ([`super::hash::tccr`], tweak = the global instance index) turns the rows into
//!
//! * random OT: the sender gets `H(q_j)`, `H(q_j ⊕ Δ)`, the receiver `H(t_j)`;
//! * correlated OT over Z_2^64 with per-instance correlations `c_j` (ALSZ): the sender keeps
//!   `x_j = H(q_j)` and sends `d_j = x_j + c_j − H(q_j ⊕ Δ)`; the receiver outputs
//!   `H(t_j) + r_j·d_j = x_j + r_j·c_j`;
//! * correlated OT on vectors of Z_2^64 (the same with `H` stretched by [`super::hash::expand`]).
//!
//! Phases are types: a [`Sender<state::Initialized>`] or [`Receiver<state::Initialized>`] must go
//! through its base OTs before it becomes a `Sender<state::Extension>` (resp. receiver) that can
//! extend. Each party needs both roles for the two cross terms of a product; [`OtPair`] and
//! [`setup_pair`] set both up at once, in two symmetric flights.

use super::base::{self, BaseSender, OtKey, ReceiverReply, SenderSetup, BASE_OTS};
use super::exchange_bytes;
use super::hash::{expand, tccr_batch, Block128, ColumnPrg};
use crate::compute::{min_len, offload_sized};
use crate::error::{MpcError, Result};
use crate::net::{Channel, ChannelExt};
use rand::{CryptoRng, RngCore};
use rayon::prelude::*;
use std::marker::PhantomData;
use std::sync::Arc;
use tiles::{
    receiver_tiles, sender_tiles, GROUP_BYTES, GROUP_OTS, GROUP_TILES, SUPER_OTS, TILE_BYTES,
};
#[cfg(test)]
use tiles::{SUPER_BYTES, TILES};
use zeroize::{Zeroize, Zeroizing};

mod drivers;
mod outputs;
mod tiles;

pub use drivers::{receive_cot, receive_rot, send_cot, send_rot};

/// The phases of an extension endpoint.
pub mod state {
    /// Created, base OTs not yet run: no extension possible.
    #[derive(Debug)]
    pub struct Initialized(());
    /// Base OTs done: ready to extend.
    #[derive(Debug)]
    pub struct Extension(());
}

fn bits_of(delta: u128) -> Vec<bool> {
    (0..BASE_OTS).map(|i| (delta >> i) & 1 == 1).collect()
}

/// Words of choices after padding to a multiple of 128 instances.
const fn padded_words(words: usize) -> usize {
    words + (words & 1)
}

/// The extension sender (holds Δ). `Debug` prints no secret.
pub struct Sender<S> {
    delta: u128,
    cols: Option<Arc<Vec<ColumnPrg>>>,
    /// Next keystream block of every column.
    counter: u64,
    /// Global index of the next OT instance (the hash tweak).
    next: u64,
    _s: PhantomData<S>,
}

/// The extension receiver (holds both seeds of every base OT). `Debug` prints no secret.
pub struct Receiver<S> {
    base: Option<BaseSender>,
    cols: Option<Arc<Vec<[ColumnPrg; 2]>>>,
    counter: u64,
    next: u64,
    _s: PhantomData<S>,
}

impl<S> std::fmt::Debug for Sender<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "iknp::Sender(next instance {})", self.next)
    }
}

impl<S> std::fmt::Debug for Receiver<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "iknp::Receiver(next instance {})", self.next)
    }
}

impl<S> Drop for Sender<S> {
    fn drop(&mut self) {
        self.delta.zeroize();
    }
}

impl Sender<state::Initialized> {
    /// A sender with a fresh Δ from `rng`.
    pub fn new<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let delta = ((rng.next_u64() as u128) << 64) | rng.next_u64() as u128;
        Self {
            delta,
            cols: None,
            counter: 0,
            next: 0,
            _s: PhantomData,
        }
    }

    /// Runs the base-OT receiver step with choices Δ: the reply for the peer and the extension-ready
    /// sender.
    pub fn receive_base<R: RngCore + CryptoRng>(
        mut self,
        setup: &SenderSetup,
        rng: &mut R,
    ) -> Result<(Sender<state::Extension>, ReceiverReply)> {
        let (keys, reply) = base::receive(setup, &bits_of(self.delta), rng)?;
        let cols = keys.iter().map(|k| ColumnPrg::new(&k.0)).collect();
        let delta = std::mem::take(&mut self.delta);
        Ok((
            Sender {
                delta,
                cols: Some(Arc::new(cols)),
                counter: 0,
                next: 0,
                _s: PhantomData,
            },
            reply,
        ))
    }
}

impl Receiver<state::Initialized> {
    /// A receiver and the base-OT setup message it must send.
    pub fn new<R: RngCore + CryptoRng>(rng: &mut R) -> (Self, SenderSetup) {
        let (b, setup) = BaseSender::new(rng, BASE_OTS);
        (
            Self {
                base: Some(b),
                cols: None,
                counter: 0,
                next: 0,
                _s: PhantomData,
            },
            setup,
        )
    }

    /// Finishes the base OTs with the peer's reply.
    pub fn finish_base(mut self, reply: &ReceiverReply) -> Result<Receiver<state::Extension>> {
        let base = self
            .base
            .take()
            .expect("initialized receiver holds its base sender");
        let pairs: Vec<[OtKey; 2]> = base.finish(reply)?;
        let cols = pairs
            .iter()
            .map(|[k0, k1]| [ColumnPrg::new(&k0.0), ColumnPrg::new(&k1.0)])
            .collect();
        Ok(Receiver {
            base: None,
            cols: Some(Arc::new(cols)),
            counter: 0,
            next: 0,
            _s: PhantomData,
        })
    }
}

/// Receiver → sender: the 128 columns `u_i` of `m'` bits each (`m` rounded up to 128), as
/// little-endian bytes: superblock after superblock, column after column within one, a 16-byte
/// block per tile (a permutation of the columns; `16 · m'` bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendMsg {
    /// `16 · m'` bytes.
    pub u: Vec<u8>,
}

/// Bytes of the receiver's message for `words` choice words.
pub(crate) const fn msg_bytes(words: usize) -> usize {
    padded_words(words) / 2 * TILE_BYTES
}

/// The sender's rows `q_j = t_j ⊕ r_j·Δ` of one extension. `Debug` prints no secret.
#[derive(Clone)]
pub struct SenderBlocks {
    /// One block per OT.
    pub q: Vec<Block128>,
    /// The sender's global correlation.
    pub delta: Block128,
    /// Global index of `q[0]` (the hash tweak of instance `j` is `first + j`).
    pub first: u64,
}

/// The receiver's rows `t_j` and its choices. `Debug` prints no secret.
#[derive(Clone)]
pub struct ReceiverBlocks {
    /// One block per OT.
    pub t: Vec<Block128>,
    /// Choice bits, packed LSB first.
    pub choices: Vec<u64>,
    /// Global index of `t[0]`.
    pub first: u64,
}

impl std::fmt::Debug for SenderBlocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SenderBlocks({} OTs from #{})", self.q.len(), self.first)
    }
}

impl std::fmt::Debug for ReceiverBlocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ReceiverBlocks({} OTs from #{})",
            self.t.len(),
            self.first
        )
    }
}

/// A reserved extension of the receiver: owns what it needs, so it can run on rayon.
pub(crate) struct ReceiverJob {
    cols: Arc<Vec<[ColumnPrg; 2]>>,
    counter: u64,
    first: u64,
}

/// A reserved extension of the sender.
pub(crate) struct SenderJob {
    cols: Arc<Vec<ColumnPrg>>,
    delta: u128,
    counter: u64,
    first: u64,
    words: usize,
}

impl Receiver<state::Extension> {
    /// Reserves keystream and instance indices for `words · 64` OTs.
    pub(crate) fn reserve(&mut self, words: usize) -> ReceiverJob {
        let pw = padded_words(words);
        let job = ReceiverJob {
            cols: self.cols.clone().expect("extension state has columns"),
            counter: self.counter,
            first: self.next,
        };
        self.counter += (pw / 2) as u64;
        self.next += (pw * 64) as u64;
        job
    }

    /// Extends `64 · choices.len()` OTs with the given choice bits (packed LSB first).
    pub fn extend(&mut self, choices: &[u64]) -> (ExtendMsg, ReceiverBlocks) {
        self.reserve(choices.len()).run(choices)
    }
}

/// The rows of one group of superblocks, reused by the groups of a rayon task and wiped when it
/// ends.
fn scratch() -> Zeroizing<Vec<Block128>> {
    Zeroizing::new(vec![0; GROUP_OTS])
}

/// Groups per rayon task: at least [`crate::compute::INLINE_WORK`] of work.
fn group_grain() -> usize {
    min_len(GROUP_OTS * OT_WORK)
}

impl ReceiverJob {
    /// The rows of group `s` (choice words `c`) into `buf`, and its message part into `u`;
    /// returns the rows of real (unpadded) instances.
    fn group<'a>(
        &self,
        s: usize,
        c: &[u64],
        u: &mut [u8],
        buf: &'a mut [Block128],
    ) -> &'a mut [Block128] {
        let counter = self.counter + (s * GROUP_TILES) as u64;
        receiver_tiles(&self.cols, counter, c, u, buf);
        &mut buf[..64 * c.len()]
    }

    /// Runs `f(first instance, rows, outputs)` on every group, in parallel; `out` holds `per`
    /// outputs per instance. Returns the message.
    fn for_each<O: Send>(
        &self,
        choices: &[u64],
        out: &mut [O],
        per: usize,
        f: impl Fn(u64, &mut [Block128], &mut [O]) + Send + Sync,
    ) -> ExtendMsg {
        let mut u = vec![0u8; msg_bytes(choices.len())];
        u.par_chunks_mut(GROUP_BYTES)
            .zip(choices.par_chunks(2 * GROUP_TILES))
            .zip(out.par_chunks_mut(GROUP_OTS * per))
            .with_min_len(group_grain())
            .enumerate()
            .for_each_init(scratch, |buf, (s, ((u, c), o))| {
                let rows = self.group(s, c, u, buf);
                f(self.first + (s * GROUP_OTS) as u64, rows, o);
            });
        ExtendMsg { u }
    }

    pub(crate) fn run(self, choices: &[u64]) -> (ExtendMsg, ReceiverBlocks) {
        let mut t = vec![0u128; 64 * choices.len()];
        let msg = self.for_each(choices, &mut t, 1, |_, rows, t| t.copy_from_slice(rows));
        let blocks = ReceiverBlocks {
            t,
            choices: choices.to_vec(),
            first: self.first,
        };
        (msg, blocks)
    }

    /// The message, and `H(t_j)` of every instance in `out` (`64 · choices.len()` words): the
    /// random-OT outputs, or the correlated-OT outputs before the sender's message.
    pub(crate) fn run_hashed(self, choices: &[u64], out: &mut [u64]) -> ExtendMsg {
        assert_eq!(out.len(), 64 * choices.len(), "IKNP receiver outputs");
        self.for_each(choices, out, 1, outputs::receiver_rot)
    }
}

impl Sender<state::Extension> {
    /// Reserves keystream and instance indices for `words · 64` OTs.
    pub(crate) fn reserve(&mut self, words: usize) -> SenderJob {
        let pw = padded_words(words);
        let job = SenderJob {
            cols: self.cols.clone().expect("extension state has columns"),
            delta: self.delta,
            counter: self.counter,
            first: self.next,
            words,
        };
        self.counter += (pw / 2) as u64;
        self.next += (pw * 64) as u64;
        job
    }

    /// Processes the receiver's message for `words · 64` OTs.
    pub fn extend(&mut self, words: usize, msg: &ExtendMsg) -> Result<SenderBlocks> {
        self.reserve(words).run(msg)
    }
}

impl SenderJob {
    fn check(&self, u: &[u8]) -> Result<()> {
        let want = msg_bytes(self.words);
        if u.len() != want {
            return Err(MpcError::Malformed {
                reason: format!(
                    "IKNP message of {} bytes, expected {want} for {} OTs",
                    u.len(),
                    self.words * 64
                ),
            });
        }
        Ok(())
    }

    /// Runs `f(first instance, rows, s)` on every group `s` (message part `u`) in parallel,
    /// zipped with the output pieces `out` (one per group).
    fn for_each<I: Send>(
        &self,
        u: &[u8],
        out: impl IndexedParallelIterator<Item = I>,
        f: impl Fn(u64, &mut [Block128], I) + Send + Sync,
    ) {
        let m = self.words * 64;
        u.par_chunks(GROUP_BYTES)
            .zip(out)
            .with_min_len(group_grain())
            .enumerate()
            .for_each_init(scratch, |buf, (s, (u, o))| {
                let counter = self.counter + (s * GROUP_TILES) as u64;
                sender_tiles(&self.cols, self.delta, counter, u, buf);
                let n = GROUP_OTS.min(m - s * GROUP_OTS);
                f(self.first + (s * GROUP_OTS) as u64, &mut buf[..n], o);
            });
    }

    pub(crate) fn run(self, msg: &ExtendMsg) -> Result<SenderBlocks> {
        self.check(&msg.u)?;
        let mut q = vec![0u128; self.words * 64];
        self.for_each(&msg.u, q.par_chunks_mut(GROUP_OTS), |_, rows, q| {
            q.copy_from_slice(rows)
        });
        Ok(SenderBlocks {
            q,
            delta: self.delta,
            first: self.first,
        })
    }

    /// Random OT straight from the message: both messages of every instance into `out`
    /// (`64 · words` pairs).
    pub(crate) fn rot(self, u: &[u8], out: &mut [[u64; 2]]) -> Result<()> {
        self.check(u)?;
        assert_eq!(out.len(), self.words * 64, "IKNP sender outputs");
        let delta = self.delta;
        self.for_each(u, out.par_chunks_mut(GROUP_OTS), |first, q, o| {
            outputs::sender_rot(first, q, delta, o)
        });
        Ok(())
    }

    /// Correlated OT straight from the message: this party's outputs into `x` (`64 · words`)
    /// and the message for the receiver (little-endian words).
    pub(crate) fn cot(self, u: &[u8], corr: &[u64], x: &mut [u64]) -> Result<Vec<u8>> {
        self.check(u)?;
        let m = self.words * 64;
        if corr.len() != m || x.len() != m {
            return Err(MpcError::ShapeMismatch {
                op: "cot correlations and outputs",
                left: (corr.len(), x.len()),
                right: (m, m),
            });
        }
        let mut d = vec![0u8; 8 * m];
        let delta = self.delta;
        let pieces = x
            .par_chunks_mut(GROUP_OTS)
            .zip(d.par_chunks_mut(8 * GROUP_OTS))
            .zip(corr.par_chunks(GROUP_OTS));
        self.for_each(u, pieces, |first, q, ((x, d), c)| {
            outputs::sender_cot(first, q, delta, c, x, d)
        });
        Ok(d)
    }
}

/// Word operations per extended OT (PRG expansion, transposition and hashing), for
/// [`offload_sized`] and the parallel grain.
const OT_WORK: usize = 16;

impl SenderBlocks {
    /// Random OT: both messages `(H(q_j), H(q_j ⊕ Δ))` of every instance, truncated to 64 bits.
    pub fn rot(&self) -> Vec<[u64; 2]> {
        let mut out = vec![[0u64; 2]; self.q.len()];
        out.par_chunks_mut(SUPER_OTS)
            .zip(self.q.par_chunks(SUPER_OTS))
            .enumerate()
            .for_each(|(c, (o, q))| {
                let mut h = [0u128; SUPER_OTS];
                h[..q.len()].copy_from_slice(q);
                let first = self.first + (c * SUPER_OTS) as u64;
                outputs::sender_rot(first, &mut h[..q.len()], self.delta, o);
            });
        out
    }

    /// Correlated OT over Z_2^64: returns this party's outputs `x_j` and the message `d_j` such
    /// that the receiver obtains `x_j + r_j·c_j`.
    pub fn cot(&self, correlations: &[u64]) -> Result<(Vec<u64>, Vec<u64>)> {
        if correlations.len() != self.q.len() {
            return Err(MpcError::ShapeMismatch {
                op: "cot correlations",
                left: (correlations.len(), 1),
                right: (self.q.len(), 1),
            });
        }
        let mut x = vec![0u64; self.q.len()];
        let mut d = vec![0u8; 8 * self.q.len()];
        x.par_chunks_mut(SUPER_OTS)
            .zip(d.par_chunks_mut(8 * SUPER_OTS))
            .zip(
                self.q
                    .par_chunks(SUPER_OTS)
                    .zip(correlations.par_chunks(SUPER_OTS)),
            )
            .enumerate()
            .for_each(|(c, ((x, d), (q, corr)))| {
                let mut h = [0u128; SUPER_OTS];
                h[..q.len()].copy_from_slice(q);
                let first = self.first + (c * SUPER_OTS) as u64;
                outputs::sender_cot(first, &mut h[..q.len()], self.delta, corr, x, d);
            });
        Ok((x, outputs::le_words(&d).collect()))
    }

    /// Correlated OT on vectors: `correlations` holds `len` words per instance; returns this
    /// party's outputs (`len` words per instance) and the message.
    pub fn cot_vec(&self, correlations: &[u64], len: usize) -> Result<(Vec<u64>, Vec<u64>)> {
        let m = self.q.len();
        if correlations.len() != m * len || len == 0 {
            return Err(MpcError::ShapeMismatch {
                op: "vector cot correlations",
                left: (correlations.len(), 1),
                right: (m, len),
            });
        }
        let mut x = vec![0u64; m * len];
        let mut d = vec![0u64; m * len];
        x.par_chunks_mut(len)
            .zip(d.par_chunks_mut(len))
            .zip(correlations.par_chunks(len))
            .with_min_len(min_len(8 * len))
            .enumerate()
            .for_each_init(
                || (Vec::new(), vec![0u64; len]),
                |(scratch, pad1), (j, ((x, d), c))| {
                    let mut h = [self.q[j], self.q[j] ^ self.delta];
                    tccr_batch(self.first + j as u64, &mut h[..1]);
                    tccr_batch(self.first + j as u64, &mut h[1..]);
                    expand(h[0], x, scratch);
                    expand(h[1], pad1, scratch);
                    for ((d, x), (c, p)) in
                        d.iter_mut().zip(x.iter()).zip(c.iter().zip(pad1.iter()))
                    {
                        *d = x.wrapping_add(*c).wrapping_sub(*p);
                    }
                },
            );
        Ok((x, d))
    }
}

impl ReceiverBlocks {
    fn choice(&self, j: usize) -> u64 {
        (self.choices[j / 64] >> (j % 64)) & 1
    }

    /// Random OT: `H(t_j)` truncated to 64 bits, the message the choice bit selected.
    pub fn rot(&self) -> Vec<u64> {
        let mut out = vec![0u64; self.t.len()];
        out.par_chunks_mut(SUPER_OTS)
            .zip(self.t.par_chunks(SUPER_OTS))
            .enumerate()
            .for_each(|(c, (o, t))| {
                let mut h = [0u128; SUPER_OTS];
                h[..t.len()].copy_from_slice(t);
                outputs::receiver_rot(self.first + (c * SUPER_OTS) as u64, &mut h[..t.len()], o);
            });
        out
    }

    /// Correlated OT over Z_2^64: `H(t_j) + r_j·d_j`.
    pub fn cot(&self, msg: &[u64]) -> Result<Vec<u64>> {
        if msg.len() != self.t.len() {
            return Err(MpcError::Malformed {
                reason: format!(
                    "COT message of {} words, expected {}",
                    msg.len(),
                    self.t.len()
                ),
            });
        }
        let mut out = self.rot();
        outputs::receiver_cot_finish(&mut out, msg.iter().copied(), &self.choices);
        Ok(out)
    }

    /// Correlated OT on vectors of `len` words.
    pub fn cot_vec(&self, msg: &[u64], len: usize) -> Result<Vec<u64>> {
        let m = self.t.len();
        if msg.len() != m * len || len == 0 {
            return Err(MpcError::Malformed {
                reason: format!(
                    "vector COT message of {} words, expected {}",
                    msg.len(),
                    m * len
                ),
            });
        }
        let mut out = vec![0u64; m * len];
        out.par_chunks_mut(len)
            .zip(msg.par_chunks(len))
            .with_min_len(min_len(8 * len))
            .enumerate()
            .for_each_init(Vec::new, |scratch, (j, (o, d))| {
                let mut h = [self.t[j]];
                tccr_batch(self.first + j as u64, &mut h);
                expand(h[0], o, scratch);
                let b = self.choice(j).wrapping_neg();
                for (o, d) in o.iter_mut().zip(d) {
                    *o = o.wrapping_add(d & b);
                }
            });
        Ok(out)
    }
}

/// Both extension roles of one party: it sends OTs to the peer with `sender` and receives OTs from
/// it with `receiver`.
#[derive(Debug)]
pub struct OtPair {
    /// This party as extension sender.
    pub sender: Sender<state::Extension>,
    /// This party as extension receiver.
    pub receiver: Receiver<state::Extension>,
}

/// Sets up both directions at once (both parties call it): one flight exchanging the base-OT
/// setups, one exchanging the replies.
pub async fn setup_pair<C: Channel, R: RngCore + CryptoRng>(
    ch: &mut C,
    rng: &mut R,
) -> Result<OtPair> {
    let (recv_init, setup) = Receiver::new(rng);
    let send_init = Sender::new(rng);
    let peer_setup: SenderSetup = crate::net::decode_message(
        &ch.exchange_frame(crate::net::encode_message(&setup)?, 64)
            .await?,
        64,
    )?;
    let (sender, reply) = send_init.receive_base(&peer_setup, rng)?;
    let max = base::reply_max_len(BASE_OTS);
    let peer_reply: ReceiverReply = crate::net::decode_message(
        &ch.exchange_frame(crate::net::encode_message(&reply)?, max)
            .await?,
        max,
    )?;
    let receiver = recv_init.finish_base(&peer_reply)?;
    Ok(OtPair { sender, receiver })
}

/// Sets up an extension sender over `ch` (the peer runs [`setup_receiver`]).
pub async fn setup_sender<C: Channel, R: RngCore + CryptoRng>(
    ch: &mut C,
    rng: &mut R,
) -> Result<Sender<state::Extension>> {
    let init = Sender::new(rng);
    let setup: SenderSetup = ch.recv(64).await?;
    let (s, reply) = init.receive_base(&setup, rng)?;
    ch.send(&reply).await?;
    ch.flush().await?;
    Ok(s)
}

/// Sets up an extension receiver over `ch` (the peer runs [`setup_sender`]).
pub async fn setup_receiver<C: Channel, R: RngCore + CryptoRng>(
    ch: &mut C,
    rng: &mut R,
) -> Result<Receiver<state::Extension>> {
    let (init, setup) = Receiver::new(rng);
    ch.send(&setup).await?;
    ch.flush().await?;
    let reply: ReceiverReply = ch.recv(base::reply_max_len(BASE_OTS)).await?;
    init.finish_base(&reply)
}

/// Exchanges the IKNP messages both ways (each party as receiver towards the peer) and returns (this party's receiver blocks, the peer-derived sender blocks).
pub(crate) async fn extend_both<C: Channel>(
    ch: &mut C,
    pair: &mut OtPair,
    choices: Vec<u64>,
) -> Result<(ReceiverBlocks, SenderBlocks)> {
    let words = choices.len();
    let rjob = pair.receiver.reserve(words);
    let sjob = pair.sender.reserve(words);
    let work = words * 64 * OT_WORK;
    let (msg, rblocks) = offload_sized(work, move || rjob.run(&choices)).await;
    let peer_u = exchange_bytes(ch, msg.u).await?;
    let sblocks = offload_sized(work, move || sjob.run(&ExtendMsg { u: peer_u })).await?;
    Ok((rblocks, sblocks))
}

#[cfg(test)]
mod tests;
