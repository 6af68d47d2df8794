//! The trusted dealer: a third role that makes triples from its own CSPRNG and sends each party
//! only its shares (SecureML §V's client-aided setting uses the same construction).
//!
//! Communication is minimised with seeds: at connection the dealer sends each party a fresh
//! 32-byte ChaCha20 seed. Every share that may be random (a party's shares of U, V, a, b, and P0's
//! share of Z) is drawn by the party itself from its seed, in the same order as the dealer draws
//! it; the dealer sends only P1's share of each product, `Z − z0`, which is uniform to P1 because z0
//! comes from P0's seed. So P0 receives 32 bytes in total and P1 receives one matrix per product.
//! Leaf OTs ([`TripleRequest::LeafOt`]) follow the same rule: both parties draw their tables,
//! choices and output shares, P0 also its chosen messages, and P1 receives 4 bits per instance —
//! its chosen message from P0's table and an offset that aligns its own table with P0's chosen
//! message, both uniform to P1. Random 1-out-of-2 OTs ([`TripleRequest::Rot`]) alike: P1
//! receives two words per instance, its chosen message from P0's pair and an offset XORed into
//! both of its own messages so that the one at P0's choice is P0's seeded chosen message.
//!
//! Trust: the dealer sees every triple and must not collude with either party (semi-honest,
//! non-colluding). It never sees data or models. Runnable in-process ([`spawn_in_process`]) or as
//! its own process over any [`Channel`] ([`run_dealer`]).

use super::{
    check_leaf_bits, AndTriples, ElemTriple, LeafOts, Lhs, MaskId, MatmulTriple, Preprocessing,
    RandomOts, TripleRequest, TripleSource,
};
use crate::compute::offload;
use crate::error::{MpcError, Result};
use crate::net::{mem_pair, Channel, ChannelExt, MemChannel};
use crate::ring::{self, RingMatrix};
use crate::share::{Role, Seed, Share};
use ndarray::Array2;
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;

/// Largest encoded request list a dealer accepts (64 MiB).
pub const MAX_REQUEST_BYTES: usize = 64 << 20;

/// Party → dealer.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DealerRequest {
    /// Make these triples.
    Generate(Vec<TripleRequest>),
    /// The session is over.
    Done,
}

/// Dealer → party.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DealerReply {
    /// The requests matched; P1's product shares follow as ring frames.
    Ok,
    /// The requests are invalid (unknown mask, row out of range, …).
    Refused {
        /// Why.
        reason: String,
    },
    /// The two parties' requests differ at this index.
    Mismatch {
        /// Index of the first difference.
        index: u64,
    },
}

/// Deterministic draws from a party's seed: the part of the preprocessing that needs no message.
struct Drawn {
    u: Option<RingMatrix>,
    v: RingMatrix,
    /// Shape of the product share still to be formed.
    z_dim: (usize, usize),
}

fn mask_dims(dims: &HashMap<MaskId, (usize, usize)>, id: MaskId) -> Result<(usize, usize)> {
    dims.get(&id)
        .copied()
        .ok_or_else(|| MpcError::Preprocessing {
            expected: format!("mask #{id} registered before use"),
            found: "unknown mask".into(),
        })
}

fn check_rows(rows: &[usize], n: usize, id: MaskId) -> Result<()> {
    match rows.iter().find(|&&r| r >= n) {
        Some(&r) => Err(MpcError::Preprocessing {
            expected: format!("rows of mask #{id} below {n}"),
            found: format!("row {r}"),
        }),
        None => Ok(()),
    }
}

fn draw_matmul(
    rng: &mut ChaCha20Rng,
    lhs: &Lhs,
    cols: usize,
    dims: &HashMap<MaskId, (usize, usize)>,
) -> Result<Drawn> {
    Ok(match lhs {
        Lhs::Fresh { rows, inner } => {
            let u = ring::random(rng, *rows, *inner);
            let v = ring::random(rng, *inner, cols);
            Drawn {
                u: Some(u),
                v,
                z_dim: (*rows, cols),
            }
        }
        Lhs::Mask {
            id,
            rows,
            transpose,
        } => {
            let (n, d) = mask_dims(dims, *id)?;
            check_rows(rows, n, *id)?;
            let (inner, out_rows) = if *transpose {
                (rows.len(), d)
            } else {
                (d, rows.len())
            };
            Drawn {
                u: None,
                v: ring::random(rng, inner, cols),
                z_dim: (out_rows, cols),
            }
        }
    })
}

