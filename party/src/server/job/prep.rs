//! The jobs that are not training runs. `Standardize`: the column means and standard
//! deviations of a dataset in 2PC (`ml::ops::stats`: an oblivious power-of-four normalization
//! and Newton's `1/√·`, no statistic opened) and the dataset standardized, stored as a new
//! version with this party's shares of the statistics; with `reveal_stats` each party also
//! sends its shares of the means and deviations to the owner. `Evaluate`: a trained model of the
//! owner applied to a test table (its standardization applied first when the model was trained
//! on standardized data and the test set is raw; a regression's outputs mapped back to the
//! original units), then the metrics (`ml::ops::metrics`: the MSE; a classifier's accuracy and
//! log-loss) or the predictions, whose shares each party sends to the owner only.
//!
//! Both plan on shapes first, like training, and run with exact truncation (the Gram sums of
//! the statistics reach `2^60` before truncation). Security model: two semi-honest,
//! non-colluding parties; each sees only masked openings; results leave a party only as its
//! share, to the owner's connection (P0's in the job stream, P1's in the owner's watch).

use super::labels::{one_hot_labels, plan_one_hot, split_label};
use super::offline::Offline;
use super::prep_spec::{check_evaluation, standardize_columns, Alignment};
use super::{JobContext, JobError, JobEvent, JobOutput, Produced, Result};
use crate::proto::{EvaluateSpec, JobSpec, JobStats, LinearModelMeta, StandardizeSpec};
use crate::server::timed::Timed;
use crate::store::Manifest;
use crate::transport::PeerChannel;
use ml::backend::{preprocessing_words, Backend, Plan, PlanTensor, Shared, SoftmaxKind};
use ml::ops::metrics;
use ml::ops::stats::{self, ColumnStats};
use mpc::net::Metered;
use mpc::triples::{Preprocessing, TripleRequest};
use mpc::trunc::Truncation;
use mpc::{FixedPoint, Share};
use ndarray::{Array2, Axis};
use std::time::Instant;
use tokio::sync::mpsc::UnboundedSender;

pub(super) const MODE: Truncation = Truncation::Exact;

/// The columns `cols` of a share (local).
fn columns(s: &Share, cols: &[usize]) -> Share {
    Share::from_ring(s.view().select(Axis(1), cols))
}

/// What a result column starts with: two public words `[what, width]` (P0 holds their
/// encodings, P1 zeros), so the owner can read the column without knowing the model: `what` is
/// [`RESULT_STATS`] or the model ([`RESULT_LINREG`], [`RESULT_LOGREG`], [`RESULT_MLP`]), `width`
/// the values per row that follow (standardized columns; outputs per sample).
pub const RESULT_HEADER: usize = 2;
/// A standardization's statistics: `width` means, then `width` standard deviations.
pub const RESULT_STATS: u64 = 0;
/// A linear regression's MSE (1 value) or predictions (1 per row).
pub const RESULT_LINREG: u64 = 1;
/// A logistic regression's accuracy and log-loss (1 row of 2 values) or probabilities (1 per
/// row).
pub const RESULT_LOGREG: u64 = 2;
/// An MLP's accuracy and log-loss (1 row of 2 values) or class scores (`width` per row,
/// row-major).
pub const RESULT_MLP: u64 = 3;
/// A model's weights with its standardization folded in (`width` 1: every weight matrix,
/// row-major, one after the other, each with its bias row; [`super::fold`]).
pub const RESULT_FOLDED: u64 = 4;

/// `[what, width]` (public) above `body` (`r × c`, flattened row-major into one column).
pub(super) fn with_header(
    role: mpc::Role,
    fp: &FixedPoint,
    what: u64,
    body: &Share,
) -> Result<Share> {
    let (r, c) = body.dim();
    let head = Array2::from_shape_vec((2, 1), vec![fp.encode(what as f64)?, fp.encode(c as f64)?])
        .map_err(|_| JobError::Internal("a result header"))?;
    let mut words: Vec<u64> = Share::of_public(role, &head.view())
        .view()
        .iter()
        .copied()
        .collect();
    words.extend(body.view().iter().copied());
    let col = Array2::from_shape_vec((RESULT_HEADER + r * c, 1), words)
        .map_err(|_| JobError::Internal("a result column"))?;
    Ok(Share::from_ring(col))
}

/// The offline phase of `reqs`: preprocessing, its seconds and traffic.
pub(super) async fn offline_phase(
    ctx: &JobContext,
    spec: &JobSpec,
    off: PeerChannel,
    reqs: &[TripleRequest],
) -> Result<(Preprocessing, f64, mpc::net::CommStats)> {
    let mut offline = Offline::setup(ctx, spec.triples, spec.ot_extension, off).await?;
    let pre = offline.generate(reqs).await?;
    let (s, c) = offline.finish().await?;
    Ok((pre, s, c))
}

