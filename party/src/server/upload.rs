//! Share uploads at a party: checking an upload's header and options before any share byte
//! (limits, shape, a skeleton dataset's tensor, append grants), receiving the share bytes into
//! the store as prepared, and the one request flow `Upload` and `UploadWith` share.

use super::{limits, reply, ClientChan, Result, Server, ServerError};
use crate::proto::{EntryId, Reply, ShareForm, UploadHeader, UploadOptions, UPLOAD_CHUNK};
use crate::store::{self, AppendedPart, EntryKind, Manifest, ShareWriter, State};

/// An upload whose header and options were accepted.
#[derive(Debug)]
struct Incoming {
    header: UploadHeader,
    /// The uploading client.
    client: String,
    /// Append rights granted with a new dataset.
    appenders: Vec<String>,
    /// The skeleton tensor of a new dataset (checked against the header).
    tensor: Option<crate::proto::TensorMeta>,
    /// The current version of the dataset the rows are appended to.
    base: Option<Manifest>,
    /// Vertical partitioning: the row key tags that follow the share.
    keys: Option<crate::proto::RowKeys>,
    /// A table its owner standardized before uploading it, with this party's shares of the
    /// statistics.
    standardization: Option<store::Standardization>,
}

/// What a connection does after an upload request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Then {
    /// Serve the next request.
    Continue,
    /// Close: the stream cannot be resynchronized.
    Close,
}

impl Server {
    /// Serves one upload request of `owner`: `opts` is `Some` for `UploadWith` (the party
    /// answers `SendShare` or a refusal before any share byte is sent, so a refusal keeps the
    /// stream in step) and `None` for `Upload` (the share bytes follow the header unasked, so
    /// the connection ends after a refusal). The id joins `prepared` (aborted with the session).
    pub(super) async fn upload(
        &self,
        ch: &mut ClientChan,
        owner: &str,
        h: UploadHeader,
        opts: Option<&UploadOptions>,
        prepared: &mut Vec<EntryId>,
    ) -> Result<Then, mpc::MpcError> {
        prepared.push(h.id);
        let inc = match self.check_upload(owner, h, opts.unwrap_or(&UploadOptions::default())) {
            Ok(inc) => inc,
            Err(e) => {
                tracing::warn!("client {owner}: upload refused: {}", e.message());
                reply(ch, &e.reply()).await?;
                return Ok(if opts.is_some() {
                    Then::Continue
                } else {
                    Then::Close
                });
            }
        };
        if opts.is_some() {
            reply(ch, &Reply::SendShare { id: inc.header.id }).await?;
        }
        match self.receive_share(ch, inc).await {
            Ok(rep) => {
                reply(ch, &rep).await?;
                Ok(Then::Continue)
            }
            Err(e) => {
                tracing::warn!("client {owner}: upload failed: {}", e.message());
                reply(ch, &e.reply()).await?;
                // The rest of the stream cannot be resynchronized.
                Ok(Then::Close)
            }
        }
    }

    /// Checks an upload's header and options before any share byte is received: limits,
    /// shape, a skeleton tensor's fit with the header ([`store::tensor::check`]), and for an
    /// append the grant and the match with the dataset it extends (layout and tensor). A refusal
    /// names what is wrong; a dataset that does not exist and one the client may not append to
    /// are refused alike (the refusal does not reveal other owners' dataset names).
    fn check_upload(&self, client: &str, h: UploadHeader, o: &UploadOptions) -> Result<Incoming> {
        self.check_header(&h, o.keys.as_ref().is_none_or(|k| k.labelled))?;
        if o.keys.is_some() {
            self.check_keyed(&h, o)?;
        }
        if let Some(t) = &o.tensor {
            store::tensor::check(t, h.cols, h.label_column).map_err(|e| {
                ServerError::BadRequest(format!("skeleton dataset {:?}: {e}", h.name))
            })?;
        }
        if o.appenders.len() > 64 || o.appenders.iter().any(|a| a.is_empty() || a.len() > 128) {
            return Err(ServerError::BadRequest(
                "at most 64 appenders, names of 1 to 128 bytes".into(),
            ));
        }
        let standardization = check_standardized(&h, o)?;
        let Some(to) = &o.append_to else {
            return Ok(Incoming {
                header: h,
                client: client.into(),
                appenders: o.appenders.clone(),
                tensor: o.tensor.clone(),
                base: None,
                keys: o.keys.clone(),
                standardization,
            });
        };
        if !o.appenders.is_empty() {
            return Err(ServerError::BadRequest(
                "append rights are granted by the dataset's owner when uploading it".into(),
            ));
        }
        let base = self.append_base(client, to)?;
        if base.keys.is_some() {
            return Err(ServerError::BadRequest(format!(
                "dataset {}/{} has row keys (vertical partitioning): rows cannot be appended to it",
                to.owner, to.name
            )));
        }
        check_same_layout(&h, &base)?;
        store::tensor::check_append(o.tensor.as_ref(), base.tensor.as_ref()).map_err(|e| {
            ServerError::BadRequest(format!("appending to {}/{}: {e}", to.owner, to.name))
        })?;
        Ok(Incoming {
            header: h,
            client: client.into(),
            appenders: Vec::new(),
            tensor: None,
            base: Some(base),
            keys: None,
            standardization: None,
        })
    }

