//! Wire types of vertical partitioning: row keys sent with an upload ([`RowKeys`]) and the
//! join of two owners' column uploads into one shared table ([`JoinSpec`]).
//!
//! Security model (semi-honest, non-colluding parties; see SECURITY.md, "Joining two owners'
//! columns"): the owners agree beforehand on the rows (the same individuals, in the same order)
//! and on a secret key shared by the owners only. Each owner sends the parties one tag per row,
//! `HMAC-SHA256(secret, "dyad-row-key/1" ‖ key)` ([`crate::rowkeys`]): the parties compare tags
//! position by position, so they learn the row count and whether (and at which first row) the
//! two lists differ, never a key; without the secret a tag cannot be recomputed from a guessed
//! key, so low-entropy keys (national ids, phone numbers) are not brute-forceable by a party.

use super::{DatasetRef, EntryId};
use serde::{Deserialize, Serialize};

/// An upload's row keys: one 32-byte tag per row follows the share bytes as raw frames
/// (`rows × 32` bytes, at most [`super::UPLOAD_CHUNK`] a frame).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowKeys {
    /// SHA-256 of the tag bytes that follow the share.
    pub digest: [u8; 32],
    /// Whether the upload holds a label column. An owner contributing features only (the
    /// other owner holds the label) sends `false` and the header's `label_column` equal to its
    /// `cols` (no column); such a dataset can be joined but not trained on by itself.
    pub labelled: bool,
}

/// Bytes of one row key tag.
pub const KEY_TAG_BYTES: usize = 32;

/// A join of two keyed datasets into a new shared table, as each owner consents to it at each
/// party (`ClientRequest::JoinConsent`). Every field binds the consent: a party runs the join
/// only for a spec both owners consented to at that party, exactly, once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinSpec {
    /// A fresh random identifier chosen by the proposing owner; the joined dataset's entry id.
    pub join: EntryId,
    /// The dataset whose columns come first.
    pub left: DatasetRef,
    /// The dataset whose columns follow.
    pub right: DatasetRef,
    /// The joined dataset's name.
    pub name: String,
    /// The client who owns the joined dataset (and so trains on it and owns its models).
    pub owner: String,
}

impl JoinSpec {
    /// The clients whose consent the join needs: the owners of the two datasets (one client
    /// when it owns both).
    pub fn owners(&self) -> Vec<&str> {
        let mut v = vec![self.left.owner.as_str(), self.right.owner.as_str()];
        v.dedup();
        v
    }
}
