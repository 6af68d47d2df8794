//! The peer link of a party: accepting (P0) or connecting to (P1) the other party, installing a
//! link's two request channels, sending this party's requests and serving the peer's (votes,
//! commits, aborts, recovery status, deletes, job starts, deployment shares).

use super::timed::Timed;
use super::{Result, Server, ServerError};
use crate::proto::{
    decode, EntryId, PeerReply, PeerRequest, PeerState, MAX_CONTROL_FRAME, MAX_JOB_FRAME,
};
use crate::store::{EntryKind, Manifest, State};
use crate::transport::{self, Identity, Link, PeerCert};
use mpc::net::{Channel, ChannelExt};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// The link to the other party and this side's request channel on it.
#[derive(Debug)]
pub(super) struct PeerLink {
    pub(super) link: Link,
    pub(super) out: Mutex<Timed<transport::PeerChannel>>,
}

impl Server {
    async fn install(self: &Arc<Self>, link: Link) -> Result<()> {
        let (c0, c1) = (link.next_channel().await?, link.next_channel().await?);
        let (out, inc) = if self.cfg.role == 0 {
            (c0, c1)
        } else {
            (c1, c0)
        };
        let pl = Arc::new(PeerLink {
            link,
            out: Mutex::new(Timed::new(out, self.timeout)),
        });
        *self.peer.write().await = Some(pl.clone());
        let srv = self.clone();
        tokio::spawn(async move {
            if let Err(e) = srv.serve_peer(pl, inc).await {
                tracing::warn!("peer link ended: {}", e.message());
            }
        });
        Ok(())
    }

    /// P0: accepts the peer's (re)connections, finishing decided commits on each new link.
    pub(super) async fn accept_peers(self: Arc<Self>, l: transport::Listener) {
        loop {
            match l.accept().await {
                Ok(link) => {
                    let from = link.remote_addr();
                    if let Err(e) = self.install(link).await {
                        tracing::warn!("peer link setup failed: {}", e.message());
                        continue;
                    }
                    // Logged once the link is installed: jobs and requests may use it now.
                    tracing::info!("peer connected from {from}");
                    let srv = self.clone();
                    tokio::spawn(async move {
                        if let Err(e) = srv.finish_decided().await {
                            tracing::warn!("recovery: {}", e.message());
                        }
                    });
                }
                Err(e) => tracing::warn!("refused peer connection: {e}"),
            }
        }
    }