fn words(rng: &mut ChaCha20Rng, n: usize) -> Vec<u64> {
    let mut w = vec![0u64; n];
    ring::fill_random(rng, &mut w);
    w
}

fn two_bit_bytes(rng: &mut ChaCha20Rng, n: usize, bits: u8) -> Vec<u8> {
    let mut b = vec![0u8; n];
    rand::RngCore::fill_bytes(rng, &mut b);
    let keep = (1u8 << bits) - 1;
    b.iter_mut().for_each(|x| *x &= keep);
    b
}

/// A party's seeded part of `count` leaf OTs per direction: its tables and output shares as
/// sender, its choices as receiver and, for P0, its chosen messages (P1's come from the dealer,
/// and P1's tables are shifted by the dealer's offsets, see [`leaf_corrections`]).
fn draw_leaf(rng: &mut ChaCha20Rng, role: Role, count: usize, bits: u8) -> LeafOts {
    let table = two_bit_bytes(rng, count << bits, 2);
    let mask = two_bit_bytes(rng, count, 2);
    let choice = two_bit_bytes(rng, count, bits);
    let chosen = match role {
        Role::P0 => two_bit_bytes(rng, count, 2),
        Role::P1 => vec![0; count],
    };
    LeafOts {
        bits,
        table,
        mask,
        choice,
        chosen,
    }
}

/// What the dealer sends P1 for one leaf-OT request, 16 instances per word, 4 bits each: P1's
/// chosen message `T0[c1]` (low 2 bits) and the offset `T1'[c0] ⊕ chosen0` that makes P1's drawn
/// table `T1'` agree with P0's chosen message (high 2 bits). Both are uniform to P1: `T0` and
/// `chosen0` come from P0's seed.
fn leaf_corrections(p0: &LeafOts, p1: &LeafOts) -> Vec<u64> {
    let n = 1usize << p0.bits;
    let mut out = vec![0u64; p0.count().div_ceil(16)];
    for e in 0..p0.count() {
        let chosen1 = p0.table[e * n + p1.choice[e] as usize];
        let offset = p1.table[e * n + p0.choice[e] as usize] ^ p0.chosen[e];
        out[e / 16] |= u64::from(chosen1 | (offset << 2)) << (4 * (e % 16));
    }
    out
}

/// P1 applies [`leaf_corrections`] to its seeded part.
fn apply_leaf_corrections(t: &mut LeafOts, words: &[u64]) {
    let n = 1usize << t.bits;
    for e in 0..t.count() {
        let v = (words[e / 16] >> (4 * (e % 16))) as u8;
        t.chosen[e] = v & 3;
        t.table[e * n..(e + 1) * n]
            .iter_mut()
            .for_each(|x| *x ^= (v >> 2) & 3);
    }
}

/// A party's seeded part of `count` random OTs per direction: its pairs as sender, its choices
/// as receiver and, for P0, its chosen messages (see [`rot_corrections`]).
fn draw_rot(rng: &mut ChaCha20Rng, role: Role, count: usize) -> RandomOts {
    let flat = words(rng, 2 * count);
    let mut choice = words(rng, count.div_ceil(64));
    if !count.is_multiple_of(64) {
        *choice.last_mut().expect("count > 0") &= (1 << (count % 64)) - 1;
    }
    let chosen = match role {
        Role::P0 => words(rng, count),
        Role::P1 => vec![0; count],
    };
    RandomOts {
        pairs: flat.chunks(2).map(|p| [p[0], p[1]]).collect(),
        choice,
        chosen,
    }
}

