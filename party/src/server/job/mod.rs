//! The job runner: one party's half of a secure training run on a stored dataset share, the
//! same model code as the in-process experiments (`ml::models`), planned on shapes first
//! (`ml::backend::Plan`) so that the offline phase makes exactly the triples the online phase
//! consumes.
//!
//! Layout: [`linear`] runs the SecureML models (linear and logistic regression, the MLP) in one
//! chunk; [`linear_spec`] validates those jobs against their dataset (one function per model
//! kind); [`stgcn`] runs an ST-GCN chunk by chunk (plan, offline, online) and reports per-epoch
//! statistics; [`stgcn_spec`] validates an ST-GCN job against its dataset and builds its
//! starting model; [`prep`] runs the jobs that are not training runs (standardization,
//! evaluation and prediction) and [`prep_spec`] checks them; [`fold`] folds a model's
//! standardization into its weights for the owner's reveal; [`labels`] turns shared class
//! indices into shared one-hot rows;
//! [`offline`] holds the triple sources (`dealer`, `ot`, `he`).
//!
//! Security model: two semi-honest parties that do not collude (and a dealer colluding with
//! neither, for `dealer` triples). Each party holds uniform shares of the data, the labels and
//! the model throughout; it sees only openings masked by single-use random values. The trained
//! model stays shared: each party stores its share, and only the owner, by asking both, learns
//! it. Per-epoch statistics are shares too, sent by each party to the owner alone.

use crate::proto::{JobSpec, JobStats, ModelKind, ModelMeta, TripleKind};
use crate::server::timed::Timed;
use crate::store::Manifest;
use crate::transport::{PeerChannel, TransportError, TransportKind};
use mpc::triples::choice::{DealerFree, Estimate};
use mpc::{Role, Share};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub mod fold;
pub mod labels;
pub mod linear;
pub mod linear_spec;
pub mod offline;
pub mod prep;
pub mod prep_spec;
pub mod stgcn;
pub mod stgcn_spec;

pub use labels::{one_hot_comparands, one_hot_from_thresholds, split_label};
pub use linear::{flatten_layers, unflatten_layers, unflatten_layers_with_bias};
pub use linear_spec::{validate_mlp, MAX_MLP_PARAMS, MAX_MLP_WIDTH};