    /// P1: connects to P0, resolves its prepared entries on every (re)connection, and
    /// reconnects when the link drops.
    pub(super) async fn connect_peer(self: Arc<Self>, peer: PeerCert) {
        let addr = self.cfg.peer.address.expect("checked by Config::load");
        let opts = transport::TransportOptions::default();
        loop {
            let me = match Identity::load(&self.cfg.identity_dir) {
                Ok(m) => m,
                Err(e) => {
                    tracing::error!("identity: {e}");
                    return;
                }
            };
            match transport::connect(self.kind, addr, me, &peer, &opts).await {
                Ok(link) => {
                    tracing::info!("connected to the peer at {addr}");
                    self.use_link(link).await;
                }
                Err(e) => tracing::warn!("cannot reach the peer at {addr}: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// P1 on a new link: installs it, resolves the prepared entries, waits for it to drop.
    async fn use_link(self: &Arc<Self>, link: Link) {
        // Every (re)connection: P0 may have restarted (aborting its undecided uploads) or
        // decided while the link was down.
        let mut pending: Vec<EntryId> = self
            .store
            .all()
            .map(|v| {
                v.into_iter()
                    .filter(|m| m.state == State::Prepared)
                    .map(|m| m.id)
                    .collect()
            })
            .unwrap_or_default();
        if let Err(e) = self.install(link).await {
            tracing::warn!("peer link setup failed: {}", e.message());
        } else if let Err(e) = self.resolve_prepared(&mut pending).await {
            tracing::warn!("recovery: {}", e.message());
        }
        // Wait for the link to drop.
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if self.peer.read().await.is_none() {
                break;
            }
        }
    }

    pub(super) async fn current_peer(&self) -> Result<Arc<PeerLink>> {
        self.peer
            .read()
            .await
            .clone()
            .ok_or_else(|| ServerError::Peer("the peer party is not connected".into()))
    }

    pub(super) async fn drop_peer(&self, pl: &Arc<PeerLink>) {
        let mut g = self.peer.write().await;
        if g.as_ref().is_some_and(|c| Arc::ptr_eq(c, pl)) {
            *g = None;
        }
    }

    /// Sends a request to the peer and waits for its reply (with the peer timeout).
    pub(super) async fn peer_request(&self, req: &PeerRequest) -> Result<PeerReply> {
        let pl = self.current_peer().await?;
        let mut out = pl.out.lock().await;
        let r = async {
            out.send(req).await?;
            out.flush().await?;
            out.recv::<PeerReply>(MAX_CONTROL_FRAME).await
        }
        .await;
        drop(out);
        if r.is_err() {
            self.drop_peer(&pl).await;
        }
        r.map_err(ServerError::PeerLink)
    }

    /// Serves the peer's requests on `inc` until the link drops.
    async fn serve_peer(
        self: Arc<Self>,
        pl: Arc<PeerLink>,
        mut inc: transport::PeerChannel,
    ) -> Result<()> {
        let r: Result<()> = async {
            loop {
                let frame = inc.recv_frame(MAX_CONTROL_FRAME).await?;
                let mut req: PeerRequest = decode(&frame, MAX_CONTROL_FRAME)?;
                if let PeerRequest::JobFollows { bytes } = req {
                    req = recv_large_job(&mut inc, bytes).await?;
                }
                let rep = match req {
                    PeerRequest::DeployShare(spec) => {
                        // Replies itself: a refusal, or the share's header and words.
                        self.release_share(&mut inc, spec).await?;
                        continue;
                    }
                    PeerRequest::Job {
                        job,
                        owner,
                        dataset,
                        spec,
                    } => {
                        let pl = pl.clone();
                        self.clone()
                            .start_job_p1(&pl, job, owner, dataset, spec)
                            .await?
                    }
                    PeerRequest::Join(spec) => self.join_p1(&spec),
                    other => self.handle_peer(other).unwrap_or_else(|e| {
                        tracing::warn!("peer request failed: {}", e.message());
                        PeerReply::Refused(e.message())
                    }),
                };
                inc.send(&rep).await?;
                inc.flush().await?;
            }
        }
        .await;
        self.drop_peer(&pl).await;
        r
    }

    /// P1: opens the job's two channels (both sides do right after the request) and starts
    /// its half of the job if the dataset is a committed dataset of `owner`.
    async fn start_job_p1(
        self: Arc<Self>,
        pl: &PeerLink,
        job: EntryId,
        owner: String,
        dataset: EntryId,
        spec: crate::proto::JobSpec,
    ) -> Result<PeerReply> {
        let off = pl.link.next_channel().await?;
        let on = pl.link.next_channel().await?;
        let checked = match self.check_job_dataset(&owner, &dataset, &spec) {
            // P1 checks the job on its own: it does not rely on P0's check.
            Ok(m) => match self.job_model(&owner, &spec) {
                Ok(model) => super::job::validate(&spec, &m, model.as_ref(), &self.job_context())
                    .await
                    .map(|()| m)
                    .map_err(|e| ServerError::BadRequest(super::error::chain(&e))),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        match checked {
            Ok(m) => {
                self.feeds.open(job, &owner);
                tokio::spawn(async move {
                    let r = self.run_job_p1(job, owner, m, spec, off, on).await;
                    if let Err(e) = r {
                        tracing::warn!("job {job} failed: {}", e.message());
                    }
                });
                Ok(PeerReply::Ack)
            }
            Err(e) => {
                tracing::warn!("refused job {job} of {owner}: {}", e.message());
                Ok(PeerReply::JobRefused {
                    code: e.code(),
                    message: e.message(),
                })
            }
        }
    }

    /// The committed dataset `id` of `owner` a job runs on (for a fold: the model it names).
    fn check_job_dataset(
        &self,
        owner: &str,
        id: &EntryId,
        spec: &crate::proto::JobSpec,
    ) -> Result<Manifest> {
        let m = self.store.get(id)?;
        let kind = match &spec.model {
            crate::proto::ModelKind::Fold(f) if f.model == *id => EntryKind::Model,
            _ => EntryKind::Dataset,
        };
        if m.kind == kind && m.owner == owner && m.state == State::Committed {
            return Ok(m);
        }
        Err(ServerError::Forbidden(format!(
            "dataset {id} is not a committed dataset of {owner}"
        )))
    }

    /// Whether `base` is the current committed version of `m`'s dataset (an appended version
    /// may be committed only on top of the version it extends).
    fn is_current_version(&self, m: &Manifest, base: EntryId) -> bool {
        self.store
            .find_committed(EntryKind::Dataset, &m.owner, &m.name)
            .ok()
            .flatten()
            .is_some_and(|c| c.id == base)
    }

    fn handle_peer(&self, req: PeerRequest) -> Result<PeerReply> {
        Ok(match req {
            PeerRequest::Vote {
                id,
                owner,
                name,
                rows,
                cols,
                tensor,
                standardized,
            } => {
                let ok = self.store.get(&id).is_ok_and(|m| {
                    m.state == State::Prepared
                        && m.owner == owner
                        && m.name == name
                        && m.rows == rows
                        && m.cols == cols
                        && m.tensor == tensor
                        && m.standardization.as_ref().map(|s| &s.columns) == standardized.as_ref()
                        && m.supersedes
                            .is_none_or(|base| self.is_current_version(&m, base))
                });
                PeerReply::Vote(ok)
            }
            PeerRequest::Commit { id } => {
                self.store.commit(&id)?;
                tracing::info!("committed {id}");
                PeerReply::Ack
            }
            PeerRequest::Abort { id } => {
                if let Ok(m) = self.store.get(&id) {
                    if m.state != State::Committed {
                        self.store.remove(&id)?;
                    }
                }
                PeerReply::Ack
            }
            PeerRequest::Status { id } => PeerReply::State(match self.store.get(&id) {
                Ok(m) if m.state == State::Prepared => PeerState::Prepared,
                Ok(_) => PeerState::Committed,
                Err(_) => PeerState::Absent,
            }),
            PeerRequest::Delete { id, owner } => {
                if let Ok(m) = self.store.get(&id) {
                    if m.owner != owner {
                        return Err(ServerError::Forbidden(format!(
                            "entry {id} is not {owner}'s"
                        )));
                    }
                    self.store.remove(&id)?;
                }
                PeerReply::Ack
            }
            PeerRequest::Job { .. } | PeerRequest::DeployShare(_) | PeerRequest::Join(_) => {
                unreachable!("handled by serve_peer")
            }
            PeerRequest::JobFollows { .. } => unreachable!("resolved by serve_peer"),
        })
    }
}

/// The `Job` request announced by `JobFollows { bytes }`: one frame of at most
/// [`MAX_JOB_FRAME`] bytes (a job carrying its initial model).
async fn recv_large_job(inc: &mut transport::PeerChannel, bytes: u64) -> Result<PeerRequest> {
    if bytes > MAX_JOB_FRAME as u64 {
        return Err(ServerError::Peer(format!(
            "P0 announced a job of {bytes} bytes, above the limit of {MAX_JOB_FRAME}"
        )));
    }
    let frame = inc.recv_frame(bytes as usize).await?;
    match decode(&frame, MAX_JOB_FRAME)? {
        r @ PeerRequest::Job { .. } => Ok(r),
        _ => Err(ServerError::Peer(
            "JobFollows must be followed by a Job request".into(),
        )),
    }
}
