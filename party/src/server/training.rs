//! Training jobs as the server runs them: P0 checks a client's submission, starts the job at
//! P1 over the peer link, streams progress (and its own shares of the per-epoch statistics) to
//! the client and commits the model; P1 checks the job on its own, runs its half when P0 asks
//! and buffers its statistics shares for the owner's watch ([`super::feeds`]). The training
//! itself is [`super::job`].

use super::feeds::{EpochShares, FeedItem, WatchRefusal};
use super::timed::Timed;
use super::upload::Then;
use super::{job, reply, ClientChan, Result, Server, ServerError};
use crate::proto::{
    decode, ClientRequest, EntryId, JobSpec, PeerReply, PeerRequest, Reply, TripleKind,
    MAX_CONTROL_FRAME, MAX_JOB_FRAME,
};
use crate::store::{EntryKind, Manifest};
use crate::transport::PeerChannel;
use job::JobEvent;
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
        let m = self.job_dataset(owner, &spec).await?;
        let spec = self.resolve_triples(owner, spec, &m).await?;
        let Ok(permit) = self.jobs.clone().try_acquire_owned() else {
            return Err(ServerError::Limit("too many jobs running".into()));
        };
        let job = EntryId::random();
        let (off, on) = self.start_at_p1(job, owner, &m, &spec).await?;
        tracing::info!(
            "job {job} of {owner} started on {} with {} triples",
            m.name,
            spec.triples.name()
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let share = self.store.load_share(&m)?;
        let model = self.job_model_input(owner, &spec)?;
        // The job id before any step: the owner watches P1's statistics with it.
        let steps = (m.rows / spec.batch_size.max(1)) * spec.epochs;
        reply(
            ch,
            &Reply::Progress {
                job,
                step: 0,
                steps,
                triples: spec.triples,
            },
        )
        .await?;
        let triples = spec.triples;
        let task = tokio::spawn(job::run(
            self.job_context(),
            spec,
            m.clone(),
            share,
            model,
            off,
            on,
            tx,
        ));
        while let Some(e) = rx.recv().await {
            self.forward_event(ch, job, triples, &m, e).await?;
        }
        let mut out = task.await?.map_err(|source| ServerError::Job {
            job,
            timeout: self.timeout,
            source: Box::new(source),
        })?;
        self.store_output(job, owner, &m, &out)?;
        let p1 = self.keep_output(job, &mut out).await?;
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

    /// Sends one event of a running job to its owner: a step as `Progress`, an epoch's
    /// statistics as P0's shares (`EpochShares` and the words).
    async fn forward_event(
        &self,
        ch: &mut ClientChan,
        job: EntryId,
        triples: TripleKind,
        m: &Manifest,
        e: JobEvent,
    ) -> Result<()> {
        match e {
            JobEvent::Step { step, steps } => {
                let p = Reply::Progress {
                    job,
                    step,
                    steps,
                    triples,
                };
                reply(ch, &p).await?;
            }
            JobEvent::Epoch {
                epoch,
                epochs,
                p_true,
            } => {
                let head = Reply::EpochShares {
                    job,
                    epoch,
                    epochs,
                    count: p_true.dim().0 as u64,
                    frac_bits: m.frac_bits,
                };
                ch.send(&head).await?;
                ch.send_ring(&p_true.view()).await?;
                ch.flush().await?;
            }
        }
        Ok(())
    }

    /// `spec` with its triple source resolved (`auto` → `ot` or `he`, logged with the estimate).
    async fn resolve_triples(
        &self,
        owner: &str,
        mut spec: JobSpec,
        m: &Manifest,
    ) -> Result<JobSpec> {
        let (kind, estimate) = job::resolve_triples(&spec, m).await.map_err(|e| {
            tracing::warn!("refused job of {owner}: {}", super::error::chain(&e));
            ServerError::BadRequest(super::error::chain(&e))
        })?;
        if let Some(e) = estimate {
            tracing::info!(
                "job of {owner} on {}: triples auto → {}",
                m.name,
                e.describe()
            );
        }
        spec.triples = kind;
        Ok(spec)
    }

    /// The committed dataset of `owner` a job names, with the job checked against it (for a
    /// fold, the model it names: the model is its input).
    async fn job_dataset(&self, owner: &str, spec: &JobSpec) -> Result<Manifest> {
        let m = match &spec.model {
            crate::proto::ModelKind::Fold(_) => self.job_model(owner, spec)?,
            _ => self
                .store
                .find_committed(EntryKind::Dataset, owner, &spec.dataset)?,
        };
        let Some(m) = m else {
            tracing::warn!(
                "refused job of {owner}: no dataset {:?} of theirs",
                spec.dataset
            );
            return Err(ServerError::NotFound(format!(
                "no dataset {:?} of yours",
                spec.dataset
            )));
        };
        let model = self.job_model(owner, spec)?;
        job::validate(spec, &m, model.as_ref(), &self.job_context())
            .await
            .map_err(|e| {
                tracing::warn!("refused job of {owner}: {}", super::error::chain(&e));
                ServerError::BadRequest(super::error::chain(&e))
            })?;
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
        let frame = mpc::net::encode_message(&req)?;
        if frame.len() > MAX_CONTROL_FRAME {
            if frame.len() > MAX_JOB_FRAME {
                return Err(ServerError::Limit(format!(
                    "the job is {} bytes, above the limit of {MAX_JOB_FRAME}",
                    frame.len()
                )));
            }
            let head = PeerRequest::JobFollows {
                bytes: frame.len() as u64,
            };
            out.send(&head).await.map_err(ServerError::PeerLink)?;
        }
        out.send_frame(frame).await.map_err(ServerError::PeerLink)?;
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
            Ok(PeerReply::JobRefused { code, message }) => Err(ServerError::refused((
                code,
                format!("P1 refused the job: {message}"),
            ))),
            Ok(other) => Err(ServerError::Peer(format!("P1 refused the job: {other:?}"))),
            Err(e) => Err(ServerError::PeerLink(e)),
        }
    }

    pub(super) fn job_context(&self) -> job::JobContext {
        job::JobContext {
            role: self.role(),
            timeout: self.timeout,
            dealer: self.dealer_link_params(),
            max_preprocessing_bytes: self.cfg.limits.max_job_preprocessing_bytes,
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
        let r = self
            .clone()
            .run_p1_half(job, &owner, m, spec, off, on)
            .await;
        self.feeds
            .end(job, r.as_ref().map(|_| ()).map_err(ServerError::message));
        r
    }

    /// P1's half of `job`: the training (its epoch statistics into the job's feed), the model
    /// share stored, the `JobStored` vote.
    async fn run_p1_half(
        self: Arc<Self>,
        job: EntryId,
        owner: &str,
        m: Manifest,
        spec: JobSpec,
        off: PeerChannel,
        on: PeerChannel,
    ) -> Result<()> {
        let share = self.store.load_share(&m)?;
        let model = self.job_model_input(owner, &spec)?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let (srv, frac_bits) = (self.clone(), m.frac_bits);
        let forward = tokio::spawn(async move {
            while let Some(e) = rx.recv().await {
                if let JobEvent::Epoch {
                    epoch,
                    epochs,
                    p_true,
                } = e
                {
                    let shares = EpochShares {
                        epoch,
                        epochs,
                        p_true,
                        frac_bits,
                    };
                    srv.feeds.push(job, shares);
                }
            }
        });
        let ctx = self.job_context();
        let out = job::run(ctx, spec, m.clone(), share, model, off, on, tx).await;
        forward.await?;
        let mut out = out.map_err(|source| ServerError::Job {
            job,
            timeout: self.timeout,
            source: Box::new(source),
        })?;
        self.store_output(job, owner, &m, &out)?;
        let ch: &mut Timed<PeerChannel> = &mut out.channel;
        ch.send(&PeerReply::JobStored(out.stats)).await?;
        ch.flush().await?;
        tracing::info!("job {job} of {owner} done");
        Ok(())
    }
}

