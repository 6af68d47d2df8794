//! Following a training job as its owner: submitting it to P0 (a job carrying an initial model
//! in one large frame announced by `SubmitFollows`), its progress, and — for jobs that report
//! per-epoch statistics — the loss, reconstructed from both parties' shares.
//!
//! P0 sends its shares of each epoch's per-sample `p_true` (the probability of the true class)
//! in the submit stream; P1 sends its own on a second connection, opened by
//! [`Client::submit_watched`] with `Watch { job }` as soon as the job id is known (P1 admits
//! only the job's owner). Neither party sees the other's shares; the owner adds them and
//! computes the mean cross-entropy `−mean ln max(p, 10⁻⁶)` ([`cross_entropy`]).

use super::{refused, Client, ClientError, Result};
use crate::proto::{
    ClientRequest, EntryId, JobSpec, JobStats, Reply, TripleKind, MAX_CONTROL_FRAME, MAX_JOB_FRAME,
};
use mpc::net::{Channel, ChannelExt};
use mpc::{FixedPoint, FracBits, Share};

/// Probabilities below this are clipped before the logarithm of [`cross_entropy`].
pub const P_TRUE_FLOOR: f64 = 1e-6;

/// A finished job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JobDone {
    /// The job (the trained model's id).
    pub job: EntryId,
    /// Time and traffic of each party (P0's, then P1's).
    pub stats: [JobStats; 2],
    /// The triple source the job ran with (`auto` resolved by P0).
    pub triples: TripleKind,
}

/// A job's progress as the client sees it: the parties report steps; epochs follow from the
/// job's epoch count (every epoch has the same number of full batches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobProgress {
    /// Training steps done.
    pub step: u64,
    /// All steps of the job.
    pub steps: u64,
    /// The epoch the last step belonged to (1-based).
    pub epoch: u64,
    /// All epochs.
    pub epochs: u64,
    /// The triple source the job runs with (`auto` resolved by P0).
    pub triples: TripleKind,
}

/// An epoch's training statistics, reconstructed by the owner.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpochLoss {
    /// The epoch (1-based).
    pub epoch: u64,
    /// All epochs.
    pub epochs: u64,
    /// Samples the epoch trained on.
    pub samples: u64,
    /// Mean cross-entropy over those samples ([`cross_entropy`]).
    pub loss: f64,
    /// Fraction of samples whose true class got probability above ½ (a lower bound on the
    /// training accuracy).
    pub confident: f64,
}

/// What [`Client::submit_watched`] reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum JobUpdate {
    /// Steps done.
    Progress(JobProgress),
    /// An epoch ended.
    Epoch(EpochLoss),
}

/// `−mean ln max(p, P_TRUE_FLOOR)` over the probabilities of the true class (0 for none).
pub fn cross_entropy(p_true: &[f64]) -> f64 {
    if p_true.is_empty() {
        return 0.0;
    }
    let s: f64 = p_true.iter().map(|&p| p.max(P_TRUE_FLOOR).ln()).sum();
    -s / p_true.len() as f64
}

/// The statistics of one epoch from both parties' shares.
fn epoch_loss(epoch: u64, epochs: u64, s0: &Share, s1: &Share, fp: FixedPoint) -> EpochLoss {
    let p = fp.decode_matrix(&mpc::share::reconstruct(s0, s1).view());
    let p: Vec<f64> = p.iter().copied().collect();
    let confident = p.iter().filter(|&&x| x > 0.5).count() as f64 / p.len().max(1) as f64;
    EpochLoss {
        epoch,
        epochs,
        samples: p.len() as u64,
        loss: cross_entropy(&p),
        confident,
    }
}

/// One epoch's shares from one party.
pub(super) struct Shares {
    pub(super) epoch: u64,
    pub(super) share: Share,
    pub(super) frac_bits: FracBits,
}

