//! [`EntryId`]: the identifier of a stored dataset or model, shared by the wire protocol
//! ([`crate::proto`]) and the inference messages ([`crate::infer::msg`]) without either importing
//! the other.

use serde::{Deserialize, Serialize};

/// A dataset or model identifier: 16 random bytes chosen by the uploading client (or by P0 for
/// a job), printed as 32 hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
pub struct EntryId(pub [u8; 16]);

impl EntryId {
    /// A fresh random identifier from the OS generator.
    pub fn random() -> Self {
        use rand::RngCore;
        let mut b = [0u8; 16];
        mpc::share::os_rng().fill_bytes(&mut b);
        Self(b)
    }

    /// Parses 32 hex digits.
    pub fn parse(s: &str) -> Option<Self> {
        let v = hex::decode(s).ok()?;
        Some(Self(v.try_into().ok()?))
    }
}

impl std::fmt::Display for EntryId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}
