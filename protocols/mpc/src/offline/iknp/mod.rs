//! IKNP OT extension (Ishai–Kilian–Nissim–Petrank, CRYPTO 2003) with the correlated-OT
//! optimisation of Asharov–Lindell–Schneider–Zohner (CCS 2013, §5.4); semi-honest.
//!
//! Setup: the extension *receiver* is the sender of 128 base OTs ([`super::base`]) and gets seed
//! pairs `(k_i^0, k_i^1)`; the extension *sender* draws Δ ∈ {0,1}^128 and receives `k_i^{Δ_i}`.
//! Extending `m` OTs with choices `r ∈ {0,1}^m`: the receiver sends the columns
//! `u_i = G(k_i^0) ⊕ G(k_i^1) ⊕ r` ([`ExtendMsg`]); the sender forms `q_i = G(k_i^{Δ_i}) ⊕ Δ_i·u_i`.
//! After the 128 × m transpose ([`super::transpose`]), row `j` satisfies `q_j = t_j ⊕ r_j·Δ`
//! ([`SenderBlocks`], [`ReceiverBlocks`]). Hashing with the tweakable correlation-robust hash
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
use super::hash::{expand, tccr_batch, Block128, ColumnPrg};
use super::transpose::transpose_128;
use super::{exchange_words, recv_words, send_words, CHUNK_WORDS};
use crate::compute::{min_len, offload_sized};
use crate::error::{MpcError, Result};
use crate::net::{Channel, ChannelExt};
use rand::{CryptoRng, RngCore};
use rayon::prelude::*;
use std::marker::PhantomData;
use std::sync::Arc;
use zeroize::Zeroize;

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
fn padded_words(words: usize) -> usize {
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

/// Receiver → sender: the 128 columns `u_i`, each `m'` bits (`m` rounded up to 128), one after the
/// other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendMsg {
    /// `128 · m' / 64` words.
    pub u: Vec<u64>,
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

impl ReceiverJob {
    pub(crate) fn run(self, choices: &[u64]) -> (ExtendMsg, ReceiverBlocks) {
        let words = choices.len();
        let pw = padded_words(words);
        let mut r = choices.to_vec();
        r.resize(pw, 0);
        let mut t = vec![0u64; BASE_OTS * pw];
        let mut u = vec![0u64; BASE_OTS * pw];
        t.par_chunks_mut(pw)
            .zip(u.par_chunks_mut(pw))
            .zip(self.cols.par_iter())
            .with_min_len(min_len(8 * pw))
            .for_each(|((ti, ui), [g0, g1])| {
                g0.fill(self.counter, ti);
                g1.fill(self.counter, ui);
                for ((u, t), r) in ui.iter_mut().zip(ti.iter()).zip(r.iter()) {
                    *u ^= t ^ r;
                }
            });
        let mut blocks = transpose_128(&t, pw * 64);
        blocks.truncate(words * 64);
        t.zeroize();
        (
            ExtendMsg { u },
            ReceiverBlocks {
                t: blocks,
                choices: choices.to_vec(),
                first: self.first,
            },
        )
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
    pub(crate) fn run(self, msg: &ExtendMsg) -> Result<SenderBlocks> {
        let pw = padded_words(self.words);
        if msg.u.len() != BASE_OTS * pw {
            return Err(MpcError::Malformed {
                reason: format!(
                    "IKNP message of {} words, expected {} for {} OTs",
                    msg.u.len(),
                    BASE_OTS * pw,
                    self.words * 64
                ),
            });
        }
        let mut q = vec![0u64; BASE_OTS * pw];
        q.par_chunks_mut(pw)
            .zip(msg.u.par_chunks(pw))
            .zip(self.cols.par_iter())
            .with_min_len(min_len(8 * pw))
            .enumerate()
            .for_each(|(i, ((qi, ui), g))| {
                g.fill(self.counter, qi);
                if (self.delta >> i) & 1 == 1 {
                    for (q, u) in qi.iter_mut().zip(ui.iter()) {
                        *q ^= u;
                    }
                }
            });
        let mut blocks = transpose_128(&q, pw * 64);
        blocks.truncate(self.words * 64);
        q.zeroize();
        Ok(SenderBlocks {
            q: blocks,
            delta: self.delta,
            first: self.first,
        })
    }
}

/// Instances hashed per rayon task.
const PAR_GRAIN: usize = 1 << 12;

/// Word operations per extended OT (PRG expansion, transposition and hashing), for
/// [`offload_sized`].
const OT_WORK: usize = 16;

impl SenderBlocks {
    /// Random OT: both messages `(H(q_j), H(q_j ⊕ Δ))` of every instance, truncated to 64 bits.
    pub fn rot(&self) -> Vec<[u64; 2]> {
        let mut out = vec![[0u64; 2]; self.q.len()];
        out.par_chunks_mut(PAR_GRAIN)
            .zip(self.q.par_chunks(PAR_GRAIN))
            .enumerate()
            .for_each(|(c, (o, q))| {
                let first = self.first + (c * PAR_GRAIN) as u64;
                let mut h0 = q.to_vec();
                let mut h1: Vec<u128> = q.iter().map(|x| x ^ self.delta).collect();
                tccr_batch(first, &mut h0);
                tccr_batch(first, &mut h1);
                for ((o, a), b) in o.iter_mut().zip(&h0).zip(&h1) {
                    *o = [*a as u64, *b as u64];
                }
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
        let mut d = vec![0u64; self.q.len()];
        x.par_chunks_mut(PAR_GRAIN)
            .zip(d.par_chunks_mut(PAR_GRAIN))
            .zip(
                self.q
                    .par_chunks(PAR_GRAIN)
                    .zip(correlations.par_chunks(PAR_GRAIN)),
            )
            .enumerate()
            .for_each(|(c, ((x, d), (q, corr)))| {
                let first = self.first + (c * PAR_GRAIN) as u64;
                let mut h0 = q.to_vec();
                let mut h1: Vec<u128> = q.iter().map(|v| v ^ self.delta).collect();
                tccr_batch(first, &mut h0);
                tccr_batch(first, &mut h1);
                for (((x, d), (a, b)), c) in x
                    .iter_mut()
                    .zip(d.iter_mut())
                    .zip(h0.iter().zip(&h1))
                    .zip(corr)
                {
                    *x = *a as u64;
                    *d = (*a as u64).wrapping_add(*c).wrapping_sub(*b as u64);
                }
            });
        Ok((x, d))
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
        out.par_chunks_mut(PAR_GRAIN)
            .zip(self.t.par_chunks(PAR_GRAIN))
            .enumerate()
            .for_each(|(c, (o, t))| {
                let mut h = t.to_vec();
                tccr_batch(self.first + (c * PAR_GRAIN) as u64, &mut h);
                for (o, h) in o.iter_mut().zip(&h) {
                    *o = *h as u64;
                }
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
        for (j, (o, d)) in out.iter_mut().zip(msg).enumerate() {
            *o = o.wrapping_add(d & self.choice(j).wrapping_neg());
        }
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

/// Extends `words · 64` OTs as sender, in chunks of [`CHUNK_WORDS`] choice words; `each` turns every
/// chunk's blocks into output and an optional message for the receiver.
async fn send_chunks<C, T, F>(
    ch: &mut C,
    sender: &mut Sender<state::Extension>,
    words: usize,
    each: F,
) -> Result<Vec<T>>
where
    C: Channel,
    T: Send + 'static,
    F: Fn(SenderBlocks, usize) -> Result<(Vec<T>, Option<Vec<u64>>)> + Send + Sync + 'static,
{
    let each = Arc::new(each);
    let mut out = Vec::new();
    let mut at = 0;
    while at < words {
        let w = CHUNK_WORDS.min(words - at);
        let u = recv_words(ch, BASE_OTS * padded_words(w)).await?;
        let job = sender.reserve(w);
        let f = each.clone();
        let work = w * 64 * OT_WORK;
        let (part, msg) =
            offload_sized(work, move || f(job.run(&ExtendMsg { u })?, at * 64)).await?;
        if let Some(msg) = msg {
            send_words(ch, &msg).await?;
            ch.flush().await?;
        }
        out.extend(part);
        at += w;
    }
    Ok(out)
}

/// Extends OTs as receiver with `choices`, in chunks; `each` gets every chunk's blocks and the
/// sender's message for the chunk (if `msg_words(instances)` is nonzero).
async fn receive_chunks<C, T, F>(
    ch: &mut C,
    receiver: &mut Receiver<state::Extension>,
    choices: &[u64],
    msg_words: impl Fn(usize) -> usize,
    each: F,
) -> Result<Vec<T>>
where
    C: Channel,
    T: Send + 'static,
    F: Fn(ReceiverBlocks, Vec<u64>) -> Result<Vec<T>> + Send + Sync + 'static,
{
    let each = Arc::new(each);
    let mut out = Vec::new();
    for chunk in choices.chunks(CHUNK_WORDS) {
        let job = receiver.reserve(chunk.len());
        let c = chunk.to_vec();
        let work = chunk.len() * 64 * OT_WORK;
        let (msg, blocks) = offload_sized(work, move || job.run(&c)).await;
        send_words(ch, &msg.u).await?;
        ch.flush().await?;
        let n = msg_words(chunk.len() * 64);
        let d = if n > 0 {
            recv_words(ch, n).await?
        } else {
            Vec::new()
        };
        let f = each.clone();
        out.extend(offload_sized(work, move || f(blocks, d)).await?);
    }
    Ok(out)
}

/// Sender side of `64 · words` random OTs: `(m_0, m_1)` per instance.
pub async fn send_rot<C: Channel>(
    ch: &mut C,
    sender: &mut Sender<state::Extension>,
    words: usize,
) -> Result<Vec<[u64; 2]>> {
    send_chunks(ch, sender, words, |b, _| Ok((b.rot(), None))).await
}

/// Receiver side of random OTs with `choices` (packed LSB first): `m_{r_j}` per instance.
pub async fn receive_rot<C: Channel>(
    ch: &mut C,
    receiver: &mut Receiver<state::Extension>,
    choices: &[u64],
) -> Result<Vec<u64>> {
    receive_chunks(ch, receiver, choices, |_| 0, |b, _| Ok(b.rot())).await
}

/// Sender side of correlated OTs over Z_2^64 (`correlations.len()` a multiple of 64): returns the
/// sender's outputs `x_j`; the receiver gets `x_j + r_j·c_j`.
pub async fn send_cot<C: Channel>(
    ch: &mut C,
    sender: &mut Sender<state::Extension>,
    correlations: &[u64],
) -> Result<Vec<u64>> {
    if correlations.len() % 64 != 0 {
        return Err(MpcError::ShapeMismatch {
            op: "send_cot: instances must be a multiple of 64",
            left: (correlations.len(), 1),
            right: (64, 1),
        });
    }
    let corr: Arc<[u64]> = correlations.into();
    send_chunks(ch, sender, correlations.len() / 64, move |b, at| {
        let (x, d) = b.cot(&corr[at..at + b.q.len()])?;
        Ok((x, Some(d)))
    })
    .await
}

/// Receiver side of correlated OTs over Z_2^64.
pub async fn receive_cot<C: Channel>(
    ch: &mut C,
    receiver: &mut Receiver<state::Extension>,
    choices: &[u64],
) -> Result<Vec<u64>> {
    receive_chunks(ch, receiver, choices, |m| m, |b, d| b.cot(&d)).await
}

/// Exchanges `words` words of IKNP columns both ways (each party as receiver towards the peer) and
/// returns (this party's receiver blocks, the peer-derived sender blocks).
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
    let peer_u = exchange_words(ch, &msg.u).await?;
    let sblocks = offload_sized(work, move || sjob.run(&ExtendMsg { u: peer_u })).await?;
    Ok((rblocks, sblocks))
}

#[cfg(test)]
mod tests;