/// The backend of the online phase on `on`, with exact truncation.
pub(super) fn backend(
    ctx: &JobContext,
    fp: FixedPoint,
    on: PeerChannel,
    pre: Preprocessing,
) -> Shared<Metered<Timed<PeerChannel>>> {
    Shared::new(Metered::new(Timed::new(on, ctx.timeout)), ctx.role, fp, pre).with_truncation(MODE)
}

/// Ends the online phase: checks every triple was used, measures, sends `result` (a column)
/// to the owner as the job's one "epoch" of shares.
pub(super) fn finish(
    b: Shared<Metered<Timed<PeerChannel>>>,
    (offline_s, offline, t_on): (f64, mpc::net::CommStats, Instant),
    result: Option<Share>,
    events: &UnboundedSender<JobEvent>,
) -> Result<(Timed<PeerChannel>, JobStats)> {
    if !b.preprocessing_drained() {
        return Err(JobError::Internal("preprocessing left over after the job"));
    }
    if let Some(p_true) = result {
        let _ = events.send(JobEvent::Epoch {
            epoch: 1,
            epochs: 1,
            p_true,
        });
    }
    let stats = JobStats {
        offline_s,
        online_s: t_on.elapsed().as_secs_f64(),
        offline,
        online: b.channel().meter().stats(),
    };
    Ok((b.into_channel().into_inner(), stats))
}

/// One party's half of a `Standardize` job on `data` (its share of `m`).
pub(super) async fn run_standardize(
    ctx: JobContext,
    spec: JobSpec,
    s: StandardizeSpec,
    m: Manifest,
    data: Share,
    (off, on): (PeerChannel, PeerChannel),
    events: UnboundedSender<JobEvent>,
) -> Result<JobOutput> {
    let cols = standardize_columns(&m, s.label)?;
    let idx: Vec<usize> = cols.iter().map(|&c| c as usize).collect();
    let x = columns(&data, &idx);
    let (n, c) = x.dim();
    let fp = FixedPoint::new(m.frac_bits);
    let p = stats::auto_pre_shift(n, m.frac_bits.get());
    let mut plan = Plan::with_truncation(MODE);
    let xp = PlanTensor((n, c));
    let sp = stats::column_stats(&mut plan, &xp, p).await?;
    stats::standardize(&mut plan, &xp, &sp).await?;
    let (pre, offline_s, offline) = offline_phase(&ctx, &spec, off, &plan.into_requests()).await?;
    let t_on = Instant::now();
    let mut b = backend(&ctx, fp, on, pre);
    let st = stats::column_stats(&mut b, &x, p).await?;
    let z = stats::standardize(&mut b, &x, &st).await?;
    let mut out = data.into_ring();
    for (k, &col) in idx.iter().enumerate() {
        out.column_mut(col).assign(&z.view().column(k));
    }
    let reveal = if s.reveal_stats {
        let both = ndarray::concatenate![Axis(0), st.mean.view(), st.sd.view()];
        Some(with_header(
            ctx.role,
            &fp,
            RESULT_STATS,
            &Share::from_ring(both),
        )?)
    } else {
        None
    };
    let (channel, stats) = finish(b, (offline_s, offline, t_on), reveal, &events)?;
    Ok(JobOutput {
        model: Share::from_ring(out),
        meta: None,
        channel,
        stats,
        produced: Produced::Dataset {
            columns: cols,
            label: s.label,
            revealed: s.reveal_stats,
            stats: Box::new(st),
        },
    })
}

/// The model an evaluation applies.
#[derive(Debug, Clone)]
enum Kind {
    Linreg,
    Logreg,
    Mlp {
        classes: usize,
        softmax: SoftmaxKind,
    },
}

impl Kind {
    /// The kind and the weight matrices (an MLP's column split into its layers).
    fn of(meta: &LinearModelMeta, w: &Share) -> Result<(Self, Vec<Share>)> {
        let sizes: Vec<usize> = meta.layers.iter().map(|&l| l as usize).collect();
        let bad = || {
            JobError::Invalid(format!(
                "the model's {} weights do not fit its layers {sizes:?}",
                w.dim().0
            ))
        };
        let kind = match meta.kind.as_str() {
            "linreg" => Self::Linreg,
            "logreg" => Self::Logreg,
            "mlp" => Self::Mlp {
                classes: *sizes.last().ok_or_else(bad)?,
                softmax: meta.softmax.unwrap_or(SoftmaxKind::Relu),
            },
            other => {
                return Err(JobError::Invalid(format!(
                    "model kind {other:?}: linreg, logreg or mlp"
                )))
            }
        };
        let ws = match kind {
            Self::Mlp { .. } => super::unflatten_layers_with_bias(&sizes, meta.intercept, w.view())
                .ok_or_else(bad)?
                .into_iter()
                .map(Share::from_ring)
                .collect(),
            _ => vec![w.clone()],
        };
        Ok((kind, ws))
    }
}

