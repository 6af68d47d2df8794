//! The measurements of a training task: the secure run (plan, offline phase, online phase over the
//! transport, reconstruction by the owner) and its plaintext twins, returned as typed results
//! ([`SecureOutcome`], [`Measured`]) for [`super::report`] to render.

use super::quality::{self, Quality};
use super::{plain_train, Inputs};
use crate::common;
use crate::link::{self, AnyChannel};
use crate::offline::Flooding;
use anyhow::{Context, Result};
use ml::backend::{Plain, Plan, PlanTensor, Shared};
use ml::models::linreg::{LinRegHyper, Progress};
use ml::models::{self, Model};
use ml::Schedule;
use mpc::net::{CommStats, Metered};
use mpc::share::{reconstruct, share_seeded, Seed};
use mpc::triples::{Preprocessing, TripleRequest};
use mpc::trunc::Truncation;
use mpc::{FixedPoint, Role, Share};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::sync::Arc;
use std::time::Instant;

/// What a secure run produced.
#[derive(Debug, Clone)]
pub struct SecureOutcome {
    /// The trained weights, reconstructed by the owner.
    pub ws: Vec<Array2<f64>>,
    /// Online phase, wall clock (both parties).
    pub online_s: f64,
    /// Online: opening the masked data matrix E = X − U (P0).
    pub setup_s: f64,
    /// Online: the SGD steps (P0).
    pub train_s: f64,
    /// Offline phase (making the triples).
    pub offline_s: f64,
    /// Wall seconds from the start of the offline phase to the end of the online phase (the
    /// two overlap when the offline phase is streamed).
    pub total_s: f64,
    /// Online traffic of P0 and P1.
    pub stats: [CommStats; 2],
    /// Offline traffic of P0 and P1.
    pub offline_stats: [CommStats; 2],
    /// Who must be trusted for the triples.
    pub trust: &'static str,
    /// The noise flooding of an `he` source.
    pub flooding: Option<Flooding>,
    /// Values truncated by the run (planned, and checked against both parties' counts).
    pub truncations: u64,
}

/// Everything a training task measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// The secure run.
    pub secure: SecureOutcome,
    /// Training time of the plaintext twin.
    pub plain_s: f64,
    /// max |w_secure − w_plain| over all weights.
    pub max_weight_diff: f64,
    /// Model quality of the runs.
    pub quality: Quality,
    /// SGD steps.
    pub steps: usize,
    /// Bytes the owner uploads (both parties' shares of the data).
    pub upload_bytes: f64,
}

/// The triple requests of a training run (the model code on shapes: the plan) and the number of
/// values it truncates.
pub(super) async fn plan_requests(
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
    let yp = &PlanTensor(y_dim);
    models::train(&mut plan, model, &xp, yp, wp, sched, hyper, &|_| {}).await?;
    let truncations = plan.truncations();
    Ok((plan.into_requests(), truncations))
}

/// Runs the twin, the perturbed twins, the secure run and the quality evaluation, in that order.
pub(super) async fn measure(inp: &Inputs<'_>, what: &str) -> Result<Measured> {
    let t = Instant::now();
    let w_plain = plain_train(inp, &mut Plain::new(), inp.w_init.clone()).await?;
    let plain_s = t.elapsed().as_secs_f64();
    let perturbed = perturbed_twins(inp).await?;
    let secure = secure_run(inp, what).await?;
    let max_weight_diff = secure
        .ws
        .iter()
        .zip(&w_plain)
        .flat_map(|(a, b)| a.iter().zip(b.iter()).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f64::max);
    let quality = quality::evaluate(inp, &secure.ws, &w_plain, &perturbed).await?;
    let (n, d) = inp.xtr.dim();
    Ok(Measured {
        secure,
        plain_s,
        max_weight_diff,
        quality,
        steps: inp.sched.steps(),
        upload_bytes: ((n * d + inp.ytr.len()) * 8 + 64) as f64,
    })
}

/// MLP only: twins whose initial weights are moved by at most half an ulp of the fixed-point
/// encoding (the first one rounded to the grid), the twin's sensitivity to rounding.
async fn perturbed_twins(inp: &Inputs<'_>) -> Result<Vec<Vec<Array2<f64>>>> {
    let mut perturbed = Vec::new();
    if !matches!(inp.model, Model::Mlp(_)) {
        return Ok(perturbed);
    }
    let half_ulp = inp.fp.ulp() / 2.0;
    for r in 0..inp.twin_perturbations {
        let mut rng = ChaCha20Rng::seed_from_u64(inp.seed ^ (0x7e57 + r as u64));
        let w: Vec<Array2<f64>> = if r == 0 {
            let grid = inp.fp.scale();
            inp.w_init
                .iter()
                .map(|w| w.mapv(|v| (v * grid).round() / grid))
                .collect()
        } else {
            inp.w_init
                .iter()
                .map(|w| w.mapv(|v| v + rng.gen_range(-half_ulp..half_ulp)))
                .collect()
        };
        perturbed.push(plain_train(inp, &mut Plain::new(), w).await?);
    }
    Ok(perturbed)
}

/// The owner's shares of the training data and initial weights.
struct Dealt {
    x_seed: Seed,
    x1: Share,
    y_seed: Seed,
    y1: Share,
    w: [Vec<Share>; 2],
}