    /// The size, length, name and shape of an upload (its fractional bits were validated when
    /// the header was decoded).
    fn check_header(&self, h: &UploadHeader, labelled: bool) -> Result<()> {
        let limit = self.cfg.limits.max_upload_bytes;
        let stored = limits::upload_size(h.rows, h.cols, limit).map_err(ServerError::refused)?;
        if h.len > limit {
            return Err(ServerError::Limit(format!(
                "upload of {} bytes exceeds max_upload_bytes = {limit}",
                h.len
            )));
        }
        let want = match h.form {
            ShareForm::Seed => 32u64,
            ShareForm::Matrix => stored,
        };
        if h.len != want {
            return Err(ServerError::BadRequest(format!(
                "declared {} bytes, shape needs {want}",
                h.len
            )));
        }
        let min_cols = if labelled { 2 } else { 1 };
        if h.name.is_empty() || h.name.len() > 128 || h.rows == 0 || h.cols < min_cols {
            return Err(ServerError::BadRequest("bad name or shape".into()));
        }
        if labelled && h.label_column >= h.cols {
            return Err(ServerError::BadRequest("label column out of range".into()));
        }
        if !labelled && h.label_column != h.cols {
            return Err(ServerError::BadRequest(format!(
                "an upload without a label must name label column {} (its column count), not {}",
                h.cols, h.label_column
            )));
        }
        Ok(())
    }

    /// A keyed upload (vertical partitioning): a new table of its own (no append, no
    /// skeleton tensor) whose key tags fit `max_upload_bytes`.
    fn check_keyed(&self, h: &UploadHeader, o: &UploadOptions) -> Result<()> {
        if o.append_to.is_some() || o.tensor.is_some() || !o.appenders.is_empty() {
            return Err(ServerError::BadRequest(
                "an upload with row keys is a table of its own: no append, append rights or \
                 skeleton tensor"
                    .into(),
            ));
        }
        let limit = self.cfg.limits.max_upload_bytes;
        let bytes = h.rows.saturating_mul(crate::proto::KEY_TAG_BYTES as u64);
        if bytes > limit {
            return Err(ServerError::Limit(format!(
                "{bytes} bytes of row keys exceed max_upload_bytes = {limit}"
            )));
        }
        Ok(())
    }

    /// The current version of the dataset `to`, if `client` owns it or may append to it.
    fn append_base(&self, client: &str, to: &crate::proto::DatasetRef) -> Result<Manifest> {
        let refused = || {
            ServerError::Forbidden(format!(
                "no dataset {}/{} that {client} may append to",
                to.owner, to.name
            ))
        };
        let base = self
            .store
            .find_committed(EntryKind::Dataset, &to.owner, &to.name)?
            .ok_or_else(refused)?;
        if base.owner != client && !base.appenders.iter().any(|a| a == client) {
            return Err(refused());
        }
        if base.standardization.is_some() {
            // Raw rows after standardized ones would train on a mix of units.
            return Err(ServerError::BadRequest(format!(
                "dataset {}/{} is standardized (version {}): append raw rows to a raw dataset \
                 and standardize after the last append",
                to.owner, to.name, base.id
            )));
        }
        Ok(base)
    }

