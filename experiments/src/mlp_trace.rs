//! Per-step differential trace of a secure MLP run against its plaintext twin (the `mlp` task of
//! a config): both parties (`Shared` backends on the in-memory channel pair, dealer triples) and
//! the `Plain` twin take the same SGD step on the same batch in lockstep, and after every step the
//! trace records how far apart they are and what the softmax saw.
//!
//! Per step: max |ΔW| per layer; max |Δ logits|; max |Δ softmax|, split into the error of the
//! secure softmax protocol itself (`max |P_secure − softmax_f64(Z_secure)|`) and the conditioning
//! of the function (`max |softmax_f64(Z_secure) − P_plain|`); the number of rows whose ReLU sum is
//! 0 or below 8 ulps in either run; rows where one run takes the uniform fallback and the other
//! does not; and the range of the reciprocal's input (the row sums) in both runs.
//!
//! A second mode (`perturb`) runs the plaintext twin against itself with the initial weights
//! moved by a sub-ulp amount, to tell the secure protocol's errors from the sensitivity of the
//! training dynamics themselves. The model's weights and intermediate values are opened here only
//! because both parties run in this process for the diagnosis; nothing here is part of a protocol.

use crate::common;
use crate::config::{Config, Task, TrainTask};
use crate::offline;
use anyhow::{bail, Context, Result};
use ml::backend::{softmax_rows, Plain, Shared, SoftmaxKind};
use ml::models::linreg::LinRegHyper;
use ml::models::mlp;
use ml::Schedule;
use mpc::net::mem_pair;
use mpc::share::{reconstruct, share};
use mpc::{FixedPoint, FracBits, Role, Share};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::fmt::Write as _;

/// One step of the trace.
#[derive(Debug, Clone, Default)]
pub struct StepRecord {
    /// 1-based step number.
    pub step: usize,
    /// max |W_secure − W_plain| per layer after the step.
    pub dw: Vec<f64>,
    /// max |Z_secure − Z_plain| (logits of this step's batch).
    pub dz: f64,
    /// max |P_secure − P_plain|.
    pub dp: f64,
    /// max |P_secure − softmax_f64(Z_secure)|: the secure softmax's own error.
    pub dp_protocol: f64,
    /// max |softmax_f64(Z_secure) − P_plain|: what the logit differences do to the output.
    pub dp_conditioning: f64,
    /// Rows whose ReLU sum is 0 (uniform fallback), plain / secure.
    pub zero_rows: [usize; 2],
    /// Rows whose ReLU sum is positive but below 8 ulps, plain / secure.
    pub tiny_rows: [usize; 2],
    /// Rows where exactly one run takes the uniform fallback.
    pub fallback_mismatch: usize,
    /// Smallest positive and largest row sum (the reciprocal's input), plain / secure.
    pub sum_range: [(f64, f64); 2],
    /// The plain and secure row sums of the row with the largest |ΔP|.
    pub worst_row_sum: [f64; 2],
    /// The twin's row sums by magnitude: 0, (0, 2^−12), [2^−12, 2^−8), [2^−8, 2^−4), [2^−4, 1),
    /// [1, ∞).
    pub sum_hist: [usize; 6],
}

/// The bucket of [`StepRecord::sum_hist`] a row sum falls in.
fn bucket(s: f64) -> usize {
    if s <= 0.0 {
        0
    } else if s < 2f64.powi(-12) {
        1
    } else if s < 2f64.powi(-8) {
        2
    } else if s < 2f64.powi(-4) {
        3
    } else if s < 1.0 {
        4
    } else {
        5
    }
}

impl StepRecord {
    /// The CSV header matching [`StepRecord::csv`].
    pub fn csv_header(layers: usize) -> String {
        let mut h = String::from("step");
        for i in 0..layers {
            let _ = write!(h, ",dw{i}");
        }
        h.push_str(",dz,dp,dp_protocol,dp_conditioning,zero_plain,zero_secure,tiny_plain,tiny_secure,fallback_mismatch,sum_min_plain,sum_max_plain,sum_min_secure,sum_max_secure,worst_sum_plain,worst_sum_secure,h0,h1,h2,h3,h4,h5");
        h
    }

    /// One CSV line.
    pub fn csv(&self) -> String {
        let mut s = format!("{}", self.step);
        for d in &self.dw {
            let _ = write!(s, ",{d:.3e}");
        }
        let _ = write!(
            s,
            ",{:.3e},{:.3e},{:.3e},{:.3e},{},{},{},{},{},{:.3e},{:.3e},{:.3e},{:.3e},{:.3e},{:.3e}",
            self.dz,
            self.dp,
            self.dp_protocol,
            self.dp_conditioning,
            self.zero_rows[0],
            self.zero_rows[1],
            self.tiny_rows[0],
            self.tiny_rows[1],
            self.fallback_mismatch,
            self.sum_range[0].0,
            self.sum_range[0].1,
            self.sum_range[1].0,
            self.sum_range[1].1,
            self.worst_row_sum[0],
            self.worst_row_sum[1],
        );
        for c in self.sum_hist {
            let _ = write!(s, ",{c}");
        }
        s
    }
}

