//! Trained models at a party: storing this party's share of a job's model as a prepared entry
//! (committed by two-phase commit), and revealing a committed model's share to its owner alone
//! (with what its column holds, for `RevealModel`).
//!
//! A linear model or MLP trained on standardized data is revealed only with its
//! standardization folded in (the `Fold` job, `job::fold`): `RevealModel` answers its
//! description without share words and `Reveal` refuses it, so the owner never holds both the
//! standardized and the folded weights (their ratio is the statistics, `W' = W / sd`).

use super::{err, reply, ClientChan, Result, Server};
use crate::proto::{EntryId, ErrorCode, Reply, ShareForm};
use crate::store::{self, EntryKind, Manifest, State};
use mpc::net::{Channel, ChannelExt};

impl Server {
    /// Stores this party's share `w` of job `job`'s model (trained on `data` for `owner`, in the
    /// format `meta` for models other than the single-matrix ones) as prepared.
    pub(super) fn store_model(
        &self,
        job: EntryId,
        owner: &str,
        data: &Manifest,
        w: &mpc::Share,
        meta: Option<crate::proto::ModelMeta>,
    ) -> Result<()> {
        let bytes = store::matrix_bytes(w);
        let (rows, cols) = w.dim();
        let m = Manifest {
            id: job,
            kind: EntryKind::Model,
            name: format!("model-{job}"),
            owner: owner.into(),
            rows: rows as u64,
            cols: cols as u64,
            label_column: 0,
            frac_bits: data.frac_bits,
            form: ShareForm::Matrix,
            sha256: hex::encode(store::sha256(&bytes)),
            created: store::now(),
            // Committed by two-phase commit once both parties stored their halves.
            state: State::Prepared,
            appenders: Vec::new(),
            supersedes: None,
            appended: Vec::new(),
            tensor: None,
            model: meta,
            keys: None,
            standardization: data.standardization.clone(),
        };
        self.store.put(&m, &bytes)?;
        Ok(())
    }

    /// Sends this party's share of `owner`'s committed model `job` (header, then the words), or
    /// a refusal; `with_meta` answers `ModelShareMeta` (for `RevealModel`), else `ModelShare`.
    /// An `Err` means the connection cannot continue.
    pub(super) async fn reveal(
        &self,
        ch: &mut ClientChan,
        owner: &str,
        job: EntryId,
        with_meta: bool,
    ) -> Result<()> {
        let m = match self.store.get(&job) {
            Ok(m)
                if m.owner == owner
                    && m.kind == EntryKind::Model
                    && m.state == State::Committed =>
            {
                m
            }
            Ok(_) => {
                tracing::warn!("refused {owner}: model {job} is not theirs");
                reply(ch, &err(ErrorCode::Forbidden, "not your model")).await?;
                return Ok(());
            }
            Err(_) => {
                reply(ch, &err(ErrorCode::NotFound, "no such model")).await?;
                return Ok(());
            }
        };
        let folded_only = m.standardization.is_some()
            && matches!(m.model, Some(crate::proto::ModelMeta::Linear(_)));
        if folded_only && !with_meta {
            let why = format!(
                "model {job} was trained on standardized data: it is revealed with its \
                 standardization folded in (party reveal)"
            );
            reply(ch, &err(ErrorCode::BadRequest, why)).await?;
            return Ok(());
        }
        let s = if folded_only {
            mpc::Share::zeros(0, 1)
        } else {
            self.store.load_share(&m)?
        };
        let header = if with_meta {
            Reply::ModelShareMeta {
                rows: s.dim().0 as u64,
                cols: m.cols,
                frac_bits: m.frac_bits,
                model: m.model.clone(),
                standardization: m.standardization.as_ref().map(|s| s.info()),
            }
        } else {
            Reply::ModelShare {
                rows: m.rows,
                cols: m.cols,
                frac_bits: m.frac_bits,
            }
        };
        reply(ch, &header).await?;
        if !folded_only {
            ch.send_ring(&s.view()).await?;
        }
        ch.flush().await?;
        tracing::info!("revealed model share {job} to its owner {owner}");
        Ok(())
    }
}
