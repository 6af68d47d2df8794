//! One party's half of an ST-GCN job (`ml::models::stgcn` on `Shared`): the shared labels
//! become one-hot rows and the clips are normalized (the first chunk), the BNs are optionally
//! re-calibrated on public-chosen clips (`calibration_clips`, one chunk), then the schedule's
//! steps run in chunks — each planned on shapes, its preprocessing made by the job's triple
//! source, then consumed by the online steps — and finally the trained parameters are exported
//! as the model file's tensors and stored as this party's share of a
//! [`ModelMeta::Stgcn`] entry (one column, every tensor of `stgcn::StGcn::tensors()` in order,
//! row-major).
//!
//! Chunks never span two epochs and hold at most [`MAX_CHUNK_PREPROCESSING_BYTES`] of
//! preprocessing (estimated per party from the requests), so memory stays bounded for any
//! number of epochs; the source is kept from chunk to chunk. Every chunk's backend is made by
//! one function (`session`) with the same codec (the dataset's fractional bits), role and
//! truncation mode, and must consume exactly its preprocessing.
//!
//! Truncation is exact ([`Truncation::Exact`]): SecureML's local truncation fails with
//! probability 2^(l_x+1−64) per value below 2^l_x; an ST-GCN step truncates every activation,
//! gradient and update value, millions per step, so over a run of `n` truncations the union
//! bound `n · 2^(l_x+1−64)` (`mpc::trunc::run_failure_bound`, logged at the end of each job) is
//! far from negligible (e.g. 10⁹ truncations of 40-bit values: bound 1). Exact truncation
//! never fails for |x| < 2^62, at one elementwise triple and one round per truncation.
//!
//! Security model: two semi-honest, non-colluding parties (see [`super`]); the starting model,
//! the structure, the hyper-parameters and the batch schedule are public, everything else is
//! shared. Per epoch each party reports its shares of `p_true` (the probability of each
//! sample's true class) for the owner alone; they are uniform to the party that holds them.

use super::labels::{one_hot_labels, plan_one_hot, split_label};
use super::offline::Offline;
use super::stgcn_spec::{self, StgcnJob};
use super::{JobContext, JobError, JobEvent, JobOutput, Result, Step};
use crate::proto::{JobSpec, JobStats, ModelKind, ModelMeta};
use crate::server::timed::Timed;
use crate::store::Manifest;
use crate::transport::PeerChannel;
use ml::backend::{Plan, Shared};
use ml::models::stgcn::{self as model, StgcnHyper, StgcnShape, StgcnState};
use ml::Schedule;
use mpc::net::Metered;
use mpc::triples::choice::{Estimate, Estimator};
use mpc::triples::{Preprocessing, TripleRequest};
use mpc::trunc::Truncation;
use mpc::{FixedPoint, Role, Share};
use ndarray::{Array2, Axis};
use std::time::Instant;

/// Most preprocessing (bytes per party, estimated from the requests) one chunk of steps may
/// hold; a chunk has at least one step.
pub const MAX_CHUNK_PREPROCESSING_BYTES: u64 = 1 << 30;

/// The truncation mode of every ST-GCN job.
pub const TRUNCATION: Truncation = Truncation::Exact;

/// The online channel: metered over the whole job.
type OnChannel = Metered<Timed<PeerChannel>>;

/// The public setup both parties derive from the job: starting model, structure, optimizer.
struct Setup {
    job: StgcnJob,
    shape: StgcnShape,
    hyper: StgcnHyper,
    sched: Schedule,
    fp: FixedPoint,
    calibration_clips: u32,
}

impl Setup {
    /// Clips of the BN re-calibration (0: none).
    fn job_calibration_clips(&self) -> usize {
        self.calibration_clips as usize
    }

    fn of(spec: &JobSpec, m: &Manifest, n: usize) -> Result<Self> {
        let ModelKind::Stgcn(s) = &spec.model else {
            return Err(JobError::Internal("not an ST-GCN job"));
        };
        let job = stgcn_spec::validate(spec, s, m)?;
        let shape = StgcnShape::from_model(&job.model)?;
        let hyper = StgcnHyper {
            learning_rate: spec.learning_rate,
            momentum: s.momentum,
            weight_decay: s.weight_decay,
            batch_size: spec.batch_size as usize,
        };
        let sched = Schedule::shuffled(
            n,
            spec.batch_size as usize,
            spec.epochs as usize,
            spec.schedule_seed,
        )?;
        let fp = FixedPoint::new(m.frac_bits);
        Ok(Self {
            job,
            shape,
            hyper,
            sched,
            fp,
            calibration_clips: s.calibration_clips,
        })
    }
}

