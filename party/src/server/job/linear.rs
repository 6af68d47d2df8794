//! The SecureML models of a job: linear or logistic regression by mini-batch SGD on fixed-point
//! shares (SecureML §IV) and the ReLU MLP with a softmax output (§IV-C / Table III), planned on
//! shapes first (`ml::backend::Plan`) so that the offline phase makes exactly the triples the
//! online phase consumes, in one chunk.
//!
//! With the job's `intercept`, the data matrix gets a public column of ones (P0 holds the
//! encoding of 1, P1 zero: `ml::models::bias`): a regression's last weight is its intercept, an
//! MLP layer's last weight row its bias.
//!
//! An MLP's initial weights are public (He-uniform from the job's seed, as in the owner's
//! plaintext twin): P0 holds them as its share, P1 zero; only the data-dependent updates make the
//! model secret. The trained layers are stored as one column ([`flatten_layers`]); the owner
//! splits them with [`unflatten_layers`]. Semi-honest, non-colluding parties; SecureML's local
//! truncation (failure probability ≤ 2^(l_x+1−64) per value, as in the in-process experiments).

use super::labels::{one_hot_labels, plan_one_hot, split_label};
use super::linear_spec::{check_mlp_input, validate_mlp, LinearJob};
use super::offline::Offline;
use super::{JobContext, JobError, JobEvent, JobOutput, Result, Step};
use crate::proto::{JobSpec, JobStats, LinearModelMeta, ModelKind, ModelMeta};
use crate::server::timed::Timed;
use crate::store::Manifest;
use crate::transport::PeerChannel;
use ml::backend::{preprocessing_words, Plan, PlanTensor, Shared, SoftmaxKind};
use ml::models::linreg::{LinRegHyper, Progress};
use ml::models::{self, mlp, Model};
use ml::Schedule;
use mpc::net::Metered;
use mpc::triples::choice::{self, Estimate};
use mpc::{FixedPoint, Role, Share};
use ndarray::{Array2, ArrayView2};
use std::time::Instant;

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
    unflatten_layers_with_bias(sizes, false, flat)
}

