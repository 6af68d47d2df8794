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
//! matrix is opened under it and refuses every later claim with [`MpcError::MaskReused`](crate::MpcError::MaskReused), so a
//! second opening fails before any byte is sent. Its share stays readable ([`Preprocessing::mask`])
//! for the mini-batch products against the one matrix it masks.
//!
//! Sources, all behind the one trait [`TripleSource`] (requests in [`request`]):
//!
//! * [`dealer`]: a trusted third party; [`client_aided`] is the same dealer run by the data owner
//!   (SecureML §V);
//! * [`ot`]: the two servers alone, by oblivious transfer ([`OtSource`]);
//! * [`he`]: the two servers alone, matrix cross terms by RLWE encryption ([`HeSource`]).
//!
//! The protocol engines they run (base OT, IKNP extension, Gilboa products, the RLWE scheme and
//! its flooding) live in [`crate::offline`].

pub mod choice;
pub mod client_aided;
pub mod dealer;
pub mod he;
pub mod ot;
pub mod pool;
pub mod request;
#[cfg(test)]
pub(crate) mod testing;

pub use client_aided::{client_aided_in_process, ClientAided};
pub use he::{HeSource, HE_TRUST_NOTE};
pub use ot::{OtSource, Progress};
pub use pool::{AndTriples, ElemTriple, LeafOts, MatmulTriple, Preprocessing, RandomOts};
pub use request::{
    check_leaf_bits, elementwise_entries, v_shape, Lhs, MaskId, TripleRequest, MAX_LEAF_BITS,
};
#[cfg(test)]
pub(crate) use testing::{check_sample_pool, sample_requests};

use crate::error::Result;
use std::future::Future;

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
