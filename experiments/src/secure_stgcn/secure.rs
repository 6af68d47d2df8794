//! The 2PC fine-tuning run: the owner shares the private clips, labels and public starting
//! parameters; both parties run [`ml::models::stgcn`] on [`Shared`] over the configured
//! transport in this process, the offline phase made chunk by chunk (inputs, then at most
//! `chunk_steps` steps, then the export) so the preprocessing held at once stays bounded; the
//! owner finally reconstructs the trained parameters and the exported model tensors.
//!
//! Security model: semi-honest, non-colluding parties; the triple source adds its own
//! assumption (`dealer`: a trusted third party). Truncation is exact (no failure event). The
//! batch schedule, hyper-parameters and the public model's frozen parts are public.

use crate::link::{self, AnyChannel};
use crate::offline::{self, Flooding};
use anyhow::{ensure, Context, Result};
use ml::backend::Shared;
use ml::models::stgcn::{self as mst, StgcnHyper, StgcnShape, StgcnState};
use mpc::net::{CommStats, Metered};
use mpc::share::{reconstruct, share, share_seeded};
use mpc::triples::{Preprocessing, TripleRequest};
use mpc::trunc::Truncation;
use mpc::{FixedPoint, Role, Share};
use ndarray::Array2;
use std::sync::Arc;
use std::time::Instant;

/// What the secure run produced and cost.
#[derive(Debug, Clone)]
pub(super) struct SecureRun {
    /// Trained parameters (`param_dims` order), reconstructed by the owner.
    pub(super) params: Vec<Array2<f64>>,
    /// Exported model tensors, reconstructed by the owner.
    pub(super) tensors: Vec<Array2<f64>>,
    /// Online seconds of the steps of each epoch (both parties, wall clock).
    pub(super) epoch_online_s: Vec<f64>,
    /// Offline seconds of the steps of each epoch.
    pub(super) epoch_offline_s: Vec<f64>,
    /// Steps of each epoch.
    pub(super) epoch_steps: Vec<usize>,
    /// Online and offline seconds of the BN re-calibration (0 without one).
    pub(super) calibration_online_s: f64,
    pub(super) calibration_offline_s: f64,
    /// Online and offline seconds of the input preparation and the export together.
    pub(super) setup_online_s: f64,
    pub(super) setup_offline_s: f64,
    /// Online traffic of P0 and P1 during the steps only.
    pub(super) step_stats: [CommStats; 2],
    /// Offline traffic of P0 and P1 during the steps' chunks only.
    pub(super) step_offline_stats: [CommStats; 2],
    /// The source's trust note.
    pub(super) trust: &'static str,
    /// The triple source's name.
    pub(super) source: String,
    /// `he` only: the noise flooding over all chunks.
    pub(super) flooding: Option<Flooding>,
    /// Values truncated by each party (equal).
    pub(super) truncations: u64,
}

/// One chunk of work on both parties.
#[derive(Clone)]
enum Op {
    Prepare,
    Calibrate,
    Steps(Vec<Vec<usize>>),
    Export,
}

/// A party's channel and shares between chunks.
struct Party {
    ch: Metered<AnyChannel>,
    x: Arc<Share>,
    y: Arc<Share>,
    state: StgcnState<Share>,
    truncations: u64,
}

/// The fixed public inputs of every chunk.
#[derive(Clone)]
pub(super) struct Setting {
    pub(super) shape: Arc<StgcnShape>,
    pub(super) hyper: StgcnHyper,
    pub(super) fp: FixedPoint,
    pub(super) source: String,
    pub(super) transport: String,
    pub(super) chunk_steps: usize,
    /// The public calibration clips (empty: no BN re-calibration).
    pub(super) calibration: Arc<Vec<usize>>,
}

const TRUNC: Truncation = Truncation::Exact;

impl SecureRun {
    /// The triple source's name in a table.
    pub(super) fn trust_short(&self) -> String {
        self.source.clone()
    }
}