/// What the dealer sends P1 for one random-OT request: P1's chosen messages `K0[c1]` (the first
/// `count` words), then the offsets `K1'[c0] ⊕ chosen0` that make P1's drawn pairs `K1'` agree
/// with P0's chosen messages. Both are uniform to P1: `K0` and `chosen0` come from P0's seed.
fn rot_corrections(p0: &RandomOts, p1: &RandomOts) -> Vec<u64> {
    let n = p0.count();
    let chosen1 = (0..n).map(|e| p0.pairs[e][p1.choice_bit(e) as usize]);
    let offset = (0..n).map(|e| p1.pairs[e][p0.choice_bit(e) as usize] ^ p0.chosen[e]);
    chosen1.chain(offset).collect()
}

/// P1 applies [`rot_corrections`] to its seeded part.
fn apply_rot_corrections(t: &mut RandomOts, words: &[u64]) {
    let n = t.count();
    t.chosen.copy_from_slice(&words[..n]);
    for (p, d) in t.pairs.iter_mut().zip(&words[n..]) {
        p[0] ^= d;
        p[1] ^= d;
    }
}

/// The dealer's state for one session.
struct DealerState {
    rng: [ChaCha20Rng; 2],
    dims: HashMap<MaskId, (usize, usize)>,
    masks: HashMap<MaskId, RingMatrix>,
}

impl DealerState {
    /// Produces P1's product shares for `reqs`, drawing both parties' seeded parts in order.
    fn produce(&mut self, reqs: &[TripleRequest]) -> Result<Vec<RingMatrix>> {
        let mut out = Vec::new();
        for req in reqs {
            match req {
                TripleRequest::Mask { id, rows, cols } => {
                    let u0 = ring::random(&mut self.rng[0], *rows, *cols);
                    let u1 = ring::random(&mut self.rng[1], *rows, *cols);
                    self.dims.insert(*id, (*rows, *cols));
                    self.masks.insert(*id, ring::add(&u0.view(), &u1.view()));
                }
                TripleRequest::Matmul { lhs, cols } => {
                    let d0 = draw_matmul(&mut self.rng[0], lhs, *cols, &self.dims)?;
                    let z0 = ring::random(&mut self.rng[0], d0.z_dim.0, d0.z_dim.1);
                    let d1 = draw_matmul(&mut self.rng[1], lhs, *cols, &self.dims)?;
                    let v = ring::add(&d0.v.view(), &d1.v.view());
                    let z = match (lhs, d0.u, d1.u) {
                        (Lhs::Fresh { .. }, Some(u0), Some(u1)) => {
                            ring::matmul(&ring::add(&u0.view(), &u1.view()).view(), &v.view())
                        }
                        (
                            Lhs::Mask {
                                id,
                                rows,
                                transpose,
                            },
                            _,
                            _,
                        ) => {
                            let u = ring::select_rows(&self.masks[id].view(), rows);
                            if *transpose {
                                ring::matmul(&u.t(), &v.view())
                            } else {
                                ring::matmul(&u.view(), &v.view())
                            }
                        }
                        _ => unreachable!("fresh requests always draw U"),
                    };
                    out.push(ring::sub(&z.view(), &z0.view()));
                }
                TripleRequest::Elementwise { rows, cols } => {
                    let a0 = ring::random(&mut self.rng[0], *rows, *cols);
                    let b0 = ring::random(&mut self.rng[0], *rows, *cols);
                    let c0 = ring::random(&mut self.rng[0], *rows, *cols);
                    let a1 = ring::random(&mut self.rng[1], *rows, *cols);
                    let b1 = ring::random(&mut self.rng[1], *rows, *cols);
                    let a = ring::add(&a0.view(), &a1.view());
                    let b = ring::add(&b0.view(), &b1.view());
                    let c = ring::hadamard(&a.view(), &b.view());
                    out.push(ring::sub(&c.view(), &c0.view()));
                }
                TripleRequest::And { words: n } => {
                    let a0 = words(&mut self.rng[0], *n);
                    let b0 = words(&mut self.rng[0], *n);
                    let c0 = words(&mut self.rng[0], *n);
                    let a1 = words(&mut self.rng[1], *n);
                    let b1 = words(&mut self.rng[1], *n);
                    let c1: Vec<u64> = (0..*n)
                        .map(|i| ((a0[i] ^ a1[i]) & (b0[i] ^ b1[i])) ^ c0[i])
                        .collect();
                    out.push(Array2::from_shape_vec((1, *n), c1).expect("shape"));
                }
                TripleRequest::LeafOt { count, bits } => {
                    check_leaf_bits(*bits)?;
                    let p0 = draw_leaf(&mut self.rng[0], Role::P0, *count, *bits);
                    let p1 = draw_leaf(&mut self.rng[1], Role::P1, *count, *bits);
                    let w = leaf_corrections(&p0, &p1);
                    out.push(Array2::from_shape_vec((1, w.len()), w).expect("shape"));
                }
                TripleRequest::Rot { count } => {
                    let p0 = draw_rot(&mut self.rng[0], Role::P0, *count);
                    let p1 = draw_rot(&mut self.rng[1], Role::P1, *count);
                    let w = rot_corrections(&p0, &p1);
                    out.push(Array2::from_shape_vec((1, w.len()), w).expect("shape"));
                }
            }
        }
        Ok(out)
    }
}

