//! Training tasks — `linreg`, `logreg`, `mlp` — each a secure run beside its plaintext twin.
//!
//! The data owner prepares the training set (standardized features where configured; for linear
//! regression a centred and scaled target; for classifiers 0/1 labels or one-hot rows), encodes it
//! in fixed point and secret-shares it (seed-compressed: P0 receives a 32-byte seed, P1 the masked
//! matrix). The plan of the training run — the same model code on shapes — lists the triples; the
//! configured source makes them (offline phase); the two parties train over the configured
//! transport (online phase) and the owner reconstructs the model from the two shares. The plaintext
//! twin runs the same code on `f64` from the same initial weights with the same batches.

use crate::common;
use crate::config::{Config, TrainTask};
use crate::link;
use crate::offline::Flooding;
use crate::report::{fmt_bytes, fmt_num, Report};
use anyhow::{Context, Result};
use ml::backend::{Backend, Plain, Plan, PlanTensor, Shared, SigmoidKind, SoftmaxKind};
use ml::models::linreg::{self, LinRegHyper, Progress};
use ml::models::{logreg, mlp};
use ml::Schedule;
use mpc::net::{CommStats, Metered};
use mpc::share::{reconstruct, share_seeded};
use mpc::triples::TripleRequest;
use mpc::trunc::{self, Truncation};
use mpc::{FixedPoint, FracBits, Role, Share};
use ndarray::{Array1, Array2, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::sync::Arc;
use std::time::Instant;

/// Which model a task trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Linear regression.
    Linreg,
    /// Logistic regression.
    Logreg,
    /// Multi-layer perceptron.
    Mlp,
}

/// A model and its non-numeric hyper-parameters.
#[derive(Debug, Clone, Copy)]
enum Model {
    Linreg,
    Logreg,
    Mlp(SoftmaxKind),
}

/// Trains `model` on any backend: one code path for the twin, the plan and the secure run.
#[allow(clippy::too_many_arguments)]
async fn train<B: Backend>(
    b: &mut B,
    model: Model,
    x: &B::Data,
    y: &B::Tensor,
    mut ws: Vec<B::Tensor>,
    sched: &Schedule,
    hyper: &LinRegHyper,
    progress: &(dyn Fn(Progress) + Send + Sync),
) -> Result<Vec<B::Tensor>> {
    Ok(match model {
        Model::Linreg => vec![linreg::train(b, x, y, ws.remove(0), sched, hyper, progress).await?],
        Model::Logreg => vec![logreg::train(b, x, y, ws.remove(0), sched, hyper, progress).await?],
        Model::Mlp(s) => mlp::train(b, x, y, ws, sched, hyper, s, progress).await?,
    })
}

/// The logistic function a `plain_sigmoids` entry names.
pub fn sigmoid_kind(name: &str) -> Option<SigmoidKind> {
    if name == "logistic" || name == "sigmoid" {
        return Some(SigmoidKind::Logistic);
    }
    let deg: usize = name.strip_prefix("poly")?.parse().ok()?;
    (1..=15)
        .contains(&deg)
        .then(|| SigmoidKind::Poly(fit_sigmoid(deg)))
}

/// Least-squares fit of the logistic function by a polynomial of degree `deg` on [-8, 8]
/// (2001 equally spaced points; solved in the scaled variable t = x/8 for conditioning).
pub fn fit_sigmoid(deg: usize) -> Vec<f64> {
    let m = deg + 1;
    let mut a = vec![vec![0.0; m + 1]; m];
    for k in 0..=2000 {
        let x = -8.0 + 16.0 * k as f64 / 2000.0;
        let t = x / 8.0;
        let y = 1.0 / (1.0 + (-x).exp());
        let pw: Vec<f64> = (0..m).map(|i| t.powi(i as i32)).collect();
        for i in 0..m {
            for j in 0..m {
                a[i][j] += pw[i] * pw[j];
            }
            a[i][m] += pw[i] * y;
        }
    }
    // Gaussian elimination with partial pivoting on the normal equations.
    for c in 0..m {
        let p = (c..m)
            .max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs()))
            .expect("rows");
        a.swap(c, p);
        let pivot = a[c].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != c {
                let f = row[c] / pivot[c];
                for (x, p) in row.iter_mut().zip(&pivot).skip(c) {
                    *x -= f * p;
                }
            }
        }
    }
    (0..m)
        .map(|i| a[i][m] / a[i][i] / 8f64.powi(i as i32))
        .collect()
}

