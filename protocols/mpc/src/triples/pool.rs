//! [`Preprocessing`]: one party's pool of triples, consumed in order by the online phase, with
//! the shares it holds ([`MatmulTriple`], [`ElemTriple`], [`AndTriples`], [`LeafOts`],
//! [`RandomOts`]) and the one-matrix-per-
//! mask rule ([`Preprocessing::claim_mask`]).

use super::request::{v_shape, Lhs, MaskId, TripleRequest};
use crate::error::{MpcError, Result};
use crate::share::Share;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

/// Shares of a matrix triple: Z = U · V.
#[derive(Debug, Clone)]
pub struct MatmulTriple {
    /// This party's share of U; `None` when U is a registered mask (its share lives in the pool).
    pub u: Option<Share>,
    /// This party's share of V.
    pub v: Share,
    /// This party's share of Z.
    pub z: Share,
}

/// Shares of an elementwise triple c = a ⊙ b.
#[derive(Debug, Clone)]
pub struct ElemTriple {
    /// Share of a.
    pub a: Share,
    /// Share of b.
    pub b: Share,
    /// Share of c.
    pub c: Share,
}

/// XOR shares of bit-sliced AND triples: c = a ∧ b, 64 triples per word.
#[derive(Clone)]
pub struct AndTriples {
    /// Share of a.
    pub a: Vec<u64>,
    /// Share of b.
    pub b: Vec<u64>,
    /// Share of c.
    pub c: Vec<u64>,
}

impl std::fmt::Debug for AndTriples {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AndTriples({} words)", self.a.len())
    }
}

/// One party's share of random 1-out-of-2^`bits` OTs with 2-bit messages, in both directions
/// ([`TripleRequest::LeafOt`]): as sender of instance `e` it holds the table
/// `table[e·2^bits .. (e+1)·2^bits]` of random messages and a random output share `mask[e]`; as
/// receiver of instance `e` (of the peer's table) the choice `choice[e]` and the chosen message
/// `chosen[e]`. Messages and masks are 2-bit values in the low bits of a byte.
#[derive(Clone)]
pub struct LeafOts {
    /// log2 of the messages per instance.
    pub bits: u8,
    /// Sender: the tables, `2^bits` messages per instance.
    pub table: Vec<u8>,
    /// Sender: the output shares.
    pub mask: Vec<u8>,
    /// Receiver: the choices.
    pub choice: Vec<u8>,
    /// Receiver: the messages chosen from the peer's tables.
    pub chosen: Vec<u8>,
}

impl LeafOts {
    /// Instances per direction.
    pub fn count(&self) -> usize {
        self.mask.len()
    }

    /// All-zero material for `count` instances (dry runs).
    pub(crate) fn zeros(count: usize, bits: u8) -> Self {
        Self {
            bits,
            table: vec![0; count << bits],
            mask: vec![0; count],
            choice: vec![0; count],
            chosen: vec![0; count],
        }
    }
}

/// One party's share of random 1-out-of-2 OTs with 64-bit messages, in both directions
/// ([`TripleRequest::Rot`]): as sender of instance `e` it holds both messages `pairs[e]`; as
/// receiver of instance `e` (of the peer's pair) the choice bit `e` of `choice` (packed LSB
/// first) and the chosen message `chosen[e]`.
#[derive(Clone)]
pub struct RandomOts {
    /// Sender: both messages of every instance.
    pub pairs: Vec<[u64; 2]>,
    /// Receiver: the choice bits, packed LSB first (`count.div_ceil(64)` words).
    pub choice: Vec<u64>,
    /// Receiver: the messages chosen from the peer's pairs.
    pub chosen: Vec<u64>,
}

impl RandomOts {
    /// Instances per direction.
    pub fn count(&self) -> usize {
        self.pairs.len()
    }

    /// Receiver: the choice bit of instance `e`.
    pub fn choice_bit(&self, e: usize) -> u64 {
        (self.choice[e / 64] >> (e % 64)) & 1
    }

    /// All-zero material for `count` instances (dry runs).
    pub(crate) fn zeros(count: usize) -> Self {
        Self {
            pairs: vec![[0; 2]; count],
            choice: vec![0; count.div_ceil(64)],
            chosen: vec![0; count],
        }
    }
}

impl std::fmt::Debug for RandomOts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RandomOts({} x 1-of-2)", self.count())
    }
}

impl std::fmt::Debug for LeafOts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LeafOts({} x 1-of-2^{})", self.count(), self.bits)
    }
}

