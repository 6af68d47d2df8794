//! `experiment run --remote p0.toml,p1.toml CONFIG`: the training tasks of a config as jobs on two
//! live `party serve` servers (SecureML §II's two non-colluding servers), and `experiment export`,
//! which writes the training data those jobs expect.
//!
//! For each `linreg`, `logreg` or `mlp` task, this client (the data owner and job owner):
//!
//! 1. finds the stored dataset the task's `remote.dataset` names (`party list`: name or id) and
//!    checks its shape against the task's data;
//! 2. submits the job to P0 (model, hyper-parameters, the public batch-schedule seed
//!    `seed ^ 0x5eed` and initial-weight seed, as the in-process run uses; the configured triple
//!    source: `ot` or the parties' `dealer`), drawing a progress bar from the streamed progress;
//! 3. reveals the trained model to itself (each party sends its share to the owner only);
//! 4. evaluates it on the local test set and, where the config gives the owner's plaintext copy
//!    of the training data, trains the plaintext twin locally (same data, batches and initial
//!    weights) and compares.
//!
//! The stored data must be the task's training data after the task's preprocessing (standardized
//! features; for linreg the centred and scaled target), exactly what `experiment export` writes.
//!
//! # Workflow (see `experiments/configs/remote-logreg.toml`)
//!
//! ```text
//! party client-init --dir me --p0 HOST0:7200 --p0-cert p0.pem --p1 HOST1:7201 --p1-cert p1.pem
//!                       # prints the fingerprint to register on both parties; writes me/p0.toml, me/p1.toml
//! experiment export experiments/configs/remote-logreg.toml --out owner-data
//! share-upload --parties HOST0:7200,HOST1:7201 --p0-cert me/p0-cert.pem --p1-cert me/p1-cert.pem \
//!     --cert-dir me --name cancer owner-data/remote-logreg-task1-train.csv
//! experiment run --remote me/p0.toml,me/p1.toml experiments/configs/remote-logreg.toml
//! ```
//!
//! A task names its stored dataset with `remote = { dataset = "cancer" }`; its `data` is the
//! owner's local copy (bundled, MNIST, or `csv = { train = "…", test = "…" }`, where `train` may be
//! left out: then there is no twin). MLP tasks run the same way (`layers`, `softmax`, `init_seed`
//! are sent with the job). Timings are measured at the client: `secure.job_s` (submission to the
//! end of the job on both parties: offline and online phases) and `secure.reveal_s`; at the end
//! of the job both parties report their own time, bytes and rounds of each phase, recorded as the
//! in-process runs record theirs (`secure.online_s`, `secure.offline_s`,
//! `secure.bytes_sent_p0_bytes`, `secure.rounds_p1_count`, …).

use crate::common;
use crate::config::{Config, DataSource, Task, TrainTask};
use crate::report::{fmt_bytes, fmt_num, Report};
use anyhow::{bail, Context, Result};
use ml::backend::{Plain, SoftmaxKind};
use ml::models::linreg::{self, LinRegHyper};
use ml::models::{logreg, mlp};
use ml::Schedule;
use ndarray::{Array1, Array2, Axis};
use party::client::{reveal_model, Client, ClientConfig, ClientError};
use party::proto::{EntryInfo, JobSpec, MlpSpec, ModelKind, TripleKind};
use party::server::job::unflatten_layers;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which model a task trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Linreg,
    Logreg,
    Mlp,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Linreg => "linreg",
            Kind::Logreg => "logreg",
            Kind::Mlp => "mlp",
        }
    }
}

/// A training task's data after the in-process run's preprocessing.
#[derive(Debug)]
pub struct Prepared {
    /// Training features and targets as trained on (class indices, or the scaled target for
    /// linreg), when the owner's copy is available.
    pub train: Option<(Array2<f64>, Array1<f64>)>,
    /// Test features (preprocessed like the training features).
    pub test_x: Array2<f64>,
    /// Test targets, unscaled (class indices or real targets).
    pub test_y: Array1<f64>,
    /// Target mean and deviation of linreg's scaling (0 and 1 otherwise).
    pub y_scale: (f64, f64),
    /// Where the data came from, for the report.
    pub description: String,
}

