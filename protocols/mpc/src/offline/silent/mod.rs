//! Silent OT: Ferret-style correlated-OT extension (Yang–Weng–Lan–Zhang–Wang, "Ferret: Fast
//! Extension for coRRElated oT with small communication", CCS 2020), semi-honest.
//!
//! One iteration turns `k + t·h` seed COTs into `n` fresh COTs with the same global Δ, sending
//! only `t · (2h + 1)` blocks (the GGM messages):
//!
//! 1. [`spcot`]: `t` GGM trees ([`ggm`]) of `2^h` leaves give a regular-noise multi-point COT: the
//!    outputs agree except one point per tree, where they differ by Δ (`t·h` seed COTs);
//! 2. [`lpn`]: every output adds the seed COTs at 10 positions of a public local linear code
//!    (`k` seed COTs), so the receiver's choices become `b = e + A·u`;
//! 3. bootstrapping: the first `k + t·h` outputs of an iteration are the next iteration's seeds;
//!    the very first seeds come from IKNP ([`crate::offline::iknp`], random choices), so Δ is the
//!    IKNP sender's Δ.
//!
//! Outputs follow IKNP's convention `q_j = t_j ⊕ b_j·Δ` and are handed out as
//! [`SenderBlocks`]/[`ReceiverBlocks`] with instance indices (the tweak of the correlation-robust
//! hash that turns them into random or Z_2^64-correlated OTs) from `2^63` up, disjoint from IKNP's;
//! every COT is hashed by at most one consumer (the GGM messages hash a seed with its own index).
//! The choices are pseudorandom (LPN), not chosen: [`SilentPair::take`] hands them out as they
//! are, and [`derandomize`] turns them into chosen ones with one bit per COT sent by the
//! receiver (`d = c ⊕ b`; the sender flips `q_j ⊕= d_j·Δ`).
//!
//! Parameters ([`params`]): emp-ot's Ferret sets, [`FERRET_PRE`] (bootstrap, seeded by 47,709
//! IKNP COTs) then [`FERRET_MAIN`] (n = 10,608,640, k = 589,824, t = 1,295, h = 13: 10,001,920
//! COTs kept per iteration for 1,295 · 27 · 16 = 559,440 bytes sent per direction, about
//! 0.056 bytes per COT against IKNP's 16).
//!
//! Memory: the pools hold up to one steady iteration's outputs per direction (16 bytes per COT:
//! about 340 MB per party at [`FERRET_MAIN`]), twice that while an iteration runs.
//!
//! Security: semi-honest, non-colluding servers. The receiver's choices are pseudorandom under
//! the **primal LPN assumption with regular noise** for a local code of row weight 10 (the
//! assumption Ferret's parameter sets are sized for, 128-bit computational security); the GGM
//! tree and the OTs from COTs rest on fixed-key AES as an ideal permutation (PRG and tweakable
//! circular correlation-robust hash, [`crate::offline::hash`]). There is **no consistency check**
//! (Ferret's malicious variant checks the GGM trees and the seeds): a deviating server could learn
//! the peer's choices at selected points, so this is not secure against active adversaries, like
//! the rest of [`crate::offline`].

pub mod ggm;
pub mod lpn;
pub mod params;
pub mod spcot;

pub use params::{LpnParams, SilentParams, FERRET, FERRET_MAIN, FERRET_PRE};

use super::exchange_words;
use super::iknp::{extend_both as iknp_extend_both, OtPair, ReceiverBlocks, SenderBlocks};
use crate::compute::offload_sized;
use crate::error::{MpcError, Result};
use crate::net::Channel;
use crate::offline::hash::Block128;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// Instance index of the first silent output (IKNP's indices stay far below).
pub const FIRST_INDEX: u64 = 1 << 63;

/// Both directions of a silent extension for one party: it is the COT sender towards the peer
/// (with its IKNP Δ) and the COT receiver from it. `Debug` prints no secret.
pub struct SilentPair {
    params: SilentParams,
    rng: ChaCha20Rng,
    /// Unhanded COTs as sender and as receiver, from `pos` on (the same count both ways).
    send: SenderBlocks,
    recv: ReceiverBlocks,
    pos: usize,
    /// The next iteration's seeds (none before the bootstrap).
    seeds: Option<(SenderBlocks, ReceiverBlocks)>,
    /// Next unused instance index.
    next: u64,
    iterations: u64,
}

