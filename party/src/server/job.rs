//! The job runner: one party's half of a secure training run on a stored dataset share
//! (SecureML §IV: linear or logistic regression by mini-batch SGD on fixed-point shares, matrix
//! triples from the offline phase, local truncation; §IV-C / Table III: the ReLU MLP with a
//! softmax output). The same model code as the in-process experiments (`ml::models`), planned on
//! shapes first (`ml::backend::Plan`) so that the offline phase makes exactly the triples the
//! online phase consumes.
//!
//! An MLP job turns the shared label column (class indices `0..k`) into shared one-hot rows inside
//! 2PC: `t_c = [label − c + ½ ≥ 0]` for `c = 1..k−1` by one secure comparison each (the ReLU
//! derivative), converted to arithmetic shares by a selection, and `onehot_c = t_c − t_{c+1}` with
//! the public `t_0 = 1`, `t_k = 0` (exact for integer labels). Its initial weights are public
//! (He-uniform from the job's seed, as in the owner's plaintext twin): P0 holds them as its share,
//! P1 zero; only the data-dependent updates make the model secret. The trained layers are stored
//! as one column ([`flatten_layers`]); the owner splits them with [`unflatten_layers`].

use super::timed::Timed;
use crate::proto::{JobSpec, JobStats, MlpSpec, ModelKind, TripleKind};
use crate::store::Manifest;
use crate::transport::{self, Identity, PeerCert, PeerChannel, TransportError, TransportKind};
use ml::backend::{Backend, Plan, PlanTensor, Shared, SoftmaxKind};
use ml::models::linreg::{LinRegHyper, Progress};
use ml::models::{self, mlp, Model};
use ml::Schedule;
use mpc::net::Metered;
use mpc::triples::dealer::DealerClient;
use mpc::triples::OtSource;
use mpc::triples::TripleSource;
use mpc::{FixedPoint, Role, Share};
use ndarray::{Array2, ArrayView2, Axis};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Why a job was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The job's model does not fit the limits or the dataset.
    #[error("{0}")]
    Invalid(String),
    /// Model code, or an invalid hyper-parameter.
    #[error(transparent)]
    Ml(#[from] ml::MlError),
    /// A protocol step or a channel.
    #[error(transparent)]
    Mpc(#[from] mpc::MpcError),
    /// The dealer link or this party's identity.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A step of the job (named) failed.
    #[error("{step}")]
    Step {
        /// The step.
        step: &'static str,
        /// What failed.
        #[source]
        source: Box<JobError>,
    },
    /// `triples = dealer` without a dealer.
    #[error("triples = dealer but no [dealer] in the configuration")]
    NoDealer,
    /// A broken invariant of the job runner.
    #[error("{0}")]
    Internal(&'static str),
}

/// Result of the job runner.
pub type Result<T, E = JobError> = std::result::Result<T, E>;

/// Names the step a failure happened in.
trait Step<T> {
    fn step(self, step: &'static str) -> Result<T>;
}

impl<T, E: Into<JobError>> Step<T> for std::result::Result<T, E> {
    fn step(self, step: &'static str) -> Result<T> {
        self.map_err(|e| JobError::Step {
            step,
            source: Box::new(e.into()),
        })
    }
}

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

/// Widest MLP layer a job may ask for.
pub const MAX_MLP_WIDTH: u32 = 1 << 14;
/// Most MLP weights a job may ask for (all layers together).
pub const MAX_MLP_PARAMS: u64 = 1 << 24;

/// Checks an MLP architecture: at least an input and an output layer, every width in
/// `1..=MAX_MLP_WIDTH`, at least two classes, at most [`MAX_MLP_PARAMS`] weights.
///
/// # Errors
/// A message naming the offending layer, its width and the limit.
pub fn validate_mlp(m: &MlpSpec) -> Result<()> {
    let invalid = |msg: String| Err(JobError::Invalid(msg));
    if m.layers.len() < 2 {
        return invalid(format!(
            "an mlp needs layers = [inputs, …, classes], got {} layer(s)",
            m.layers.len()
        ));
    }
    if let Some((i, w)) = m
        .layers
        .iter()
        .enumerate()
        .find(|(_, w)| !(1..=MAX_MLP_WIDTH).contains(*w))
    {
        return invalid(format!(
            "mlp layer {i} has width {w}, outside 1..={MAX_MLP_WIDTH}"
        ));
    }
    let k = *m.layers.last().expect("two layers");
    if k < 2 {
        return invalid(format!(
            "mlp output width {k}: a classifier needs at least 2 classes"
        ));
    }
    let params: u64 = m
        .layers
        .windows(2)
        .map(|w| u64::from(w[0]) * u64::from(w[1]))
        .sum();
    if params > MAX_MLP_PARAMS {
        return invalid(format!(
            "mlp with {params} weights exceeds the limit of {MAX_MLP_PARAMS}"
        ));
    }
    Ok(())
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
    if let ModelKind::Mlp(m) = &spec.model {
        validate_mlp(m)?;
    }
    Ok(())
}

/// Every layer's weights, row-major, layer after layer, as one column (how a trained MLP is
/// stored and revealed).
pub fn flatten_layers<T: Clone>(ws: &[Array2<T>]) -> Array2<T> {
    let v: Vec<T> = ws.iter().flat_map(|w| w.iter().cloned()).collect();
    let n = v.len();
    Array2::from_shape_vec((n, 1), v).expect("one column")
}

/// The inverse of [`flatten_layers`] for layer widths `sizes` (input first); `None` when `flat`
/// is not one column of exactly the weights of `sizes`.
pub fn unflatten_layers<T: Clone>(
    sizes: &[usize],
    flat: ArrayView2<'_, T>,
) -> Option<Vec<Array2<T>>> {
    let need: usize = sizes.windows(2).map(|w| w[0] * w[1]).sum();
    if flat.ncols() != 1 || flat.nrows() != need {
        return None;
    }
    let col: Vec<T> = flat.iter().cloned().collect();
    let mut at = 0;
    let mut ws = Vec::with_capacity(sizes.len().saturating_sub(1));
    for w in sizes.windows(2) {
        let len = w[0] * w[1];
        ws.push(Array2::from_shape_vec((w[0], w[1]), col[at..at + len].to_vec()).ok()?);
        at += len;
    }
    Some(ws)
}

/// A job's model with its non-numeric hyper-parameters.
#[derive(Debug, Clone)]
enum Arch {
    Linreg,
    Logreg,
    Mlp {
        sizes: Vec<usize>,
        softmax: SoftmaxKind,
        init_seed: u64,
    },
}

impl Arch {
    /// The architecture of `model` on data with `d` features.
    fn of(model: &ModelKind, d: usize) -> Result<Self> {
        Ok(match model {
            ModelKind::Linreg => Self::Linreg,
            ModelKind::Logreg => Self::Logreg,
            ModelKind::Mlp(m) => {
                validate_mlp(m)?;
                let sizes: Vec<usize> = m.layers.iter().map(|&w| w as usize).collect();
                if sizes[0] != d {
                    return Err(JobError::Invalid(format!(
                        "mlp input width {} but the dataset has {d} feature columns",
                        sizes[0]
                    )));
                }
                Self::Mlp {
                    sizes,
                    softmax: m.softmax,
                    init_seed: m.init_seed,
                }
            }
        })
    }

    /// Shapes of the initial weights.
    fn weight_dims(&self, d: usize) -> Vec<(usize, usize)> {
        match self {
            Self::Mlp { sizes, .. } => sizes.windows(2).map(|w| (w[0], w[1])).collect(),
            _ => vec![(d, 1)],
        }
    }

    /// Number of classes whose one-hot labels the job computes (none for the GLMs).
    fn classes(&self) -> Option<usize> {
        match self {
            Self::Mlp { sizes, .. } => sizes.last().copied(),
            _ => None,
        }
    }

    /// The model [`models::train`] dispatches on (one code path for the plan and the shared run).
    fn model(&self) -> Model {
        match self {
            Self::Linreg => Model::Linreg,
            Self::Logreg => Model::Logreg,
            Self::Mlp { softmax, .. } => Model::Mlp(*softmax),
        }
    }
}

/// `[t ≥ 0] ⊙ ones`: the comparison bits of `t` as arithmetic shares of 0/1 (fixed point).
/// Runs on the plan and on shares alike, so both consume the same preprocessing.
async fn threshold_bits<B: Backend>(
    b: &mut B,
    t: &B::Tensor,
    ones: &B::Tensor,
) -> Result<B::Tensor> {
    let (_, bits) = b.relu(t).await?;
    Ok(b.select(&bits, ones).await?)
}

/// The comparison inputs of the one-hot encoding: column `c − 1` holds `label − c + ½` for
/// `c = 1..k` (local: P0 subtracts the public constants).
pub fn one_hot_comparands(role: Role, fp: &FixedPoint, y: &Share, k: usize) -> Result<Share> {
    let n = y.dim().0;
    let col = y.view().column(0).to_owned();
    let rep = Array2::from_shape_fn((n, k - 1), |(r, _)| col[r]);
    let consts = (1..k)
        .map(|c| fp.encode(-(c as f64) + 0.5))
        .collect::<std::result::Result<Vec<u64>, _>>()?;
    let pubm = Array2::from_shape_fn((n, k - 1), |(_, c)| consts[c]);
    Ok(Share::from_ring(rep).add_public(role, &pubm.view()))
}

/// One-hot rows from the threshold bits `t` (`n × (k−1)`, shares of `[label ≥ c]` for
/// `c = 1..k`): `onehot_c = t_c − t_{c+1}` with the public `t_0 = 1` and `t_k = 0` (local).
pub fn one_hot_from_thresholds(role: Role, fp: &FixedPoint, t: &Share) -> Result<Share> {
    let (n, km1) = t.dim();
    let one = Array2::from_elem((n, 1), fp.encode(1.0)?);
    let ones = Share::of_public(role, &one.view());
    let zeros = Share::zeros(n, 1);
    let lower = ndarray::concatenate![Axis(1), ones.view(), t.view()];
    let upper = ndarray::concatenate![Axis(1), t.view(), zeros.view()];
    debug_assert_eq!(lower.ncols(), km1 + 1);
    Ok(Share::from_ring(lower).sub(&Share::from_ring(upper)))
}

/// What one party's half of a job leaves: its share of the model (the weight column of a linear
/// model, the flattened layers of an MLP), the online channel (for the end-of-job messages) and
/// its measurements.
#[derive(Debug)]
pub struct JobOutput {
    /// This party's share of the trained model.
    pub model: Share,
    /// The job's online channel.
    pub channel: Timed<PeerChannel>,
    /// Time and traffic of both phases.
    pub stats: JobStats,
}

/// Runs one party's half of `spec` on `data` (this party's share of the dataset in `m`): the
/// offline phase on `off`, training on `on`; sends `(step, steps)` progress on `progress`.
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
) -> Result<JobOutput> {
    let (x, y) = split_label(&data, m.label_column as usize);
    drop(data);
    let (n, d) = x.dim();
    let arch = Arch::of(&spec.model, d)?;
    let fp = FixedPoint::new(m.frac_bits);
    let hyper = LinRegHyper::new(spec.learning_rate, spec.batch_size as usize)?;
    let sched = Schedule::shuffled(
        n,
        spec.batch_size as usize,
        spec.epochs as usize,
        spec.schedule_seed,
    )?;
    let dims = arch.weight_dims(d);
    let requests = plan(&arch, &sched, &hyper, (n, d), &dims).await?;
    let t_off = Instant::now();
    let (pre, offline) = offline_phase(&ctx, spec.triples, off, &requests).await?;
    let offline_s = t_off.elapsed().as_secs_f64();
    let steps = sched.steps() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    let cb = |_p: Progress| {
        let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let _ = progress.send((k, steps));
    };
    let t_on = Instant::now();
    let ch = Metered::new(Timed::new(on, ctx.timeout));
    let meter = ch.meter();
    let mut b = Shared::new(ch, ctx.role, fp, pre);
    let y = match arch.classes() {
        Some(k) => one_hot_labels(&mut b, ctx.role, &fp, &y, k).await?,
        None => y,
    };
    let w0 = initial_weights(&arch, ctx.role, &fp, &dims)?;
    let xd = b.data(&x).await?;
    drop(x);
    let ws = models::train(&mut b, arch.model(), &xd, &y, w0, &sched, &hyper, &cb).await?;
    if !b.preprocessing_drained() {
        return Err(JobError::Internal("preprocessing left over after training"));
    }
    let stats = JobStats {
        offline_s,
        online_s: t_on.elapsed().as_secs_f64(),
        offline,
        online: meter.stats(),
    };
    let model = match arch {
        Arch::Mlp { .. } => {
            let rings: Vec<Array2<u64>> = ws.into_iter().map(Share::into_ring).collect();
            Share::from_ring(flatten_layers(&rings))
        }
        _ => ws
            .into_iter()
            .next()
            .ok_or(JobError::Internal("one weight vector"))?,
    };
    Ok(JobOutput {
        model,
        channel: b.into_channel().into_inner(),
        stats,
    })
}

/// The preprocessing requests of the job: the same steps as the shared run, on shapes, in the
/// same order (`nd`: samples and features of the data).
async fn plan(
    arch: &Arch,
    sched: &Schedule,
    hyper: &LinRegHyper,
    (n, d): (usize, usize),
    dims: &[(usize, usize)],
) -> Result<Vec<mpc::triples::TripleRequest>> {
    let mut plan = Plan::new();
    let yp = match arch.classes() {
        Some(k) => {
            let t = PlanTensor((n, k - 1));
            threshold_bits(&mut plan, &t, &t).await?;
            PlanTensor((n, k))
        }
        None => PlanTensor((n, 1)),
    };
    let xp = plan.data((n, d));
    let wp = dims.iter().map(|&dim| PlanTensor(dim)).collect();
    models::train(&mut plan, arch.model(), &xp, &yp, wp, sched, hyper, &|_| {}).await?;
    Ok(plan.into_requests())
}

/// The offline phase: the triples of `requests` from the peer (OT, on `off`) or the dealer,
/// with the traffic it took.
async fn offline_phase(
    ctx: &JobContext,
    triples: TripleKind,
    off: PeerChannel,
    requests: &[mpc::triples::TripleRequest],
) -> Result<(mpc::triples::Preprocessing, mpc::net::CommStats)> {
    match triples {
        TripleKind::Ot => {
            let ch = Metered::new(Timed::new(off, ctx.timeout));
            let meter = ch.meter();
            let mut src = OtSource::setup(ch, ctx.role).await.step("OT base phase")?;
            let pre = src.generate(requests).await.step("OT triples")?;
            Ok((pre, meter.stats()))
        }
        TripleKind::Dealer => {
            drop(off);
            let p = ctx.dealer.as_ref().ok_or(JobError::NoDealer)?;
            dealer_triples(p, ctx, requests).await
        }
    }
}

/// Triples from the dealer `p`, with the traffic they took.
async fn dealer_triples(
    p: &DealerParams,
    ctx: &JobContext,
    requests: &[mpc::triples::TripleRequest],
) -> Result<(mpc::triples::Preprocessing, mpc::net::CommStats)> {
    let me = Identity::load(&p.identity_dir)?;
    let cert = PeerCert::load(&p.certificate)?;
    let opts = transport::TransportOptions::default();
    let link = transport::connect(p.kind, p.address, me, &cert, &opts)
        .await
        .step("connecting to the dealer")?;
    let ch = Metered::new(Timed::new(link.next_channel().await?, ctx.timeout));
    let meter = ch.meter();
    let mut dc = DealerClient::connect(ch, ctx.role).await?;
    let pre = dc.generate(requests).await?;
    dc.finish().await?;
    Ok((pre, meter.stats()))
}

/// The shared one-hot rows of the labels `y` (class indices `0..k`).
async fn one_hot_labels<B: Backend<Tensor = Share>>(
    b: &mut B,
    role: Role,
    fp: &FixedPoint,
    y: &Share,
    k: usize,
) -> Result<Share> {
    let n = y.dim().0;
    let t = one_hot_comparands(role, fp, y, k)?;
    let one = Array2::from_elem((n, k - 1), fp.encode(1.0)?);
    let ones = Share::of_public(role, &one.view());
    let bits = threshold_bits(b, &t, &ones).await?;
    one_hot_from_thresholds(role, fp, &bits)
}

/// The initial weights as shares: the MLP's public He-uniform weights (P0 holds them, P1
/// zero), zeros for the GLMs.
fn initial_weights(
    arch: &Arch,
    role: Role,
    fp: &FixedPoint,
    dims: &[(usize, usize)],
) -> Result<Vec<Share>> {
    match arch {
        Arch::Mlp {
            sizes, init_seed, ..
        } => mlp::init_weights(sizes, *init_seed)
            .iter()
            .map(|w| Ok(Share::of_public(role, &fp.encode_matrix(&w.view())?.view())))
            .collect::<Result<Vec<_>>>()
            .step("encoding the initial weights"),
        _ => Ok(dims.iter().map(|&(r, c)| Share::zeros(r, c)).collect()),
    }
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

    #[test]
    fn layers_flatten_and_unflatten() {
        let sizes = [3usize, 4, 2];
        let ws = ml::models::mlp::init_weights(&sizes, 5);
        let flat = flatten_layers(&ws);
        assert_eq!(flat.dim(), (3 * 4 + 4 * 2, 1));
        assert_eq!(flat[[0, 0]], ws[0][[0, 0]]);
        assert_eq!(flat[[4, 0]], ws[0][[1, 0]]);
        assert_eq!(flat[[12, 0]], ws[1][[0, 0]]);
        assert_eq!(unflatten_layers(&sizes, flat.view()).unwrap(), ws);
        assert!(unflatten_layers(&[3, 4, 3], flat.view()).is_none());
        assert!(unflatten_layers(&sizes, flat.t()).is_none());
    }

    #[test]
    fn mlp_architectures_are_validated() {
        let m = |layers: Vec<u32>| MlpSpec {
            layers,
            softmax: SoftmaxKind::Relu,
            init_seed: 1,
        };
        assert!(validate_mlp(&m(vec![784, 128, 128, 10])).is_ok());
        assert!(validate_mlp(&m(vec![784])).is_err());
        assert!(validate_mlp(&m(vec![784, 0, 10])).is_err());
        assert!(validate_mlp(&m(vec![784, 1])).is_err());
        let e = validate_mlp(&m(vec![784, MAX_MLP_WIDTH + 1, 10])).unwrap_err();
        assert!(
            format!("{e}").contains(&(MAX_MLP_WIDTH + 1).to_string()),
            "{e}"
        );
        assert!(validate_mlp(&m(vec![MAX_MLP_WIDTH; 3])).is_err());
        let wrong_input = Arch::of(&ModelKind::Mlp(m(vec![30, 8, 2])), 29).unwrap_err();
        assert!(format!("{wrong_input}").contains("29"), "{wrong_input}");
    }

    /// The one-hot encoding on shares (comparisons, selection, local differences) reconstructs to
    /// exactly the plaintext one-hot rows, and consumes exactly the planned preprocessing.
    #[tokio::test]
    async fn one_hot_labels_on_shares_match_the_plaintext() {
        use mpc::triples::dealer;
        let fp = FixedPoint::default();
        let (n, k) = (37usize, 10usize);
        let labels: Vec<usize> = (0..n).map(|i| (i * 7 + i / 5) % k).collect();
        let y = Array2::from_shape_fn((n, 1), |(r, _)| labels[r] as f64);
        let mut rng = mpc::share::os_rng();
        let [y0, y1] = mpc::share::share(&fp.encode_matrix(&y.view()).unwrap().view(), &mut rng);
        let mut plan = Plan::new();
        let t = PlanTensor((n, k - 1));
        threshold_bits(&mut plan, &t, &t).await.unwrap();
        let reqs = plan.into_requests();
        let (mut s0, mut s1, _h) = dealer::spawn_in_process().await.unwrap();
        let (p0, p1) = tokio::join!(s0.generate(&reqs), s1.generate(&reqs));
        let (c0, c1) = mpc::net::mem_pair();
        let party = |c: mpc::net::MemChannel, role: Role, y: Share, pre| async move {
            let mut b = Shared::new(c, role, fp, pre);
            let t = one_hot_comparands(role, &fp, &y, k).unwrap();
            let one = Array2::from_elem((n, k - 1), fp.encode(1.0).unwrap());
            let ones = Share::of_public(role, &one.view());
            let bits = threshold_bits(&mut b, &t, &ones).await.unwrap();
            assert!(b.preprocessing_drained());
            one_hot_from_thresholds(role, &fp, &bits).unwrap()
        };
        let (o0, o1) = tokio::join!(
            party(c0, Role::P0, y0, p0.unwrap()),
            party(c1, Role::P1, y1, p1.unwrap())
        );
        let got = fp.decode_matrix(&mpc::share::reconstruct(&o0, &o1).view());
        let want = Array2::from_shape_fn((n, k), |(r, c)| f64::from(u8::from(labels[r] == c)));
        assert_eq!(got, want);
    }
}