fn max_abs_diff(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    a.iter()
        .zip(b.iter())
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

fn relu_sums(z: &Array2<f64>) -> Vec<f64> {
    z.rows()
        .into_iter()
        .map(|r| r.iter().map(|v| v.max(0.0)).sum())
        .collect()
}

fn sum_range(s: &[f64]) -> (f64, f64) {
    let pos = s.iter().copied().filter(|&v| v > 0.0);
    (
        pos.clone().fold(f64::INFINITY, f64::min),
        s.iter().copied().fold(0.0, f64::max),
    )
}

/// Compares one step's outputs of the two runs.
#[allow(clippy::too_many_arguments)]
fn record(
    step: usize,
    ulp: f64,
    softmax: SoftmaxKind,
    ws_s: &[Array2<f64>],
    ws_p: &[Array2<f64>],
    z_s: &Array2<f64>,
    z_p: &Array2<f64>,
    p_s: &Array2<f64>,
    p_p: &Array2<f64>,
) -> StepRecord {
    let ideal = softmax_rows(z_s, softmax);
    let (sums_p, sums_s) = (relu_sums(z_p), relu_sums(z_s));
    let count = |s: &[f64], f: &dyn Fn(f64) -> bool| s.iter().filter(|&&v| f(v)).count();
    let tiny = |v: f64| v > 0.0 && v < 8.0 * ulp;
    let mut worst = (0.0, 0usize);
    for (i, (a, b)) in p_s.rows().into_iter().zip(p_p.rows()).enumerate() {
        let d = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        if d > worst.0 {
            worst = (d, i);
        }
    }
    StepRecord {
        step,
        dw: ws_s
            .iter()
            .zip(ws_p)
            .map(|(a, b)| max_abs_diff(a, b))
            .collect(),
        dz: max_abs_diff(z_s, z_p),
        dp: worst.0,
        dp_protocol: max_abs_diff(p_s, &ideal),
        dp_conditioning: max_abs_diff(&ideal, p_p),
        zero_rows: [count(&sums_p, &|v| v <= 0.0), count(&sums_s, &|v| v <= 0.0)],
        tiny_rows: [count(&sums_p, &tiny), count(&sums_s, &tiny)],
        fallback_mismatch: sums_p
            .iter()
            .zip(&sums_s)
            .filter(|(a, b)| (**a > 0.0) != (**b > 0.0))
            .count(),
        sum_range: [sum_range(&sums_p), sum_range(&sums_s)],
        worst_row_sum: [sums_p[worst.1], sums_s[worst.1]],
        sum_hist: sums_p.iter().fold([0; 6], |mut h, &v| {
            h[bucket(v)] += 1;
            h
        }),
    }
}

/// The `mlp` task of `cfg` with `label` (empty: the unlabelled one).
pub fn find_task<'a>(cfg: &'a Config, label: &str) -> Result<&'a TrainTask> {
    cfg.tasks
        .iter()
        .find_map(|t| match t {
            Task::Mlp(m) if m.label == label => Some(m),
            _ => None,
        })
        .with_context(|| format!("no mlp task labelled {label:?} in the config"))
}

/// Everything both modes share: data, labels, initial weights, batches.
struct Setup {
    xtr: Array2<f64>,
    ytr: Array2<f64>,
    xte: Array2<f64>,
    yte: Vec<usize>,
    w_init: Vec<Array2<f64>>,
    sched: Schedule,
    hyper: LinRegHyper,
    softmax: SoftmaxKind,
    fp: FixedPoint,
}

fn setup(task: &TrainTask, cfg: &Config, steps: usize) -> Result<Setup> {
    let seed = cfg.experiment.seed;
    let split = common::load(&task.data, seed)?;
    let (xtr, xte) = common::features(&split, task.standardize)?;
    // The same features (a ones column for the biases), schedule and initial weights as
    // `supervised::run`.
    let (xtr, xte) = if task.intercept {
        let ones = ml::models::bias::append_ones_plain;
        (ones(&xtr), ones(&xte))
    } else {
        (xtr, xte)
    };
    let mut sched = crate::supervised::schedule(task, xtr.nrows(), seed)?;
    sched.truncate(steps);
    Ok(Setup {
        ytr: split.train.one_hot()?,
        yte: split.test.labels()?,
        xtr,
        xte,
        w_init: mlp::init_weights_with_bias(
            &task.layers,
            task.init_seed.unwrap_or(seed),
            task.intercept,
        ),
        sched,
        hyper: LinRegHyper::new(task.learning_rate, task.batch_size)?,
        softmax: task.softmax.unwrap_or(SoftmaxKind::Relu),
        fp: FixedPoint::new(FracBits::new(cfg.mpc.frac_bits)?),
    })
}

fn accuracy(ws: &[Array2<f64>], x: &Array2<f64>, y: &[usize]) -> f64 {
    let p = mlp::predict(ws, x);
    100.0 * p.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len().max(1) as f64
}

/// The trace's outcome.
#[derive(Debug, Clone)]
pub struct Trace {
    /// One record per step.
    pub steps: Vec<StepRecord>,
    /// Test accuracy (%) of the secure run and of the twin after the traced steps.
    pub accuracy: [f64; 2],
}

