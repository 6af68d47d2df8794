//! Correlated randomness for the online phase: Beaver triples, matrix triples with reusable masks,
//! and boolean AND triples, behind the [`TripleSource`] trait.
//!
//! SecureML §IV (Fig. 4) masks the data matrix X once with a random U, opens E = X − U, and reuses
//! E in every epoch; each mini-batch product then needs only a fresh V and Z = U_B·V (forward) or
//! Z' = U_Bᵀ·V' (backward). [`TripleRequest::Mask`] registers such a U under a [`MaskId`] and
//! [`Lhs::Mask`] asks for products against rows of it.
//!
//! The online phase knows its whole schedule in advance, so a trainer lists its requests, a source
//! turns them into a [`Preprocessing`] pool in the offline phase, and the online phase pops from
//! it; a request that does not match what the online phase needs is an error, never a silent reuse.
//!
//! A mask U hides exactly one matrix: opening E = X − U and E' = X' − U would reveal
//! E − E' = X − X'. [`Preprocessing::claim_mask`] therefore marks a mask used the first time a
//! matrix is opened under it and refuses every later claim with [`MpcError::MaskReused`], so a
//! second opening fails before any byte is sent. Its share stays readable ([`Preprocessing::mask`])
//! for the mini-batch products against the one matrix it masks.
//!
//! Sources: [`dealer`] (a trusted third party; also the client-aided mode of SecureML §V). The
//! two-server OT offline phase implements the same trait.

pub mod dealer;

use crate::error::{MpcError, Result};
use crate::share::Share;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;

/// Identifier of a reusable mask.
pub type MaskId = u32;

/// The left factor of a matrix triple.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lhs {
    /// A fresh random `rows × inner` matrix U.
    Fresh {
        /// Rows of U.
        rows: usize,
        /// Columns of U (the inner dimension of the product).
        inner: usize,
    },
    /// The rows `rows` of the registered mask `id`, transposed if `transpose` (then the product is
    /// `U[rows]ᵀ · V` and the inner dimension is `rows.len()`).
    Mask {
        /// The mask.
        id: MaskId,
        /// Selected rows of the mask (a mini-batch).
        rows: Vec<usize>,
        /// Whether the selected block is transposed.
        transpose: bool,
    },
}

/// One item of preprocessing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TripleRequest {
    /// A reusable random mask U (`rows × cols`).
    Mask {
        /// Its identifier (unique per session).
        id: MaskId,
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// A matrix triple Z = L · V with V fresh (`inner × cols`).
    Matmul {
        /// The left factor.
        lhs: Lhs,
        /// Columns of V and Z.
        cols: usize,
    },
    /// An elementwise triple c = a ⊙ b of shape `rows × cols`.
    Elementwise {
        /// Rows.
        rows: usize,
        /// Columns.
        cols: usize,
    },
    /// `words` 64-bit words of bit-sliced AND triples c = a ∧ b (XOR shares).
    And {
        /// Number of 64-bit words.
        words: usize,
    },
}

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

/// Elementwise-triple entries (values) a request list asks for.
pub fn elementwise_entries(reqs: &[TripleRequest]) -> u64 {
    reqs.iter()
        .map(|r| match r {
            TripleRequest::Elementwise { rows, cols } => (rows * cols) as u64,
            _ => 0,
        })
        .sum()
}

/// The shape of V for a request: (inner, cols).
pub fn v_shape(
    lhs: &Lhs,
    cols: usize,
    mask_cols: impl Fn(MaskId) -> Result<usize>,
) -> Result<(usize, usize)> {
    Ok(match lhs {
        Lhs::Fresh { inner, .. } => (*inner, cols),
        Lhs::Mask {
            id,
            rows,
            transpose,
        } => {
            if *transpose {
                (rows.len(), cols)
            } else {
                (mask_cols(*id)?, cols)
            }
        }
    })
}

/// Something that turns a list of requests into this party's [`Preprocessing`].
///
/// Both parties must call [`TripleSource::generate`] with the same requests in the same order.
pub trait TripleSource: Send {
    /// Generates the material for `requests`.
    fn generate(
        &mut self,
        requests: &[TripleRequest],
    ) -> impl Future<Output = Result<Preprocessing>> + Send;

