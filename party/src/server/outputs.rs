//! What a party keeps at the end of a job, by what the job produced (`job::Produced`): a
//! trained model's share or a standardized dataset version, each stored as prepared and
//! committed by two-phase commit (P0 decides when P1 reports its half stored), or nothing (an
//! evaluation, whose result already went to the owner). Also the model an evaluation names,
//! looked up for its owner only.
//!
//! Security model: as the store's (semi-honest, non-colluding parties); a party never sends a
//! share of a result to the other party.

use super::job::{JobOutput, Produced};
use super::timed::Timed;
use super::{Result, Server, ServerError};
use crate::proto::{
    EntryId, JobSpec, JobStats, ModelKind, PeerReply, ShareForm, MAX_CONTROL_FRAME,
};
use crate::store::{self, EntryKind, Manifest, Standardization, State};
use crate::transport::PeerChannel;
use mpc::net::ChannelExt;
use mpc::Share;

impl Server {
    /// The committed model of `owner` an evaluation or a fold names (`None` for other jobs).
    /// Another client's model is answered like a missing one.
    pub(super) fn job_model(&self, owner: &str, spec: &JobSpec) -> Result<Option<Manifest>> {
        let model = match &spec.model {
            ModelKind::Evaluate(e) => e.model,
            ModelKind::Fold(f) => f.model,
            _ => return Ok(None),
        };
        let missing = || ServerError::NotFound(format!("no model {model} of yours"));
        let m = self.store.get(&model).map_err(|_| missing())?;
        if m.kind != EntryKind::Model || m.owner != owner || m.state != State::Committed {
            if m.owner != owner {
                tracing::warn!(
                    "refused {owner}: evaluating model {}, which is not theirs",
                    model
                );
            }
            return Err(missing());
        }
        Ok(Some(m))
    }

    /// [`Server::job_model`] with this party's share of it.
    pub(super) fn job_model_input(
        &self,
        owner: &str,
        spec: &JobSpec,
    ) -> Result<Option<(Manifest, Share)>> {
        match self.job_model(owner, spec)? {
            Some(m) => {
                let w = self.store.load_share(&m)?;
                Ok(Some((m, w)))
            }
            None => Ok(None),
        }
    }

    /// Stores this party's half of what job `job` of `owner` on `data` produced, as prepared.
    pub(super) fn store_output(
        &self,
        job: EntryId,
        owner: &str,
        data: &Manifest,
        out: &JobOutput,
    ) -> Result<()> {
        match &out.produced {
            Produced::Model => self.store_model(job, owner, data, &out.model, out.meta.clone()),
            Produced::Dataset {
                columns,
                label,
                revealed,
                stats,
            } => {
                let st = Standardization::new(
                    job,
                    columns.clone(),
                    (*label, data.label_column),
                    *revealed,
                    stats,
                );
                self.store_version(job, data, &out.model, st)
            }
            Produced::Nothing => Ok(()),
        }
    }

    /// Stores the standardized share `z` of `data` as its next version `job` (prepared).
    fn store_version(
        &self,
        job: EntryId,
        data: &Manifest,
        z: &Share,
        st: Standardization,
    ) -> Result<()> {
        let bytes = store::matrix_bytes(z);
        let m = Manifest {
            id: job,
            form: ShareForm::Matrix,
            sha256: hex::encode(store::sha256(&bytes)),
            created: store::now(),
            state: State::Prepared,
            supersedes: Some(data.id),
            standardization: Some(st),
            ..data.clone()
        };
        self.store.put(&m, &bytes)?;
        Ok(())
    }

    /// P0: after its half of `out` is stored, P1's report; commits what both stored.
    pub(super) async fn keep_output(&self, job: EntryId, out: &mut JobOutput) -> Result<JobStats> {
        match out.produced {
            Produced::Nothing => p1_done(job, &mut out.channel).await,
            _ => self.commit_model(job, &mut out.channel).await,
        }
    }
}

/// P1's end-of-job report when nothing was stored.
async fn p1_done(job: EntryId, on: &mut Timed<PeerChannel>) -> Result<JobStats> {
    match on.recv::<PeerReply>(MAX_CONTROL_FRAME).await {
        Ok(PeerReply::JobStored(stats)) => Ok(stats),
        other => Err(ServerError::Peer(format!(
            "job {job}: P1 did not finish ({other:?})"
        ))),
    }
}