/// Runs a dealer session with P0 on `ch0` and P1 on `ch1` until both say [`DealerRequest::Done`]
/// or a channel closes.
pub async fn run_dealer<C0: Channel, C1: Channel>(mut ch0: C0, mut ch1: C1) -> Result<()> {
    let seeds = [Seed::from_os(), Seed::from_os()];
    ch0.send(&seeds[0]).await?;
    ch1.send(&seeds[1]).await?;
    ch0.flush().await?;
    ch1.flush().await?;
    let mut state = Some(DealerState {
        rng: [seeds[0].rng(), seeds[1].rng()],
        dims: HashMap::new(),
        masks: HashMap::new(),
    });
    loop {
        let r0: DealerRequest = ch0.recv(MAX_REQUEST_BYTES).await?;
        let r1: DealerRequest = ch1.recv(MAX_REQUEST_BYTES).await?;
        let (q0, q1) = match (r0, r1) {
            (DealerRequest::Done, DealerRequest::Done) => return Ok(()),
            (DealerRequest::Generate(a), DealerRequest::Generate(b)) => (a, b),
            (DealerRequest::Done, DealerRequest::Generate(_))
            | (DealerRequest::Generate(_), DealerRequest::Done) => {
                let m = DealerReply::Mismatch { index: 0 };
                ch0.send(&m).await?;
                ch1.send(&m).await?;
                return Err(MpcError::RequestMismatch { index: 0 });
            }
        };
        if let Some(index) = first_difference(&q0, &q1) {
            let m = DealerReply::Mismatch { index };
            ch0.send(&m).await?;
            ch1.send(&m).await?;
            return Err(MpcError::RequestMismatch { index });
        }
        let mut st = state.take().expect("state present");
        let (st, shares) = offload(move || {
            let r = st.produce(&q0);
            (st, r)
        })
        .await;
        state = Some(st);
        let shares = match shares {
            Ok(s) => s,
            Err(e) => {
                let m = DealerReply::Refused {
                    reason: e.to_string(),
                };
                ch0.send(&m).await?;
                ch1.send(&m).await?;
                return Err(e);
            }
        };
        ch0.send(&DealerReply::Ok).await?;
        ch0.flush().await?;
        ch1.send(&DealerReply::Ok).await?;
        for z in &shares {
            ch1.send_ring(&z.view()).await?;
        }
        ch1.flush().await?;
    }
}

fn first_difference(a: &[TripleRequest], b: &[TripleRequest]) -> Option<u64> {
    if a.len() != b.len() {
        return Some(a.iter().zip(b).take_while(|(x, y)| x == y).count() as u64);
    }
    a.iter().zip(b).position(|(x, y)| x != y).map(|i| i as u64)
}

/// A party's connection to the dealer; implements [`TripleSource`].
pub struct DealerClient<C> {
    ch: C,
    role: Role,
    rng: ChaCha20Rng,
    dims: HashMap<MaskId, (usize, usize)>,
}

impl<C> std::fmt::Debug for DealerClient<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DealerClient({})", self.role)
    }
}

