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
//!
//! Uploads are streamed to `entries/<id>.share.part` through a [`ShareWriter`] (hashing as they
//! go, memory bounded by one frame) and renamed into place only when complete; a writer dropped
//! before [`Store::finish`] deletes its partial file, and [`Store::open`] deletes any left by a
//! crash.
//!
//! Versions (horizontal partitioning): appending rows to a dataset makes a new immutable entry
//! holding the old rows followed by the new ones, whose [`Manifest::supersedes`] names the
//! version it replaces. Committing it ([`Store::commit`]) removes the superseded version; a
//! crash between the two steps is finished by [`Store::open`], and lookups by name always return
//! the newest committed version, so a name never resolves to two datasets.

pub mod keys;
pub mod tensor;

mod standardization;
use crate::proto::{EntryId, EntryInfo, ShareForm};
use mpc::share::Seed;
use mpc::Share;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
pub use standardization::Standardization;
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
    /// A decision to commit would make a name resolve to two datasets, or the dataset an
    /// append extends is no longer the current version.
    #[error("cannot commit {id}: {reason}")]
    Conflict {
        /// The entry that was to be committed.
        id: EntryId,
        /// What changed.
        reason: String,
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
    /// Fixed-point fractional bits (validated when the manifest is read; an integer in the file).
    pub frac_bits: mpc::FracBits,
    /// Seed or matrix.
    pub form: ShareForm,
    /// SHA-256 of the share file, hex.
    pub sha256: String,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
    /// Commit state.
    pub state: State,
    /// Clients (by their configured names) the owner allows to append rows to this dataset.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub appenders: Vec<String>,
    /// The version of the dataset this entry replaces (it holds that version's rows first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<EntryId>,
    /// Rows appended by clients after the owner's upload, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub appended: Vec<AppendedPart>,
    /// Skeleton datasets: the tensor each row flattens and the skeleton graph it lives on
    /// (absent for tables).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor: Option<crate::proto::TensorMeta>,
    /// Models other than the single-matrix ones (linear models, MLPs): the format their share
    /// column follows (absent for those).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<crate::proto::ModelMeta>,
    /// Keyed datasets (vertical partitioning): SHA-256 (hex) of the row key tags stored beside
    /// the share (`<id>.keys`, see [`keys`]); absent for other entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keys: Option<String>,
    /// A standardized dataset version (`party standardize`), or a model trained on one: this
    /// party's shares of the statistics (absent for raw data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standardization: Option<Standardization>,
}

/// Rows a client appended to a dataset (recorded in every later version's manifest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendedPart {
    /// The appending client.
    pub client: String,
    /// Number of rows appended.
    pub rows: u64,
}

impl Manifest {
    /// The client that uploaded this entry's newest rows: the last appender of an appended
    /// version, the owner otherwise. Only this client may commit the entry.
    pub fn uploader(&self) -> &str {
        match (&self.supersedes, self.appended.last()) {
            (Some(_), Some(p)) => &p.client,
            _ => &self.owner,
        }
    }

    /// The listing of this entry.
    pub fn info(&self) -> EntryInfo {
        EntryInfo {
            id: self.id,
            name: self.name.clone(),
            rows: self.rows,
            cols: self.cols,
            created: self.created,
            tensor_dims: self.tensor.as_ref().map(|t| t.dims),
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

/// Parses a manifest and checks what its fields say together: a skeleton dataset's tensor
/// must fit its columns and label column ([`tensor::check`]).
pub(crate) fn parse_manifest(bytes: &[u8]) -> std::result::Result<Manifest, String> {
    let text = std::str::from_utf8(bytes).map_err(|e| e.to_string())?;
    let m: Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
    if let Some(t) = &m.tensor {
        if m.kind != EntryKind::Dataset {
            return Err("a tensor description on an entry that is not a dataset".into());
        }
        tensor::check(t, m.cols, m.label_column).map_err(|e| format!("tensor: {e}"))?;
    }
    Ok(m)
}

/// The newest of several entries of one name: the one no other of them supersedes (versions form
/// a chain), else the latest created.
fn newest<'a>(entries: impl Iterator<Item = &'a Manifest>) -> Option<&'a Manifest> {
    let v: Vec<&Manifest> = entries.collect();
    let superseded: std::collections::HashSet<EntryId> =
        v.iter().filter_map(|m| m.supersedes).collect();
    v.into_iter()
        .filter(|m| !superseded.contains(&m.id))
        .max_by_key(|m| (m.created, m.id))
}

/// One party's store.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    // Serializes state changes (name uniqueness checks and manifest rewrites).
    lock: Mutex<()>,
}

