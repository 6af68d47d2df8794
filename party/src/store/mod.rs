//! The dataset and model store of one party: a manifest (TOML) and a share file per entry,
//! written crash-safely (temporary file, `fsync`, `rename`, directory `fsync`), with the states of
//! two-phase commit between the parties.
//!
//! Layout under the data directory: `entries/<id>.share` (the share bytes: a 32-byte seed or a
//! row-major little-endian `u64` matrix), `entries/<id>.toml` (the [`Manifest`]). The manifest is
//! written last, so an entry exists exactly when its manifest does; [`Store::open`] deletes
//! temporary files and share files without a manifest, and checks every share against the
//! SHA-256 digest in its manifest (a mismatching entry is deleted and logged).
//!
//! States ([`State`]): an upload lands as `Prepared` on both parties; P0 (the coordinator) writes
//! `Decided` before telling P1 to commit, and `Committed` once P1 acknowledged; P1 goes from
//! `Prepared` to `Committed`. Only `Committed` entries are visible to jobs and listings.

use crate::proto::{EntryId, EntryInfo, ShareForm};
use mpc::share::Seed;
use mpc::Share;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file operation failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was attempted.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A manifest could not be parsed.
    #[error("manifest {path}: {reason}")]
    BadManifest {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// No entry with this id.
    #[error("no entry {id}")]
    NotFound {
        /// The id.
        id: EntryId,
    },
    /// Share bytes do not match the declared shape or digest.
    #[error("share of entry {id}: {reason}")]
    BadShare {
        /// The entry.
        id: EntryId,
        /// What is wrong.
        reason: String,
    },
    /// An entry with this id or name exists already.
    #[error("entry {what} exists already")]
    Exists {
        /// The id or name.
        what: String,
    },
}

/// Result of store operations.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Two-phase-commit state of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Stored, not yet committed.
    Prepared,
    /// P0 only: decided to commit, P1's acknowledgement pending.
    Decided,
    /// Visible to jobs.
    Committed,
}

/// What an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// An uploaded dataset (features and label in one matrix).
    Dataset,
    /// A trained model's weights.
    Model,
}

/// The manifest of one stored share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Identifier (the same on both parties).
    pub id: EntryId,
    /// Dataset or model.
    pub kind: EntryKind,
    /// Name, unique per owner among committed entries of a kind.
    pub name: String,
    /// The owning client (its name in the configuration).
    pub owner: String,
    /// Rows of the matrix.
    pub rows: u64,
    /// Columns of the matrix.
    pub cols: u64,
    /// Column holding the label (datasets).
    pub label_column: u64,
    /// Fixed-point fractional bits.
    pub frac_bits: u32,
    /// Seed or matrix.
    pub form: ShareForm,
    /// SHA-256 of the share file, hex.
    pub sha256: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
    /// Commit state.
    pub state: State,
}

impl Manifest {
    /// The listing of this entry.
    pub fn info(&self) -> EntryInfo {
        EntryInfo {
            id: self.id,
            name: self.name.clone(),
            rows: self.rows,
            cols: self.cols,
            created: self.created,
        }
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// SHA-256 of bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// The bytes a matrix share is stored as.
pub fn matrix_bytes(s: &Share) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.view().len() * 8);
    for w in s.view().iter() {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out
}

fn parse_manifest(bytes: &[u8]) -> std::result::Result<Manifest, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    toml::from_str(text).map_err(|e| e.to_string())
}

/// One party's store.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    // Serializes state changes (name uniqueness checks and manifest rewrites).
    lock: Mutex<()>,
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, directory fsync.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(bytes).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(io("rename", &tmp))?;
    sync_dir(path.parent().expect("entry files live in a directory"))
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("fsync directory", dir))
}