/// One party's pool of preprocessed material, consumed in order by the online phase.
#[derive(Debug, Default)]
pub struct Preprocessing {
    masks: HashMap<MaskId, Arc<Share>>,
    used_masks: HashSet<MaskId>,
    matmul: VecDeque<(Lhs, usize, MatmulTriple)>,
    elementwise: VecDeque<ElemTriple>,
    and: VecDeque<AndTriples>,
    leaf: VecDeque<LeafOts>,
    rot: VecDeque<RandomOts>,
    /// In a recorder ([`crate::dry_run`]): every request the consumer made, in order.
    recording: Option<Vec<TripleRequest>>,
    /// A streamed offline phase ([`Self::streamed`]): the chunks still to come, in request
    /// order. A take that finds its queue empty waits for the next chunk.
    refill: Option<Mutex<Refill>>,
}

/// The chunks still to come of a streamed pool, and those received by [`Preprocessing::is_drained`]
/// but not yet appended.
#[derive(Debug)]
struct Refill {
    rx: std::sync::mpsc::Receiver<Preprocessing>,
    peeked: VecDeque<Preprocessing>,
}

impl Preprocessing {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// A pool fed by a producer that makes the material in chunks of consecutive requests
    /// while the online phase consumes it (SecureML's offline phase run a bounded distance
    /// ahead of the online one instead of before all of it): `first` holds the first chunk,
    /// `rest` yields the others in order and is closed after the last. Masks arrive with the
    /// chunk that registers them; a take whose queue is empty blocks until the next chunk has
    /// been appended (inside a multi-threaded tokio runtime, in `block_in_place`, so the
    /// runtime's other tasks go on), and finds the pool empty only when `rest` is closed. The
    /// producer must not run on the runtime whose worker blocks here (it runs on its own
    /// thread in `experiments`), and a bounded channel bounds how far ahead it gets, so the
    /// memory holds a few chunks instead of the whole run's material.
    pub fn streamed(first: Preprocessing, rest: std::sync::mpsc::Receiver<Preprocessing>) -> Self {
        Self {
            refill: Some(Mutex::new(Refill {
                rx: rest,
                peeked: VecDeque::new(),
            })),
            ..first
        }
    }

    /// In a streamed pool, appends chunks until `empty(self)` is false or the producer is
    /// done.
    fn await_material(&mut self, empty: impl Fn(&Self) -> bool) {
        while empty(self) {
            let Some(refill) = &mut self.refill else {
                return;
            };
            let refill = refill.get_mut().unwrap_or_else(|e| e.into_inner());
            let next = match refill.peeked.pop_front() {
                Some(chunk) => Ok(chunk),
                None => blocking(|| refill.rx.recv()),
            };
            match next {
                Ok(chunk) => self.extend(chunk),
                Err(_) => self.refill = None,
            }
        }
    }

    /// Whether no chunk is still to come: waits for a streamed pool's producer to send its
    /// next chunk (kept for later takes: then `false`) or to close its channel.
    fn stream_is_done(&self) -> bool {
        match &self.refill {
            None => true,
            Some(refill) => {
                let mut refill = refill.lock().unwrap_or_else(|e| e.into_inner());
                if !refill.peeked.is_empty() {
                    return false;
                }
                match blocking(|| refill.rx.recv()) {
                    Ok(chunk) => {
                        refill.peeked.push_back(chunk);
                        false
                    }
                    Err(_) => true,
                }
            }
        }
    }

    /// A recorder: a pool that logs every triple asked of it and hands out zero shares of the
    /// asked shape (for dry runs only: the material is public).
    pub(crate) fn recorder() -> Self {
        Self {
            recording: Some(Vec::new()),
            ..Self::default()
        }
    }