pub(crate) fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

/// Writes `bytes` to `path` atomically: temporary file, fsync, rename, directory fsync.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).map_err(io("create", &tmp))?;
        f.write_all(bytes).map_err(io("write", &tmp))?;
        f.sync_all().map_err(io("fsync", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(io("rename", &tmp))?;
    sync_dir(path.parent().expect("entry files live in a directory"))
}

/// A share being received: bytes go to a temporary file in the store, hashed on the way.
/// Dropping the writer before [`Store::finish`] deletes the file.
#[derive(Debug)]
pub struct ShareWriter {
    id: EntryId,
    tmp: PathBuf,
    file: Option<std::io::BufWriter<File>>,
    hasher: Sha256,
    len: u64,
}

impl ShareWriter {
    /// Appends bytes.
    ///
    /// # Errors
    /// File errors naming the temporary file.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let f = self.file.as_mut().expect("open until finished");
        f.write_all(bytes).map_err(io("write", &self.tmp))?;
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// SHA-256 of the bytes written so far, hex.
    pub fn digest_hex(&self) -> String {
        hex::encode(self.hasher.clone().finalize())
    }

    /// The entry this share is for.
    pub fn id(&self) -> EntryId {
        self.id
    }
}

impl Drop for ShareWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            if let Err(e) = fs::remove_file(&self.tmp) {
                tracing::warn!("cannot remove partial upload {}: {e}", self.tmp.display());
            }
        }
    }
}