    /// Receives the share bytes of an accepted upload into the store as prepared. For an
    /// append, the new version's share is this party's share of the current version followed
    /// by the received rows (a seed is expanded): appending is local to each party. A refusal
    /// is returned as the reply; an `Err` means the stream is out of step.
    async fn receive_share(&self, ch: &mut ClientChan, inc: Incoming) -> Result<Reply> {
        let h = &inc.header;
        tracing::info!(
            "receiving upload {} ({}) of {}: {} bytes",
            h.id,
            h.name,
            inc.client,
            h.len
        );
        let mut w = match self.store.begin(&h.id) {
            Ok(w) => w,
            Err(e) => return Ok(ServerError::from(e).reply()),
        };
        if let Some(b) = &inc.base {
            let s = self.store.load_share(b)?;
            tokio::task::block_in_place(|| w.write(&store::matrix_bytes(&s)))?;
        }
        let expand = inc.base.is_some() && h.form == ShareForm::Seed;
        let Some(seed) = self.receive_bytes(ch, h, &mut w, expand).await? else {
            return Ok(ServerError::BadRequest(format!(
                "share of upload {}: SHA-256 digest does not match the header",
                h.id
            ))
            .reply());
        };
        if expand {
            let mut s = [0u8; 32];
            s.copy_from_slice(&seed);
            let share = mpc::share::Seed(s).expand(h.rows as usize, h.cols as usize);
            zeroize::Zeroize::zeroize(&mut s);
            tokio::task::block_in_place(|| w.write(&store::matrix_bytes(&share)))?;
        }
        let mut m = prepared_manifest(&inc, w.digest_hex());
        if let Some(k) = &inc.keys {
            match self.receive_keys(ch, h, k).await? {
                Ok(digest) => m.keys = Some(digest),
                Err(e) => return Ok(e.reply()),
            }
        }
        let r = tokio::task::block_in_place(|| self.store.finish(w, &m));
        if let Err(e) = r {
            self.store.discard_keys(&m.id);
            return Ok(ServerError::from(e).reply());
        }
        log_prepared(&inc, &m);
        super::fault("abort-after-prepare");
        Ok(Reply::Prepared { id: m.id })
    }

    /// Receives the `h.len` declared share bytes into `w`, or, when `keep` (a seed to expand),
    /// keeps them aside. Returns the kept bytes, or `None` when the digest does not match.
    async fn receive_bytes(
        &self,
        ch: &mut ClientChan,
        h: &UploadHeader,
        w: &mut ShareWriter,
        keep: bool,
    ) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>> {
        use mpc::net::Channel;
        use sha2::Digest;
        let mut part = sha2::Sha256::new();
        let mut kept = zeroize::Zeroizing::new(Vec::new());
        let mut got = 0u64;
        while got < h.len {
            let left = (h.len - got).min(UPLOAD_CHUNK as u64) as usize;
            let f = tokio::time::timeout(self.timeout, ch.recv_frame(left))
                .await
                .map_err(|_| ServerError::BadRequest("upload stalled".into()))??;
            part.update(&f);
            got += f.len() as u64;
            if keep {
                kept.extend_from_slice(&f);
            } else {
                tokio::task::block_in_place(|| w.write(&f))?;
            }
        }
        Ok((<[u8; 32]>::from(part.finalize()) == h.digest).then_some(kept))
    }
}

impl Server {
    /// Receives the row key tags of a keyed upload (`rows × 32` bytes after the share) and
    /// stores them; the inner `Err` is a refusal (digest, a repeated tag), the outer one a
    /// stream out of step.
    async fn receive_keys(
        &self,
        ch: &mut ClientChan,
        h: &UploadHeader,
        k: &crate::proto::RowKeys,
    ) -> Result<Result<String>> {
        use mpc::net::Channel;
        let len = h.rows * crate::proto::KEY_TAG_BYTES as u64;
        let mut tags = Vec::with_capacity(len as usize);
        while (tags.len() as u64) < len {
            let left = (len - tags.len() as u64).min(UPLOAD_CHUNK as u64) as usize;
            let f = tokio::time::timeout(self.timeout, ch.recv_frame(left))
                .await
                .map_err(|_| ServerError::BadRequest("upload stalled".into()))??;
            tags.extend_from_slice(&f);
        }
        if store::sha256(&tags) != k.digest {
            return Ok(Err(ServerError::BadRequest(format!(
                "row keys of upload {}: SHA-256 digest does not match the options",
                h.id
            ))));
        }
        if let Some(r) = crate::rowkeys::first_repeat(&tags) {
            return Ok(Err(ServerError::BadRequest(format!(
                "row keys of upload {}: row {r} (0-based) repeats an earlier row's key",
                h.id
            ))));
        }
        let r = tokio::task::block_in_place(|| self.store.write_keys(&h.id, h.rows, &tags));
        Ok(r.map_err(ServerError::from))
    }
}