/// Owner: encode and share the data, labels and starting parameters (OS CSPRNG).
fn deal(
    fp: FixedPoint,
    x: &Array2<f64>,
    y: &Array2<f64>,
    p0: &[Array2<f64>],
) -> Result<[(Share, Share, Vec<Share>); 2]> {
    let mut rng = mpc::share::os_rng();
    let xe = fp.encode_matrix(&x.view()).context("encoding the clips")?;
    let ye = fp.encode_matrix(&y.view()).context("encoding the labels")?;
    let (xs, x1) = share_seeded(&xe.view(), &mut rng);
    let (ys, y1) = share_seeded(&ye.view(), &mut rng);
    let (mut w0, mut w1) = (Vec::new(), Vec::new());
    for (i, w) in p0.iter().enumerate() {
        let e = fp
            .encode_matrix(&w.view())
            .with_context(|| format!("encoding starting parameter #{i}"))?;
        let [a, b] = share(&e.view(), &mut rng);
        w0.push(a);
        w1.push(b);
    }
    let x0 = xs.expand(x.nrows(), x.ncols());
    let y0 = ys.expand(y.nrows(), y.ncols());
    Ok([(x0, y0, w0), (x1, y1, w1)])
}

/// The requests of one chunk (the model code on shapes).
async fn plan(s: &Setting, n: usize, op: &Op) -> Result<Vec<TripleRequest>> {
    Ok(match op {
        Op::Prepare => mst::plan_prepare_with(&s.shape, n, TRUNC).await?,
        Op::Calibrate => mst::plan_calibrate_with(&s.shape, n, &s.calibration, TRUNC).await?,
        Op::Steps(b) => mst::plan_steps_with(&s.shape, n, b, &s.hyper, TRUNC).await?,
        Op::Export => mst::plan_export_with(&s.shape, TRUNC).await?,
    })
}

/// One party's part of a chunk; returns the party and, for the export, its tensor shares.
async fn party_chunk(
    mut p: Party,
    role: Role,
    s: Setting,
    pre: Preprocessing,
    op: Op,
) -> Result<(Party, Vec<Share>)> {
    let mut b = Shared::new(p.ch, role, s.fp, pre).with_truncation(TRUNC);
    let mut out = Vec::new();
    match &op {
        Op::Prepare => p.x = Arc::new(mst::prepare_inputs(&mut b, &s.shape, &p.x).await?),
        Op::Calibrate => {
            let params = &mut p.state.params;
            mst::calibrate(&mut b, &s.shape, &p.x, params, &s.calibration).await?
        }
        Op::Steps(batches) => {
            let h = &s.hyper;
            let (x, y) = (&*p.x, &*p.y);
            mst::train(
                &mut b,
                &s.shape,
                x,
                y,
                &mut p.state,
                batches,
                h,
                &mut |_, _| {},
            )
            .await?
        }
        Op::Export => out = mst::export_tensors(&mut b, &s.shape, &p.state.params).await?,
    }
    ensure!(
        b.preprocessing_drained(),
        "preprocessing left over after a chunk"
    );
    p.truncations += b.truncations();
    p.ch = b.into_channel();
    Ok((p, out))
}

/// Seconds and offline traffic of a chunk.
struct ChunkCost {
    online_s: f64,
    offline_s: f64,
    offline: [CommStats; 2],
    flooding: Option<Flooding>,
    trust: &'static str,
}

/// Plans, makes the triples and runs one chunk on both parties.
async fn chunk(
    s: &Setting,
    parties: [Party; 2],
    n: usize,
    op: Op,
) -> Result<([Party; 2], Vec<mpc::ring::RingMatrix>, ChunkCost)> {
    let req = plan(s, n, &op).await?;
    let off = offline::run(&s.source, &s.transport, &req).await?;
    drop(req);
    let [pre0, pre1] = off.pre;
    let [p0, p1] = parties;
    let t = Instant::now();
    let h0 = tokio::spawn(party_chunk(p0, Role::P0, s.clone(), pre0, op.clone()));
    let h1 = tokio::spawn(party_chunk(p1, Role::P1, s.clone(), pre1, op));
    let (r0, r1) = tokio::join!(h0, h1);
    let ((p0, t0), (p1, t1)) = (r0??, r1??);
    let online_s = t.elapsed().as_secs_f64();
    let tensors = t0.iter().zip(&t1).map(|(a, b)| reconstruct(a, b)).collect();
    let cost = ChunkCost {
        online_s,
        offline_s: off.seconds,
        offline: off.stats,
        flooding: off.flooding,
        trust: off.trust,
    };
    Ok(([p0, p1], tensors, cost))
}

fn add_stats(a: &mut CommStats, b: &CommStats) {
    a.bytes_sent += b.bytes_sent;
    a.bytes_received += b.bytes_received;
    a.frames_sent += b.frames_sent;
    a.frames_received += b.frames_received;
    a.rounds += b.rounds;
}