impl<C: Channel> DealerClient<C> {
    /// Connects as `role`: receives this party's seed from the dealer.
    pub async fn connect(mut ch: C, role: Role) -> Result<Self> {
        let seed: Seed = ch.recv(64).await?;
        Ok(Self {
            ch,
            role,
            rng: seed.rng(),
            dims: HashMap::new(),
        })
    }

    /// Tells the dealer the session is over.
    pub async fn finish(mut self) -> Result<()> {
        self.ch.send(&DealerRequest::Done).await?;
        self.ch.flush().await
    }

    async fn generate_inner(&mut self, requests: &[TripleRequest]) -> Result<Preprocessing> {
        self.ch
            .send(&DealerRequest::Generate(requests.to_vec()))
            .await?;
        self.ch.flush().await?;
        match self.ch.recv::<DealerReply>(4096).await? {
            DealerReply::Ok => {}
            DealerReply::Mismatch { index } => return Err(MpcError::RequestMismatch { index }),
            DealerReply::Refused { reason } => return Err(MpcError::Refused { reason }),
        }
        // Draw this party's seeded parts (in the dealer's order) on rayon.
        let role = self.role;
        let mut rng = self.rng.clone();
        let mut dims = self.dims.clone();
        let reqs: Arc<[TripleRequest]> = requests.into();
        let (rng, dims, drawn) = offload(move || {
            let mut drawn = Vec::with_capacity(reqs.len());
            for req in reqs.iter() {
                drawn.push(draw_party(&mut rng, role, req, &mut dims));
            }
            (rng, dims, drawn)
        })
        .await;
        self.rng = rng;
        self.dims = dims;
        let mut pre = Preprocessing::new();
        for (req, d) in requests.iter().zip(drawn) {
            let d = d?;
            match (req, d) {
                (TripleRequest::Mask { id, .. }, PartyDraw::Mask(u)) => {
                    pre.insert_mask(*id, Share::from_ring(u))
                }
                (TripleRequest::Matmul { lhs, cols }, PartyDraw::Matmul(dr, z0)) => {
                    let z = match z0 {
                        Some(z) => z,
                        None => {
                            let (r, c) = dr.z_dim;
                            self.ch.recv_ring(r, c).await?
                        }
                    };
                    pre.push_matmul(
                        lhs.clone(),
                        *cols,
                        MatmulTriple {
                            u: dr.u.map(Share::from_ring),
                            v: Share::from_ring(dr.v),
                            z: Share::from_ring(z),
                        },
                    );
                }
                (TripleRequest::Elementwise { rows, cols }, PartyDraw::Elem(a, b, c0)) => {
                    let c = match c0 {
                        Some(c) => c,
                        None => self.ch.recv_ring(*rows, *cols).await?,
                    };
                    pre.push_elementwise(ElemTriple {
                        a: Share::from_ring(a),
                        b: Share::from_ring(b),
                        c: Share::from_ring(c),
                    });
                }
                (TripleRequest::And { words: n }, PartyDraw::And(a, b, c0)) => {
                    let c = match c0 {
                        Some(c) => c,
                        None => self.ch.recv_ring(1, *n).await?.into_raw_vec_and_offset().0,
                    };
                    pre.push_and(AndTriples { a, b, c });
                }
                (TripleRequest::LeafOt { count, .. }, PartyDraw::Leaf(mut t)) => {
                    if self.role == Role::P1 {
                        let w = self.ch.recv_ring(1, count.div_ceil(16)).await?;
                        apply_leaf_corrections(&mut t, w.as_slice().expect("contiguous"));
                    }
                    pre.push_leaf(t);
                }
                (TripleRequest::Rot { count }, PartyDraw::Rot(mut t)) => {
                    if self.role == Role::P1 {
                        let w = self.ch.recv_ring(1, 2 * count).await?;
                        apply_rot_corrections(&mut t, w.as_slice().expect("contiguous"));
                    }
                    pre.push_rot(t);
                }
                _ => unreachable!("draw kinds follow request kinds"),
            }
        }
        Ok(pre)
    }
}