/// Runs the secure MLP and its twin in lockstep for the first `steps` steps of the task's
/// schedule (all of them if larger), calling `on_step` after each.
pub async fn trace(
    task: &TrainTask,
    cfg: &Config,
    steps: usize,
    on_step: &mut dyn FnMut(&StepRecord),
) -> Result<Trace> {
    let s = setup(task, cfg, steps)?;
    let fp = s.fp;
    let ulp = 1.0 / fp.scale();
    let lr = s.hyper.step_size();
    let n = s.xtr.nrows();
    let reqs = mlp::plan_with_bias(
        &task.layers,
        n,
        &s.sched,
        &s.hyper,
        s.softmax,
        task.intercept,
    );
    let reqs = reqs.await?;
    let off = offline::run("dealer", "memory", &reqs).await?;
    let [pre0, pre1] = off.pre;
    let mut rng = mpc::share::os_rng();
    let enc = |m: &Array2<f64>| fp.encode_matrix(&m.view());
    let [x0, x1] = share(&enc(&s.xtr)?.view(), &mut rng);
    let [y0, y1] = share(&enc(&s.ytr)?.view(), &mut rng);
    let (mut w0, mut w1) = (Vec::new(), Vec::new());
    for w in &s.w_init {
        let [a, b] = share(&enc(w)?.view(), &mut rng);
        w0.push(a);
        w1.push(b);
    }
    let (c0, c1) = mem_pair();
    let (mut b0, mut b1) = (
        Shared::new(c0, Role::P0, fp, pre0),
        Shared::new(c1, Role::P1, fp, pre1),
    );
    let (xd0, xd1) = tokio::join!(b0.data(&x0), b1.data(&x1));
    let (xd0, xd1) = (xd0?, xd1?);
    drop((x0, x1));
    let mut plain = Plain::new();
    let mut wp = s.w_init.clone();
    let open = |a: &Share, b: &Share| fp.decode_matrix(&reconstruct(a, b).view());
    let mut out = Vec::new();
    for rows in s.sched.epochs.iter().flatten() {
        let (o0, o1) = tokio::join!(
            mlp::step(&mut b0, &xd0, &y0, &mut w0, rows, lr, s.softmax),
            mlp::step(&mut b1, &xd1, &y1, &mut w1, rows, lr, s.softmax)
        );
        let (o0, o1) = (o0?, o1?);
        let op = mlp::step(&mut plain, &s.xtr, &s.ytr, &mut wp, rows, lr, s.softmax).await?;
        let ws: Vec<Array2<f64>> = w0.iter().zip(&w1).map(|(a, b)| open(a, b)).collect();
        let r = record(
            out.len() + 1,
            ulp,
            s.softmax,
            &ws,
            &wp,
            &open(&o0.logits, &o1.logits),
            &op.logits,
            &open(&o0.probs, &o1.probs),
            &op.probs,
        );
        on_step(&r);
        out.push(r);
    }
    if !b0.preprocessing_drained() {
        bail!("preprocessing left over after the traced steps");
    }
    let ws: Vec<Array2<f64>> = w0.iter().zip(&w1).map(|(a, b)| open(a, b)).collect();
    Ok(Trace {
        steps: out,
        accuracy: [accuracy(&ws, &s.xte, &s.yte), accuracy(&wp, &s.xte, &s.yte)],
    })
}

/// Sensitivity of the plaintext twin itself: trains it from the task's initial weights and from
/// `runs` copies moved by independent uniform noise of amplitude `amplitude` (e.g. 2^−17, half an
/// ulp at f = 16), and returns the test accuracy of each (unperturbed first) and the final max
/// |ΔW| of each perturbed run against the unperturbed one.
pub async fn perturb(
    task: &TrainTask,
    cfg: &Config,
    steps: usize,
    amplitude: f64,
    runs: usize,
) -> Result<Vec<(f64, f64)>> {
    let s = setup(task, cfg, steps)?;
    let mut plain = Plain::new();
    let base = mlp::train(
        &mut plain,
        &s.xtr,
        &s.ytr,
        s.w_init.clone(),
        &s.sched,
        &s.hyper,
        s.softmax,
        &|_| {},
    )
    .await?;
    let mut out = vec![(accuracy(&base, &s.xte, &s.yte), 0.0)];
    for r in 0..runs {
        let mut rng = ChaCha20Rng::seed_from_u64(1000 + r as u64);
        let w: Vec<Array2<f64>> = s
            .w_init
            .iter()
            .map(|w| w.mapv(|v| v + rng.gen_range(-amplitude..amplitude)))
            .collect();
        let ws = mlp::train(
            &mut plain,
            &s.xtr,
            &s.ytr,
            w,
            &s.sched,
            &s.hyper,
            s.softmax,
            &|_| {},
        )
        .await?;
        let dw = ws
            .iter()
            .zip(&base)
            .map(|(a, b)| max_abs_diff(a, b))
            .fold(0.0, f64::max);
        out.push((accuracy(&ws, &s.xte, &s.yte), dw));
    }
    Ok(out)
}