/// The backend of one chunk: this party's role, the job's codec and truncation mode, the
/// chunk's preprocessing.
fn session(ch: OnChannel, role: Role, fp: FixedPoint, pre: Preprocessing) -> Shared<OnChannel> {
    Shared::new(ch, role, fp, pre).with_truncation(TRUNCATION)
}

/// Ends a chunk: checks its preprocessing is used up, returns the channel and the count of
/// truncated values.
fn end_chunk(b: Shared<OnChannel>, what: &'static str) -> Result<(OnChannel, u64)> {
    if !b.preprocessing_drained() {
        return Err(JobError::Internal(what));
    }
    let t = b.truncations();
    Ok((b.into_channel(), t))
}

/// Runs one party's half of an ST-GCN job (see [`super::run`]).
pub(super) async fn run(
    ctx: JobContext,
    spec: JobSpec,
    m: Manifest,
    data: Share,
    off: PeerChannel,
    on: PeerChannel,
    events: tokio::sync::mpsc::UnboundedSender<JobEvent>,
) -> Result<JobOutput> {
    let (x, y) = split_label(&data, m.label_column as usize);
    drop(data);
    let n = x.dim().0;
    let st = Setup::of(&spec, &m, n)?;
    let mut offline = Offline::setup(&ctx, spec.triples, spec.ot_extension, off).await?;
    let mut online = Online {
        ch: Some(Metered::new(Timed::new(on, ctx.timeout))),
        role: ctx.role,
        fp: st.fp,
        seconds: 0.0,
        truncations: 0,
    };
    let meter = online.ch.as_ref().map(Metered::meter).expect("channel");
    let (xp, y1h) = online.prepare(&st, &mut offline, &x, &y).await?;
    drop((x, y));
    let mut state = initial_state(&st, ctx.role)?;
    let k = st.job_calibration_clips();
    if k > 0 {
        let rows = model::calibration_rows(n, k, spec.schedule_seed);
        let reqs = model::plan_calibrate_with(&st.shape, n, &rows, TRUNCATION).await?;
        let pre = offline.generate(&reqs).await?;
        online
            .calibrate(&st, pre, &xp, &mut state.params, &rows)
            .await?;
    }
    let steps = st.sched.steps() as u64;
    let mut done = 0u64;
    let epochs = st.sched.epochs.len() as u64;
    let per_step = step_bytes(&st, n).await?;
    for (e, batches) in st.sched.epochs.iter().enumerate() {
        let mut p_true = Vec::with_capacity(batches.len());
        for chunk in batches.chunks(steps_per_chunk(per_step, batches.len())) {
            let pre = offline.generate(&plan_steps(&st, n, chunk).await?).await?;
            let report = |out: &model::StepOutputs<Share>| {
                done += 1;
                let _ = events.send(JobEvent::Step { step: done, steps });
                p_true.push(out.p_true.clone());
            };
            online
                .steps(&st, pre, &xp, &y1h, &mut state, chunk, report)
                .await?;
        }
        let p_true = concat_rows(&p_true);
        let epoch = e as u64 + 1;
        let _ = events.send(JobEvent::Epoch {
            epoch,
            epochs,
            p_true,
        });
    }
    let pre = offline
        .generate(&model::plan_export_with(&st.shape, TRUNCATION).await?)
        .await?;
    let column = online.export(&st, pre, &state.params).await?;
    let (offline_s, offline) = offline.finish().await?;
    log_truncations(&online, st.fp);
    let stats = JobStats {
        offline_s,
        online_s: online.seconds,
        offline,
        online: meter.stats(),
    };
    let config_json = st
        .job
        .model
        .config_json()
        .step("the model's configuration")?;
    let ch = online.ch.take().expect("channel").into_inner();
    Ok(JobOutput {
        model: column,
        meta: Some(ModelMeta::Stgcn { config_json }),
        channel: ch,
        stats,
        produced: super::Produced::Model,
    })
}

/// The online phase across chunks: the channel between chunks, time and truncation count.
struct Online {
    ch: Option<OnChannel>,
    role: Role,
    fp: FixedPoint,
    seconds: f64,
    truncations: u64,
}

impl Online {
    /// Opens a chunk's backend on `pre`.
    fn open(&mut self, pre: Preprocessing) -> Result<Shared<OnChannel>> {
        let ch = self.ch.take().ok_or(JobError::Internal(
            "the online channel was lost in a failed chunk",
        ))?;
        Ok(session(ch, self.role, self.fp, pre))
    }

    /// Closes a chunk's backend, adding its time and truncations.
    fn close(&mut self, b: Shared<OnChannel>, t: Instant, what: &'static str) -> Result<()> {
        let (ch, truncations) = end_chunk(b, what)?;
        self.ch = Some(ch);
        self.truncations += truncations;
        self.seconds += t.elapsed().as_secs_f64();
        Ok(())
    }