    /// A recorder's log so far (empty for an ordinary pool).
    pub(crate) fn take_recorded(&mut self) -> Vec<TripleRequest> {
        self.recording
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// In a recorder: logs `req` and queues zero material for it, which the pop that follows
    /// hands out (with the ordinary checks). A no-op in an ordinary pool.
    fn supply(&mut self, req: TripleRequest) -> Result<()> {
        let Some(log) = self.recording.as_mut() else {
            return Ok(());
        };
        log.push(req.clone());
        match req {
            TripleRequest::Matmul { lhs, cols } => {
                let t = self.zero_matmul(&lhs, cols)?;
                self.matmul.push_back((lhs, cols, t));
            }
            TripleRequest::Elementwise { rows, cols } => {
                let z = || Share::zeros(rows, cols);
                self.elementwise.push_back(ElemTriple {
                    a: z(),
                    b: z(),
                    c: z(),
                });
            }
            TripleRequest::And { words } => self.and.push_back(AndTriples {
                a: vec![0; words],
                b: vec![0; words],
                c: vec![0; words],
            }),
            TripleRequest::LeafOt { count, bits } => {
                self.leaf.push_back(LeafOts::zeros(count, bits))
            }
            TripleRequest::Rot { count } => self.rot.push_back(RandomOts::zeros(count)),
            TripleRequest::Mask { .. } => {}
        }
        Ok(())
    }

    /// Zero shares of a matrix triple for `(lhs, cols)`.
    fn zero_matmul(&self, lhs: &Lhs, cols: usize) -> Result<MatmulTriple> {
        let (inner, _) = v_shape(lhs, cols, |id| Ok(self.mask(id)?.dim().1))?;
        let (rows, u) = match lhs {
            Lhs::Fresh { rows, inner } => (*rows, Some(Share::zeros(*rows, *inner))),
            Lhs::Mask { id, transpose, .. } if *transpose => (self.mask(*id)?.dim().1, None),
            Lhs::Mask { rows, .. } => (rows.len(), None),
        };
        Ok(MatmulTriple {
            u,
            v: Share::zeros(inner, cols),
            z: Share::zeros(rows, cols),
        })
    }

    /// Adds a mask share.
    pub fn insert_mask(&mut self, id: MaskId, u: Share) {
        self.masks.insert(id, Arc::new(u));
    }

    /// Adds a matrix triple made for `(lhs, cols)`.
    pub fn push_matmul(&mut self, lhs: Lhs, cols: usize, t: MatmulTriple) {
        self.matmul.push_back((lhs, cols, t));
    }

    /// Adds an elementwise triple.
    pub fn push_elementwise(&mut self, t: ElemTriple) {
        self.elementwise.push_back(t);
    }

    /// Adds AND triples.
    pub fn push_and(&mut self, t: AndTriples) {
        self.and.push_back(t);
    }

    /// Adds random 1-out-of-2^m OTs.
    pub fn push_leaf(&mut self, t: LeafOts) {
        self.leaf.push_back(t);
    }

    /// Adds random 1-out-of-2 OTs.
    pub fn push_rot(&mut self, t: RandomOts) {
        self.rot.push_back(t);
    }

    /// This party's share of mask `id`.
    pub fn mask(&self, id: MaskId) -> Result<&Share> {
        self.masks
            .get(&id)
            .map(|u| &**u)
            .ok_or_else(|| MpcError::Preprocessing {
                expected: format!("mask #{id}"),
                found: "no such mask".into(),
            })
    }

    /// In a streamed pool ([`Self::streamed`]), waits until mask `id` has arrived (or the
    /// producer is done); a no-op otherwise. [`Self::claim_mask`] waits by itself.
    pub fn wait_for_mask(&mut self, id: MaskId) {
        self.await_material(|p| !p.masks.contains_key(&id));
    }

    /// This party's share of mask `id` for masking one matrix: marks the mask used, and refuses
    /// ([`MpcError::MaskReused`]) a mask claimed before. The share is handed out shared, not
    /// copied (a data matrix's mask is as large as the data).
    pub fn claim_mask(&mut self, id: MaskId) -> Result<Arc<Share>> {
        self.wait_for_mask(id);
        self.mask(id)?;
        let u = self.masks[&id].clone();
        if !self.used_masks.insert(id) {
            return Err(MpcError::MaskReused { id });
        }
        Ok(u)
    }

    /// Takes the next matrix triple, which must have been made for exactly `(lhs, cols)`.
    pub fn next_matmul(&mut self, lhs: &Lhs, cols: usize) -> Result<MatmulTriple> {
        self.supply(TripleRequest::Matmul {
            lhs: lhs.clone(),
            cols,
        })?;
        self.await_material(|p| p.matmul.is_empty());
        match self.matmul.pop_front() {
            Some((l, c, t)) if &l == lhs && c == cols => Ok(t),
            Some((l, c, _)) => Err(MpcError::Preprocessing {
                expected: format!("matmul triple {} x {cols}", describe(lhs)),
                found: format!("matmul triple {} x {c}", describe(&l)),
            }),
            None => Err(MpcError::Preprocessing {
                expected: format!("matmul triple {} x {cols}", describe(lhs)),
                found: "empty pool".into(),
            }),
        }
    }

    /// Takes the next elementwise triple, which must have shape `dim`.
    pub fn next_elementwise(&mut self, dim: (usize, usize)) -> Result<ElemTriple> {
        self.supply(TripleRequest::Elementwise {
            rows: dim.0,
            cols: dim.1,
        })?;
        self.await_material(|p| p.elementwise.is_empty());
        match self.elementwise.pop_front() {
            Some(t) if t.a.dim() == dim => Ok(t),
            other => Err(MpcError::Preprocessing {
                expected: format!("elementwise triple {dim:?}"),
                found: other.map_or("empty pool".into(), |t| format!("{:?}", t.a.dim())),
            }),
        }
    }

    /// Takes the next block of AND triples, which must hold `words` words.
    pub fn next_and(&mut self, words: usize) -> Result<AndTriples> {
        self.supply(TripleRequest::And { words })?;
        self.await_material(|p| p.and.is_empty());
        match self.and.pop_front() {
            Some(t) if t.a.len() == words => Ok(t),
            other => Err(MpcError::Preprocessing {
                expected: format!("{words} words of AND triples"),
                found: other.map_or("empty pool".into(), |t| format!("{} words", t.a.len())),
            }),
        }
    }

    /// Takes the next block of random 1-out-of-2^`bits` OTs, which must hold `count` instances
    /// per direction.
    pub fn next_leaf(&mut self, count: usize, bits: u8) -> Result<LeafOts> {
        self.supply(TripleRequest::LeafOt { count, bits })?;
        self.await_material(|p| p.leaf.is_empty());
        match self.leaf.pop_front() {
            Some(t) if t.count() == count && t.bits == bits => Ok(t),
            other => Err(MpcError::Preprocessing {
                expected: format!("{count} leaf OTs of 1-of-2^{bits}"),
                found: other.map_or("empty pool".into(), |t| {
                    format!("{} leaf OTs of 1-of-2^{}", t.count(), t.bits)
                }),
            }),
        }
    }

    /// Takes the next block of random 1-out-of-2 OTs, which must hold `count` instances per
    /// direction. Each block is handed out once: its messages mask exactly one use.
    pub fn next_rot(&mut self, count: usize) -> Result<RandomOts> {
        self.supply(TripleRequest::Rot { count })?;
        self.await_material(|p| p.rot.is_empty());
        match self.rot.pop_front() {
            Some(t) if t.count() == count => Ok(t),
            other => Err(MpcError::Preprocessing {
                expected: format!("{count} random OTs"),
                found: other.map_or("empty pool".into(), |t| format!("{} random OTs", t.count())),
            }),
        }
    }

    /// Merges another pool's contents after this one's.
    pub fn extend(&mut self, other: Preprocessing) {
        self.masks.extend(other.masks);
        self.used_masks.extend(other.used_masks);
        self.matmul.extend(other.matmul);
        self.elementwise.extend(other.elementwise);
        self.and.extend(other.and);
        self.leaf.extend(other.leaf);
        self.rot.extend(other.rot);
    }

    /// Whether every queued triple has been consumed (masks are kept).
    pub fn is_drained(&self) -> bool {
        self.stream_is_done()
            && self.matmul.is_empty()
            && self.elementwise.is_empty()
            && self.and.is_empty()
            && self.leaf.is_empty()
            && self.rot.is_empty()
    }
}

/// Runs `f`, which blocks on a producer, without stalling a multi-threaded tokio runtime
/// (`block_in_place`); directly elsewhere.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn describe(lhs: &Lhs) -> String {
    match lhs {
        Lhs::Fresh { rows, inner } => format!("{rows}x{inner}"),
        Lhs::Mask {
            id,
            rows,
            transpose,
        } => format!(
            "mask#{id}[{} rows{}]",
            rows.len(),
            if *transpose { ", transposed" } else { "" }
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A recorder logs every kind of request in order and hands out zero material of the asked
    /// shapes (mask rows, transposed or not, against a mask it holds).
    #[test]
    fn a_recorder_logs_requests_and_hands_out_zeros() {
        let mut r = Preprocessing::recorder();
        r.insert_mask(1, Share::zeros(10, 4));
        let fresh = Lhs::Fresh { rows: 3, inner: 5 };
        let t = r.next_matmul(&fresh, 2).unwrap();
        assert_eq!(
            (t.u.unwrap().dim(), t.v.dim(), t.z.dim()),
            ((3, 5), (5, 2), (3, 2))
        );
        for (transpose, v, z) in [(false, (4, 1), (2, 1)), (true, (2, 1), (4, 1))] {
            let l = Lhs::Mask {
                id: 1,
                rows: vec![0, 9],
                transpose,
            };
            let t = r.next_matmul(&l, 1).unwrap();
            assert!(t.u.is_none() && t.v.dim() == v && t.z.dim() == z);
        }
        assert_eq!(r.next_elementwise((2, 2)).unwrap().c.dim(), (2, 2));
        assert_eq!(r.next_and(3).unwrap().c, vec![0; 3]);
        assert_eq!(r.next_leaf(5, 3).unwrap().table, vec![0; 40]);
        assert_eq!(r.next_rot(65).unwrap().choice, vec![0; 2]);
        let log = r.take_recorded();
        assert_eq!(log.len(), 7);
        assert_eq!(log[6], TripleRequest::Rot { count: 65 });
        assert_eq!(log[4], TripleRequest::And { words: 3 });
        assert_eq!(log[5], TripleRequest::LeafOt { count: 5, bits: 3 });
        assert!(r.is_drained() && Preprocessing::new().take_recorded().is_empty());
    }
}
