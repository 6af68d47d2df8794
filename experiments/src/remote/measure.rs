//! The measurements of a remote training task: the job (submitted to P0, progress streamed
//! back), the reveal of the trained model to its owner, the local plaintext twin and the model
//! quality, returned as typed results ([`Measured`]) for [`super::report`] to render.

use super::data::Prepared;
use crate::common;
use crate::config::supervised::Kind;
use crate::config::TrainTask;
use crate::supervised::quality::{accuracy, binary_predict, glm_output, Score};
use anyhow::{Context, Result};
use ml::backend::{Plain, SoftmaxKind};
use ml::models::linreg::LinRegHyper;
use ml::models::{self, mlp, Model};
use ml::Schedule;
use ndarray::{Array1, Array2, Axis};
use party::client::Client;
use party::deploy::Revealed;
use party::proto::{EntryId, JobSpec, JobStats, MlpSpec, ModelKind, OtExtension, TripleKind};
use party::server::job::unflatten_layers_with_bias;
use std::time::Instant;

/// A task's job: the spec sent to P0 and what the owner needs to read and twin its result.
#[derive(Debug, Clone)]
pub struct JobPlan {
    /// The job as submitted.
    pub spec: JobSpec,
    /// The model, for the local twin.
    pub model: Model,
    /// Layer widths of the revealed weights (`[d, 1]` for the regressions;
    /// each weight matrix has a bias row more when `spec.intercept`).
    pub sizes: Vec<usize>,
    /// Section title.
    pub title: String,
    /// Initial weights (public: zeros, or He-uniform from the job's seed).
    pub w_init: Vec<Array2<f64>>,
    /// The batch schedule the parties follow.
    pub sched: Schedule,
    /// Learning rate and batch size.
    pub hyper: LinRegHyper,
}

/// The job model, weight sizes and title of a `kind` task on `d` features.
fn job_model(
    kind: Kind,
    task: &TrainTask,
    seed: u64,
    d: usize,
) -> Result<(ModelKind, Vec<usize>, String)> {
    Ok(match kind {
        Kind::Linreg => (
            ModelKind::Linreg,
            vec![d, 1],
            "Linear regression".to_string(),
        ),
        Kind::Logreg => (
            ModelKind::Logreg,
            vec![d, 1],
            "Logistic regression (piecewise sigmoid)".to_string(),
        ),
        Kind::Mlp => {
            anyhow::ensure!(
                task.layers.first() == Some(&d),
                "layers {:?} must start with the {d} features",
                task.layers
            );
            let sm = task.softmax.unwrap_or(SoftmaxKind::Relu);
            let layers = task
                .layers
                .iter()
                .map(|&w| u32::try_from(w).context("layer width"))
                .collect::<Result<Vec<_>>>()?;
            (
                ModelKind::Mlp(MlpSpec {
                    layers,
                    softmax: sm,
                    init_seed: task.init_seed.unwrap_or(seed),
                }),
                task.layers.clone(),
                format!("MLP {:?}, ReLU, {sm:?} softmax", task.layers),
            )
        }
    })
}