    /// The first chunk: shared one-hot labels and the normalized clips.
    async fn prepare(
        &mut self,
        st: &Setup,
        offline: &mut Offline,
        x: &Share,
        y: &Share,
    ) -> Result<(Share, Share)> {
        let n = x.dim().0;
        let mut plan = Plan::with_truncation(TRUNCATION);
        plan_one_hot(&mut plan, n, st.job.classes).await?;
        let mut reqs = plan.into_requests();
        reqs.extend(model::plan_prepare_with(&st.shape, n, TRUNCATION).await?);
        let pre = offline.generate(&reqs).await?;
        let t = Instant::now();
        let mut b = self.open(pre)?;
        let y1h = one_hot_labels(&mut b, self.role, &self.fp, y, st.job.classes).await?;
        let xp = model::prepare_inputs(&mut b, &st.shape, x).await?;
        self.close(b, t, "preprocessing left over after preparing the inputs")?;
        Ok((xp, y1h))
    }

    /// The BN re-calibration on the clips `rows` (one chunk before the first step).
    async fn calibrate(
        &mut self,
        st: &Setup,
        pre: Preprocessing,
        x: &Share,
        params: &mut [Share],
        rows: &[usize],
    ) -> Result<()> {
        let t = Instant::now();
        let mut b = self.open(pre)?;
        model::calibrate(&mut b, &st.shape, x, params, rows).await?;
        self.close(b, t, "preprocessing left over after the BN re-calibration")
    }

    /// One chunk of training steps over `batches`, calling `report` after each step.
    #[allow(clippy::too_many_arguments)]
    async fn steps(
        &mut self,
        st: &Setup,
        pre: Preprocessing,
        x: &Share,
        y: &Share,
        state: &mut StgcnState<Share>,
        batches: &[Vec<usize>],
        mut report: impl FnMut(&model::StepOutputs<Share>) + Send,
    ) -> Result<()> {
        let t = Instant::now();
        let mut b = self.open(pre)?;
        let mut cb = |_: usize, out: &model::StepOutputs<Share>| report(out);
        model::train(&mut b, &st.shape, x, y, state, batches, &st.hyper, &mut cb).await?;
        self.close(b, t, "preprocessing left over after a chunk of steps")
    }

    /// The trained parameters as the model file's tensors, flattened into one column.
    async fn export(&mut self, st: &Setup, pre: Preprocessing, params: &[Share]) -> Result<Share> {
        let t = Instant::now();
        let mut b = self.open(pre)?;
        let tensors = model::export_tensors(&mut b, &st.shape, params).await?;
        self.close(b, t, "preprocessing left over after the export")?;
        Ok(flatten_tensors(&tensors))
    }
}

/// Every tensor's values, row-major, tensor after tensor, as one column.
pub fn flatten_tensors(tensors: &[Share]) -> Share {
    let v: Vec<u64> = tensors
        .iter()
        .flat_map(|t| t.view().iter().copied().collect::<Vec<_>>())
        .collect();
    let n = v.len();
    Share::from_ring(Array2::from_shape_vec((n, 1), v).expect("one column"))
}

/// The starting parameters as shares (public: P0 holds them, P1 zero) and zero momentum.
fn initial_state(st: &Setup, role: Role) -> Result<StgcnState<Share>> {
    let params = model::initial_params(&st.shape, &st.job.model)
        .iter()
        .map(|w| {
            Ok(Share::of_public(
                role,
                &st.fp.encode_matrix(&w.view())?.view(),
            ))
        })
        .collect::<Result<Vec<_>>>()
        .step("encoding the initial model")?;
    let velocity = params
        .iter()
        .map(|p| Share::zeros(p.dim().0, p.dim().1))
        .collect();
    Ok(StgcnState { params, velocity })
}

/// The estimated matrix offline time of an ST-GCN job by `ot` and by `he`
/// (`mpc::triples::choice`): the inputs' preparation and every step (each has the first step's
/// shapes); the BN re-calibration and the export are left out (one chunk each, small beside
/// the steps).
///
/// # Errors
/// The job's checks ([`stgcn_spec::validate`]) or a planner's error.
pub(super) async fn triple_estimate(spec: &JobSpec, m: &Manifest) -> Result<Estimate> {
    let n = m.rows as usize;
    let st = Setup::of(spec, m, n)?;
    let mut plan = Plan::with_truncation(TRUNCATION);
    plan_one_hot(&mut plan, n, st.job.classes).await?;
    let mut reqs = plan.into_requests();
    reqs.extend(model::plan_prepare_with(&st.shape, n, TRUNCATION).await?);
    let mut est = Estimator::new();
    let prepare = est.add(&reqs)?;
    let Some(first) = st.sched.epochs.first().and_then(|e| e.first()) else {
        return Ok(prepare);
    };
    let step = est.add(&plan_steps(&st, n, std::slice::from_ref(first)).await?)?;
    Ok(prepare.plus(step.times(st.sched.steps() as u64)))
}

