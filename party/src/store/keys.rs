//! The row key tags of a keyed dataset (vertical partitioning), stored beside its share as
//! `entries/<id>.keys`: one 32-byte tag per row, in row order, whose SHA-256 the manifest holds
//! ([`super::Manifest::keys`]). Written crash-safely before the manifest (an orphan tag file is
//! deleted by [`super::Store::open`]) and removed with the entry.
//!
//! Security model: tags are HMACs under a secret the owners share and the parties never see
//! ([`crate::rowkeys`]); a party storing them learns which rows of two lists carry the same key,
//! nothing about the keys.

use super::{io, sha256, write_atomic, Manifest, Result, Store, StoreError};
use crate::proto::{EntryId, KEY_TAG_BYTES};
use std::fs;
use std::path::PathBuf;

impl Store {
    pub(super) fn keys_path(&self, id: &EntryId) -> PathBuf {
        self.dir.join(format!("{id}.keys"))
    }

    /// Stores the key tags of entry `id` (before its manifest is written), checking their
    /// length against `rows`; returns their SHA-256 in hex for the manifest.
    ///
    /// # Errors
    /// [`StoreError::BadShare`] for a wrong length, [`StoreError::Exists`], file errors.
    pub fn write_keys(&self, id: &EntryId, rows: u64, tags: &[u8]) -> Result<String> {
        if tags.len() as u64 != rows.saturating_mul(KEY_TAG_BYTES as u64) {
            return Err(StoreError::BadShare {
                id: *id,
                reason: format!("{} bytes of row keys for {rows} rows", tags.len()),
            });
        }
        if self.manifest_path(id).exists() {
            return Err(StoreError::Exists {
                what: id.to_string(),
            });
        }
        write_atomic(&self.keys_path(id), tags)?;
        Ok(hex::encode(sha256(tags)))
    }

    /// The key tags of a keyed entry, checked against the manifest's digest; `None` for an
    /// entry uploaded without keys.
    ///
    /// # Errors
    /// [`StoreError::BadShare`] when the file does not match, file errors.
    pub fn read_keys(&self, m: &Manifest) -> Result<Option<Vec<u8>>> {
        let Some(want) = &m.keys else {
            return Ok(None);
        };
        let p = self.keys_path(&m.id);
        let b = fs::read(&p).map_err(io("read", &p))?;
        if &hex::encode(sha256(&b)) != want
            || b.len() as u64 != m.rows.saturating_mul(KEY_TAG_BYTES as u64)
        {
            return Err(StoreError::BadShare {
                id: m.id,
                reason: "row keys do not match the manifest".into(),
            });
        }
        Ok(Some(b))
    }

    /// Whether an entry's key tags (if it has any) are present and match its manifest.
    pub(super) fn keys_intact(&self, m: &Manifest) -> bool {
        m.keys.is_none() || self.read_keys(m).is_ok()
    }

    /// Drops the key tags written for an entry whose manifest was not written.
    pub fn discard_keys(&self, id: &EntryId) {
        if !self.manifest_path(id).exists() {
            let _ = fs::remove_file(self.keys_path(id));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ShareForm;
    use crate::store::{EntryKind, State};

    fn keyed(id: EntryId, share: &[u8], keys: Option<String>) -> Manifest {
        Manifest {
            id,
            kind: EntryKind::Dataset,
            name: "bank".into(),
            owner: "alice".into(),
            rows: 2,
            cols: 2,
            label_column: 2,
            frac_bits: mpc::FracBits::new(16).unwrap(),
            form: ShareForm::Seed,
            sha256: hex::encode(sha256(share)),
            created: 1,
            state: State::Committed,
            appenders: vec![],
            supersedes: None,
            appended: vec![],
            tensor: None,
            model: None,
            keys,
            standardization: None,
        }
    }

    #[test]
    fn keys_round_trip_and_a_corrupt_or_orphan_file_is_cleaned_up() {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path()).unwrap();
        let (id, share, tags) = (EntryId::random(), [5u8; 32], [9u8; 64]);
        assert!(s.write_keys(&id, 3, &tags).is_err(), "3 rows need 96 bytes");
        let digest = s.write_keys(&id, 2, &tags).unwrap();
        let m = keyed(id, &share, Some(digest));
        s.put(&m, &share).unwrap();
        assert_eq!(s.read_keys(&m).unwrap().unwrap(), tags.to_vec());
        // An orphan tag file (no manifest) is deleted when the store opens.
        let orphan = EntryId::random();
        s.write_keys(&orphan, 2, &tags).unwrap();
        // A corrupt tag file deletes its entry.
        fs::write(s.keys_path(&id), [1u8; 64]).unwrap();
        let s = Store::open(d.path()).unwrap();
        assert!(!s.keys_path(&orphan).exists());
        assert!(s.get(&id).is_err(), "the entry with corrupt keys is gone");
        assert!(!s.keys_path(&id).exists());
    }
}