/// Sums the flooding of chunks (coefficients add, statistical distances add).
fn add_flooding(acc: Option<Flooding>, f: Option<Flooding>) -> Option<Flooding> {
    match (acc, f) {
        (Some(a), Some(b)) => Some(Flooding {
            coefficients: a.coefficients + b.coefficients,
            distance_log2: (a.distance_log2.exp2() + b.distance_log2.exp2()).log2(),
        }),
        (a, b) => a.or(b),
    }
}

/// Runs the whole secure fine-tuning over `epochs` (batches per epoch) from `start`.
pub(super) async fn run(
    s: &Setting,
    x: &Array2<f64>,
    y: &Array2<f64>,
    start: &[Array2<f64>],
    epochs: &[Vec<Vec<usize>>],
    progress: &indicatif::ProgressBar,
) -> Result<SecureRun> {
    let n = x.nrows();
    let [(x0, y0, w0), (x1, y1, w1)] = deal(s.fp, x, y, start)?;
    let (c0, c1) = link::pair(&s.transport).await?;
    let (c0, c1) = (Metered::new(c0), Metered::new(c1));
    let (m0, m1) = (c0.meter(), c1.meter());
    let party = |ch, x, y, w: Vec<Share>| Party {
        ch,
        x: Arc::new(x),
        y: Arc::new(y),
        state: StgcnState {
            velocity: w
                .iter()
                .map(|s| Share::zeros(s.dim().0, s.dim().1))
                .collect(),
            params: w,
        },
        truncations: 0,
    };
    let mut parties = [party(c0, x0, y0, w0), party(c1, x1, y1, w1)];
    let mut run = SecureRun {
        params: Vec::new(),
        tensors: Vec::new(),
        epoch_online_s: Vec::new(),
        epoch_offline_s: Vec::new(),
        epoch_steps: Vec::new(),
        calibration_online_s: 0.0,
        calibration_offline_s: 0.0,
        setup_online_s: 0.0,
        setup_offline_s: 0.0,
        step_stats: Default::default(),
        step_offline_stats: Default::default(),
        trust: "",
        source: s.source.clone(),
        flooding: None,
        truncations: 0,
    };
    let (ps, _, c) = chunk(s, parties, n, Op::Prepare).await?;
    parties = ps;
    run.setup_online_s += c.online_s;
    run.setup_offline_s += c.offline_s;
    run.flooding = add_flooding(run.flooding, c.flooding);
    if !s.calibration.is_empty() {
        let (ps, _, c) = chunk(s, parties, n, Op::Calibrate).await?;
        parties = ps;
        run.calibration_online_s = c.online_s;
        run.calibration_offline_s = c.offline_s;
        run.flooding = add_flooding(run.flooding, c.flooding);
    }
    let before = [m0.stats(), m1.stats()];
    for batches in epochs {
        let (mut on, mut off) = (0.0, 0.0);
        for part in batches.chunks(s.chunk_steps) {
            let (ps, _, c) = chunk(s, parties, n, Op::Steps(part.to_vec())).await?;
            parties = ps;
            on += c.online_s;
            off += c.offline_s;
            for (acc, st) in run.step_offline_stats.iter_mut().zip(&c.offline) {
                add_stats(acc, st);
            }
            run.flooding = add_flooding(run.flooding, c.flooding);
            run.trust = c.trust;
            progress.inc(part.len() as u64);
        }
        run.epoch_online_s.push(on);
        run.epoch_offline_s.push(off);
        run.epoch_steps.push(batches.len());
    }
    let after = [m0.stats(), m1.stats()];
    run.step_stats = [after[0].since(&before[0]), after[1].since(&before[1])];
    let (ps, tensors, c) = chunk(s, parties, n, Op::Export).await?;
    run.setup_online_s += c.online_s;
    run.setup_offline_s += c.offline_s;
    run.flooding = add_flooding(run.flooding, c.flooding);
    let [p0, p1] = ps;
    ensure!(
        p0.truncations == p1.truncations,
        "the parties truncated {} and {} values",
        p0.truncations,
        p1.truncations
    );
    run.truncations = p0.truncations;
    let decode = |m: &mpc::ring::RingMatrix| s.fp.decode_matrix(&m.view());
    run.tensors = tensors.iter().map(decode).collect();
    run.params = p0
        .state
        .params
        .iter()
        .zip(&p1.state.params)
        .map(|(a, b)| s.fp.decode_matrix(&reconstruct(a, b).view()))
        .collect();
    Ok(run)
}