/// The preprocessing requests of the steps over `batches`.
async fn plan_steps(st: &Setup, n: usize, batches: &[Vec<usize>]) -> Result<Vec<TripleRequest>> {
    Ok(model::plan_steps_with(&st.shape, n, batches, &st.hyper, TRUNCATION).await?)
}

/// Estimated preprocessing bytes of one step (every step has the same shapes).
async fn step_bytes(st: &Setup, n: usize) -> Result<u64> {
    let Some(first) = st.sched.epochs.first().and_then(|e| e.first()) else {
        return Ok(0);
    };
    Ok(preprocessing_bytes(
        &plan_steps(st, n, std::slice::from_ref(first)).await?,
    ))
}

/// Steps per chunk: as many as fit [`MAX_CHUNK_PREPROCESSING_BYTES`], at least one, at most
/// the epoch's `epoch_steps`.
pub fn steps_per_chunk(per_step: u64, epoch_steps: usize) -> usize {
    let fit = MAX_CHUNK_PREPROCESSING_BYTES / per_step.max(1);
    (fit.min(epoch_steps as u64) as usize).max(1)
}

/// Estimated bytes one party holds for `reqs`: masks, both factors and the product of every
/// matrix triple, three words per elementwise or AND triple word.
pub fn preprocessing_bytes(reqs: &[TripleRequest]) -> u64 {
    use mpc::triples::Lhs;
    let words: u64 = reqs
        .iter()
        .map(|r| match r {
            TripleRequest::Mask { rows, cols, .. } => (rows * cols) as u64,
            TripleRequest::Matmul { lhs, cols } => match lhs {
                Lhs::Fresh { rows, inner } => (rows * inner + inner * cols + rows * cols) as u64,
                Lhs::Mask { rows, .. } => (2 * rows.len() * cols) as u64,
            },
            TripleRequest::Elementwise { rows, cols } => 3 * (rows * cols) as u64,
            TripleRequest::And { words } => 3 * *words as u64,
            TripleRequest::LeafOt { count, bits } => {
                (*count as u64 * ((1u64 << bits) + 3)).div_ceil(8)
            }
            TripleRequest::Rot { count } => (3 * count + count.div_ceil(64)) as u64,
        })
        .sum();
    words.saturating_mul(8)
}

/// The rows of `parts` stacked.
fn concat_rows(parts: &[Share]) -> Share {
    let views: Vec<_> = parts.iter().map(Share::view).collect();
    match ndarray::concatenate(Axis(0), &views) {
        Ok(m) => Share::from_ring(m),
        Err(_) => Share::zeros(0, 1),
    }
}

/// Logs the run's truncation count and the local-truncation failure bound exact truncation
/// avoided (values below 2^(f + 24), a generous range for normalized activations).
fn log_truncations(online: &Online, fp: FixedPoint) {
    let l_x = fp.frac_bits().get() + 24;
    tracing::info!(
        "{} values truncated exactly; local truncation would have failed with probability up \
         to {:.3e} (union bound for values below 2^{l_x})",
        online.truncations,
        mpc::trunc::run_failure_bound(online.truncations, l_x)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_bounded_by_the_preprocessing_estimate() {
        assert_eq!(steps_per_chunk(1, 50), 50);
        assert_eq!(steps_per_chunk(MAX_CHUNK_PREPROCESSING_BYTES / 4, 50), 4);
        assert_eq!(steps_per_chunk(MAX_CHUNK_PREPROCESSING_BYTES * 2, 50), 1);
        assert_eq!(steps_per_chunk(0, 7), 7);
        let reqs = [
            TripleRequest::Matmul {
                lhs: mpc::triples::Lhs::Fresh { rows: 2, inner: 3 },
                cols: 4,
            },
            TripleRequest::Elementwise { rows: 5, cols: 1 },
            TripleRequest::And { words: 2 },
            TripleRequest::Rot { count: 65 },
        ];
        // A random OT: a pair, a chosen message and a choice bit (65 bits: 2 words).
        assert_eq!(
            preprocessing_bytes(&reqs),
            8 * ((6 + 12 + 8) + 15 + 6 + (3 * 65 + 2))
        );
    }

    #[test]
    fn tensors_flatten_row_major_in_order() {
        let a = Share::from_ring(ndarray::array![[1u64, 2], [3, 4]]);
        let b = Share::from_ring(ndarray::array![[5u64], [6]]);
        let f = flatten_tensors(&[a, b]);
        assert_eq!(f.dim(), (6, 1));
        assert_eq!(f.view().column(0).to_vec(), vec![1, 2, 3, 4, 5, 6]);
    }
}