enum PartyDraw {
    Mask(RingMatrix),
    Matmul(Drawn, Option<RingMatrix>),
    Elem(RingMatrix, RingMatrix, Option<RingMatrix>),
    And(Vec<u64>, Vec<u64>, Option<Vec<u64>>),
    Leaf(LeafOts),
    Rot(RandomOts),
}

/// What a party draws from its own seed for one request; P0 also draws its product share.
fn draw_party(
    rng: &mut ChaCha20Rng,
    role: Role,
    req: &TripleRequest,
    dims: &mut HashMap<MaskId, (usize, usize)>,
) -> Result<PartyDraw> {
    Ok(match req {
        TripleRequest::Mask { id, rows, cols } => {
            dims.insert(*id, (*rows, *cols));
            PartyDraw::Mask(ring::random(rng, *rows, *cols))
        }
        TripleRequest::Matmul { lhs, cols } => {
            let d = draw_matmul(rng, lhs, *cols, dims)?;
            let z0 = (role == Role::P0).then(|| ring::random(rng, d.z_dim.0, d.z_dim.1));
            PartyDraw::Matmul(d, z0)
        }
        TripleRequest::Elementwise { rows, cols } => {
            let a = ring::random(rng, *rows, *cols);
            let b = ring::random(rng, *rows, *cols);
            let c = (role == Role::P0).then(|| ring::random(rng, *rows, *cols));
            PartyDraw::Elem(a, b, c)
        }
        TripleRequest::And { words: n } => {
            let a = words(rng, *n);
            let b = words(rng, *n);
            let c = (role == Role::P0).then(|| words(rng, *n));
            PartyDraw::And(a, b, c)
        }
        TripleRequest::LeafOt { count, bits } => {
            check_leaf_bits(*bits)?;
            PartyDraw::Leaf(draw_leaf(rng, role, *count, *bits))
        }
        TripleRequest::Rot { count } => PartyDraw::Rot(draw_rot(rng, role, *count)),
    })
}

impl<C: Channel> TripleSource for DealerClient<C> {
    fn generate(
        &mut self,
        requests: &[TripleRequest],
    ) -> impl std::future::Future<Output = Result<Preprocessing>> + Send {
        self.generate_inner(requests)
    }

    fn trust_note(&self) -> &'static str {
        "trusted dealer: a third party generates all triples and must not collude with either server"
    }
}