impl std::fmt::Debug for SilentPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SilentPair({} iterations, {} COTs pooled)",
            self.iterations,
            self.available()
        )
    }
}

/// One iteration's output for one direction, before it is split into seeds and pool.
struct Output<B> {
    blocks: Vec<Block128>,
    extra: B,
}

impl SilentPair {
    /// A pair that will bootstrap from IKNP on first use; the GGM roots come from a ChaCha20
    /// generator seeded from `rng`.
    pub fn new<R: RngCore>(params: SilentParams, rng: &mut R) -> Result<Self> {
        params.validate()?;
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let empty_s = SenderBlocks {
            q: Vec::new(),
            delta: 0,
            first: 0,
        };
        let empty_r = ReceiverBlocks {
            t: Vec::new(),
            choices: Vec::new(),
            first: 0,
        };
        Ok(Self {
            params,
            rng: ChaCha20Rng::from_seed(seed),
            send: empty_s,
            recv: empty_r,
            pos: 0,
            seeds: None,
            next: FIRST_INDEX,
            iterations: 0,
        })
    }

    /// COTs pooled per direction.
    pub fn available(&self) -> usize {
        self.recv.t.len() - self.pos
    }

    /// Iterations run so far (the bootstrap included).
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// `64 · words` random COTs in each direction (both parties call it with the same `words`):
    /// this party's receiver blocks (pseudorandom choices) and sender blocks. Runs iterations
    /// over `ch` while the pool is short, bootstrapping from `iknp` the first time.
    pub async fn take<C: Channel>(
        &mut self,
        ch: &mut C,
        iknp: &mut OtPair,
        words: usize,
    ) -> Result<(ReceiverBlocks, SenderBlocks)> {
        while self.available() < 64 * words {
            self.iterate(ch, iknp).await?;
        }
        let (a, b) = (self.pos, self.pos + 64 * words);
        let first = self.recv.first + a as u64;
        let r = ReceiverBlocks {
            t: self.recv.t[a..b].to_vec(),
            choices: self.recv.choices[a / 64..b / 64].to_vec(),
            first,
        };
        let s = SenderBlocks {
            q: self.send.q[a..b].to_vec(),
            delta: self.send.delta,
            first,
        };
        self.pos = b;
        Ok((r, s))
    }

    /// Seeds for the next iteration and its parameter set: IKNP random COTs the first time.
    async fn next_seeds<C: Channel>(
        &mut self,
        ch: &mut C,
        iknp: &mut OtPair,
    ) -> Result<(LpnParams, SenderBlocks, ReceiverBlocks)> {
        if let Some((s, r)) = self.seeds.take() {
            return Ok((self.params.steady, s, r));
        }
        let p = self.params.bootstrap;
        let mut choices = vec![0u64; p.seed_words()];
        crate::ring::fill_random(&mut self.rng, &mut choices);
        let (r, s) = iknp_extend_both(ch, iknp, choices).await?;
        Ok((p, s, r))
    }

    /// One iteration in both directions: the GGM messages cross in one flight.
    async fn iterate<C: Channel>(&mut self, ch: &mut C, iknp: &mut OtPair) -> Result<()> {
        let (p, s, r) = self.next_seeds(ch, iknp).await?;
        let roots: Vec<Block128> = (0..p.t)
            .map(|_| ((self.rng.next_u64() as u128) << 64) | self.rng.next_u64() as u128)
            .collect();
        let work = p.n * 8;
        let (sent, msg) = offload_sized(work, move || send_iteration(&p, &s, &roots)).await;
        let peer = exchange_words(ch, &blocks_to_words(&msg)).await?;
        let peer = words_to_blocks(&peer, spcot::msg_blocks(&p))?;
        let got = offload_sized(work, move || receive_iteration(&p, &r, &peer)).await;
        self.absorb(sent, got);
        self.iterations += 1;
        Ok(())
    }

