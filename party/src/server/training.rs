//! Training jobs as the server runs them: P0 checks a client's submission, starts the job at
//! P1 over the peer link, streams progress to the client and commits the model; P1 runs its
//! half when P0 asks. The training itself is [`super::job`].

use super::timed::Timed;
use super::{job, reply, ClientChan, Result, Server, ServerError};
use crate::proto::{EntryId, JobSpec, PeerReply, PeerRequest, Reply, MAX_CONTROL_FRAME};
use crate::store::{EntryKind, Manifest};
use crate::transport::PeerChannel;
use mpc::net::{Channel, ChannelExt};
use std::sync::Arc;

impl Server {
    /// P0: runs `owner`'s job `spec` with P1, replying its progress and the end of the job. A
    /// refusal or failure is returned, for the caller to reply.
    pub(super) async fn submit(
        &self,
        ch: &mut ClientChan,
        owner: &str,
        spec: JobSpec,
    ) -> Result<()> {
        if self.cfg.role != 0 {
            return Err(ServerError::BadRequest("submit jobs to P0".into()));
        }
        let m = self.job_dataset(owner, &spec)?;
        let Ok(permit) = self.jobs.clone().try_acquire_owned() else {
            return Err(ServerError::Limit("too many jobs running".into()));
        };
        let job = EntryId::random();
        let (off, on) = self.start_at_p1(job, owner, &m, &spec).await?;
        tracing::info!("job {job} of {owner} started on {}", m.name);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let share = self.store.load_share(&m)?;
        let task = tokio::spawn(job::run(
            self.job_context(),
            spec,
            m.clone(),
            share,
            off,
            on,
            tx,
        ));
        while let Some((step, steps)) = rx.recv().await {
            reply(ch, &Reply::Progress { job, step, steps }).await?;
        }
        let mut out = task.await?.map_err(|source| ServerError::Job {
            job,
            timeout: self.timeout,
            source: Box::new(source),
        })?;
        self.store_model(job, owner, &m, &out.model)?;
        let p1 = self.commit_model(job, &mut out.channel).await?;
        drop(permit);
        let p0 = out.stats;
        tracing::info!(
            "job {job} of {owner} done: offline {:.3} s, online {:.3} s, online bytes sent \
             P0 {} P1 {}, rounds P0 {} P1 {}",
            p0.offline_s,
            p0.online_s,
            p0.online.bytes_sent,
            p1.online.bytes_sent,
            p0.online.rounds,
            p1.online.rounds
        );
        let done = Reply::JobDone {
            job,
            stats: [p0, p1],
        };
        reply(ch, &done).await?;
        Ok(())
    }

    /// The committed dataset of `owner` a job names, with the job's hyper-parameters checked
    /// against it.
    fn job_dataset(&self, owner: &str, spec: &JobSpec) -> Result<Manifest> {
        let Some(m) = self
            .store
            .find_committed(EntryKind::Dataset, owner, &spec.dataset)?
        else {
            tracing::warn!(
                "refused job of {owner}: no dataset {:?} of theirs",
                spec.dataset
            );
            return Err(ServerError::NotFound(format!(
                "no dataset {:?} of yours",
                spec.dataset
            )));
        };
        job::validate(spec, m.rows as usize)
            .map_err(|e| ServerError::BadRequest(super::error::chain(&e)))?;
        Ok(m)
    }

    /// Asks P1 to start `job` and opens its offline and online channels (both sides open them
    /// right after the request); fails when P1 refuses or does not open them in time.
    async fn start_at_p1(
        &self,
        job: EntryId,
        owner: &str,
        m: &Manifest,
        spec: &JobSpec,
    ) -> Result<(PeerChannel, PeerChannel)> {
        let pl = self.current_peer().await?;
        let mut out = pl.out.lock().await;
        let req = PeerRequest::Job {
            job,
            owner: owner.into(),
            dataset: m.id,
            spec: spec.clone(),
        };
        out.send(&req).await.map_err(ServerError::PeerLink)?;
        out.flush().await.map_err(ServerError::PeerLink)?;
        let open = async {
            let off = pl.link.next_channel().await?;
            let on = pl.link.next_channel().await?;
            Ok::<_, ServerError>((off, on))
        };
        let (off, on) = match tokio::time::timeout(self.timeout, open).await {
            Ok(r) => r?,
            Err(_) => {
                self.drop_peer(&pl).await;
                return Err(ServerError::Peer(
                    "P1 did not open the job's channels within the peer timeout".into(),
                ));
            }
        };
        match out.recv::<PeerReply>(MAX_CONTROL_FRAME).await {
            Ok(PeerReply::Ack) => Ok((off, on)),
            Ok(other) => Err(ServerError::Peer(format!("P1 refused the job: {other:?}"))),
            Err(e) => Err(ServerError::PeerLink(e)),
        }
    }

    fn job_context(&self) -> job::JobContext {
        job::JobContext {
            role: self.role(),
            timeout: self.timeout,
            dealer: self.dealer_link_params(),
        }
    }

    fn dealer_link_params(&self) -> Option<job::DealerParams> {
        let d = self.cfg.dealer.as_ref()?;
        Some(job::DealerParams {
            address: d.address,
            certificate: d.certificate.clone(),
            identity_dir: self.cfg.identity_dir.clone(),
            kind: self.kind,
        })
    }

    /// P1: runs its half of `job` on `m` and tells P0 on the online channel that its model
    /// share is stored (its vote in the model's two-phase commit).
    pub(super) async fn run_job_p1(
        self: Arc<Self>,
        job: EntryId,
        owner: String,
        m: Manifest,
        spec: JobSpec,
        off: PeerChannel,
        on: PeerChannel,
    ) -> Result<()> {
        tracing::info!("job {job} of {owner} started on {}", m.name);
        let share = self.store.load_share(&m)?;
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let out = job::run(self.job_context(), spec, m.clone(), share, off, on, tx).await;
        let mut out = out.map_err(|source| ServerError::Job {
            job,
            timeout: self.timeout,
            source: Box::new(source),
        })?;
        self.store_model(job, &owner, &m, &out.model)?;
        let ch: &mut Timed<PeerChannel> = &mut out.channel;
        ch.send(&PeerReply::JobStored(out.stats)).await?;
        ch.flush().await?;
        tracing::info!("job {job} of {owner} done");
        Ok(())
    }
}