/// The [`JobPlan`] of a task on the stored dataset `dataset` (`n` rows, `d` features).
pub fn job_plan(
    kind: Kind,
    task: &TrainTask,
    seed: u64,
    (dataset, n, d): (&str, usize, usize),
    (triples, ot_extension): (TripleKind, OtExtension),
) -> Result<JobPlan> {
    let (model, sizes, title) = job_model(kind, task, seed, d)?;
    let spec = JobSpec {
        model: model.clone(),
        dataset: dataset.to_string(),
        learning_rate: task.learning_rate,
        batch_size: task.batch_size as u64,
        epochs: task.epochs as u64,
        schedule_seed: seed ^ 0x5eed,
        triples,
        intercept: task.intercept,
        ot_extension,
    };
    let hyper = LinRegHyper::new(task.learning_rate, task.batch_size)?;
    let sched = Schedule::shuffled(n, task.batch_size, task.epochs, spec.schedule_seed)?;
    let rows = d + usize::from(task.intercept);
    let (w_init, model) = match &model {
        ModelKind::Mlp(m) => (
            mlp::init_weights_with_bias(&sizes, m.init_seed, task.intercept),
            Model::Mlp(m.softmax),
        ),
        ModelKind::Linreg => (vec![Array2::zeros((rows, 1))], Model::Linreg),
        ModelKind::Logreg => (vec![Array2::zeros((rows, 1))], Model::Logreg),
        ModelKind::Stgcn(_) => {
            anyhow::bail!("remote ST-GCN tasks are submitted with `party train --model stgcn`")
        }
        ModelKind::Standardize(_) | ModelKind::Evaluate(_) | ModelKind::Fold(_) => {
            anyhow::bail!("standardization, evaluation and folding are not training tasks")
        }
    };
    Ok(JobPlan {
        spec,
        model,
        sizes,
        title,
        w_init,
        sched,
        hyper,
    })
}

/// The plaintext twin's figures beside the secure run's.
#[derive(Debug, Clone, PartialEq)]
pub struct Twin {
    /// The twin's test and training figure (MSE, or accuracy in %).
    pub plain: Score,
    /// Classifiers: test predictions on which the job's model and the twin agree (%).
    pub agreement_pct: Option<f64>,
    /// max |w_secure − w_plain|.
    pub max_weight_diff: f64,
    /// The twin's training time.
    pub train_s: f64,
}

/// Everything a remote task measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    /// The job (the trained model's id).
    pub job: EntryId,
    /// Submission to the end of the job on both parties, at the client.
    pub job_s: f64,
    /// Revealing the model to the owner, at the client.
    pub reveal_s: f64,
    /// Time and traffic each party reported (P0's, then P1's).
    pub stats: [JobStats; 2],
    /// SGD steps.
    pub steps: usize,
    /// The job's model on the test set (MSE, or accuracy in %).
    pub secure_test: f64,
    /// … and on the training set, where the owner's copy is at hand.
    pub secure_train: Option<f64>,
    /// The local twin, where the owner's training copy is at hand.
    pub twin: Option<Twin>,
}

/// Submits the job to P0 with a progress bar, reveals the model to this client and splits it
/// into layers; returns the job, its weights and the two client-side times.
pub async fn run_job(
    c0: &mut Client,
    c1: impl std::future::Future<Output = Result<Client>>,
    kind: Kind,
    plan: &JobPlan,
) -> Result<(party::client::JobDone, Vec<Array2<f64>>, f64, f64)> {
    let what = format!("remote {}", kind.name());
    let pb = common::progress(plan.sched.steps() as u64, &what);
    let t = Instant::now();
    let done = c0
        .submit(&plan.spec, &mut |p| {
            pb.set_length(p.steps);
            pb.set_position(p.step);
            pb.set_message(format!("{what}, epoch {}/{}", p.epoch, p.epochs));
        })
        .await?;
    let job_s = t.elapsed().as_secs_f64();
    pb.finish_and_clear();

    // Reveal to the owner (this client): the model with its description (checked against the
    // job), or the bare column of parties that store none, split into layers.
    let t = Instant::now();
    let mut c1 = c1.await?;
    let revealed = party::deploy::reveal(c0, &mut c1, done.job).await?;
    let reveal_s = t.elapsed().as_secs_f64();
    let sizes = &plan.sizes;
    let widths: Vec<u64> = sizes.iter().map(|&w| w as u64).collect();
    let ws = match revealed {
        Revealed::Linear(m, _) => {
            anyhow::ensure!(
                m.meta.layers == widths && m.meta.intercept == plan.spec.intercept,
                "the revealed model has layers {:?} (intercept {}), the job {sizes:?} (intercept {})",
                m.meta.layers,
                m.meta.intercept,
                plan.spec.intercept
            );
            m.weights
        }
        Revealed::Weights(flat) => {
            unflatten_layers_with_bias(sizes, plan.spec.intercept, flat.view()).with_context(
                || {
                    format!(
                        "the revealed model is {} x {}, not the weights of layers {sizes:?}",
                        flat.nrows(),
                        flat.ncols()
                    )
                },
            )?
        }
        Revealed::Stgcn(_) => anyhow::bail!("job {} trained an ST-GCN", done.job),
    };
    Ok((done, ws, job_s, reveal_s))
}