impl Client {
    /// Sends `Submit(spec)`, announced by `SubmitFollows` when it exceeds a control frame.
    pub(super) async fn send_submit(&mut self, spec: &JobSpec) -> Result<()> {
        let frame = mpc::net::encode_message(&ClientRequest::Submit(spec.clone()))?;
        if frame.len() > MAX_CONTROL_FRAME {
            if frame.len() > MAX_JOB_FRAME {
                return Err(ClientError::Unexpected {
                    got: format!(
                        "a job of {} bytes (the initial model is too large; the limit is \
                         {MAX_JOB_FRAME})",
                        frame.len()
                    ),
                });
            }
            let bytes = frame.len() as u64;
            self.ch
                .send(&ClientRequest::SubmitFollows { bytes })
                .await?;
        }
        self.ch.send_frame(frame).await?;
        Ok(self.ch.flush().await?)
    }

    /// The words of an `EpochShares` reply whose header announced `count`.
    pub(super) async fn recv_shares(&mut self, count: u64) -> Result<Share> {
        Ok(Share::from_ring(
            self.ch.recv_ring(count as usize, 1).await?,
        ))
    }

    /// P1's next epoch shares on a watch connection.
    pub(super) async fn next_watched(&mut self, job: EntryId) -> Result<Shares> {
        match self.recv().await? {
            Reply::EpochShares {
                job: j,
                epoch,
                count,
                frac_bits,
                ..
            } if j == job => Ok(Shares {
                epoch,
                share: self.recv_shares(count).await?,
                frac_bits,
            }),
            other => Err(refused(other)),
        }
    }

    /// Submits `spec` (to P0) and follows the job to its end, calling `progress` after every
    /// training step; returns the job id (the model's id, for [`super::reveal_model`]) and what
    /// both parties measured. Per-epoch shares P0 sends are read and dropped (the loss needs
    /// P1's too: see [`Client::submit_watched`]).
    ///
    /// # Errors
    /// Connection errors, [`ClientError::Refused`] when P0 refuses or the job fails on either
    /// party (the message says why).
    pub async fn submit(
        &mut self,
        spec: &JobSpec,
        progress: &mut (dyn FnMut(JobProgress) + Send),
    ) -> Result<JobDone> {
        let mut on = |u: JobUpdate| {
            if let JobUpdate::Progress(p) = u {
                progress(p);
            }
        };
        self.follow(spec, None, &mut on).await
    }

    /// As [`Client::submit`], and watches the job at P1 (`p1`, a connection to P1) to report
    /// each epoch's loss from both parties' shares.
    ///
    /// # Errors
    /// As [`Client::submit`]; [`ClientError::WrongRole`] when `p1` is not P1; P1's refusal of
    /// the watch.
    pub async fn submit_watched(
        &mut self,
        p1: &mut Client,
        spec: &JobSpec,
        updates: &mut (dyn FnMut(JobUpdate) + Send),
    ) -> Result<JobDone> {
        if p1.role != 1 {
            return Err(ClientError::WrongRole {
                addr: p1.addr,
                got: p1.role,
                want: 1,
            });
        }
        self.follow(spec, Some(p1), updates).await
    }

