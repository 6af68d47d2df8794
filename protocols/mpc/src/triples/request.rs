//! What a triple source is asked for: [`TripleRequest`]s (masks, matrix, elementwise and AND
//! triples, random OTs) with the left factor [`Lhs`] of a matrix triple, and the shape arithmetic every
//! source shares.

use crate::error::Result;
use serde::{Deserialize, Serialize};

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
    /// `count` random 1-out-of-2^`bits` OTs with 2-bit messages in each direction
    /// ([`super::LeafOts`]): each party is the sender of `count` and the receiver of `count`.
    /// `bits` is 1 to [`MAX_LEAF_BITS`].
    LeafOt {
        /// Instances per direction.
        count: usize,
        /// log2 of the number of messages per instance.
        bits: u8,
    },
    /// `count` random 1-out-of-2 OTs with 64-bit messages in each direction
    /// ([`super::RandomOts`], the correlations of [`crate::nonlinear`]'s OT multiplexer): each
    /// party is the sender of `count` and the receiver of `count`.
    Rot {
        /// Instances per direction.
        count: usize,
    },
}

/// Largest `bits` of a [`TripleRequest::LeafOt`]: a sender's 2^(bits−1) two-bit slots per key
/// must fit one 64-bit random-OT message ([`crate::offline::leaf`]).
pub const MAX_LEAF_BITS: u8 = 6;

/// Checks the `bits` of a [`TripleRequest::LeafOt`].
pub fn check_leaf_bits(bits: u8) -> Result<()> {
    if (1..=MAX_LEAF_BITS).contains(&bits) {
        return Ok(());
    }
    Err(crate::error::MpcError::Preprocessing {
        expected: format!("leaf OT bits between 1 and {MAX_LEAF_BITS}"),
        found: format!("bits = {bits}"),
    })
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