/// Why a job was refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// The job's model does not fit the limits or the dataset.
    #[error("{0}")]
    Invalid(String),
    /// A job parameter outside its limit (each party checks before any work).
    #[error("{parameter} = {value}: {limit}")]
    Param {
        /// The parameter (e.g. `mlp layers[0] (input width)`).
        parameter: String,
        /// Its value in the job.
        value: String,
        /// The limit it breaks.
        limit: String,
    },
    /// Model code, or an invalid hyper-parameter.
    #[error(transparent)]
    Ml(#[from] ml::MlError),
    /// The ST-GCN model file code.
    #[error(transparent)]
    Model(#[from] ::stgcn::ModelError),
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
    /// Most preprocessing (bytes per party) a linear, logistic or MLP job may need.
    pub max_preprocessing_bytes: u64,
}

/// What one party's half of a job leaves: its share of the model (the weight column of a linear
/// model, the flattened layers of an MLP, the flattened tensors of an ST-GCN), the online
/// channel (for the end-of-job messages) and its measurements.
#[derive(Debug)]
pub struct JobOutput {
    /// This party's share of the trained model.
    pub model: Share,
    /// The format of the model column, for models other than the single-matrix ones.
    pub meta: Option<ModelMeta>,
    /// The job's online channel.
    pub channel: Timed<PeerChannel>,
    /// Time and traffic of both phases.
    pub stats: JobStats,
    /// What `model` is.
    pub produced: Produced,
}

impl JobOutput {
    /// The output of a job that stores nothing (its result went to the owner on `channel`).
    pub(crate) fn result_only(channel: Timed<PeerChannel>, stats: JobStats) -> Self {
        Self {
            model: Share::zeros(0, 1),
            meta: None,
            channel,
            stats,
            produced: Produced::Nothing,
        }
    }
}

/// What a job leaves in [`JobOutput::model`].
#[derive(Debug)]
pub enum Produced {
    /// A trained model's share, stored as a model entry.
    Model,
    /// A standardized version of the dataset (the whole matrix), stored as its next version
    /// with this party's shares of the statistics of `columns`.
    Dataset {
        /// The standardized columns.
        columns: Vec<u64>,
        /// Whether the label column is among them.
        label: bool,
        /// Whether the statistics went to the owner.
        revealed: bool,
        /// This party's shares of the statistics (`1 × columns` each).
        stats: Box<ml::ops::stats::ColumnStats<Share>>,
    },
    /// Nothing is stored (an evaluation: its result went to the owner).
    Nothing,
}

/// What a job reports while it runs.
#[derive(Debug, Clone)]
pub enum JobEvent {
    /// A training step finished.
    Step {
        /// Steps done.
        step: u64,
        /// All steps.
        steps: u64,
    },
    /// An epoch finished: this party's shares (`samples × 1`, fixed point) of the probability
    /// the model gave each of the epoch's samples' true class, for the owner alone.
    Epoch {
        /// The epoch (1-based).
        epoch: u64,
        /// All epochs.
        epochs: u64,
        /// This party's shares.
        p_true: Share,
    },
}

/// Checks a job against its dataset `m` and this party's configuration (`ctx`), each party on
/// its own, before any message to the peer and any offline work: the triple source this party
/// can serve, then the model kind's own checks.
///
/// # Errors
/// [`JobError::Param`], [`JobError::Invalid`] or the model code's error, naming the parameter,
/// its value and its limit.
pub async fn validate(
    spec: &JobSpec,
    m: &Manifest,
    model: Option<&Manifest>,
    ctx: &JobContext,
) -> Result<()> {
    check_triples(spec.triples, ctx)?;
    let job = match &spec.model {
        ModelKind::Linreg => linear_spec::validate_linreg(spec, m)?,
        ModelKind::Logreg => {
            prep_spec::check_classifier_labels(m, "logreg")?;
            linear_spec::validate_logreg(spec, m)?
        }
        ModelKind::Mlp(n) => {
            prep_spec::check_classifier_labels(m, "mlp")?;
            linear_spec::validate_mlp_job(spec, n, m)?
        }
        // O(rows × columns) preprocessing, like the data mask of any job on the table.
        ModelKind::Standardize(s) => return prep_spec::standardize_columns(m, s.label).map(|_| ()),
        ModelKind::Evaluate(e) => {
            let mm =
                model.ok_or_else(|| JobError::Invalid(format!("no model {} of yours", e.model)))?;
            let bytes = prep::evaluation_bytes(mm, m, e.predict).await?;
            return check_preprocessing(bytes, format!("{bytes} bytes"), ctx);
        }
        // O(weights): the model is the job's input.
        ModelKind::Fold(f) => {
            let mm =
                model.ok_or_else(|| JobError::Invalid(format!("no model {} of yours", f.model)))?;
            return fold::check_fold(mm).map(|_| ());
        }
        // Chunked: its preprocessing is bounded per chunk.
        ModelKind::Stgcn(s) => return stgcn_spec::validate(spec, s, m).map(|_| ()),
    };
    let bytes = linear::preprocessing_bytes(&spec.model, m, &job).await?;
    check_preprocessing(bytes, format!("{bytes} bytes for {} steps", job.steps), ctx)
}

/// Refuses a job whose preprocessing per party (`bytes`, described as `value`) exceeds the
/// configured limit.
fn check_preprocessing(bytes: u64, value: String, ctx: &JobContext) -> Result<()> {
    if bytes > ctx.max_preprocessing_bytes {
        return linear_spec::refuse(
            "preprocessing per party",
            value,
            format!(
                "at most {} bytes ([limits] max_job_preprocessing_bytes)",
                ctx.max_preprocessing_bytes
            ),
        );
    }
    Ok(())
}

/// Every model runs on every triple source; `dealer` needs a `[dealer]` in this party's
/// configuration; `auto` reaches only P0, which resolves it ([`resolve_triples`]).
fn check_triples(kind: TripleKind, ctx: &JobContext) -> Result<()> {
    if kind == TripleKind::Auto && ctx.role != Role::P0 {
        return linear_spec::refuse(
            "triples",
            "auto",
            "P0 resolves auto to ot or he before it starts a job at P1",
        );
    }
    if kind == TripleKind::Dealer && ctx.dealer.is_none() {
        let party = if ctx.role == Role::P0 { "P0" } else { "P1" };
        return linear_spec::refuse(
            "triples",
            "dealer",
            format!("{party} has no [dealer] in its configuration (ot and he need none)"),
        );
    }
    Ok(())
}

/// P0: the triple source a job runs with. `auto` becomes the cheaper of `ot` and `he` for the
/// job on `m` by `mpc::triples::choice`'s cost model (with the estimate, for the log); any other
/// source stays as asked.
///
/// # Errors
/// The job's checks or a planner's error (as [`validate`]).
pub async fn resolve_triples(
    spec: &JobSpec,
    m: &Manifest,
) -> Result<(TripleKind, Option<Estimate>)> {
    if spec.triples != TripleKind::Auto {
        return Ok((spec.triples, None));
    }
    let e = match &spec.model {
        ModelKind::Linreg => {
            linear::triple_estimate(&spec.model, m, &linear_spec::validate_linreg(spec, m)?).await?
        }
        ModelKind::Logreg => {
            linear::triple_estimate(&spec.model, m, &linear_spec::validate_logreg(spec, m)?).await?
        }
        ModelKind::Mlp(n) => {
            let job = linear_spec::validate_mlp_job(spec, n, m)?;
            linear::triple_estimate(&spec.model, m, &job).await?
        }
        ModelKind::Stgcn(_) => stgcn::triple_estimate(spec, m).await?,
        // Standardization and evaluation use elementwise and AND triples (made the same way by
        // both sources) and, at most, thin products with one model column: OT's cost.
        ModelKind::Standardize(_) | ModelKind::Evaluate(_) | ModelKind::Fold(_) => {
            return Ok((TripleKind::Ot, None))
        }
    };
    let kind = match e.cheapest() {
        DealerFree::Ot => TripleKind::Ot,
        DealerFree::He => TripleKind::He,
    };
    Ok((kind, Some(e)))
}

/// Runs one party's half of `spec` on `data` (this party's share of the dataset in `m`; for an
/// evaluation `model` is the model's manifest and this party's share): the offline phase on
/// `off`, the online phase on `on`; reports steps and epochs (a result's shares) on `events`.
///
/// # Errors
/// Invalid hyper-parameters, protocol or channel errors (a silent peer fails after the timeout).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    ctx: JobContext,
    spec: JobSpec,
    m: Manifest,
    data: Share,
    model: Option<(Manifest, Share)>,
    off: PeerChannel,
    on: PeerChannel,
    events: tokio::sync::mpsc::UnboundedSender<JobEvent>,
) -> Result<JobOutput> {
    match spec.model.clone() {
        ModelKind::Stgcn(_) => stgcn::run(ctx, spec, m, data, off, on, events).await,
        ModelKind::Standardize(s) => {
            prep::run_standardize(ctx, spec, s, m, data, (off, on), events).await
        }
        ModelKind::Evaluate(e) => {
            prep::run_evaluate(ctx, (spec, e), m, data, model, (off, on), events).await
        }
        // The job's "dataset" is the model itself (`Server::job_dataset`).
        ModelKind::Fold(_) => fold::run_fold(ctx, spec, m, data, (off, on), events).await,
        _ => linear::run(ctx, spec, m, data, off, on, events).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(role: Role, dealer: bool) -> JobContext {
        JobContext {
            role,
            timeout: Duration::from_secs(1),
            dealer: dealer.then(|| DealerParams {
                address: ([127, 0, 0, 1], 1).into(),
                certificate: "dealer.pem".into(),
                identity_dir: ".".into(),
                kind: TransportKind::TlsTcp,
            }),
            max_preprocessing_bytes: 1 << 30,
        }
    }

    /// Every triple source serves every model; dealer triples need this party's `[dealer]`, and
    /// the refusal names the parameter, the value and the party lacking it.
    #[test]
    fn dealer_triples_need_a_configured_dealer() {
        for kind in [TripleKind::Ot, TripleKind::He] {
            check_triples(kind, &ctx(Role::P1, false)).unwrap();
        }
        check_triples(TripleKind::Dealer, &ctx(Role::P0, true)).unwrap();
        let e = check_triples(TripleKind::Dealer, &ctx(Role::P1, false)).unwrap_err();
        let e = e.to_string();
        assert!(e.starts_with("triples = dealer: P1 has no [dealer]"), "{e}");
    }

    /// `auto` is P0's to resolve: P1 refuses a job that still says `auto`.
    #[test]
    fn only_p0_accepts_auto() {
        check_triples(TripleKind::Auto, &ctx(Role::P0, false)).unwrap();
        let e = check_triples(TripleKind::Auto, &ctx(Role::P1, true)).unwrap_err();
        assert!(
            e.to_string().starts_with("triples = auto: P0 resolves"),
            "{e}"
        );
    }

    fn auto_job(model: ModelKind, batch_size: u64, epochs: u64) -> JobSpec {
        JobSpec {
            model,
            dataset: "small".into(),
            learning_rate: 0.125,
            batch_size,
            epochs,
            schedule_seed: 1,
            triples: TripleKind::Auto,
            intercept: true,
            ot_extension: Default::default(),
        }
    }

    /// The resolved source of `spec` on `m`, with its estimate.
    async fn resolved(spec: &JobSpec, m: &Manifest) -> (TripleKind, Estimate) {
        let (kind, e) = resolve_triples(spec, m).await.unwrap();
        let e = e.expect("auto is resolved with an estimate");
        assert!(
            e.ot_s.is_finite() && e.he_s.is_finite() && e.macs > 0,
            "{e:?}"
        );
        (kind, e)
    }

    /// A logistic regression on breast cancer (455 × 30, batch 32, 10 epochs): ~1,000
    /// multiply-accumulates per product, far below one RLWE query's cost: `ot`. A source other
    /// than `auto` is kept as asked.
    #[tokio::test]
    async fn auto_picks_ot_for_a_small_regression() {
        let m = linear_spec::tests::table(455, 31);
        for model in [ModelKind::Linreg, ModelKind::Logreg] {
            let (kind, e) = resolved(&auto_job(model.clone(), 32, 10), &m).await;
            assert_eq!(kind, TripleKind::Ot, "{}", e.describe());
            // 140 steps of 32 × 31 · 31 × 1 and 31 × 32 · 32 × 1.
            assert_eq!(e.macs, 140 * 2 * 32 * 31, "{e:?}");
            let mut asked = auto_job(model, 32, 10);
            asked.triples = TripleKind::He;
            assert_eq!(
                resolve_triples(&asked, &m).await.unwrap(),
                (TripleKind::He, None)
            );
        }
    }

    /// SecureML's MLP (784-128-128-10, batch 128) on MNIST-sized data (60,000 × 784): its
    /// products of 128 × 785 · 785 × 128 per step make `he` cheaper by an order of magnitude.
    #[tokio::test]
    async fn auto_picks_he_for_the_secureml_mlp() {
        let m = linear_spec::tests::table(60_000, 785);
        let net = crate::proto::MlpSpec {
            layers: vec![784, 128, 128, 10],
            softmax: ml::backend::SoftmaxKind::Exp,
            init_seed: 1,
        };
        let (kind, e) = resolved(&auto_job(ModelKind::Mlp(net), 128, 1), &m).await;
        assert_eq!(kind, TripleKind::He, "{}", e.describe());
        assert!(e.ot_s > 10.0 * e.he_total_s(), "{}", e.describe());
    }

    /// An ST-GCN (STGCN-3-128 at a quarter width) on clips of 3 × 32 frames × 15 joints: its
    /// graph and temporal convolutions are products of thousands of rows: `he`.
    #[tokio::test]
    async fn auto_picks_he_for_an_stgcn() {
        let mut m = linear_spec::tests::table(64, 3 * 32 * 15 + 1);
        m.tensor = Some(crate::proto::TensorMeta {
            dims: [3, 32, 15, 1],
            graph: "mocap15".into(),
            class_names: (0..4).map(|c| format!("class{c}")).collect(),
        });
        let s = crate::proto::StgcnSpec {
            init: None,
            architecture: "STGCN-3-128".into(),
            width_divisor: 4,
            activation: "square".into(),
            init_seed: 3,
            momentum: 0.9,
            weight_decay: 1e-4,
            classes: None,
            calibration_clips: 0,
        };
        let mut spec = auto_job(ModelKind::Stgcn(s), 4, 1);
        spec.learning_rate = 0.05;
        let (kind, e) = resolved(&spec, &m).await;
        assert_eq!(kind, TripleKind::He, "{}", e.describe());
    }

    /// An evaluation is sized at submission: a classifier's metrics (accuracy and log-loss)
    /// need more preprocessing than its predictions, and over the limit it is refused.
    #[tokio::test]
    async fn evaluations_over_the_limit_are_refused() {
        let mut m = linear_spec::tests::table(50, 4);
        m.name = "test".into();
        let mut c = ctx(Role::P0, false);
        for (kind, layers) in [("logreg", vec![3, 1]), ("mlp", vec![3, 4, 3])] {
            let mm = prep_spec::tests::model_of(kind, layers, &m);
            let metrics = prep::evaluation_bytes(&mm, &m, false).await.unwrap();
            let predict = prep::evaluation_bytes(&mm, &m, true).await.unwrap();
            assert!(
                metrics > predict && predict > 0,
                "{kind}: {metrics} vs {predict}"
            );
            eprintln!("{kind}, 50 rows: metrics {metrics} bytes, predictions {predict} bytes");
            let spec = JobSpec {
                model: ModelKind::Evaluate(crate::proto::EvaluateSpec {
                    model: mm.id,
                    predict: false,
                }),
                dataset: "test".into(),
                learning_rate: 1.0,
                batch_size: 1,
                epochs: 1,
                schedule_seed: 0,
                triples: TripleKind::Ot,
                intercept: false,
                ot_extension: Default::default(),
            };
            c.max_preprocessing_bytes = metrics;
            validate(&spec, &m, Some(&mm), &c).await.unwrap();
            c.max_preprocessing_bytes = metrics - 1;
            let e = validate(&spec, &m, Some(&mm), &c).await.unwrap_err();
            let e = e.to_string();
            assert!(
                e.starts_with(&format!("preprocessing per party = {metrics} bytes")),
                "{e}"
            );
        }
    }

    /// A job whose preprocessing exceeds this party's limit is refused naming both sizes.
    #[tokio::test]
    async fn preprocessing_over_the_limit_is_refused() {
        let mut m = linear_spec::tests::table(50, 3);
        m.name = "small".into();
        let spec = JobSpec {
            model: ModelKind::Logreg,
            dataset: "small".into(),
            learning_rate: 0.3,
            batch_size: 10,
            epochs: 2,
            schedule_seed: 1,
            triples: TripleKind::Ot,
            intercept: false,
            ot_extension: Default::default(),
        };
        let mut c = ctx(Role::P0, false);
        validate(&spec, &m, None, &c).await.unwrap();
        c.max_preprocessing_bytes = 1000;
        let e = validate(&spec, &m, None, &c).await.unwrap_err().to_string();
        assert!(e.starts_with("preprocessing per party = "), "{e}");
        assert!(
            e.contains("bytes for 10 steps") && e.contains("at most 1000 bytes"),
            "{e}"
        );
    }
}