/// What a secure run produced.
struct SecureOutcome {
    ws: Vec<Array2<f64>>,
    online_s: f64,
    setup_s: f64,
    train_s: f64,
    offline_s: f64,
    stats: [CommStats; 2],
    offline_stats: [CommStats; 2],
    trust: &'static str,
    flooding: Option<Flooding>,
    /// Values truncated by the run (planned, and checked against both parties' counts).
    truncations: u64,
}

/// The triple requests of a training run (the model code on shapes: the plan) and the number of
/// values it truncates.
async fn plan_requests(
    model: Model,
    x_dim: (usize, usize),
    y_dim: (usize, usize),
    w_dims: &[(usize, usize)],
    sched: &Schedule,
    hyper: &LinRegHyper,
    truncation: Truncation,
) -> Result<(Vec<TripleRequest>, u64)> {
    let mut plan = Plan::with_truncation(truncation);
    let xp = plan.data(x_dim);
    let wp = w_dims.iter().map(|&d| PlanTensor(d)).collect();
    train(
        &mut plan,
        model,
        &xp,
        &PlanTensor(y_dim),
        wp,
        sched,
        hyper,
        &|_| {},
    )
    .await?;
    let truncations = plan.truncations();
    Ok((plan.into_requests(), truncations))
}

#[allow(clippy::too_many_arguments)]
async fn secure_run(
    model: Model,
    xtr: &Array2<f64>,
    ytr: &Array2<f64>,
    w_init: &[Array2<f64>],
    sched: Arc<Schedule>,
    hyper: LinRegHyper,
    (fp, truncation): (FixedPoint, Truncation),
    source: &str,
    transport: &str,
    what: &str,
) -> Result<SecureOutcome> {
    let (n, d) = xtr.dim();
    // Data owner: encode and share (seeds and masks from the OS CSPRNG).
    let mut rng = mpc::share::os_rng();
    let x_enc = fp
        .encode_matrix(&xtr.view())
        .context("encoding the training features")?;
    let y_enc = fp
        .encode_matrix(&ytr.view())
        .context("encoding the training targets")?;
    let (x_seed, x1) = share_seeded(&x_enc.view(), &mut rng);
    let (y_seed, y1) = share_seeded(&y_enc.view(), &mut rng);
    drop((x_enc, y_enc));
    let (mut w0s, mut w1s) = (Vec::new(), Vec::new());
    for w in w_init {
        let e = fp
            .encode_matrix(&w.view())
            .context("encoding the initial weights")?;
        let [a, b] = mpc::share::share(&e.view(), &mut rng);
        w0s.push(a);
        w1s.push(b);
    }

    // Offline phase: plan on shapes, then make the triples.
    let w_dims: Vec<_> = w_init.iter().map(|w| w.dim()).collect();
    let (requests, truncations) = plan_requests(
        model,
        (n, d),
        ytr.dim(),
        &w_dims,
        &sched,
        &hyper,
        truncation,
    )
    .await?;
    let off = crate::offline::run(source, transport, &requests).await?;
    let [pre0, pre1] = off.pre;

    // Online phase.
    let (c0, c1) = link::pair(transport).await?;
    let (c0, c1) = (Metered::new(c0), Metered::new(c1));
    let (m0, m1) = (c0.meter(), c1.meter());
    let pb = Arc::new(common::progress(sched.steps() as u64, what));
    let x0 = x_seed.expand(n, d);
    let y0 = y_seed.expand(ytr.nrows(), ytr.ncols());
    let t = Instant::now();
    let party = |ch,
                 role: Role,
                 x: Share,
                 y: Share,
                 ws: Vec<Share>,
                 pre,
                 pb: Option<Arc<indicatif::ProgressBar>>| {
        let sched = sched.clone();
        let what = what.to_string();
        tokio::spawn(async move {
            let mut b = Shared::new(ch, role, fp, pre).with_truncation(truncation);
            let t = Instant::now();
            let xd = b.data(&x).await?;
            let setup_s = t.elapsed().as_secs_f64();
            drop(x);
            let cb = move |p: Progress| {
                if let Some(pb) = &pb {
                    pb.inc(1);
                    pb.set_message(format!("{what}, epoch {}", p.epoch + 1));
                }
            };
            let t = Instant::now();
            let ws = train(&mut b, model, &xd, &y, ws, &sched, &hyper, &cb).await?;
            anyhow::ensure!(
                b.preprocessing_drained(),
                "preprocessing left over after training"
            );
            anyhow::ensure!(
                b.truncations() == truncations,
                "{} truncations planned but {} done",
                truncations,
                b.truncations()
            );
            anyhow::Ok((ws, setup_s, t.elapsed().as_secs_f64()))
        })
    };
    let h0 = party(c0, Role::P0, x0, y0, w0s, pre0, Some(pb.clone()));
    let h1 = party(c1, Role::P1, x1, y1, w1s, pre1, None);
    let (r0, r1) = tokio::join!(h0, h1);
    let ((s0, setup_s, train_s), (s1, _, _)) = (r0??, r1??);
    let online_s = t.elapsed().as_secs_f64();
    pb.finish_and_clear();
    // The model's owner reconstructs it from the two shares.
    let ws = s0
        .iter()
        .zip(&s1)
        .map(|(a, b)| fp.decode_matrix(&reconstruct(a, b).view()))
        .collect();
    Ok(SecureOutcome {
        ws,
        online_s,
        setup_s,
        train_s,
        offline_s: off.seconds,
        stats: [m0.stats(), m1.stats()],
        offline_stats: off.stats,
        trust: off.trust,
        flooding: off.flooding,
        truncations,
    })
}