/// `fsync` of a directory, so renames and removals in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
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
                Some("share") | Some("keys") => shares.push(p),
                _ => {
                    tracing::info!("recovery: deleting partial file {}", p.display());
                    fs::remove_file(&p).map_err(io("remove", &p))?;
                }
            }
        }
        for s in shares {
            if !manifests.contains(&s.with_extension("")) {
                tracing::info!("recovery: deleting {} without manifest", s.display());
                fs::remove_file(&s).map_err(io("remove", &s))?;
            }
        }
        for m in self.all()? {
            let p = self.share_path(&m.id);
            let ok = fs::read(&p)
                .map(|b| hex::encode(sha256(&b)) == m.sha256)
                .unwrap_or(false)
                && self.keys_intact(&m);
            if !ok {
                tracing::warn!(
                    "recovery: entry {} ({}) has a missing or corrupt share; deleting it",
                    m.id,
                    m.name
                );
                self.remove(&m.id)?;
            }
        }
        // A crash between committing a new version and removing the one it supersedes.
        for m in self.all()? {
            if let (State::Committed, Some(old)) = (m.state, m.supersedes) {
                if self.manifest_path(&old).exists() {
                    tracing::info!("recovery: removing version {old} superseded by {}", m.id);
                    self.remove(&old)?;
                }
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
        let mut w = self.begin(&m.id)?;
        w.write(share)?;
        self.finish(w, m)
    }

    /// Starts receiving the share of entry `id` into a temporary file of the store.
    ///
    /// # Errors
    /// [`StoreError::Exists`] if the entry exists or is being received; file errors.
    pub fn begin(&self, id: &EntryId) -> Result<ShareWriter> {
        if self.manifest_path(id).exists() {
            return Err(StoreError::Exists {
                what: id.to_string(),
            });
        }
        let tmp = self.dir.join(format!("{id}.share.part"));
        let file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => StoreError::Exists {
                    what: format!("{id} (an upload in progress)"),
                },
                _ => io("create", &tmp)(e),
            })?;
        Ok(ShareWriter {
            id: *id,
            tmp,
            file: Some(std::io::BufWriter::with_capacity(1 << 20, file)),
            hasher: Sha256::new(),
            len: 0,
        })
    }

    /// Completes a received share: checks its length for the manifest's form and shape and its
    /// digest against `m.sha256`, then makes it durable (fsync, rename, directory fsync) and
    /// writes the manifest. The name must not be taken by a committed (or decided) entry of the
    /// same owner and kind other than the version `m` supersedes; prepared entries do not
    /// reserve names (an abandoned upload must not block a retry), so P0 checks again when it
    /// decides ([`Store::decide`]).
    ///
    /// # Errors
    /// [`StoreError::BadShare`], [`StoreError::Exists`], file errors.
    pub fn finish(&self, mut w: ShareWriter, m: &Manifest) -> Result<()> {
        assert_eq!(w.id, m.id, "the writer belongs to another entry");
        let want = match m.form {
            ShareForm::Seed => 32,
            ShareForm::Matrix => m.rows.saturating_mul(m.cols).saturating_mul(8),
        };
        if w.len != want {
            return Err(StoreError::BadShare {
                id: m.id,
                reason: format!("{} bytes, expected {want}", w.len),
            });
        }
        if w.digest_hex() != m.sha256 {
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
            o.kind == m.kind
                && o.owner == m.owner
                && o.name == m.name
                && o.state != State::Prepared
                && Some(o.id) != m.supersedes
        }) {
            return Err(StoreError::Exists {
                what: format!("{:?} {:?} of {:?}", m.kind, m.name, m.owner),
            });
        }
        let mut f = w.file.take().expect("open until finished");
        let r = f
            .flush()
            .map_err(io("write", &w.tmp))
            .and_then(|()| {
                f.into_inner()
                    .map_err(|e| io("write", &w.tmp)(e.into_error()))?
                    .sync_all()
                    .map_err(io("fsync", &w.tmp))
            })
            .and_then(|()| {
                let dst = self.share_path(&m.id);
                fs::rename(&w.tmp, &dst).map_err(io("rename", &w.tmp))
            });
        if let Err(e) = r {
            let _ = fs::remove_file(&w.tmp);
            return Err(e);
        }
        sync_dir(&self.dir)?;
        self.write_manifest(m)
    }

    /// P0's decision to commit a prepared entry (state `Decided`), refused when it would make a
    /// name resolve to two entries: another committed or decided entry of the same owner, kind
    /// and name exists (other than the version this one supersedes), or, for an appended
    /// version, the version it extends is no longer the current one (another append or a delete
    /// came first) or another decision extends it already.
    ///
    /// # Errors
    /// [`StoreError::Conflict`], [`StoreError::NotFound`], file errors.
    pub fn decide(&self, id: &EntryId) -> Result<Manifest> {
        let _g = self.lock.lock().expect("store lock");
        let mut m = self.get(id)?;
        if m.state != State::Prepared {
            return Ok(m);
        }
        let all = self.all()?;
        let same = |o: &&Manifest| {
            o.id != m.id
                && o.kind == m.kind
                && o.owner == m.owner
                && o.name == m.name
                && o.state != State::Prepared
        };
        let conflict = |reason: String| StoreError::Conflict { id: *id, reason };
        match m.supersedes {
            None => {
                if all.iter().any(|o| same(&o)) {
                    return Err(conflict(format!(
                        "{} has a dataset named {:?} already",
                        m.owner, m.name
                    )));
                }
            }
            Some(base) => {
                let current = newest(
                    all.iter()
                        .filter(|o| same(o) && o.state == State::Committed),
                );
                if current.map(|c| c.id) != Some(base) {
                    return Err(conflict(format!(
                        "dataset {}/{} changed while the rows were uploaded (another append or a delete came first); upload them again",
                        m.owner, m.name
                    )));
                }
                if all.iter().any(|o| same(&o) && o.state == State::Decided) {
                    return Err(conflict(format!(
                        "another append to {}/{} is being committed; upload again",
                        m.owner, m.name
                    )));
                }
            }
        }
        m.state = State::Decided;
        self.write_manifest(&m)?;
        Ok(m)
    }

    /// Commits an entry (durably) and removes the version it supersedes, if any.
    ///
    /// # Errors
    /// [`StoreError::NotFound`], file errors.
    pub fn commit(&self, id: &EntryId) -> Result<Manifest> {
        let m = self.set_state(id, State::Committed)?;
        if let Some(old) = m.supersedes {
            self.remove(&old)?;
        }
        Ok(m)
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
        for p in [
            self.manifest_path(id),
            self.share_path(id),
            self.keys_path(id),
        ] {
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
        let all = self.all()?;
        Ok(newest(all.iter().filter(|m| {
            m.kind == kind && m.state == State::Committed && m.owner == owner && m.name == name
        }))
        .cloned())
    }

    /// The committed entries of `owner`.
    ///
    /// # Errors
    /// File and manifest errors.
    pub fn list(&self, owner: &str) -> Result<Vec<Manifest>> {
        let all = self.all()?;
        let superseded: std::collections::HashSet<EntryId> = all
            .iter()
            .filter(|m| m.state == State::Committed)
            .filter_map(|m| m.supersedes)
            .collect();
        Ok(all
            .into_iter()
            .filter(|m| {
                m.owner == owner && m.state == State::Committed && !superseded.contains(&m.id)
            })
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
mod tests;