/// The preprocessing an evaluation applies: the model's statistics of the features (raw test
/// set), of the predicted target (a regression trained on a standardized target), of the test
/// set's own target (a standardized test set).
#[derive(Debug, Clone)]
struct Prep<T> {
    features: Option<ColumnStats<T>>,
    pred: Option<ColumnStats<T>>,
    truth: Option<ColumnStats<T>>,
}

impl Prep<Share> {
    fn of(align: &Alignment, model: &Manifest, m: &Manifest, kind: &Kind) -> Result<Self> {
        let none = Self {
            features: None,
            pred: None,
            truth: None,
        };
        let Some(s) = &model.standardization else {
            return Ok(none);
        };
        let bad = |e: String| JobError::Invalid(format!("model {}: {e}", model.id));
        let regression = matches!(kind, Kind::Linreg);
        let label = |st: &crate::store::Standardization| match st.label_position() {
            Some(at) if regression => st.stats(&[at]).map(Some),
            _ => Ok(None),
        };
        Ok(match align {
            Alignment::Raw => none,
            Alignment::ApplyModels => Self {
                features: Some(s.stats(&s.feature_positions()).map_err(bad)?),
                pred: label(s).map_err(bad)?,
                truth: None,
            },
            Alignment::Same => Self {
                features: None,
                pred: label(s).map_err(bad)?,
                truth: match &m.standardization {
                    Some(t) => label(t).map_err(bad)?,
                    None => None,
                },
            },
        })
    }

    fn shapes(&self) -> Prep<PlanTensor> {
        let f = |s: &Option<ColumnStats<Share>>| {
            s.as_ref().map(|s| ColumnStats {
                mean: PlanTensor(s.mean.dim()),
                inv_sd: PlanTensor(s.inv_sd.dim()),
                sd: PlanTensor(s.sd.dim()),
            })
        };
        Prep {
            features: f(&self.features),
            pred: f(&self.pred),
            truth: f(&self.truth),
        }
    }
}

/// The metrics (`1 × 1` each: the MSE; a classifier's accuracy and log-loss) or the
/// predictions of `kind` with weights `ws` on `x`, `y` (one-hot rows for an MLP's metrics).
#[allow(clippy::too_many_arguments)]
async fn evaluate<B: Backend>(
    b: &mut B,
    kind: &Kind,
    predict: bool,
    x: B::Tensor,
    y: B::Tensor,
    ws: &[B::Tensor],
    prep: &Prep<B::Tensor>,
    pre_shift: u32,
) -> ml::error::Result<Vec<B::Tensor>> {
    let x = match &prep.features {
        Some(s) => stats::standardize(b, &x, s).await?,
        None => x,
    };
    Ok(match kind {
        Kind::Linreg => {
            let mut out = metrics::linear_outputs(b, &x, &ws[0]).await?;
            if let Some(s) = &prep.pred {
                out = stats::unstandardize(b, &out, s).await?;
            }
            if predict {
                return Ok(vec![out]);
            }
            let y = match &prep.truth {
                Some(s) => stats::unstandardize(b, &y, s).await?,
                None => y,
            };
            vec![metrics::mean_squared_error(b, &out, &y, pre_shift).await?]
        }
        Kind::Logreg => {
            let z = metrics::linear_outputs(b, &x, &ws[0]).await?;
            if predict {
                vec![b.sigmoid(&z).await?]
            } else {
                metrics::binary_metrics(b, &z, &y).await?.into()
            }
        }
        Kind::Mlp { softmax, .. } => {
            let logits = metrics::mlp_logits(b, &x, ws).await?;
            if predict {
                vec![b.softmax(&logits, *softmax).await?]
            } else {
                metrics::class_metrics(b, &logits, &y).await?.into()
            }
        }
    })
}

/// The metrics (`1 × 1` each) side by side in one row, or the one prediction matrix.
fn side_by_side(parts: Vec<Share>) -> Result<Share> {
    if parts.len() == 1 {
        return Ok(parts.into_iter().next().expect("one part"));
    }
    let views: Vec<_> = parts.iter().map(|p| p.view()).collect();
    let row = ndarray::concatenate(Axis(1), &views)
        .map_err(|_| JobError::Internal("metrics of one row each"))?;
    Ok(Share::from_ring(row))
}