impl Server {
    /// P0: a `Submit` announced by `SubmitFollows` (a job carrying its initial model): reads
    /// the one frame of `bytes` (at most [`MAX_JOB_FRAME`]) and runs it like a `Submit`. A
    /// refusal before the frame is read closes the connection (the stream cannot be
    /// resynchronized without reading it).
    pub(super) async fn submit_follows(
        &self,
        ch: &mut ClientChan,
        owner: &str,
        bytes: u64,
    ) -> Result<Then> {
        let refuse = if self.cfg.role != 0 {
            Some(ServerError::BadRequest("submit jobs to P0".into()))
        } else if bytes > MAX_JOB_FRAME as u64 {
            Some(ServerError::Limit(format!(
                "a job of {bytes} bytes is above the limit of {MAX_JOB_FRAME}"
            )))
        } else if self.jobs.available_permits() == 0 {
            Some(ServerError::Limit("too many jobs running".into()))
        } else {
            None
        };
        if let Some(e) = refuse {
            tracing::warn!("refused job of {owner}: {}", e.message());
            reply(ch, &e.reply()).await?;
            return Ok(Then::Close);
        }
        let frame = ch.recv_frame(bytes as usize).await?;
        let r = match decode::<ClientRequest>(&frame, MAX_JOB_FRAME) {
            Ok(ClientRequest::Submit(spec)) => {
                drop(frame);
                self.submit(ch, owner, spec).await
            }
            Ok(_) => Err(ServerError::BadRequest(
                "SubmitFollows must be followed by a Submit".into(),
            )),
            Err(e) => Err(ServerError::BadRequest(e.to_string())),
        };
        if let Err(e) = r {
            tracing::warn!("client {owner}: job failed: {}", e.message());
            reply(ch, &e.reply()).await?;
        }
        Ok(Then::Continue)
    }