impl Store {
    /// Opens (creating) the store under `data_dir`, cleaning up after a crash: temporary files
    /// and share files without a manifest are deleted, entries whose share does not match its
    /// manifest are deleted. Prepared entries are kept for the server's recovery with the peer.
    ///
    /// # Errors
    /// File errors naming the path.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let dir = data_dir.join("entries");
        fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
        let store = Self {
            dir,
            lock: Mutex::new(()),
        };
        store.clean()?;
        Ok(store)
    }

    fn clean(&self) -> Result<()> {
        let mut manifests = std::collections::HashSet::new();
        let mut shares = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io("read directory", &self.dir))? {
            let p = e.map_err(io("read directory", &self.dir))?.path();
            match p.extension().and_then(|x| x.to_str()) {
                Some("toml") => {
                    manifests.insert(p.with_extension(""));
                }
                Some("share") => shares.push(p),
                _ => {
                    tracing::info!("recovery: deleting partial file {}", p.display());
                    fs::remove_file(&p).map_err(io("remove", &p))?;
                }
            }
        }
        for s in shares {
            if !manifests.contains(&s.with_extension("")) {
                tracing::info!("recovery: deleting share without manifest {}", s.display());
                fs::remove_file(&s).map_err(io("remove", &s))?;
            }
        }
        for m in self.all()? {
            let p = self.share_path(&m.id);
            let ok = fs::read(&p)
                .map(|b| hex::encode(sha256(&b)) == m.sha256)
                .unwrap_or(false);
            if !ok {
                tracing::warn!(
                    "recovery: entry {} ({}) has a missing or corrupt share; deleting it",
                    m.id,
                    m.name
                );
                self.remove(&m.id)?;
            }
        }
        sync_dir(&self.dir)
    }

    fn manifest_path(&self, id: &EntryId) -> PathBuf {
        self.dir.join(format!("{id}.toml"))
    }

    fn share_path(&self, id: &EntryId) -> PathBuf {
        self.dir.join(format!("{id}.share"))
    }

    /// Stores a new entry in state `m.state` after checking the bytes against the manifest
    /// (length for its form and shape, SHA-256). The name must not be taken by a committed (or
    /// decided) entry of the same owner and kind; prepared entries do not reserve names (an
    /// abandoned upload must not block a retry), so P0 checks again before deciding to commit.
    ///
    /// # Errors
    /// [`StoreError::BadShare`], [`StoreError::Exists`], file errors.
    pub fn put(&self, m: &Manifest, share: &[u8]) -> Result<()> {
        let want = match m.form {
            ShareForm::Seed => 32,
            ShareForm::Matrix => m.rows.saturating_mul(m.cols).saturating_mul(8),
        };
        if share.len() as u64 != want {
            return Err(StoreError::BadShare {
                id: m.id,
                reason: format!("{} bytes, expected {want}", share.len()),
            });
        }
        if hex::encode(sha256(share)) != m.sha256 {
            return Err(StoreError::BadShare {
                id: m.id,
                reason: "SHA-256 digest does not match the manifest".into(),
            });
        }
        let _g = self.lock.lock().expect("store lock");
        if self.manifest_path(&m.id).exists() {
            return Err(StoreError::Exists {
                what: m.id.to_string(),
            });
        }
        if self.all()?.iter().any(|o| {
            o.kind == m.kind && o.owner == m.owner && o.name == m.name && o.state != State::Prepared
        }) {
            return Err(StoreError::Exists {
                what: format!("{:?} {:?} of {:?}", m.kind, m.name, m.owner),
            });
        }
        write_atomic(&self.share_path(&m.id), share)?;
        self.write_manifest(m)
    }

    fn write_manifest(&self, m: &Manifest) -> Result<()> {
        let text = toml::to_string_pretty(m).expect("manifests serialize");
        write_atomic(&self.manifest_path(&m.id), text.as_bytes())
    }

    /// Changes the state of an entry (durably).
    ///
    /// # Errors
    /// [`StoreError::NotFound`], file errors.
    pub fn set_state(&self, id: &EntryId, state: State) -> Result<Manifest> {
        let _g = self.lock.lock().expect("store lock");
        let mut m = self.get(id)?;
        if m.state != state {
            m.state = state;
            self.write_manifest(&m)?;
        }
        Ok(m)
    }

    /// Deletes an entry (manifest first, so a crash leaves an orphan share that `open` removes).
    ///
    /// # Errors
    /// File errors.
    pub fn remove(&self, id: &EntryId) -> Result<()> {
        for p in [self.manifest_path(id), self.share_path(id)] {
            match fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("remove", &p)(e)),
            }
        }
        sync_dir(&self.dir)
    }

    /// The manifest of an entry.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], [`StoreError::BadManifest`].
    pub fn get(&self, id: &EntryId) -> Result<Manifest> {
        let p = self.manifest_path(id);
        let bytes = match fs::read(&p) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound { id: *id })
            }
            Err(e) => return Err(io("read", &p)(e)),
        };
        parse_manifest(&bytes).map_err(|reason| StoreError::BadManifest { path: p, reason })
    }

    /// Every manifest, in any state.
    ///
    /// # Errors
    /// File and manifest errors.
    pub fn all(&self) -> Result<Vec<Manifest>> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir).map_err(io("read directory", &self.dir))? {
            let p = e.map_err(io("read directory", &self.dir))?.path();
            if p.extension().and_then(|x| x.to_str()) == Some("toml") {
                let bytes = fs::read(&p).map_err(io("read", &p))?;
                out.push(
                    parse_manifest(&bytes).map_err(|reason| StoreError::BadManifest {
                        path: p.clone(),
                        reason,
                    })?,
                );
            }
        }
        out.sort_by_key(|m: &Manifest| (m.created, m.id));
        Ok(out)
    }

    /// The committed entry of `kind` named `name` owned by `owner`, if any.
    ///
    /// # Errors
    /// File and manifest errors.
    pub fn find_committed(
        &self,
        kind: EntryKind,
        owner: &str,
        name: &str,
    ) -> Result<Option<Manifest>> {
        Ok(self.all()?.into_iter().find(|m| {
            m.kind == kind && m.state == State::Committed && m.owner == owner && m.name == name
        }))
    }

    /// The committed entries of `owner`.
    ///
    /// # Errors
    /// File and manifest errors.
    pub fn list(&self, owner: &str) -> Result<Vec<Manifest>> {
        Ok(self
            .all()?
            .into_iter()
            .filter(|m| m.owner == owner && m.state == State::Committed)
            .collect())
    }

    /// The raw share bytes of an entry, checked against its digest.
    ///
    /// # Errors
    /// [`StoreError::BadShare`], file errors.
    pub fn read_bytes(&self, m: &Manifest) -> Result<Vec<u8>> {
        let p = self.share_path(&m.id);
        let b = fs::read(&p).map_err(io("read", &p))?;
        if hex::encode(sha256(&b)) != m.sha256 {
            return Err(StoreError::BadShare {
                id: m.id,
                reason: "SHA-256 digest does not match the manifest".into(),
            });
        }
        Ok(b)
    }

    /// The share of an entry as a matrix (a seed is expanded).
    ///
    /// # Errors
    /// As [`Store::read_bytes`].
    pub fn load_share(&self, m: &Manifest) -> Result<Share> {
        let b = self.read_bytes(m)?;
        let (rows, cols) = (m.rows as usize, m.cols as usize);
        match m.form {
            ShareForm::Seed => {
                let mut s = [0u8; 32];
                s.copy_from_slice(&b);
                let seed = Seed(s);
                zeroize::Zeroize::zeroize(&mut s);
                Ok(seed.expand(rows, cols))
            }
            ShareForm::Matrix => {
                let words: Vec<u64> = b
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
                    .collect();
                let a = ndarray::Array2::from_shape_vec((rows, cols), words).map_err(|e| {
                    StoreError::BadShare {
                        id: m.id,
                        reason: e.to_string(),
                    }
                })?;
                Ok(Share::from_ring(a))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(id: EntryId, name: &str, bytes: &[u8], form: ShareForm, rows: u64) -> Manifest {
        Manifest {
            id,
            kind: EntryKind::Dataset,
            name: name.into(),
            owner: "alice".into(),
            rows,
            cols: 2,
            label_column: 1,
            frac_bits: 16,
            form,
            sha256: hex::encode(sha256(bytes)),
            created: now(),
            state: State::Prepared,
        }
    }

    #[test]
    fn put_commit_list_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let share = Share::from_ring(ndarray::array![[1u64, 2], [3, 4]]);
        let bytes = matrix_bytes(&share);
        let id = EntryId::random();
        s.put(&manifest(id, "d", &bytes, ShareForm::Matrix, 2), &bytes)
            .unwrap();
        assert!(s.list("alice").unwrap().is_empty(), "prepared is invisible");
        s.set_state(&id, State::Committed).unwrap();
        assert_eq!(s.list("alice").unwrap().len(), 1);
        assert!(s.list("bob").unwrap().is_empty());
        drop(s);
        let s = Store::open(dir.path()).unwrap();
        let m = s
            .find_committed(EntryKind::Dataset, "alice", "d")
            .unwrap()
            .unwrap();
        assert_eq!(s.load_share(&m).unwrap().view(), share.view());
        // Same name again is refused.
        let id2 = EntryId::random();
        assert!(matches!(
            s.put(&manifest(id2, "d", &bytes, ShareForm::Matrix, 2), &bytes),
            Err(StoreError::Exists { .. })
        ));
    }

    #[test]
    fn seeds_expand_to_the_share() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let seed = [5u8; 32];
        let id = EntryId::random();
        s.put(&manifest(id, "d", &seed, ShareForm::Seed, 3), &seed)
            .unwrap();
        let m = s.get(&id).unwrap();
        assert_eq!(
            s.load_share(&m).unwrap().view(),
            Seed(seed).expand(3, 2).view()
        );
    }

    #[test]
    fn bad_bytes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let bytes = vec![0u8; 32];
        let mut m = manifest(EntryId::random(), "d", &bytes, ShareForm::Matrix, 2);
        assert!(matches!(
            s.put(&m, &bytes[..31]),
            Err(StoreError::BadShare { .. })
        ));
        m.sha256 = hex::encode([0u8; 32]);
        assert!(matches!(
            s.put(&m, &bytes),
            Err(StoreError::BadShare { .. })
        ));
    }

    #[test]
    fn open_cleans_partial_and_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let bytes = vec![1u8; 32];
        let id = EntryId::random();
        s.put(&manifest(id, "d", &bytes, ShareForm::Matrix, 2), &bytes)
            .unwrap();
        let good = EntryId::random();
        s.put(&manifest(good, "e", &bytes, ShareForm::Matrix, 2), &bytes)
            .unwrap();
        drop(s);
        let e = dir.path().join("entries");
        fs::write(e.join("x.share.tmp"), b"partial").unwrap();
        fs::write(e.join(format!("{}.share", EntryId::random())), b"orphan").unwrap();
        fs::write(e.join(format!("{id}.share")), vec![2u8; 32]).unwrap();
        let s = Store::open(dir.path()).unwrap();
        let left: Vec<_> = fs::read_dir(&e)
            .unwrap()
            .map(|x| x.unwrap().path())
            .collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(matches!(s.get(&id), Err(StoreError::NotFound { .. })));
        assert!(s.get(&good).is_ok());
    }
}