/// The training tasks of a config, with their index (1-based) and kind.
fn training_tasks(cfg: &Config) -> Vec<(usize, Kind, &TrainTask)> {
    cfg.tasks
        .iter()
        .enumerate()
        .filter_map(|(i, t)| match t {
            Task::Linreg(t) => Some((i + 1, Kind::Linreg, t)),
            Task::Logreg(t) => Some((i + 1, Kind::Logreg, t)),
            Task::Mlp(t) => Some((i + 1, Kind::Mlp, t)),
            _ => None,
        })
        .collect()
}

/// Loads and preprocesses a task's data exactly as the in-process run does (split with the
/// experiment seed, standardization fitted on the training set, linreg's target scaling).
fn prepare(kind: Kind, task: &TrainTask, seed: u64) -> Result<Prepared> {
    if let DataSource::Csv {
        train: None,
        test,
        regression,
    } = &task.data
    {
        // Only the test set is local: no twin, no statistics to standardize with.
        anyhow::ensure!(
            !task.standardize,
            "a csv source without `train` cannot be standardized (the statistics come from the \
             training set): set standardize = false and upload standardized data"
        );
        let te = common::load_csv(test, *regression)?;
        return Ok(Prepared {
            train: None,
            description: format!(
                "test set {} ({} rows × {} features); no local training copy (no twin)",
                test.display(),
                te.n_samples(),
                te.n_features()
            ),
            test_x: te.x,
            test_y: te.y,
            y_scale: (0.0, 1.0),
        });
    }
    let split = common::load(&task.data, seed)?;
    let (mut xtr, mut xte) = (split.train.x.clone(), split.test.x.clone());
    if task.standardize {
        let st = datasets::preprocess::Standardizer::fit(&xtr);
        xtr = st.transform(&xtr)?;
        xte = st.transform(&xte)?;
    }
    let (ytr, y_scale) = match kind {
        Kind::Linreg => {
            let (m, s) = (
                split.train.y.mean().unwrap_or(0.0),
                split.train.y.std(0.0).max(1e-12),
            );
            (split.train.y.mapv(|v| (v - m) / s), (m, s))
        }
        _ => (split.train.y.clone(), (0.0, 1.0)),
    };
    Ok(Prepared {
        train: Some((xtr, ytr)),
        test_x: xte,
        test_y: split.test.y.clone(),
        y_scale,
        description: split.description,
    })
}

fn with_label(x: &Array2<f64>, y: &Array1<f64>) -> Array2<f64> {
    ndarray::concatenate![Axis(1), x.view(), y.view().insert_axis(Axis(1))]
}

/// Writes, for every training task of `cfg`, the data its remote job trains on —
/// `<out>/<name>-task<i>-train.csv` (preprocessed features, then the target as trained: the class
/// index, or linreg's scaled target) — and the preprocessed test set `…-test.csv` (features, then
/// the unscaled target). Returns the files written.
///
/// # Errors
/// Data loading or writing errors.
pub fn export(cfg: &Config, out: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut files = Vec::new();
    for (i, kind, task) in training_tasks(cfg) {
        let p = prepare(kind, task, cfg.experiment.seed)
            .with_context(|| format!("task #{i} ({})", kind.name()))?;
        let stem = format!("{}-task{i}", cfg.experiment.name);
        if let Some((x, y)) = &p.train {
            let f = out.join(format!("{stem}-train.csv"));
            datasets::csv::write_csv(&f, None, &with_label(x, y))?;
            files.push(f);
        }
        let f = out.join(format!("{stem}-test.csv"));
        datasets::csv::write_csv(&f, None, &with_label(&p.test_x, &p.test_y))?;
        files.push(f);
    }
    anyhow::ensure!(
        !files.is_empty(),
        "the config has no linreg, logreg or mlp task"
    );
    Ok(files)
}

/// Reads the two client configurations `p0.toml,p1.toml` (as `party client-init` writes them).
///
/// # Errors
/// Not two paths, or a file that cannot be read or parsed.
pub fn load_parties(paths: &[PathBuf]) -> Result<[ClientConfig; 2]> {
    let [p0, p1] = paths else {
        bail!(
            "--remote needs two client configurations, P0's then P1's: p0.toml,p1.toml (got {})",
            paths.len()
        );
    };
    Ok([ClientConfig::load(p0)?, ClientConfig::load(p1)?])
}