    /// P1: streams this party's shares of the per-epoch statistics of `owner`'s job `job`
    /// (buffered in its feed) until the job ends here (`Done`) or fails (`Error`).
    pub(super) async fn watch(&self, ch: &mut ClientChan, owner: &str, job: EntryId) -> Result<()> {
        if self.cfg.role != 1 {
            return Err(ServerError::BadRequest(
                "watch jobs at P1 (P0 sends its shares in the submit stream)".into(),
            ));
        }
        let mut w = self.feeds.watch(job, owner).map_err(|r| match r {
            WatchRefusal::Unknown => {
                ServerError::NotFound(format!("no running or unread job {job} here"))
            }
            WatchRefusal::NotOwner => {
                tracing::warn!("refused {owner}: watching job {job}, which is not theirs");
                ServerError::Forbidden("not your job".into())
            }
            WatchRefusal::Busy => ServerError::Limit(format!(
                "job {job} is watched by another connection of yours"
            )),
        })?;
        tracing::info!("{owner} watches job {job}");
        while let Some(item) = w.next().await {
            match item {
                FeedItem::Epoch(e) => {
                    let head = Reply::EpochShares {
                        job,
                        epoch: e.epoch,
                        epochs: e.epochs,
                        count: e.p_true.dim().0 as u64,
                        frac_bits: e.frac_bits,
                    };
                    ch.send(&head).await?;
                    ch.send_ring(&e.p_true.view()).await?;
                    ch.flush().await?;
                }
                FeedItem::End(Ok(())) => {
                    reply(ch, &Reply::Done).await?;
                    return Ok(());
                }
                FeedItem::End(Err(m)) => {
                    return Err(ServerError::Internal(format!(
                        "job {job} failed at P1: {m}"
                    )))
                }
            }
        }
        Err(ServerError::NotFound(format!("job {job} is gone")))
    }
}