fn accuracy(pred: &[usize], truth: &[usize]) -> f64 {
    let ok = pred.iter().zip(truth).filter(|(a, b)| a == b).count();
    100.0 * ok as f64 / truth.len().max(1) as f64
}

fn binary_predict(w: &Array2<f64>, x: &Array2<f64>) -> Vec<usize> {
    x.dot(w)
        .column(0)
        .iter()
        .map(|&v| usize::from(v >= 0.0))
        .collect()
}

/// Mean and standard deviation of the training targets (linear regression trains on the
/// standardized target).
fn target_scale(split: &common::Split) -> (f64, f64) {
    (
        split.train.y.mean().unwrap_or(0.0),
        split.train.y.std(0.0).max(1e-12),
    )
}

/// A task's model, training targets and initial weights, and a title.
struct Setup {
    model: Model,
    ytr: Array2<f64>,
    w_init: Vec<Array2<f64>>,
    title: String,
}

/// The [`Setup`] of a task, from its data.
fn model_setup(kind: Kind, task: &TrainTask, split: &common::Split, seed: u64) -> Result<Setup> {
    let d = split.train.x.ncols();
    let (y_mean, y_std) = target_scale(split);
    let (model, ytr, w_init, title) = match kind {
        Kind::Linreg => (
            Model::Linreg,
            split
                .train
                .y
                .mapv(|v| (v - y_mean) / y_std)
                .insert_axis(Axis(1)),
            vec![Array2::zeros((d, 1))],
            "Linear regression".to_string(),
        ),
        Kind::Logreg => (
            Model::Logreg,
            split.train.y.clone().insert_axis(Axis(1)),
            vec![Array2::zeros((d, 1))],
            "Logistic regression (piecewise sigmoid)".to_string(),
        ),
        Kind::Mlp => {
            let k = split
                .train
                .n_classes()
                .context("an mlp needs a classification dataset")?;
            anyhow::ensure!(
                task.layers.first() == Some(&d) && task.layers.last() == Some(&k),
                "layers {:?} must start with the {d} features and end with the {k} classes",
                task.layers
            );
            let sm = task.softmax.unwrap_or(SoftmaxKind::Relu);
            (
                Model::Mlp(sm),
                split.train.one_hot()?,
                mlp::init_weights(&task.layers, task.init_seed.unwrap_or(seed)),
                format!("MLP {:?}, ReLU, {sm:?} softmax", task.layers),
            )
        }
    };
    Ok(Setup {
        model,
        ytr,
        w_init,
        title,
    })
}