/// Starts a dealer task on the current tokio runtime, connected to two in-memory clients.
pub async fn spawn_in_process() -> Result<(
    DealerClient<MemChannel>,
    DealerClient<MemChannel>,
    tokio::task::JoinHandle<Result<()>>,
)> {
    let (d0, p0) = mem_pair();
    let (d1, p1) = mem_pair();
    let handle = tokio::spawn(run_dealer(d0, d1));
    let c0 = DealerClient::connect(p0, Role::P0).await?;
    let c1 = DealerClient::connect(p1, Role::P1).await?;
    Ok((c0, c1, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reqs() -> Vec<TripleRequest> {
        crate::triples::sample_requests()
    }

    /// A streamed pool ([`Preprocessing::streamed`]) fed one request per chunk (the mask's
    /// too) by a producer thread through a channel of one slot hands the material out in order
    /// across chunk boundaries, waits for chunks not yet sent, drains, and refuses use beyond
    /// the end (the checks of every source's pool), on both a multi-threaded and a
    /// current-thread runtime.
    #[test]
    fn streamed_pools_hand_out_chunks_in_order() {
        for multi in [true, false] {
            let rt = if multi {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
            } else {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            }
            .unwrap();
            rt.block_on(async {
                let (mut c0, mut c1, h) = spawn_in_process().await.unwrap();
                let mut chunks = Vec::new();
                for r in reqs() {
                    let r = [r];
                    let (p0, p1) = tokio::join!(c0.generate(&r), c1.generate(&r));
                    chunks.push((p0.unwrap(), p1.unwrap()));
                }
                c0.finish().await.unwrap();
                c1.finish().await.unwrap();
                h.await.unwrap().unwrap();
                let (tx0, rx0) = std::sync::mpsc::sync_channel(1);
                let (tx1, rx1) = std::sync::mpsc::sync_channel(1);
                // Every chunk through the channel, the mask's too: the pools start empty.
                let producer = std::thread::spawn(move || {
                    for (a, b) in chunks {
                        std::thread::sleep(std::time::Duration::from_millis(5));
                        tx0.send(a).unwrap();
                        tx1.send(b).unwrap();
                    }
                });
                let mut p0 = Preprocessing::streamed(Preprocessing::new(), rx0);
                let mut p1 = Preprocessing::streamed(Preprocessing::new(), rx1);
                // Asking mid-stream keeps what arrives for later takes.
                assert!(!p0.is_drained());
                p0.wait_for_mask(1);
                p1.wait_for_mask(1);
                crate::triples::check_sample_pool(&mut p0, &mut p1);
                producer.join().unwrap();
            });
        }
    }

    #[tokio::test]
    async fn dealer_triples_are_correct() {
        let (mut c0, mut c1, h) = spawn_in_process().await.unwrap();
        let r = reqs();
        let (p0, p1) = tokio::join!(c0.generate(&r), c1.generate(&r));
        let (mut p0, mut p1) = (p0.unwrap(), p1.unwrap());
        crate::triples::check_sample_pool(&mut p0, &mut p1);
        c0.finish().await.unwrap();
        c1.finish().await.unwrap();
        h.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn mismatched_requests_are_refused() {
        let (mut c0, mut c1, h) = spawn_in_process().await.unwrap();
        let a = reqs();
        let mut b = reqs();
        b[4] = TripleRequest::Elementwise { rows: 4, cols: 5 };
        let (p0, p1) = tokio::join!(c0.generate(&a), c1.generate(&b));
        assert!(matches!(p0, Err(MpcError::RequestMismatch { index: 4 })));
        assert!(matches!(p1, Err(MpcError::RequestMismatch { index: 4 })));
        assert!(matches!(
            h.await.unwrap(),
            Err(MpcError::RequestMismatch { index: 4 })
        ));
    }

    #[tokio::test]
    async fn unknown_mask_or_row_is_an_error() {
        let (mut c0, mut c1, _h) = spawn_in_process().await.unwrap();
        let r = vec![
            TripleRequest::Mask {
                id: 1,
                rows: 4,
                cols: 2,
            },
            TripleRequest::Matmul {
                lhs: Lhs::Mask {
                    id: 1,
                    rows: vec![4],
                    transpose: false,
                },
                cols: 1,
            },
        ];
        let (p0, _p1) = tokio::join!(c0.generate(&r), c1.generate(&r));
        assert!(
            matches!(&p0, Err(MpcError::Refused { reason }) if reason.contains("row 4")),
            "{p0:?}"
        );
    }

    /// P0 never receives more than its seed and the acknowledgements: its shares are all seeded.
    #[tokio::test]
    async fn p0_receives_only_seed_and_acks() {
        let (d0, p0) = mem_pair();
        let (d1, p1) = mem_pair();
        let p0 = crate::net::Metered::new(p0);
        let m0 = p0.meter();
        let p1 = crate::net::Metered::new(p1);
        let m1 = p1.meter();
        let h = tokio::spawn(run_dealer(d0, d1));
        let (c0, c1) = tokio::join!(
            DealerClient::connect(p0, Role::P0),
            DealerClient::connect(p1, Role::P1)
        );
        let (mut c0, mut c1) = (c0.unwrap(), c1.unwrap());
        let r = reqs();
        let (a, b) = tokio::join!(c0.generate(&r), c1.generate(&r));
        a.unwrap();
        b.unwrap();
        c0.finish().await.unwrap();
        c1.finish().await.unwrap();
        h.await.unwrap().unwrap();
        // seed (32 + 4 header) + one ack (4 + 4 header)
        assert_eq!(m0.stats().bytes_received, 36 + 8);
        // P1 additionally receives Z shares: 3x2 + 3x1 + 4x3 + 4x4 + 1x5 words, 4 bits per
        // leaf OT (70 of them: 5 words) and 2 words per random OT (70 of them).
        assert_eq!(
            m1.stats().bytes_received,
            36 + 8 + (6 + 3 + 12 + 16 + 5 + 5 + 140) * 8 + 7 * 4
        );
    }
}