async fn connect(c: &ClientConfig, role: u8) -> Result<Client> {
    let client = c
        .connect()
        .await
        .with_context(|| format!("connecting to P{role} at {}", c.address))?;
    if client.role() != role {
        return Err(ClientError::WrongRole {
            addr: c.address,
            got: client.role(),
            want: role,
        }
        .into());
    }
    Ok(client)
}

/// Runs every training task of `cfg` as a job on the two parties and returns the report.
///
/// # Errors
/// A task that cannot run remotely (benchmarks, ST-GCN; the `client-aided` triple source), a
/// missing or misshapen stored dataset, a refused or failed job, connection errors.
pub async fn run(cfg: &Config, parties: &[ClientConfig; 2]) -> Result<Report> {
    let mut config = serde_json::to_value(cfg)?;
    if let Some(o) = config.as_object_mut() {
        o.insert(
            "remote".into(),
            serde_json::json!({
                "p0": parties[0].address.to_string(),
                "p1": parties[1].address.to_string(),
            }),
        );
    }
    let mut report = Report {
        name: cfg.experiment.name.clone(),
        config,
        ..Default::default()
    };
    let trainable = training_tasks(cfg);
    if trainable.len() != cfg.tasks.len() {
        bail!("--remote runs linreg, logreg and mlp tasks only; this config has other tasks (run it without --remote)");
    }
    for (i, kind, task) in trainable {
        run_task(kind, task, cfg, parties, &mut report)
            .await
            .with_context(|| format!("task #{i} ({})", kind.name()))?;
    }
    Ok(report)
}

/// The stored dataset named by `wanted` (a name or an id) among the client's entries.
fn find_dataset<'a>(entries: &'a [EntryInfo], wanted: &str) -> Result<&'a EntryInfo> {
    entries
        .iter()
        .find(|e| e.name == wanted || e.id.to_string() == wanted)
        .with_context(|| {
            let names: Vec<&str> = entries
                .iter()
                .filter(|e| !e.name.starts_with("model-"))
                .map(|e| e.name.as_str())
                .collect();
            format!("no stored dataset {wanted:?} of yours at P0 (you have: {names:?}); upload it with share-upload")
        })
}

fn accuracy(pred: &[usize], truth: &[usize]) -> f64 {
    let ok = pred.iter().zip(truth).filter(|(a, b)| a == b).count();
    100.0 * ok as f64 / truth.len().max(1) as f64
}

fn labels(y: &Array1<f64>) -> Vec<usize> {
    y.iter().map(|&v| v.max(0.0).round() as usize).collect()
}

fn predict(kind: Kind, ws: &[Array2<f64>], x: &Array2<f64>) -> Vec<usize> {
    match kind {
        Kind::Mlp => mlp::predict(ws, x),
        _ => x
            .dot(&ws[0])
            .column(0)
            .iter()
            .map(|&v| usize::from(v >= 0.0))
            .collect(),
    }
}