/// The triple requests a config's training task makes, planned exactly as its run plans them
/// (the data are loaded for their shapes).
pub async fn task_requests(
    kind: Kind,
    task: &TrainTask,
    cfg: &Config,
) -> Result<Vec<TripleRequest>> {
    let seed = cfg.experiment.seed;
    let split = common::load(&task.data, seed)?;
    let Setup {
        model, ytr, w_init, ..
    } = model_setup(kind, task, &split, seed)?;
    let hyper = LinRegHyper::new(task.learning_rate, task.batch_size)?;
    let sched = schedule(task, split.train.x.nrows(), seed)?;
    let w_dims: Vec<_> = w_init.iter().map(|w| w.dim()).collect();
    let truncation = task.truncation.unwrap_or(cfg.mpc.truncation);
    let (requests, _) = plan_requests(
        model,
        split.train.x.dim(),
        ytr.dim(),
        &w_dims,
        &sched,
        &hyper,
        truncation,
    )
    .await?;
    Ok(requests)
}

/// The batch schedule of a task over `n` training samples.
fn schedule(task: &TrainTask, n: usize, seed: u64) -> Result<Schedule> {
    Ok(Schedule::shuffled(
        n,
        task.batch_size,
        task.epochs,
        seed ^ 0x5eed,
    )?)
}