/// Data owner: encode and share (seeds and masks from the OS CSPRNG).
fn deal(
    fp: FixedPoint,
    xtr: &Array2<f64>,
    ytr: &Array2<f64>,
    w_init: &[Array2<f64>],
) -> Result<Dealt> {
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
    Ok(Dealt {
        x_seed,
        x1,
        y_seed,
        y1,
        w: [w0s, w1s],
    })
}

/// The secure run: share, plan, make the triples, train on both parties, reconstruct.
async fn secure_run(inp: &Inputs<'_>, what: &str) -> Result<SecureOutcome> {
    let (xtr, ytr) = (&inp.xtr, &inp.ytr);
    let (n, d) = xtr.dim();
    let Dealt {
        x_seed,
        x1,
        y_seed,
        y1,
        w: [w0s, w1s],
    } = deal(inp.fp, xtr, ytr, &inp.w_init)?;

    // Offline phase: plan on shapes, then make the triples.
    let w_dims: Vec<_> = inp.w_init.iter().map(|w| w.dim()).collect();
    let (requests, truncations) = plan_requests(
        inp.model,
        (n, d),
        ytr.dim(),
        &w_dims,
        &inp.sched,
        &inp.hyper,
        inp.truncation,
    )
    .await?;
    // The offline phase runs alongside the online one, a bounded number of chunks ahead
    // (`offline::run_streamed`); its first chunk holds the data masks.
    let t_all = Instant::now();
    let ([pre0, pre1], producer) =
        crate::offline::run_streamed(inp.source, inp.transport, &requests).await?;

    // Online phase.
    let (c0, c1) = link::pair(inp.transport).await?;
    let (c0, c1) = (Metered::new(c0), Metered::new(c1));
    let (m0, m1) = (c0.meter(), c1.meter());
    let pb = Arc::new(common::progress(inp.sched.steps() as u64, what));
    let x0 = x_seed.expand(n, d);
    let y0 = y_seed.expand(ytr.nrows(), ytr.ncols());
    let job = PartyJob {
        model: inp.model,
        sched: inp.sched.clone(),
        hyper: inp.hyper,
        fp: inp.fp,
        truncation: inp.truncation,
        truncations,
        what: what.to_string(),
    };
    let t = Instant::now();
    let h0 = job
        .clone()
        .spawn(c0, Role::P0, [x0, y0], w0s, pre0, Some(pb.clone()));
    let h1 = job.spawn(c1, Role::P1, [x1, y1], w1s, pre1, None);
    let (r0, r1) = tokio::join!(h0, h1);
    let online_s = t.elapsed().as_secs_f64();
    pb.finish_and_clear();
    // A producer that failed left the online phase an empty pool: its error says why (one
    // whose consumer stopped first stops quietly, and the online error is the cause).
    let off = producer
        .finish()
        .await
        .context("offline phase (triple producer)")?;
    let ((s0, setup_s, train_s), (s1, _, _)) = (r0??, r1??);
    let total_s = t_all.elapsed().as_secs_f64();
    // The model's owner reconstructs it from the two shares.
    let ws = s0
        .iter()
        .zip(&s1)
        .map(|(a, b)| inp.fp.decode_matrix(&reconstruct(a, b).view()))
        .collect();
    Ok(SecureOutcome {
        ws,
        online_s,
        setup_s,
        train_s,
        offline_s: off.seconds,
        total_s,
        stats: [m0.stats(), m1.stats()],
        offline_stats: off.stats,
        trust: off.trust,
        flooding: off.flooding,
        truncations,
    })
}

/// What each party's task needs besides its channel, shares and preprocessing.
#[derive(Clone)]
struct PartyJob {
    model: Model,
    sched: Arc<Schedule>,
    hyper: LinRegHyper,
    fp: FixedPoint,
    truncation: Truncation,
    truncations: u64,
    what: String,
}

/// A party's trained weight shares, its setup time (opening E) and its training time.
type PartyResult = Result<(Vec<Share>, f64, f64)>;

impl PartyJob {
    /// One party's online phase as a task: open the masked data, train, check that the
    /// preprocessing is used up and the truncation count is the planned one.
    fn spawn(
        self,
        ch: Metered<AnyChannel>,
        role: Role,
        [x, y]: [Share; 2],
        ws: Vec<Share>,
        pre: Preprocessing,
        pb: Option<Arc<indicatif::ProgressBar>>,
    ) -> tokio::task::JoinHandle<PartyResult> {
        tokio::spawn(async move {
            let mut b = Shared::new(ch, role, self.fp, pre).with_truncation(self.truncation);
            let t = Instant::now();
            let xd = b.data(&x).await?;
            let setup_s = t.elapsed().as_secs_f64();
            drop(x);
            let what = self.what;
            let cb = move |p: Progress| {
                if let Some(pb) = &pb {
                    pb.inc(1);
                    pb.set_message(format!("{what}, epoch {}", p.epoch + 1));
                }
            };
            let t = Instant::now();
            let (s, h) = (&self.sched, &self.hyper);
            let ws = models::train(&mut b, self.model, &xd, &y, ws, s, h, &cb).await?;
            anyhow::ensure!(
                b.preprocessing_drained(),
                "preprocessing left over after training"
            );
            anyhow::ensure!(
                b.truncations() == self.truncations,
                "{} truncations planned but {} done",
                self.truncations,
                b.truncations()
            );
            anyhow::Ok((ws, setup_s, t.elapsed().as_secs_f64()))
        })
    }
}