    /// The trust assumption this source adds, for reports (e.g. "trusted dealer").
    fn trust_note(&self) -> &'static str;
}

/// One request of every kind (fresh, mask rows, mask rows transposed, elementwise, AND), for the
/// tests of every triple source.
#[cfg(test)]
pub(crate) fn sample_requests() -> Vec<TripleRequest> {
    vec![
        TripleRequest::Mask {
            id: 1,
            rows: 10,
            cols: 4,
        },
        TripleRequest::Matmul {
            lhs: Lhs::Fresh { rows: 3, inner: 5 },
            cols: 2,
        },
        TripleRequest::Matmul {
            lhs: Lhs::Mask {
                id: 1,
                rows: vec![0, 7, 3],
                transpose: false,
            },
            cols: 1,
        },
        TripleRequest::Matmul {
            lhs: Lhs::Mask {
                id: 1,
                rows: vec![9, 2],
                transpose: true,
            },
            cols: 3,
        },
        TripleRequest::Elementwise { rows: 4, cols: 4 },
        TripleRequest::And { words: 5 },
    ]
}

/// Checks a pair of pools made for [`sample_requests`]: every item reconstructs correctly (fresh,
/// mask rows, mask rows transposed, elementwise, AND), the pools drain, and further use is refused.
#[cfg(test)]
pub(crate) fn check_sample_pool(p0: &mut Preprocessing, p1: &mut Preprocessing) {
    use crate::ring;
    use crate::share::reconstruct;
    let u = reconstruct(p0.mask(1).unwrap(), p1.mask(1).unwrap());
    assert_eq!(u.dim(), (10, 4));
    let l = Lhs::Fresh { rows: 3, inner: 5 };
    let (t0, t1) = (
        p0.next_matmul(&l, 2).unwrap(),
        p1.next_matmul(&l, 2).unwrap(),
    );
    assert_eq!((t0.v.dim(), t0.z.dim()), ((5, 2), (3, 2)));
    let uu = reconstruct(t0.u.as_ref().unwrap(), t1.u.as_ref().unwrap());
    let v = reconstruct(&t0.v, &t1.v);
    assert_eq!(
        reconstruct(&t0.z, &t1.z),
        ring::matmul(&uu.view(), &v.view())
    );
    for (rows, t, cols) in [(vec![0, 7, 3], false, 1), (vec![9, 2], true, 3)] {
        let l = Lhs::Mask {
            id: 1,
            rows: rows.clone(),
            transpose: t,
        };
        let (t0, t1) = (
            p0.next_matmul(&l, cols).unwrap(),
            p1.next_matmul(&l, cols).unwrap(),
        );
        assert!(t0.u.is_none() && t1.u.is_none());
        let ub = ring::select_rows(&u.view(), &rows);
        let ub = if t { ub.t().to_owned() } else { ub };
        let v = reconstruct(&t0.v, &t1.v);
        assert_eq!(v.dim(), (ub.ncols(), cols));
        assert_eq!(
            reconstruct(&t0.z, &t1.z),
            ring::matmul(&ub.view(), &v.view())
        );
    }
    let (e0, e1) = (
        p0.next_elementwise((4, 4)).unwrap(),
        p1.next_elementwise((4, 4)).unwrap(),
    );
    let a = reconstruct(&e0.a, &e1.a);
    let b = reconstruct(&e0.b, &e1.b);
    assert_eq!(
        reconstruct(&e0.c, &e1.c),
        ring::hadamard(&a.view(), &b.view())
    );
    let (a0, a1) = (p0.next_and(5).unwrap(), p1.next_and(5).unwrap());
    for i in 0..5 {
        assert_eq!((a0.a[i] ^ a1.a[i]) & (a0.b[i] ^ a1.b[i]), a0.c[i] ^ a1.c[i]);
    }
    assert!(p0.is_drained() && p1.is_drained());
    assert!(p0.next_elementwise((4, 4)).is_err());
}