/// The standardization of a table its owner standardized before uploading it (the upload's id
/// is its origin): a new table of its own, since appended rows would mix units (an append to a
/// standardized dataset is refused too, [`Server::append_base`]) and the join of keyed uploads
/// does not carry statistics.
fn check_standardized(
    h: &UploadHeader,
    o: &UploadOptions,
) -> Result<Option<store::Standardization>> {
    let Some(s) = &o.standardized else {
        return Ok(None);
    };
    if o.append_to.is_some() || !o.appenders.is_empty() || o.keys.is_some() || o.tensor.is_some() {
        return Err(ServerError::BadRequest(format!(
            "standardized upload {:?}: a table of its own (no append, append rights, row keys \
             or skeleton tensor); standardize appended data on the parties after the last append",
            h.name
        )));
    }
    if h.rows < 2 {
        return Err(ServerError::BadRequest(format!(
            "standardized upload {:?}: {} row(s), statistics need at least 2",
            h.name, h.rows
        )));
    }
    store::Standardization::uploaded(h.id, (h.cols, h.label_column), s)
        .map(Some)
        .map_err(|e| ServerError::BadRequest(format!("standardized upload {:?}: {e}", h.name)))
}

/// Columns, label column and fractional bits of rows appended to `base` must be its own.
fn check_same_layout(h: &UploadHeader, base: &Manifest) -> Result<()> {
    if (h.cols, h.label_column, h.frac_bits) == (base.cols, base.label_column, base.frac_bits) {
        return Ok(());
    }
    Err(ServerError::BadRequest(format!(
        "the rows to append have {} columns, label column {} and {} fractional bits; \
         dataset {}/{} has {} columns, label column {} and {} fractional bits: they must match",
        h.cols,
        h.label_column,
        h.frac_bits,
        base.owner,
        base.name,
        base.cols,
        base.label_column,
        base.frac_bits
    )))
}

/// The manifest of a received upload, prepared: a new dataset, or the next version of `base`
/// (which keeps the base's tensor, class names included).
fn prepared_manifest(inc: &Incoming, sha256: String) -> Manifest {
    let h = &inc.header;
    let Some(b) = &inc.base else {
        return Manifest {
            id: h.id,
            kind: EntryKind::Dataset,
            name: h.name.clone(),
            owner: inc.client.clone(),
            rows: h.rows,
            cols: h.cols,
            label_column: h.label_column,
            frac_bits: h.frac_bits,
            form: h.form,
            sha256,
            created: store::now(),
            state: State::Prepared,
            appenders: inc.appenders.clone(),
            supersedes: None,
            appended: Vec::new(),
            tensor: inc.tensor.clone(),
            model: None,
            keys: None,
            standardization: inc.standardization.clone(),
        };
    };
    let mut appended = b.appended.clone();
    appended.push(AppendedPart {
        client: inc.client.clone(),
        rows: h.rows,
    });
    Manifest {
        id: h.id,
        rows: b.rows + h.rows,
        form: ShareForm::Matrix,
        sha256,
        created: store::now(),
        state: State::Prepared,
        supersedes: Some(b.id),
        appended,
        ..b.clone()
    }
}

fn log_prepared(inc: &Incoming, m: &Manifest) {
    let client = &inc.client;
    match &inc.base {
        None => tracing::info!("prepared {} ({}) of {client}", m.id, m.name),
        Some(b) => tracing::info!(
            "prepared {} ({}/{}: {} rows of {client} appended to version {})",
            m.id,
            m.owner,
            m.name,
            inc.header.rows,
            b.id
        ),
    }
}