/// [`unflatten_layers`] for layers with a bias row each when `bias` (layer i:
/// `(sizes[i] + 1) × sizes[i+1]`, the bias last).
pub fn unflatten_layers_with_bias<T: Clone>(
    sizes: &[usize],
    bias: bool,
    flat: ArrayView2<'_, T>,
) -> Option<Vec<Array2<T>>> {
    let extra = usize::from(bias);
    let need: usize = sizes.windows(2).map(|w| (w[0] + extra) * w[1]).sum();
    if flat.ncols() != 1 || flat.nrows() != need {
        return None;
    }
    let col: Vec<T> = flat.iter().cloned().collect();
    let mut at = 0;
    let mut ws = Vec::with_capacity(sizes.len().saturating_sub(1));
    for w in sizes.windows(2) {
        let (rows, cols) = (w[0] + extra, w[1]);
        let len = rows * cols;
        ws.push(Array2::from_shape_vec((rows, cols), col[at..at + len].to_vec()).ok()?);
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
    /// The architecture of `model` on data with `d` features (the dataset `m`).
    fn of(model: &ModelKind, d: usize, m: &Manifest) -> Result<Self> {
        Ok(match model {
            ModelKind::Linreg => Self::Linreg,
            ModelKind::Logreg => Self::Logreg,
            ModelKind::Mlp(n) => {
                validate_mlp(n)?;
                let sizes: Vec<usize> = n.layers.iter().map(|&w| w as usize).collect();
                check_mlp_input(sizes[0], d, m)?;
                Self::Mlp {
                    sizes,
                    softmax: n.softmax,
                    init_seed: n.init_seed,
                }
            }
            ModelKind::Stgcn(_)
            | ModelKind::Standardize(_)
            | ModelKind::Evaluate(_)
            | ModelKind::Fold(_) => return Err(JobError::Internal("not a linear model or MLP")),
        })
    }

    /// Shapes of the initial weights on `d` features, with a bias row per weight matrix when
    /// `intercept`.
    fn weight_dims(&self, d: usize, intercept: bool) -> Vec<(usize, usize)> {
        let extra = usize::from(intercept);
        match self {
            Self::Mlp { sizes, .. } => sizes.windows(2).map(|w| (w[0] + extra, w[1])).collect(),
            _ => vec![(d + extra, 1)],
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

/// Runs one party's half of a linear-model or MLP job (see [`super::run`]).
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
    let (n, d) = x.dim();
    let arch = Arch::of(&spec.model, d, &m)?;
    let fp = FixedPoint::new(m.frac_bits);
    let x = if spec.intercept {
        ml::models::bias::append_ones_share(ctx.role, &fp, &x)?
    } else {
        x
    };
    let hyper = LinRegHyper::new(spec.learning_rate, spec.batch_size as usize)?;
    let sched = Schedule::shuffled(
        n,
        spec.batch_size as usize,
        spec.epochs as usize,
        spec.schedule_seed,
    )?;
    let dims = arch.weight_dims(d, spec.intercept);
    let requests = plan(&arch, &sched, &hyper, x.dim(), &dims).await?;
    let mut offline = Offline::setup(&ctx, spec.triples, spec.ot_extension, off).await?;
    let pre = offline.generate(&requests).await?;
    let (offline_s, offline) = offline.finish().await?;
    let steps = sched.steps() as u64;
    let done = std::sync::atomic::AtomicU64::new(0);
    let cb = |_p: Progress| {
        let step = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let _ = events.send(JobEvent::Step { step, steps });
    };
    let t_on = Instant::now();
    let ch = Metered::new(Timed::new(on, ctx.timeout));
    let meter = ch.meter();
    let mut b = Shared::new(ch, ctx.role, fp, pre);
    let y = match arch.classes() {
        Some(k) => one_hot_labels(&mut b, ctx.role, &fp, &y, k).await?,
        None => y,
    };
    let w0 = initial_weights(&arch, ctx.role, &fp, &dims, spec.intercept)?;
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
        meta: Some(ModelMeta::Linear(model_meta(&spec, &arch, d, &m))),
        channel: b.into_channel().into_inner(),
        stats,
        produced: super::Produced::Model,
    })
}

/// The public description of the model `spec` trains on `m` (`d` features), stored with the
/// entry: the same on both parties, from the job and the manifest alone.
fn model_meta(spec: &JobSpec, arch: &Arch, d: usize, m: &Manifest) -> LinearModelMeta {
    let (kind, layers, softmax, init_seed) = match arch {
        Arch::Linreg => ("linreg", vec![d as u64, 1], None, None),
        Arch::Logreg => ("logreg", vec![d as u64, 1], None, None),
        Arch::Mlp {
            sizes,
            softmax,
            init_seed,
        } => (
            "mlp",
            sizes.iter().map(|&w| w as u64).collect(),
            Some(*softmax),
            Some(init_seed.to_string()),
        ),
    };
    LinearModelMeta {
        kind: kind.into(),
        layers,
        softmax,
        intercept: spec.intercept,
        learning_rate: spec.learning_rate,
        batch_size: spec.batch_size,
        epochs: spec.epochs,
        schedule_seed: spec.schedule_seed.to_string(),
        init_seed,
        triples: spec.triples,
        dataset: m.name.clone(),
        dataset_id: m.id,
        rows: m.rows,
    }
}

/// The preprocessing requests of the job: the same steps as the shared run, on shapes, in the
/// same order (`nd`: samples and columns of the data matrix, an intercept's ones included).
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
            plan_one_hot(&mut plan, n, k).await?;
            PlanTensor((n, k))
        }
        None => PlanTensor((n, 1)),
    };
    let xp = plan.data((n, d));
    let wp = dims.iter().map(|&dim| PlanTensor(dim)).collect();
    models::train(&mut plan, arch.model(), &xp, &yp, wp, sched, hyper, &|_| {}).await?;
    Ok(plan.into_requests())
}

/// The preprocessing (bytes per party) of the checked job `job` of `model` on `m`: every step
/// has the same shapes, so the plans of one and of two steps give the fixed part (the data mask,
/// the one-hot labels) and the part per step, extrapolated to the job's steps (shapes only, no
/// triple is made).
///
/// # Errors
/// A model that does not fit the dataset (see [`super::linear_spec`]).
pub(super) async fn preprocessing_bytes(
    model: &ModelKind,
    m: &Manifest,
    job: &LinearJob,
) -> Result<u64> {
    let mut words = [0u64; 2];
    for (w, reqs) in words.iter_mut().zip(first_steps(model, m, job).await?) {
        *w = preprocessing_words(&reqs);
    }
    let per_step = words[1].saturating_sub(words[0]);
    let rest = per_step.saturating_mul(job.steps.saturating_sub(1));
    Ok(words[0].saturating_add(rest).saturating_mul(8))
}

/// The estimated matrix offline time of the checked job `job` by `ot` and by `he`
/// (`mpc::triples::choice`), extrapolated from its first one and two steps as
/// [`preprocessing_bytes`].
///
/// # Errors
/// As [`preprocessing_bytes`].
pub(super) async fn triple_estimate(
    model: &ModelKind,
    m: &Manifest,
    job: &LinearJob,
) -> Result<Estimate> {
    let [one, two] = first_steps(model, m, job).await?;
    let (one, two) = (choice::estimate(&one)?, choice::estimate(&two)?);
    Ok(Estimate::extrapolate(one, two, job.steps))
}