#[allow(clippy::too_many_lines)] // one task, start to finish, in the order the report tells it
async fn run_task(
    kind: Kind,
    task: &TrainTask,
    cfg: &Config,
    parties: &[ClientConfig; 2],
    report: &mut Report,
) -> Result<()> {
    let remote = task.remote.as_ref().context(
        "no [task.remote] dataset = \"NAME\": which stored dataset should the job train on?",
    )?;
    let seed = cfg.experiment.seed;
    let source = task.triples.as_deref().unwrap_or(&cfg.mpc.triples);
    let truncation = task.truncation.unwrap_or(cfg.mpc.truncation);
    anyhow::ensure!(
        truncation == mpc::trunc::Truncation::Local,
        "truncation = {:?} cannot run on remote parties: their jobs truncate locally (run the task in-process with `experiment run` for exact truncation)",
        truncation.name()
    );
    let triples = match source {
        "ot" => TripleKind::Ot,
        "dealer" => TripleKind::Dealer,
        "he" => bail!("triples = \"he\" is not served by remote parties yet: the party protocol's TripleKind offers ot and dealer (HeSource runs in-process with `experiment run`)"),
        s => bail!("triples = {s:?} cannot run on remote parties (ot, or dealer: the parties' configured dealer)"),
    };
    let data = prepare(kind, task, seed)?;
    let d = data.test_x.ncols();

    let mut c0 = connect(&parties[0], 0).await?;
    let entry = find_dataset(&c0.list().await?, &remote.dataset)?.clone();
    anyhow::ensure!(
        entry.cols as usize == d + 1,
        "stored dataset {:?} has {} columns but the task's data has {d} features and a label",
        entry.name,
        entry.cols
    );
    let n = entry.rows as usize;
    if let Some((x, _)) = &data.train {
        anyhow::ensure!(
            x.nrows() == n,
            "stored dataset {:?} has {n} rows but the task's training data has {}: upload what \
             `experiment export` writes for this config",
            entry.name,
            x.nrows()
        );
    }

    let (model, sizes, title) = match kind {
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
    };
    let spec = JobSpec {
        model: model.clone(),
        dataset: entry.name.clone(),
        learning_rate: task.learning_rate,
        batch_size: task.batch_size as u64,
        epochs: task.epochs as u64,
        schedule_seed: seed ^ 0x5eed,
        triples,
    };
    let hyper = LinRegHyper::new(task.learning_rate, task.batch_size)?;
    let sched = Schedule::shuffled(n, task.batch_size, task.epochs, spec.schedule_seed)?;
    let w_init: Vec<Array2<f64>> = match &model {
        ModelKind::Mlp(m) => mlp::init_weights(&sizes, m.init_seed),
        _ => vec![Array2::zeros((d, 1))],
    };

    // The job: submitted to P0, progress streamed back.
    let what = format!("remote {}", kind.name());
    let pb = common::progress(sched.steps() as u64, &what);
    let t = Instant::now();
    let done = c0
        .submit(&spec, &mut |p| {
            pb.set_length(p.steps);
            pb.set_position(p.step);
            pb.set_message(format!("{what}, epoch {}/{}", p.epoch, p.epochs));
        })
        .await?;
    let job_s = t.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let job = done.job;

    // Reveal to the owner (this client) and split into layers.
    let t = Instant::now();
    let mut c1 = connect(&parties[1], 1).await?;
    let flat = reveal_model(&mut c0, &mut c1, job).await?;
    let reveal_s = t.elapsed().as_secs_f64();
    let ws = unflatten_layers(&sizes, flat.view()).with_context(|| {
        format!(
            "the revealed model is {} x {}, not the weights of layers {sizes:?}",
            flat.nrows(),
            flat.ncols()
        )
    })?;

    // The plaintext twin, where the owner's training copy is at hand.
    let twin = match &data.train {
        Some((x, y)) => {
            let yt = match kind {
                Kind::Mlp => {
                    datasets::preprocess::one_hot(&labels(y), *sizes.last().expect("layers"))?
                }
                _ => y.clone().insert_axis(Axis(1)),
            };
            let t = Instant::now();
            let b = &mut Plain::new();
            let w = match &model {
                ModelKind::Linreg => vec![
                    linreg::train(b, x, &yt, w_init[0].clone(), &sched, &hyper, &|_| {}).await?,
                ],
                ModelKind::Logreg => vec![
                    logreg::train(b, x, &yt, w_init[0].clone(), &sched, &hyper, &|_| {}).await?,
                ],
                ModelKind::Mlp(m) => {
                    mlp::train(
                        b,
                        x,
                        &yt,
                        w_init.clone(),
                        &sched,
                        &hyper,
                        m.softmax,
                        &|_| {},
                    )
                    .await?
                }
            };
            Some((w, t.elapsed().as_secs_f64()))
        }
        None => None,
    };

    let label = |base: &str| {
        if task.label.is_empty() {
            base.to_string()
        } else {
            format!("{base}_{}", task.label)
        }
    };
    let (rs, rp) = (label("secure"), label("plain"));
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let train_xy = data.train.as_ref();
    if let Some((wp, plain_s)) = &twin {
        let max_dw = ws
            .iter()
            .zip(wp)
            .flat_map(|(a, b)| a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()))
            .fold(0.0, f64::max);
        report.metric(format!("{rs}.max_weight_diff"), max_dw);
        report.metric(format!("{rp}.train_s"), *plain_s);
    }
    if kind == Kind::Linreg {
        let (m, s) = data.y_scale;
        let mse = |w: &Array2<f64>, x: &Array2<f64>, y: &Array1<f64>| {
            let p = x.dot(w).column(0).mapv(|v| v * s + m);
            (&p - y).mapv(|e| e * e).mean().unwrap_or(f64::NAN)
        };
        let ms = mse(&ws[0], &data.test_x, &data.test_y);
        report.metric(format!("{rs}.test_mse"), ms);
        let mut row = (
            "secure (remote 2PC)".to_string(),
            fmt_num(ms),
            String::new(),
        );
        if let Some((x, y)) = train_xy {
            let y_raw = y.mapv(|v| v * s + m);
            row.2 = fmt_num(mse(&ws[0], x, &y_raw));
            report.metric(format!("{rs}.train_mse"), mse(&ws[0], x, &y_raw));
            if let Some((wp, _)) = &twin {
                let mp = mse(&wp[0], &data.test_x, &data.test_y);
                report.metric(format!("{rp}.test_mse"), mp);
                report.metric(format!("{rp}.train_mse"), mse(&wp[0], x, &y_raw));
                report.metric(
                    format!("{rs}.test_mse_rel_diff"),
                    (ms - mp).abs() / mp.abs().max(1e-300),
                );
                rows.push(row.clone());
                row = (
                    "plaintext twin (local)".to_string(),
                    fmt_num(mp),
                    fmt_num(mse(&wp[0], x, &y_raw)),
                );
            }
        }
        rows.push(row);
    } else {
        let yte = labels(&data.test_y);
        let ps = predict(kind, &ws, &data.test_x);
        let acc_s = accuracy(&ps, &yte);
        report.metric(format!("{rs}.test_accuracy_pct"), acc_s);
        let tr_s = train_xy.map(|(x, y)| accuracy(&predict(kind, &ws, x), &labels(y)));
        if let Some(a) = tr_s {
            report.metric(format!("{rs}.train_accuracy_pct"), a);
        }
        rows.push((
            "secure (remote 2PC)".to_string(),
            format!("{acc_s:.2} %"),
            tr_s.map_or_else(String::new, |a| format!("{a:.2} %")),
        ));
        if let (Some((wp, _)), Some((x, y))) = (&twin, train_xy) {
            let pp = predict(kind, wp, &data.test_x);
            let acc_p = accuracy(&pp, &yte);
            let tr_p = accuracy(&predict(kind, wp, x), &labels(y));
            report.metric(format!("{rp}.test_accuracy_pct"), acc_p);
            report.metric(format!("{rp}.train_accuracy_pct"), tr_p);
            report.metric(format!("{rs}.agreement_pct"), accuracy(&ps, &pp));
            rows.push((
                "plaintext twin (local)".to_string(),
                format!("{acc_p:.2} %"),
                format!("{tr_p:.2} %"),
            ));
        }
    }
    let steps = sched.steps();
    report.metric(format!("{rs}.job_s"), job_s);
    report.metric(format!("{rs}.reveal_s"), reveal_s);
    report.metric(format!("{rs}.steps_count"), steps as f64);
    let [s0, s1] = done.stats;
    report.metric(format!("{rs}.offline_s"), s0.offline_s);
    report.metric(format!("{rs}.online_s"), s0.online_s);
    report.metric(format!("{rs}.offline_p1_s"), s1.offline_s);
    report.metric(format!("{rs}.online_p1_s"), s1.online_s);
    for (i, s) in done.stats.iter().enumerate() {
        report.metric(
            format!("{rs}.bytes_sent_p{i}_bytes"),
            s.online.bytes_sent as f64,
        );
        report.metric(format!("{rs}.rounds_p{i}_count"), s.online.rounds as f64);
        report.metric(
            format!("{rs}.offline_bytes_sent_p{i}_bytes"),
            s.offline.bytes_sent as f64,
        );
        report.metric(
            format!("{rs}.offline_bytes_received_p{i}_bytes"),
            s.offline.bytes_received as f64,
        );
    }
    report.metric(
        format!("{rs}.rounds_per_batch_count"),
        s0.online.rounds as f64 / steps.max(1) as f64,
    );

    let quality = if kind == Kind::Linreg {
        "MSE"
    } else {
        "accuracy"
    };
    let mut table = format!("| run | test {quality} | train {quality} |\n|---|---|---|\n");
    for (a, b, c) in &rows {
        table.push_str(&format!("| {a} | {b} | {c} |\n"));
    }
    let twin_line = match &twin {
        Some((_, s)) => format!("| plaintext twin (local) | {s:.3} s |\n"),
        None => String::new(),
    };
    report.section(
        &format!(
            "{title} — remote job{}",
            if task.label.is_empty() {
                String::new()
            } else {
                format!(" ({})", task.label)
            }
        ),
        format!(
            "Parties: P0 at {}, P1 at {}. Stored dataset `{}` (id {}, {} rows × {} columns). Job {job}.\n\
             Local data: {}.\n\
             SGD: {} epochs, batch {}, learning rate {} ({steps} steps); triples `{source}`.\n\n\
             {table}\n\
             | phase (measured at the client) | time |\n|---|---|\n\
             | job: offline and online phases on the parties | {job_s:.3} s |\n\
             | reveal to the owner | {reveal_s:.3} s |\n{twin_line}\n\
             | phase (measured by the parties) | time P0 / P1 | P0 sent | P1 sent | rounds (P0) |\n|---|---|---|---|---|\n\
             | offline (`{source}`) | {:.3} s / {:.3} s | {} | {} | |\n\
             | online | {:.3} s / {:.3} s | {} | {} | {} ({:.1} per step) |\n",
            parties[0].address,
            parties[1].address,
            entry.name,
            entry.id,
            entry.rows,
            entry.cols,
            data.description,
            task.epochs,
            task.batch_size,
            task.learning_rate,
            s0.offline_s,
            s1.offline_s,
            fmt_bytes(s0.offline.bytes_sent as f64),
            fmt_bytes(s1.offline.bytes_sent as f64),
            s0.online_s,
            s1.online_s,
            fmt_bytes(s0.online.bytes_sent as f64),
            fmt_bytes(s1.online.bytes_sent as f64),
            s0.online.rounds,
            s0.online.rounds as f64 / steps.max(1) as f64,
        ),
    );
    report.note(
        "Remote jobs: two `party serve` processes, semi-honest and non-colluding, train on the shares in their stores over their mutually authenticated peer link; the trained model stays secret-shared in both stores and is revealed only to its owner (this client), each party sending its share to the owner alone. Each party reports its time, bytes and rounds of both phases to the client at the end of the job (counted at the framing layer, as in-process runs count them; `secure.offline_s`/`secure.online_s` are P0's, `secure.offline_p1_s`/`secure.online_p1_s` P1's); the offline traffic is with the dealer for `dealer` triples.",
    );
    if triples == TripleKind::Dealer {
        report.note("Triples (`dealer`): made by the dealer the parties are configured with, a trusted third party that must not collude with either party.");
    } else {
        report.note("Triples (`ot`): made by the two parties alone (base OT and OT extension, Gilboa multiplication; SecureML §IV-B).");
    }
    if kind == Kind::Mlp {
        report.note("MLP jobs: the parties turn the shared class indices into one-hot rows by secure comparisons; the initial weights are public (He-uniform from the job's seed), only the trained weights are secret.");
    }
    if data.train.is_none() {
        report.note("No plaintext twin: the config gives no local copy of the training data.");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        Config::parse(text, "inline").unwrap()
    }

    #[test]
    fn export_writes_the_preprocessed_training_data_of_each_task() {
        let c = cfg(r#"
[experiment]
name = "ex"
seed = 3
[[task]]
kind = "logreg"
epochs = 1
batch_size = 32
learning_rate = 0.25
data = { bundled = { name = "breast_cancer", test_fraction = 0.2 } }
remote = { dataset = "cancer" }
"#);
        let dir = tempfile::tempdir().unwrap();
        let files = export(&c, dir.path()).unwrap();
        assert_eq!(files.len(), 2);
        let tr = datasets::csv::read_csv(&files[0]).unwrap().data;
        let te = datasets::csv::read_csv(&files[1]).unwrap().data;
        assert_eq!(tr.ncols(), 31);
        assert_eq!(tr.nrows() + te.nrows(), 569);
        // Standardized with the training statistics: every training column has mean ~0.
        for j in 0..30 {
            assert!(tr.column(j).mean().unwrap().abs() < 1e-9);
        }
        assert!(tr.column(30).iter().all(|&v| v == 0.0 || v == 1.0));
        // The same preprocessing as the in-process run (same split, same standardizer).
        let p = prepare(Kind::Logreg, training_tasks(&c)[0].2, 3).unwrap();
        let (x, _) = p.train.unwrap();
        assert_eq!(x, tr.slice(ndarray::s![.., ..30]));
    }

    #[test]
    fn exported_files_read_back_as_a_csv_source() {
        let c = cfg(r#"
[experiment]
name = "ex"
seed = 9
[[task]]
kind = "mlp"
layers = [4, 3, 3]
epochs = 1
batch_size = 16
learning_rate = 0.25
data = { bundled = { name = "iris", test_fraction = 0.2 } }
"#);
        let dir = tempfile::tempdir().unwrap();
        let files = export(&c, dir.path()).unwrap();
        let orig = prepare(Kind::Mlp, training_tasks(&c)[0].2, 9).unwrap();
        let base = "[experiment]\nname = \"csv\"\n[[task]]\nkind = \"mlp\"\nlayers = [4, 3, 3]\nepochs = 1\nbatch_size = 16\nlearning_rate = 0.25\nstandardize = false\n";
        let with_train = cfg(&format!(
            "{base}data = {{ csv = {{ train = {:?}, test = {:?} }} }}\n",
            files[0].display().to_string(),
            files[1].display().to_string()
        ));
        let p = prepare(Kind::Mlp, training_tasks(&with_train)[0].2, 0).unwrap();
        let ((x, y), (x0, y0)) = (p.train.unwrap(), orig.train.unwrap());
        assert_eq!((x, y), (x0, y0));
        assert_eq!(
            (p.test_x, p.test_y),
            (orig.test_x.clone(), orig.test_y.clone())
        );
        let test_only = cfg(&format!(
            "{base}data = {{ csv = {{ test = {:?} }} }}\n",
            files[1].display().to_string()
        ));
        let p = prepare(Kind::Mlp, training_tasks(&test_only)[0].2, 0).unwrap();
        assert!(p.train.is_none());
        assert_eq!(p.test_x, orig.test_x);
    }

    #[test]
    fn remote_settings_are_checked() {
        let base = "[experiment]\nname = \"r\"\n[[task]]\nkind = \"logreg\"\nepochs = 1\nlearning_rate = 0.25\n";
        let e = Config::parse(
            &format!("{base}data = {{ csv = {{ test = \"t.csv\" }} }}\nremote = {{ dataset = \"d\", extra = 1 }}\n"),
            "c.toml",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("extra"), "{e:#}");
        let e = Config::parse(
            &format!("{base}data = {{ csv = {{ test = \"t.csv\", regression = true }} }}\n"),
            "c.toml",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("regression"), "{e:#}");
        // Standardizing needs the training statistics.
        let c = cfg(&format!(
            "{base}data = {{ csv = {{ test = \"t.csv\" }} }}\nremote = {{ dataset = \"d\" }}\n"
        ));
        let e = prepare(Kind::Logreg, training_tasks(&c)[0].2, 1).unwrap_err();
        assert!(format!("{e:#}").contains("standardize"), "{e:#}");
        assert!(load_parties(&[PathBuf::from("a.toml")]).is_err());
    }

    #[test]
    fn datasets_are_found_by_name_or_id() {
        let e = |name: &str, b: u8| EntryInfo {
            id: party::proto::EntryId([b; 16]),
            name: name.into(),
            rows: 1,
            cols: 2,
            created: 0,
        };
        let es = vec![e("cancer", 1), e("mnist", 2)];
        assert_eq!(find_dataset(&es, "mnist").unwrap().name, "mnist");
        assert_eq!(
            find_dataset(&es, &party::proto::EntryId([1; 16]).to_string())
                .unwrap()
                .name,
            "cancer"
        );
        let err = find_dataset(&es, "digits").unwrap_err().to_string();
        assert!(err.contains("digits") && err.contains("cancer"), "{err}");
    }
}