/// Runs a training task and adds its results to `report`.
pub async fn run(kind: Kind, task: &TrainTask, cfg: &Config, report: &mut Report) -> Result<()> {
    let seed = cfg.experiment.seed;
    let transport = cfg.transport.kind.as_str();
    let source = task.triples.as_deref().unwrap_or(&cfg.mpc.triples);
    let split = common::load(&task.data, seed)?;
    let (mut xtr, mut xte) = (split.train.x.clone(), split.test.x.clone());
    if task.standardize {
        let st = datasets::preprocess::Standardizer::fit(&xtr);
        xtr = st.transform(&xtr)?;
        xte = st.transform(&xte)?;
    }
    let (n, d) = xtr.dim();
    let label = |base: &str| {
        if task.label.is_empty() {
            base.to_string()
        } else {
            format!("{base}_{}", task.label)
        }
    };
    let (rs, rp) = (label("secure"), label("plain"));

    let Setup {
        model,
        ytr,
        w_init,
        title,
    } = model_setup(kind, task, &split, seed)?;
    let (y_mean, y_std) = target_scale(&split);
    let hyper = LinRegHyper::new(task.learning_rate, task.batch_size)?;
    let sched = Arc::new(schedule(task, n, seed)?);
    let fp = FixedPoint::new(FracBits::new(cfg.mpc.frac_bits)?);
    let truncation = task.truncation.unwrap_or(cfg.mpc.truncation);

    // Plaintext twin.
    let t = Instant::now();
    let w_plain = train(
        &mut Plain::new(),
        model,
        &xtr,
        &ytr,
        w_init.clone(),
        &sched,
        &hyper,
        &|_| {},
    )
    .await?;
    let plain_s = t.elapsed().as_secs_f64();

    // Sensitivity of the twin to perturbations as small as the fixed-point rounding.
    let mut perturbed = Vec::new();
    if matches!(model, Model::Mlp(_)) {
        let half_ulp = fp.ulp() / 2.0;
        for r in 0..task.twin_perturbations {
            let mut rng = ChaCha20Rng::seed_from_u64(seed ^ (0x7e57 + r as u64));
            let w: Vec<Array2<f64>> = if r == 0 {
                let grid = fp.scale();
                w_init
                    .iter()
                    .map(|w| w.mapv(|v| (v * grid).round() / grid))
                    .collect()
            } else {
                w_init
                    .iter()
                    .map(|w| w.mapv(|v| v + rng.gen_range(-half_ulp..half_ulp)))
                    .collect()
            };
            perturbed.push(
                train(
                    &mut Plain::new(),
                    model,
                    &xtr,
                    &ytr,
                    w,
                    &sched,
                    &hyper,
                    &|_| {},
                )
                .await?,
            );
        }
    }

    let what = format!(
        "secure {}",
        title.split(' ').next().unwrap_or("run").to_lowercase()
    );
    let out = secure_run(
        model,
        &xtr,
        &ytr,
        &w_init,
        sched.clone(),
        hyper,
        (fp, truncation),
        source,
        transport,
        &what,
    )
    .await?;
    let max_dw = out
        .ws
        .iter()
        .zip(&w_plain)
        .flat_map(|(a, b)| a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f64::max);
    report.metric(format!("{rs}.max_weight_diff"), max_dw);

    // Quality, on the test set (and the training set).
    let mut rows = Vec::new();
    match model {
        Model::Linreg => {
            let mse = |w: &Array2<f64>, x: &Array2<f64>, y: &Array1<f64>| {
                let p = x.dot(w).column(0).mapv(|v| v * y_std + y_mean);
                (&p - y).mapv(|e| e * e).mean().unwrap_or(f64::NAN)
            };
            let (ms, mp) = (
                mse(&out.ws[0], &xte, &split.test.y),
                mse(&w_plain[0], &xte, &split.test.y),
            );
            let (ts, tp) = (
                mse(&out.ws[0], &xtr, &split.train.y),
                mse(&w_plain[0], &xtr, &split.train.y),
            );
            report.metric(format!("{rs}.test_mse"), ms);
            report.metric(format!("{rp}.test_mse"), mp);
            report.metric(format!("{rs}.train_mse"), ts);
            report.metric(format!("{rp}.train_mse"), tp);
            report.metric(
                format!("{rs}.test_mse_rel_diff"),
                (ms - mp).abs() / mp.abs().max(1e-300),
            );
            rows.push(("secure (2PC)".to_string(), fmt_num(ms), fmt_num(ts)));
            rows.push(("plaintext twin".to_string(), fmt_num(mp), fmt_num(tp)));
        }
        Model::Logreg | Model::Mlp(_) => {
            let (yte, ytrl) = (split.test.labels()?, split.train.labels()?);
            let predict = |ws: &[Array2<f64>], x: &Array2<f64>| match model {
                Model::Logreg => binary_predict(&ws[0], x),
                _ => mlp::predict(ws, x),
            };
            let (ps, pp) = (predict(&out.ws, &xte), predict(&w_plain, &xte));
            let (acc_s, acc_p) = (accuracy(&ps, &yte), accuracy(&pp, &yte));
            let (tr_s, tr_p) = (
                accuracy(&predict(&out.ws, &xtr), &ytrl),
                accuracy(&predict(&w_plain, &xtr), &ytrl),
            );
            report.metric(format!("{rs}.test_accuracy_pct"), acc_s);
            report.metric(format!("{rp}.test_accuracy_pct"), acc_p);
            report.metric(format!("{rs}.train_accuracy_pct"), tr_s);
            report.metric(format!("{rp}.train_accuracy_pct"), tr_p);
            report.metric(format!("{rs}.agreement_pct"), accuracy(&ps, &pp));
            rows.push((
                "secure (2PC)".to_string(),
                format!("{acc_s:.2} %"),
                format!("{tr_s:.2} %"),
            ));
            rows.push((
                "plaintext twin".to_string(),
                format!("{acc_p:.2} %"),
                format!("{tr_p:.2} %"),
            ));
            if !perturbed.is_empty() {
                let accs: Vec<f64> = perturbed
                    .iter()
                    .map(|w| accuracy(&predict(w, &xte), &yte))
                    .collect();
                let (lo, hi) = accs
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                        (a.min(v), b.max(v))
                    });
                let rq = label("plain_perturbed");
                report.metric(format!("{rq}.test_accuracy_min_pct"), lo);
                report.metric(format!("{rq}.test_accuracy_max_pct"), hi);
                report.metric(format!("{rq}.runs_count"), accs.len() as f64);
                let list: Vec<String> = accs.iter().map(|a| format!("{a:.2}")).collect();
                rows.push((
                    format!(
                        "plaintext twins from initial weights moved ≤ ½ ulp ({} runs; first: rounded to the grid)",
                        accs.len()
                    ),
                    format!("{lo:.2}–{hi:.2} % ({} %)", list.join(", ")),
                    String::new(),
                ));
            }
            let majority = {
                let counts = split.test.class_counts()?;
                100.0 * *counts.iter().max().unwrap_or(&0) as f64 / yte.len().max(1) as f64
            };
            rows.push((
                "(majority class)".to_string(),
                format!("{majority:.2} %"),
                String::new(),
            ));
            for name in &task.plain_sigmoids {
                let sk = sigmoid_kind(name).context("plain_sigmoids")?;
                let w = train(
                    &mut Plain::with_sigmoid(sk.clone()),
                    model,
                    &xtr,
                    &ytr,
                    w_init.clone(),
                    &sched,
                    &hyper,
                    &|_| {},
                )
                .await?;
                let acc = accuracy(&predict(&w, &xte), &yte);
                // `plain_sigmoid` is the real logistic function, whatever it was called in the config.
                let key = if matches!(sk, SigmoidKind::Logistic) {
                    "sigmoid"
                } else {
                    name.as_str()
                };
                report.metric(format!("plain_{key}.test_accuracy_pct"), acc);
                rows.push((
                    format!("plaintext, {name} activation"),
                    format!("{acc:.2} %"),
                    String::new(),
                ));
            }
        }
    }

    let (s0, s1) = (out.stats[0], out.stats[1]);
    let steps = sched.steps();
    report.metric(format!("{rs}.online_s"), out.online_s);
    report.metric(format!("{rs}.online_mask_open_s"), out.setup_s);
    report.metric(format!("{rs}.online_train_s"), out.train_s);
    report.metric(
        format!("{rs}.online_per_epoch_s"),
        out.train_s / task.epochs as f64,
    );
    report.metric(format!("{rs}.offline_s"), out.offline_s);
    report.metric(format!("{rp}.train_s"), plain_s);
    report.metric(format!("{rs}.bytes_sent_p0_bytes"), s0.bytes_sent as f64);
    report.metric(format!("{rs}.bytes_sent_p1_bytes"), s1.bytes_sent as f64);
    report.metric(format!("{rs}.rounds_p0_count"), s0.rounds as f64);
    report.metric(format!("{rs}.rounds_p1_count"), s1.rounds as f64);
    report.metric(
        format!("{rs}.rounds_per_batch_count"),
        s0.rounds as f64 / steps as f64,
    );
    report.metric(
        format!("{rs}.offline_bytes_sent_p0_bytes"),
        out.offline_stats[0].bytes_sent as f64,
    );
    report.metric(
        format!("{rs}.offline_bytes_sent_p1_bytes"),
        out.offline_stats[1].bytes_sent as f64,
    );
    report.metric(
        format!("{rs}.offline_bytes_received_p0_bytes"),
        out.offline_stats[0].bytes_received as f64,
    );
    report.metric(
        format!("{rs}.offline_bytes_received_p1_bytes"),
        out.offline_stats[1].bytes_received as f64,
    );
    report.metric(
        format!("{rs}.upload_bytes"),
        ((n * d + ytr.len()) * 8 + 64) as f64,
    );
    report.metric(format!("{rs}.steps_count"), steps as f64);
    report_truncation(report, &rs, truncation, out.truncations, cfg.mpc.frac_bits);

    let quality = if matches!(model, Model::Linreg) {
        "MSE"
    } else {
        "accuracy"
    };
    let mut table = format!("| run | test {quality} | train {quality} |\n|---|---|---|\n");
    for (a, b, c) in &rows {
        table.push_str(&format!("| {a} | {b} | {c} |\n"));
    }
    report.section(
        &format!("{title}{}", if task.label.is_empty() { String::new() } else { format!(" — {}", task.label) }),
        format!(
            "Data: {}.\nSGD: {} epochs, batch {}, learning rate {} ({steps} steps); fixed point f = {}; triples `{source}`; transport `{transport}`.\n\n\
             {table}\nmax |w_secure − w_plain| = {max_dw:.3e}.\n\n\
             | phase | time | P0 sent | P1 sent | rounds (P0) |\n|---|---|---|---|---|\n\
             | offline (`{source}`) | {:.3} s | {} | {} | |\n\
             | online: open E = X − U | {:.3} s | | | |\n\
             | online: SGD | {:.3} s ({:.3} s / epoch) | | | |\n\
             | online total | {:.3} s | {} | {} | {} ({:.1} per step) |\n\
             | plaintext twin | {plain_s:.3} s | | | |\n",
            split.description,
            task.epochs,
            task.batch_size,
            task.learning_rate,
            cfg.mpc.frac_bits,
            out.offline_s,
            fmt_bytes(out.offline_stats[0].bytes_sent as f64),
            fmt_bytes(out.offline_stats[1].bytes_sent as f64),
            out.setup_s,
            out.train_s,
            out.train_s / task.epochs as f64,
            out.online_s,
            fmt_bytes(s0.bytes_sent as f64),
            fmt_bytes(s1.bytes_sent as f64),
            s0.rounds,
            s0.rounds as f64 / steps as f64,
        ),
    );
    report.note(format!("Triples (`{source}`): {}.", out.trust));
    if let Some(f) = &out.flooding {
        f.report(report, &rs);
    }
    report.note(
        "Parties: semi-honest and non-colluding; the data matrix is masked once by a random U shared by the triple source and E = X − U is opened (SecureML §IV). The model is reconstructed only by its owner (here: this process, from both parties' shares).",
    );
    if !matches!(model, Model::Linreg) {
        report.note("Comparisons (ReLU, piecewise sigmoid) are exact: a bit-sliced GMW parallel-prefix adder on the arithmetic shares with AND triples.");
    }
    if let Model::Mlp(SoftmaxKind::Exp) = model {
        report.note("Exp softmax: e^x by the limit approximation (1 + x/2^8)^(2^8) with inputs clamped to [-256, 6], and a Newton reciprocal; the twin uses the exact exp.");
    }
    Ok(())
}

