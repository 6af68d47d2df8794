//! Two-phase commit between the parties, coordinated by P0, and its crash recovery: committing
//! an upload (or an appended version) and a trained model, aborting the uploads a client left
//! uncommitted, finishing decided commits (P0) and resolving prepared entries (P1) on a new link.

use super::{fault, Result, Server, ServerError};
use crate::proto::{EntryId, JobStats, PeerReply, PeerRequest, PeerState, MAX_CONTROL_FRAME};
use crate::store::{EntryKind, Manifest, State, StoreError};
use crate::transport;
use mpc::net::ChannelExt;

impl Server {
    /// P1 after (re)connecting: asks P0 about the entries prepared here, commits those P0
    /// decided to commit, discards those P0 does not know (it restarted, or aborted them while
    /// the link was down).
    pub(super) async fn resolve_prepared(&self, pending: &mut Vec<EntryId>) -> Result<()> {
        let mut left = Vec::new();
        for id in pending.drain(..) {
            match self.peer_request(&PeerRequest::Status { id }).await? {
                PeerReply::State(PeerState::Committed) => {
                    self.store.commit(&id)?;
                    tracing::info!("recovery: committed {id} (P0 had decided)");
                }
                PeerReply::State(PeerState::Absent) => {
                    self.store.remove(&id)?;
                    tracing::info!("recovery: discarded {id} (P0 does not have it)");
                }
                _ => left.push(id),
            }
        }
        *pending = left;
        Ok(())
    }

    /// P0 on a new link: completes commits decided before a crash or a lost link.
    pub(super) async fn finish_decided(&self) -> Result<()> {
        for m in self.store.all()? {
            if m.state == State::Decided {
                match self.peer_request(&PeerRequest::Commit { id: m.id }).await? {
                    PeerReply::Ack => {
                        self.store.commit(&m.id)?;
                        tracing::info!("recovery: finished commit of {} ({})", m.id, m.name);
                    }
                    other => {
                        return Err(ServerError::Peer(format!(
                            "P1 answered {other:?} to a commit"
                        )))
                    }
                }
            }
        }
        Ok(())
    }

    /// P0 at the end of a client's session: an upload lives as prepared only while its
    /// client's session does, so the uploads `owner` did not commit are aborted on both parties.
    pub(super) async fn abort_uncommitted(
        &self,
        owner: &str,
        prepared: Vec<EntryId>,
    ) -> Result<()> {
        for id in prepared {
            if self
                .store
                .get(&id)
                .is_ok_and(|m| m.state == State::Prepared)
            {
                tracing::info!("aborting upload {id} of {owner}: the session ended uncommitted");
                self.store.remove(&id)?;
                let _ = self.peer_request(&PeerRequest::Abort { id }).await;
            }
        }
        Ok(())
    }

    /// Two-phase commit of an upload (or of an appended version), coordinated by P0. Only
    /// the client that uploaded the entry's newest rows may commit it.
    pub(super) async fn commit(&self, client: &str, id: EntryId) -> Result<crate::proto::Reply> {
        let m = match self.store.get(&id) {
            Ok(m) if m.uploader() == client && m.kind == EntryKind::Dataset => m,
            _ => return Err(ServerError::NotFound(format!("no upload {id} of yours"))),
        };
        match m.state {
            State::Committed => return Ok(crate::proto::Reply::Committed { id }),
            State::Decided => {}
            State::Prepared => self.decide_upload(&m).await?,
        }
        match self.peer_request(&PeerRequest::Commit { id }).await {
            Ok(PeerReply::Ack) => {
                self.store.commit(&id)?;
                tracing::info!("committed {id} ({}) of {}", m.name, m.owner);
                Ok(crate::proto::Reply::Committed { id })
            }
            other => Err(ServerError::Peer(format!(
                "commit decided; it completes when P1 is reachable again ({other:?})"
            ))),
        }
    }

    /// Phase 1 for a prepared upload `m`: P1's vote, then P0's decision (logged before P1 is
    /// told to commit). A refusal aborts the upload on both parties.
    async fn decide_upload(&self, m: &Manifest) -> Result<()> {
        let (id, owner) = (m.id, m.owner.as_str());
        if m.supersedes.is_none()
            && self
                .store
                .find_committed(EntryKind::Dataset, owner, &m.name)?
                .is_some()
        {
            self.abort_both(id).await?;
            return Err(ServerError::BadRequest(format!(
                "you have a dataset named {:?} already",
                m.name
            )));
        }
        let vote = self
            .peer_request(&PeerRequest::Vote {
                id,
                owner: owner.into(),
                name: m.name.clone(),
                rows: m.rows,
                cols: m.cols,
                tensor: m.tensor.clone(),
                standardized: m.standardization.as_ref().map(|s| s.columns.clone()),
            })
            .await;
        if !matches!(vote, Ok(PeerReply::Vote(true))) {
            self.abort_both(id).await?;
            tracing::warn!("aborted upload {id}: P1 voted {vote:?}");
            return Err(ServerError::Peer(
                "P1 does not hold the upload; aborted".into(),
            ));
        }
        match self.store.decide(&id) {
            Ok(_) => {}
            Err(StoreError::Conflict { reason, .. }) => {
                self.abort_both(id).await?;
                tracing::warn!("aborted upload {id}: {reason}");
                return Err(ServerError::BadRequest(reason));
            }
            Err(e) => return Err(e.into()),
        }
        fault("abort-after-decide");
        Ok(())
    }

    /// Removes `id` here and asks P1 to discard it (best effort: P1 also learns it in recovery).
    async fn abort_both(&self, id: EntryId) -> Result<()> {
        self.store.remove(&id)?;
        let _ = self.peer_request(&PeerRequest::Abort { id }).await;
        Ok(())
    }

    /// Commits a model both parties stored as prepared (two-phase commit: P1's `JobStored` is
    /// its vote); if P1 does not vote, P0's half is discarded and P1's is discarded when it
    /// next asks about its prepared entries. Returns P1's measurements of the job.
    pub(super) async fn commit_model(
        &self,
        job: EntryId,
        on: &mut super::timed::Timed<transport::PeerChannel>,
    ) -> Result<JobStats> {
        let p1 = match on.recv::<PeerReply>(MAX_CONTROL_FRAME).await {
            Ok(PeerReply::JobStored(stats)) => stats,
            other => {
                self.store.remove(&job)?;
                return Err(ServerError::Peer(format!(
                    "job {job}: P1 did not store its model share ({other:?}); nothing was kept"
                )));
            }
        };
        self.store.decide(&job)?;
        match self.peer_request(&PeerRequest::Commit { id: job }).await {
            Ok(PeerReply::Ack) => {
                self.store.commit(&job)?;
                Ok(p1)
            }
            other => Err(ServerError::Peer(format!(
                "job {job}: model decided; it becomes visible when P1 is reachable again ({other:?})"
            ))),
        }
    }
}