/// The requests of the job's first step and of its first two steps (same shapes every step).
async fn first_steps(
    model: &ModelKind,
    m: &Manifest,
    job: &LinearJob,
) -> Result<[Vec<mpc::triples::TripleRequest>; 2]> {
    let (n, d) = (m.rows as usize, job.features);
    let arch = Arch::of(model, d, m)?;
    let dims = arch.weight_dims(d, job.intercept);
    let cols = d + usize::from(job.intercept);
    let batch: Vec<usize> = (0..job.hyper.batch_size()).collect();
    let mut out: [Vec<_>; 2] = Default::default();
    for (i, reqs) in out.iter_mut().enumerate() {
        let sched = Schedule {
            epochs: vec![vec![batch.clone(); i + 1]],
        };
        *reqs = plan(&arch, &sched, &job.hyper, (n, cols), &dims).await?;
    }
    Ok(out)
}

/// The initial weights as shares: the MLP's public He-uniform weights (P0 holds them, P1
/// zero; biases start at 0), zeros for the GLMs.
fn initial_weights(
    arch: &Arch,
    role: Role,
    fp: &FixedPoint,
    dims: &[(usize, usize)],
    bias: bool,
) -> Result<Vec<Share>> {
    match arch {
        Arch::Mlp {
            sizes, init_seed, ..
        } => mlp::init_weights_with_bias(sizes, *init_seed, bias)
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
        let wb = ml::models::mlp::init_weights_with_bias(&sizes, 5, true);
        let flat = flatten_layers(&wb);
        assert_eq!(flat.dim(), (4 * 4 + 5 * 2, 1));
        assert_eq!(
            unflatten_layers_with_bias(&sizes, true, flat.view()).unwrap(),
            wb
        );
        assert!(unflatten_layers(&sizes, flat.view()).is_none());
    }

    /// A model entry's description survives its TOML manifest (seeds beyond i64 included) and
    /// says what the job trained.
    #[test]
    fn model_descriptions_round_trip_through_the_manifest() {
        use crate::proto::{MlpSpec, TripleKind};
        let data = crate::server::job::linear_spec::tests::table(53, 4);
        let mlp = MlpSpec {
            layers: vec![3, 5, 4],
            softmax: SoftmaxKind::Exp,
            init_seed: u64::MAX,
        };
        let mut spec = JobSpec {
            model: ModelKind::Mlp(mlp),
            dataset: "small".into(),
            learning_rate: 0.3,
            batch_size: 7,
            epochs: 3,
            schedule_seed: u64::MAX - 1,
            triples: TripleKind::He,
            intercept: true,
            ot_extension: Default::default(),
        };
        for (model, kind) in [(None, "mlp"), (Some(ModelKind::Logreg), "logreg")] {
            spec.model = model.unwrap_or(spec.model);
            let arch = Arch::of(&spec.model, 3, &data).unwrap();
            let meta = model_meta(&spec, &arch, 3, &data);
            assert_eq!((meta.kind.as_str(), meta.intercept), (kind, true));
            assert_eq!(meta.schedule_seed, (u64::MAX - 1).to_string());
            assert_eq!((meta.dataset_id, meta.rows), (data.id, 53));
            let mut m = data.clone();
            m.kind = crate::store::EntryKind::Model;
            m.model = Some(ModelMeta::Linear(meta));
            let text = toml::to_string_pretty(&m).unwrap();
            let back = crate::store::parse_manifest(text.as_bytes()).unwrap();
            assert_eq!(back, m, "{text}");
        }
    }

    /// The estimate from one and two steps is exactly the whole job's plan, for every kind.
    #[tokio::test]
    async fn the_preprocessing_estimate_equals_the_full_plan() {
        use crate::proto::{MlpSpec, TripleKind};
        let m = crate::server::job::linear_spec::tests::table(53, 4);
        let mlp = MlpSpec {
            layers: vec![3, 5, 4],
            softmax: SoftmaxKind::Relu,
            init_seed: 1,
        };
        let models = [ModelKind::Linreg, ModelKind::Logreg, ModelKind::Mlp(mlp)];
        for (model, intercept) in models
            .into_iter()
            .flat_map(|m| [(m.clone(), false), (m, true)])
        {
            let spec = JobSpec {
                model: model.clone(),
                dataset: "t".into(),
                learning_rate: 0.3,
                batch_size: 7,
                epochs: 3,
                schedule_seed: 2,
                triples: TripleKind::Ot,
                intercept,
                ot_extension: Default::default(),
            };
            let job = super::super::linear_spec::validate_linreg(&spec, &m).unwrap();
            assert_eq!(job.steps, 21);
            let got = preprocessing_bytes(&model, &m, &job).await.unwrap();
            let arch = Arch::of(&model, 3, &m).unwrap();
            let sched = Schedule::shuffled(53, 7, 3, 2).unwrap();
            let dims = arch.weight_dims(3, intercept);
            let cols = 3 + usize::from(intercept);
            let reqs = plan(&arch, &sched, &job.hyper, (53, cols), &dims)
                .await
                .unwrap();
            assert_eq!(got, 8 * preprocessing_words(&reqs), "{model:?}");
        }
    }
}