    /// The submit stream, with P1's watch stream when `p1` is given.
    async fn follow(
        &mut self,
        spec: &JobSpec,
        mut p1: Option<&mut Client>,
        updates: &mut (dyn FnMut(JobUpdate) + Send),
    ) -> Result<JobDone> {
        let epochs = spec.epochs.max(1);
        self.send_submit(spec).await?;
        let mut watching = false;
        let mut pending: Option<Shares> = None;
        let mut source = spec.triples;
        loop {
            match self.recv().await? {
                Reply::Progress {
                    job,
                    step,
                    steps,
                    triples,
                } => {
                    source = triples;
                    if let (false, Some(c)) = (watching, p1.as_deref_mut()) {
                        c.send(&ClientRequest::Watch { job }).await?;
                        watching = true;
                    }
                    let per_epoch = (steps / epochs).max(1);
                    updates(JobUpdate::Progress(JobProgress {
                        step,
                        steps,
                        epoch: (step.saturating_sub(1) / per_epoch + 1).min(epochs),
                        epochs,
                        triples,
                    }));
                }
                Reply::EpochShares {
                    job,
                    epoch,
                    epochs,
                    count,
                    frac_bits,
                } => {
                    let s0 = self.recv_shares(count).await?;
                    let Some(c) = p1.as_deref_mut().filter(|_| watching) else {
                        continue;
                    };
                    let s1 = match pending.take() {
                        Some(s) => s,
                        None => c.next_watched(job).await?,
                    };
                    if s1.epoch > epoch {
                        // P1 dropped this epoch unread (its buffer was full): no loss for it.
                        pending = Some(s1);
                        continue;
                    }
                    if s1.epoch != epoch || s1.share.dim() != s0.dim() || s1.frac_bits != frac_bits
                    {
                        return Err(ClientError::ModelMismatch {
                            p0: (s0.dim().0, s0.dim().1, frac_bits.get()),
                            p1: (s1.share.dim().0, s1.share.dim().1, s1.frac_bits.get()),
                            expected: format!("the shares of epoch {epoch} from both parties"),
                        });
                    }
                    let fp = FixedPoint::new(frac_bits);
                    updates(JobUpdate::Epoch(epoch_loss(
                        epoch, epochs, &s0, &s1.share, fp,
                    )));
                }
                Reply::JobDone { job, stats } => {
                    if let (true, Some(c)) = (watching, p1) {
                        c.end_watch(job).await?;
                    }
                    return Ok(JobDone {
                        job,
                        stats,
                        triples: source,
                    });
                }
                other => return Err(refused(other)),
            }
        }
    }

    /// Reads P1's watch stream to its end (`Done`), skipping epochs P0's stream did not match.
    pub(super) async fn end_watch(&mut self, job: EntryId) -> Result<()> {
        loop {
            match self.recv().await? {
                Reply::Done => return Ok(()),
                Reply::EpochShares { job: j, count, .. } if j == job => {
                    self.recv_shares(count).await?;
                }
                other => return Err(refused(other)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_is_the_mean_negative_log_with_a_floor() {
        assert_eq!(cross_entropy(&[]), 0.0);
        assert!((cross_entropy(&[1.0, 1.0]) - 0.0).abs() < 1e-15);
        let want = -(0.5f64.ln() + 0.25f64.ln()) / 2.0;
        assert!((cross_entropy(&[0.5, 0.25]) - want).abs() < 1e-15);
        // Fixed-point noise can make p slightly negative: clipped at the floor.
        let floor = -P_TRUE_FLOOR.ln();
        assert!((cross_entropy(&[-1e-5]) - floor).abs() < 1e-12);
    }

    #[test]
    fn epoch_statistics_come_from_both_shares() {
        let fp = FixedPoint::default();
        let p = ndarray::array![[0.9], [0.4], [0.6], [0.05]];
        let mut rng = mpc::share::os_rng();
        let [s0, s1] = mpc::share::share(&fp.encode_matrix(&p.view()).unwrap().view(), &mut rng);
        let e = epoch_loss(2, 5, &s0, &s1, fp);
        assert_eq!((e.epoch, e.epochs, e.samples), (2, 5, 4));
        assert_eq!(e.confident, 0.5);
        let want = cross_entropy(&[0.9, 0.4, 0.6, 0.05]);
        assert!((e.loss - want).abs() < 1e-4, "{} vs {want}", e.loss);
        // One share alone says nothing about p (it is uniform): its decoding is not the loss.
        let alone = epoch_loss(2, 5, &s0, &Share::zeros(4, 1), fp);
        assert!((alone.loss - want).abs() > 1e-3 || alone.confident != 0.5);
    }
}