/// What an evaluation of a model on a test set needs before its online phase: the model's
/// kind and weight matrices, the standardization it applies, the one-hot width of the labels
/// (an MLP's metrics) and the MSE's pre-shift.
struct Evaluation {
    kind: Kind,
    ws: Vec<Share>,
    prep: Prep<Share>,
    one_hot: Option<usize>,
    pre_shift: u32,
}

impl Evaluation {
    /// The evaluation of model `mm` (this party's weights `w`) on the test set `m`.
    fn of(mm: &Manifest, m: &Manifest, w: &Share, predict: bool) -> Result<Self> {
        let (meta, align) = check_evaluation(mm, m)?;
        let (kind, ws) = Kind::of(&meta, w)?;
        let prep = Prep::of(&align, mm, m, &kind)?;
        let one_hot = match kind {
            Kind::Mlp { classes, .. } if !predict => Some(classes),
            _ => None,
        };
        let pre_shift = stats::auto_pre_shift(m.rows as usize, m.frac_bits.get());
        Ok(Self {
            kind,
            ws,
            prep,
            one_hot,
            pre_shift,
        })
    }

    /// The preprocessing it consumes on `n × d` features, planned on shapes.
    async fn requests(&self, (n, d): (usize, usize), predict: bool) -> Result<Vec<TripleRequest>> {
        let mut plan = Plan::with_truncation(MODE);
        let yp = match self.one_hot {
            Some(k) => {
                plan_one_hot(&mut plan, n, k).await?;
                PlanTensor((n, k))
            }
            None => PlanTensor((n, 1)),
        };
        let wp: Vec<PlanTensor> = self.ws.iter().map(|w| PlanTensor(w.dim())).collect();
        let shapes = self.prep.shapes();
        let xp = PlanTensor((n, d));
        evaluate(
            &mut plan,
            &self.kind,
            predict,
            xp,
            yp,
            &wp,
            &shapes,
            self.pre_shift,
        )
        .await?;
        Ok(plan.into_requests())
    }
}

/// The bytes of preprocessing each party stores for an evaluation of model `mm` on the test
/// set `m` (checked at submission against `max_job_preprocessing_bytes`: the log-losses'
/// exponentials and logarithms make it grow with rows × classes).
///
/// # Errors
/// As [`check_evaluation`]; a model whose weights do not fit its description.
pub(super) async fn evaluation_bytes(mm: &Manifest, m: &Manifest, predict: bool) -> Result<u64> {
    let w = Share::zeros(mm.rows as usize, mm.cols as usize);
    let ev = Evaluation::of(mm, m, &w, predict)?;
    let d = m.cols.saturating_sub(1) as usize;
    let reqs = ev.requests((m.rows as usize, d), predict).await?;
    Ok(preprocessing_words(&reqs).saturating_mul(8))
}

/// One party's half of an `Evaluate` job: `model` (its manifest and this party's share) on
/// `data` (this party's share of the test set `m`).
pub(super) async fn run_evaluate(
    ctx: JobContext,
    (spec, e): (JobSpec, EvaluateSpec),
    m: Manifest,
    data: Share,
    model: Option<(Manifest, Share)>,
    (off, on): (PeerChannel, PeerChannel),
    events: UnboundedSender<JobEvent>,
) -> Result<JobOutput> {
    let (mm, w) = model.ok_or(JobError::Internal("an evaluation without its model"))?;
    let ev = Evaluation::of(&mm, &m, &w, e.predict)?;
    let (x, y) = split_label(&data, m.label_column as usize);
    let fp = FixedPoint::new(m.frac_bits);
    let reqs = ev.requests(x.dim(), e.predict).await?;
    let (pre, offline_s, offline) = offline_phase(&ctx, &spec, off, &reqs).await?;
    let t_on = Instant::now();
    let mut b = backend(&ctx, fp, on, pre);
    let y = match ev.one_hot {
        Some(k) => one_hot_labels(&mut b, ctx.role, &fp, &y, k).await?,
        None => y,
    };
    let (kind, ws, prep) = (&ev.kind, &ev.ws, &ev.prep);
    let r = evaluate(&mut b, kind, e.predict, x, y, ws, prep, ev.pre_shift).await?;
    let what = match kind {
        Kind::Linreg => RESULT_LINREG,
        Kind::Logreg => RESULT_LOGREG,
        Kind::Mlp { .. } => RESULT_MLP,
    };
    let column = with_header(ctx.role, &fp, what, &side_by_side(r)?)?;
    let (channel, stats) = finish(b, (offline_s, offline, t_on), Some(column), &events)?;
    Ok(JobOutput::result_only(channel, stats))
}
