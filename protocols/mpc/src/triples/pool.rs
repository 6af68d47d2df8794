//! [`Preprocessing`]: one party's pool of triples, consumed in order by the online phase, with
//! the shares it holds ([`MatmulTriple`], [`ElemTriple`], [`AndTriples`]) and the one-matrix-per-
//! mask rule ([`Preprocessing::claim_mask`]).

use super::source::{Lhs, MaskId};
use crate::error::{MpcError, Result};
use crate::share::Share;
use std::collections::{HashMap, HashSet, VecDeque};

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

/// One party's pool of preprocessed material, consumed in order by the online phase.
#[derive(Debug, Default)]
pub struct Preprocessing {
    masks: HashMap<MaskId, Share>,
    used_masks: HashSet<MaskId>,
    matmul: VecDeque<(Lhs, usize, MatmulTriple)>,
    elementwise: VecDeque<ElemTriple>,
    and: VecDeque<AndTriples>,
}

impl Preprocessing {
    /// An empty pool.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a mask share.
    pub fn insert_mask(&mut self, id: MaskId, u: Share) {
        self.masks.insert(id, u);
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

    /// This party's share of mask `id`.
    pub fn mask(&self, id: MaskId) -> Result<&Share> {
        self.masks.get(&id).ok_or_else(|| MpcError::Preprocessing {
            expected: format!("mask #{id}"),
            found: "no such mask".into(),
        })
    }

    /// This party's share of mask `id` for masking one matrix: marks the mask used, and refuses
    /// ([`MpcError::MaskReused`]) a mask claimed before.
    pub fn claim_mask(&mut self, id: MaskId) -> Result<Share> {
        let u = self.mask(id)?.clone();
        if !self.used_masks.insert(id) {
            return Err(MpcError::MaskReused { id });
        }
        Ok(u)
    }

    /// Takes the next matrix triple, which must have been made for exactly `(lhs, cols)`.
    pub fn next_matmul(&mut self, lhs: &Lhs, cols: usize) -> Result<MatmulTriple> {
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
        match self.and.pop_front() {
            Some(t) if t.a.len() == words => Ok(t),
            other => Err(MpcError::Preprocessing {
                expected: format!("{words} words of AND triples"),
                found: other.map_or("empty pool".into(), |t| format!("{} words", t.a.len())),
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
    }

    /// Whether every queued triple has been consumed (masks are kept).
    pub fn is_drained(&self) -> bool {
        self.matmul.is_empty() && self.elementwise.is_empty() && self.and.is_empty()
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
