//! The job runner: one party's half of a secure training run on a stored dataset share
//! (SecureML §IV: linear or logistic regression by mini-batch SGD on fixed-point shares, matrix
//! triples from the offline phase, local truncation). The same model code as the in-process
//! experiments (`ml::models`), planned on shapes first (`ml::backend::Plan`) so that the offline
//! phase makes exactly the triples the online phase consumes.

use super::timed::Timed;
use crate::proto::{JobSpec, ModelKind, TripleKind};
use crate::store::Manifest;
use crate::transport::{self, Identity, PeerCert, PeerChannel, TransportKind};
use anyhow::{Context, Result};
use ml::backend::{Backend, Plan, PlanTensor, Shared};
use ml::models::linreg::{self, LinRegHyper, Progress};
use ml::models::logreg;
use ml::Schedule;
use mpc::offline::OtSource;
use mpc::triples::dealer::DealerClient;
use mpc::triples::TripleSource;
use mpc::{FixedPoint, FracBits, Role, Share};
use ndarray::Axis;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where the dealer is, for dealer triples.
#[derive(Debug, Clone)]
pub struct DealerParams {
    /// Dealer address.
    pub address: SocketAddr,
    /// Dealer certificate (pinned).
    pub certificate: PathBuf,
    /// This party's identity directory.
    pub identity_dir: PathBuf,
    /// Transport.
    pub kind: TransportKind,
}

/// What a job needs besides its data.
#[derive(Debug, Clone)]
pub struct JobContext {
    /// This party.
    pub role: Role,
    /// Peer timeout on every receive.
    pub timeout: Duration,
    /// Dealer, if configured.
    pub dealer: Option<DealerParams>,
}

/// Splits a dataset share into features (all other columns) and the label column.
pub fn split_label(s: &Share, label: usize) -> (Share, Share) {
    let v = s.view();
    let cols: Vec<usize> = (0..v.ncols()).filter(|&c| c != label).collect();
    let x = v.select(Axis(1), &cols);
    let y = v.select(Axis(1), &[label]);
    (Share::from_ring(x), Share::from_ring(y))
}

/// Checks a job's hyper-parameters against a dataset of `rows` samples (before any party starts).
///
/// # Errors
/// The model code's error naming the bad hyper-parameter.
pub fn validate(spec: &JobSpec, rows: usize) -> Result<()> {
    LinRegHyper::new(spec.learning_rate, spec.batch_size as usize)?;
    Schedule::shuffled(
        rows,
        spec.batch_size as usize,
        spec.epochs as usize,
        spec.schedule_seed,
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)] // the model code's own arguments plus the model choice
async fn train<B: Backend>(
    b: &mut B,
    model: ModelKind,
    x: &B::Data,
    y: &B::Tensor,
    w: B::Tensor,
    sched: &Schedule,
    hyper: &LinRegHyper,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<B::Tensor> {
    Ok(match model {
        ModelKind::Linreg => linreg::train(b, x, y, w, sched, hyper, progress).await?,
        ModelKind::Logreg => logreg::train(b, x, y, w, sched, hyper, progress).await?,
    })
}

/// Runs one party's half of `spec` on `data` (this party's share of the dataset in `m`): the
/// offline phase on `off`, training on `on`; sends `(step, steps)` progress on `progress`.
/// Returns this party's share of the weights and the online channel (for the end-of-job message).
///
/// # Errors
/// Invalid hyper-parameters, protocol or channel errors (a silent peer fails after the timeout).
pub async fn run(
    ctx: JobContext,
    spec: JobSpec,
    m: Manifest,
    data: Share,
    off: PeerChannel,
    on: PeerChannel,
    progress: tokio::sync::mpsc::UnboundedSender<(u64, u64)>,
) -> Result<(Share, Timed<PeerChannel>)> {
    let (x, y) = split_label(&data, m.label_column as usize);
    drop(data);
    let (n, d) = x.dim();
    let fp = FixedPoint::new(FracBits::new(m.frac_bits)?);
    let hyper = LinRegHyper::new(spec.learning_rate, spec.batch_size as usize)?;
    let sched = Schedule::shuffled(
        n,
        spec.batch_size as usize,
        spec.epochs as usize,
        spec.schedule_seed,
    )?;
    let mut plan = Plan::new();
    let xp = plan.data((n, d));
    train(
        &mut plan,
        spec.model,
        &xp,
        &PlanTensor((n, 1)),
        PlanTensor((d, 1)),
        &sched,
        &hyper,
        &|_| {},
    )
    .await?;
    let requests = plan.into_requests();
    let pre = match spec.triples {
        TripleKind::Ot => {
            let mut src = OtSource::setup(Timed::new(off, ctx.timeout), ctx.role)
                .await
                .context("OT base phase")?;
            src.generate(&requests).await.context("OT triples")?
        }
        TripleKind::Dealer => {
            drop(off);
            let p = ctx
                .dealer
                .context("triples = dealer but no [dealer] in the configuration")?;
            let me = Identity::load(&p.identity_dir)?;
            let cert = PeerCert::load(&p.certificate)?;
            let link = transport::connect(
                p.kind,
                p.address,
                me,
                &cert,
                &transport::TransportOptions::default(),
            )
            .await
            .context("connecting to the dealer")?;
            let ch = Timed::new(link.next_channel().await?, ctx.timeout);
            let mut dc = DealerClient::connect(ch, ctx.role).await?;
            let pre = dc.generate(&requests).await?;
            dc.finish().await?;
            pre
        }
    };
    let steps = sched.steps() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    let cb = |_p: Progress| {
        let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let _ = progress.send((k, steps));
    };
    let mut b = Shared::new(Timed::new(on, ctx.timeout), ctx.role, fp, pre);
    let xd = b.data(&x).await?;
    drop(x);
    let w = train(
        &mut b,
        spec.model,
        &xd,
        &y,
        Share::zeros(d, 1),
        &sched,
        &hyper,
        &cb,
    )
    .await?;
    anyhow::ensure!(
        b.preprocessing_drained(),
        "preprocessing left over after training"
    );
    Ok((w, b.into_channel()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_label_column_is_split_off() {
        let s = Share::from_ring(ndarray::array![[1u64, 2, 3], [4, 5, 6]]);
        let (x, y) = split_label(&s, 1);
        assert_eq!(x.view(), ndarray::array![[1u64, 3], [4, 6]].view());
        assert_eq!(y.view(), ndarray::array![[2u64], [5]].view());
    }
}