    /// Splits an iteration's outputs into the next seeds and the pool (the new outputs, then the
    /// leftover, in place); all get fresh instance indices, the same on both parties.
    fn absorb(&mut self, sent: Output<Block128>, got: Output<Vec<u64>>) {
        let s = 64 * self.params.steady.seed_words();
        let delta = sent.extra;
        let (mut q, mut t, mut b) = (sent.blocks, got.blocks, got.extra);
        let seed_first = self.take_indices(s);
        let seeds_s = SenderBlocks {
            q: q.drain(..s).collect(),
            delta,
            first: seed_first,
        };
        let seeds_r = ReceiverBlocks {
            t: t.drain(..s).collect(),
            choices: b.drain(..s / 64).collect(),
            first: seed_first,
        };
        self.seeds = Some((seeds_s, seeds_r));
        let a = self.pos;
        q.extend_from_slice(&self.send.q[a..]);
        t.extend_from_slice(&self.recv.t[a..]);
        b.extend_from_slice(&self.recv.choices[a / 64..]);
        let first = self.take_indices(t.len());
        self.send = SenderBlocks { q, delta, first };
        self.recv = ReceiverBlocks {
            t,
            choices: b,
            first,
        };
        self.pos = 0;
    }

    fn take_indices(&mut self, n: usize) -> u64 {
        let first = self.next;
        self.next += n as u64;
        first
    }
}

/// The sender's half of an iteration: its `n` outputs (Δ alongside) and the GGM message.
fn send_iteration(
    p: &LpnParams,
    seeds: &SenderBlocks,
    roots: &[Block128],
) -> (Output<Block128>, Vec<Block128>) {
    let (code, ggm) = seeds.q[..p.seeds()].split_at(p.k);
    let mut out = vec![0u128; p.n];
    let tweak = seeds.first + p.k as u64;
    let msg = spcot::send(p, seeds.delta, roots, ggm, tweak, &mut out);
    lpn::Code::new(p).expand_sender(code, &mut out);
    let o = Output {
        blocks: out,
        extra: seeds.delta,
    };
    (o, msg)
}

/// The receiver's half: its `n` outputs and their packed choice bits.
fn receive_iteration(p: &LpnParams, seeds: &ReceiverBlocks, msg: &[Block128]) -> Output<Vec<u64>> {
    let (code, ggm) = seeds.t[..p.seeds()].split_at(p.k);
    let bit = |g: usize| (seeds.choices[g / 64] >> (g % 64)) & 1 == 1;
    let mut out = vec![0u128; p.n];
    let tweak = seeds.first + p.k as u64;
    let alphas = spcot::receive(p, ggm, |g| bit(p.k + g), tweak, msg, &mut out);
    let mut choices = vec![0u64; p.n / 64];
    for (j, a) in alphas.iter().enumerate() {
        let x = j * p.leaves() + a;
        choices[x / 64] |= 1 << (x % 64);
    }
    lpn::Code::new(p).expand_receiver(code, &seeds.choices, &mut out, &mut choices);
    Output {
        blocks: out,
        extra: choices,
    }
}

/// Turns random COTs into COTs with the chosen `choices` (both parties call it on blocks of the
/// same length): sends `d = choices ⊕ b`, flips the sender rows where the peer's `d` is 1.
pub async fn derandomize<C: Channel>(
    ch: &mut C,
    recv: &mut ReceiverBlocks,
    send: &mut SenderBlocks,
    choices: Vec<u64>,
) -> Result<()> {
    if choices.len() != recv.choices.len() || 64 * choices.len() != send.q.len() {
        return Err(MpcError::ShapeMismatch {
            op: "silent derandomize: choice words against blocks",
            left: (choices.len(), recv.choices.len()),
            right: (send.q.len() / 64, send.q.len()),
        });
    }
    let d: Vec<u64> = choices
        .iter()
        .zip(&recv.choices)
        .map(|(c, b)| c ^ b)
        .collect();
    let peer = exchange_words(ch, &d).await?;
    let delta = send.delta;
    for (q, w) in send.q.chunks_mut(64).zip(&peer) {
        for (j, q) in q.iter_mut().enumerate() {
            *q ^= ((w >> j) & 1) as u128 * delta;
        }
    }
    recv.choices = choices;
    Ok(())
}

fn blocks_to_words(blocks: &[Block128]) -> Vec<u64> {
    blocks
        .iter()
        .flat_map(|b| [*b as u64, (*b >> 64) as u64])
        .collect()
}

fn words_to_blocks(words: &[u64], want: usize) -> Result<Vec<Block128>> {
    if words.len() != 2 * want {
        return Err(MpcError::Malformed {
            reason: format!(
                "silent OT message of {} words, expected {}",
                words.len(),
                2 * want
            ),
        });
    }
    Ok(words
        .chunks_exact(2)
        .map(|w| w[0] as u128 | ((w[1] as u128) << 64))
        .collect())
}

#[cfg(test)]
mod tests;