/// Class indices of a label column.
pub fn labels(y: &Array1<f64>) -> Vec<usize> {
    y.iter().map(|&v| v.max(0.0).round() as usize).collect()
}

fn predict(kind: Kind, ws: &[Array2<f64>], x: &Array2<f64>) -> Vec<usize> {
    match kind {
        Kind::Mlp => mlp::predict(ws, x),
        _ => binary_predict(&ws[0], x),
    }
}

/// The plaintext twin on the owner's training copy (same data, batches and initial weights):
/// its weights and training time.
pub async fn twin(
    kind: Kind,
    plan: &JobPlan,
    (x, y): (&Array2<f64>, &Array1<f64>),
) -> Result<(Vec<Array2<f64>>, f64)> {
    let yt = match kind {
        Kind::Mlp => {
            datasets::preprocess::one_hot(&labels(y), *plan.sizes.last().expect("layers"))?
        }
        _ => y.clone().insert_axis(Axis(1)),
    };
    let xi;
    let x = if plan.spec.intercept {
        xi = ml::models::bias::append_ones_plain(x);
        &xi
    } else {
        x
    };
    let t = Instant::now();
    let (w0, s, h) = (plan.w_init.clone(), &plan.sched, &plan.hyper);
    let w = models::train(&mut Plain::new(), plan.model, x, &yt, w0, s, h, &|_| {}).await?;
    Ok((w, t.elapsed().as_secs_f64()))
}

/// The job's model and the twin (weights, time) on the test and training sets.
pub fn quality(
    kind: Kind,
    data: &Prepared,
    ws: &[Array2<f64>],
    twin: Option<(Vec<Array2<f64>>, f64)>,
) -> (f64, Option<f64>, Option<Twin>) {
    let train = data.train.as_ref();
    let (m, s) = data.y_scale;
    let mse = |w: &[Array2<f64>], x: &Array2<f64>, y: &Array1<f64>| {
        let p = glm_output(&w[0], x).column(0).mapv(|v| v * s + m);
        (&p - y).mapv(|e| e * e).mean().unwrap_or(f64::NAN)
    };
    // The figure of weights `w` on (x, y): MSE against the unscaled target, or accuracy.
    let figure = |w: &[Array2<f64>], x: &Array2<f64>, y: &Array1<f64>, test: bool| match kind {
        Kind::Linreg if test => mse(w, x, y),
        Kind::Linreg => mse(w, x, &y.mapv(|v| v * s + m)),
        _ => accuracy(&predict(kind, w, x), &labels(y)),
    };
    let (tx, ty) = (&data.test_x, &data.test_y);
    let secure_test = figure(ws, tx, ty, true);
    let secure_train = train.map(|(x, y)| figure(ws, x, y, false));
    let twin = match (twin, train) {
        (Some((wp, train_s)), Some((x, y))) => Some(Twin {
            plain: Score {
                test: figure(&wp, tx, ty, true),
                train: figure(&wp, x, y, false),
            },
            agreement_pct: (kind != Kind::Linreg)
                .then(|| accuracy(&predict(kind, ws, tx), &predict(kind, &wp, tx))),
            max_weight_diff: ws
                .iter()
                .zip(&wp)
                .flat_map(|(a, b)| a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()))
                .fold(0.0, f64::max),
            train_s,
        }),
        _ => None,
    };
    (secure_test, secure_train, twin)
}