/// The truncation metrics and note of a secure run: the count of truncated values, and for local
/// truncation the per-value bound and the whole-run union bound (count × per-value).
fn report_truncation(report: &mut Report, rs: &str, mode: Truncation, count: u64, f: u32) {
    report.metric(format!("{rs}.truncations_count"), count as f64);
    let l_x = 2 * f + 12;
    match mode {
        Truncation::Local => {
            let p = trunc::failure_probability(l_x);
            // The union bound before capping at 1: above 0 it says nothing about the run.
            let run_log2 = (count as f64).log2() + p.log2();
            let run = trunc::run_failure_bound(count, l_x);
            report.metric(format!("{rs}.truncation_failure_value_log2"), p.log2());
            report.metric(format!("{rs}.truncation_failure_run_log2"), run_log2);
            let verdict = if run_log2 >= 0.0 {
                "≥ 1: the bound guarantees nothing for this run"
            } else {
                "union bound"
            };
            report.note(format!(
                "Truncation (`{rs}`): SecureML's local truncation (`truncation = \"local\"`, the default); a product below 2^l_x in magnitude (encoded) fails with probability ≤ 2^(l_x+1−64): with f = {f} a real product below 4096 has l_x = {l_x}, i.e. {p:.1e} per value. The run truncated {count} values, so it failed anywhere with probability ≤ min(1, {count} · {p:.1e}) = {run:.1e} (count × p = 2^{run_log2:.1}, {verdict}). `truncation = \"exact\"` removes the failure event at one elementwise triple and one round per truncation."
            ));
        }
        Truncation::Exact => report.note(format!(
            "Truncation (`{rs}`): exact (`truncation = \"exact\"`): each truncation computes the wrap bit of the two shares from one Beaver product of the parties' private top bits, so every one of the {count} truncated values is ⌊x/2^d⌋ or +1 for |x| < 2^62 (encoded), with no failure event; cost: one elementwise triple, one round and 16 bytes per party per value."
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Task;

    /// The HE source's noise flooding holds for whole runs, not per coefficient: the statistical
    /// distance summed over every coefficient the responders flood (from the block plans and
    /// widths the source itself uses) is at most 2^-40 for the SecureML Table II workload (the
    /// `he` task of `configs/secureml-offline.toml`, planned as its run plans it) and for 15
    /// epochs of the MNIST MLP 784-128-128-10, batch 128 (60,000 samples).
    #[tokio::test]
    async fn flooding_bound_holds_per_run() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/configs/secureml-offline.toml");
        let cfg = Config::load(std::path::Path::new(path)).unwrap();
        let task = cfg
            .tasks
            .iter()
            .find_map(|t| match t {
                Task::Linreg(t) if t.triples.as_deref() == Some("he") => Some(t),
                _ => None,
            })
            .expect("secureml-offline has an he task");
        let table2 = task_requests(Kind::Linreg, task, &cfg).await.unwrap();
        let f = Flooding::of(&table2).unwrap();
        // Per batch (78 full batches an epoch — the schedule drops the partial one — 2 epochs):
        // a 128-output forward and a 1000-output backward cross term.
        assert_eq!(f.coefficients, 2 * 78 * (128 + 1000));
        assert!(f.distance_log2 <= -40.0, "Table II: 2^{}", f.distance_log2);

        let layers = [784, 128, 128, 10];
        let w_dims: Vec<_> = mlp::init_weights(&layers, 1)
            .iter()
            .map(|w| w.dim())
            .collect();
        let sched = Schedule::shuffled(60_000, 128, 15, 1).unwrap();
        // 468 full batches of 128 an epoch (the 96-sample remainder is dropped).
        assert_eq!(sched.steps(), 468 * 15);
        let hyper = LinRegHyper::new(0.25, 128).unwrap();
        let model = Model::Mlp(SoftmaxKind::Relu);
        let (mnist, _) = plan_requests(
            model,
            (60_000, 784),
            (60_000, 10),
            &w_dims,
            &sched,
            &hyper,
            Truncation::Local,
        )
        .await
        .unwrap();
        let f = Flooding::of(&mnist).unwrap();
        assert!(f.coefficients > 1 << 29, "{}", f.coefficients);
        assert!(f.distance_log2 <= -40.0, "MNIST MLP: 2^{}", f.distance_log2);
        eprintln!("Table II and MNIST MLP: {f:?}");
    }

    #[test]
    fn sigmoid_fits_improve_with_degree() {
        let err = |deg| {
            let c = fit_sigmoid(deg);
            (0..=160)
                .map(|k| {
                    let x = -8.0 + 0.1 * k as f64;
                    let p: f64 = c.iter().rev().fold(0.0, |a, &ci| a * x + ci);
                    (p - 1.0 / (1.0 + (-x).exp())).abs()
                })
                .fold(0.0, f64::max)
        };
        let (e2, e5, e10) = (err(2), err(5), err(10));
        assert!(e10 < e5 && e5 < e2, "{e2} {e5} {e10}");
        assert!(e10 < 0.02, "{e10}");
        assert!(
            sigmoid_kind("poly3").is_some()
                && sigmoid_kind("poly0").is_none()
                && sigmoid_kind("tanh").is_none()
        );
    }
}
