//! Measurements of the NTU-shaped part of the `cryptogcn` task, returned as typed figures
//! (nothing here writes to the report): the model compiled for both packings, the planned
//! operation counts per stage, ciphertext and key sizes, latency estimates from probed
//! per-operation costs, and the measured latency of one sample per packing and thread count;
//! with `planner = true` also the plan `hegcn::planner` chose (module `planned`).

use super::costs::{cost_at, probe_costs, OpCosts};
use super::engine::{in_pool, run_staged, stage_levels, ClientKeys, StageMemory};
use super::planned::{self, PlannerFigures};
use crate::common;
use crate::config::cryptogcn::{preset_by_name, CryptogcnTask, PackingName};
use anyhow::{bail, Context, Result};
use ckks::{CkksParams, Evaluator, GaloisKeys, OpCounts};
use datasets::skeleton::Graph;
use hegcn::{choose_preset, counts_sum, HeStgcn, Packing, PlaintextCacheStats, PlannedStage};
use ndarray::{Array4, Array5, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use std::time::Instant;
use stgcn::{FoldedModel, GraphSpec, StGcn, StGcnConfig};

/// The NTU-shaped model at its preset, compiled for both packings.
pub(super) struct Ntu {
    pub(super) model: FoldedModel,
    pub(super) preset: ckks::Preset,
    /// Multiplicative depth of the model (the level plan's).
    pub(super) depth: usize,
    pub(super) params: CkksParams,
    /// AMA, then the baseline.
    pub(super) compiled: Vec<(PackingName, HeStgcn)>,
    /// Seconds each packing took to compile, in the order of `compiled`.
    pub(super) compile_s: Vec<(PackingName, f64)>,
    /// The planner's choice and ranking (`planner = true`; its model is `compiled`'s
    /// `planned`).
    pub(super) planner: Option<PlannerFigures>,
}

/// Planned operation counts of both packings, stage by stage.
pub(super) struct Counts {
    /// Stage name and input level, in order.
    pub(super) levels: Vec<(String, usize)>,
    /// Per packing (AMA, then the baseline): the planned stages, in the order of `levels`.
    pub(super) planned: Vec<(PackingName, Vec<PlannedStage>)>,
}

impl Counts {
    /// The total counts of every packing, in the order of `planned`.
    pub(super) fn totals(&self) -> Vec<OpCounts> {
        self.planned
            .iter()
            .map(|(_, p)| counts_sum(p.iter().map(|s| &s.counts)))
            .collect()
    }
}

/// Serialized sizes of the keys and of one packing's ciphertexts.
pub(super) struct Sizes {
    pub(super) preset: &'static str,
    /// Level of a fresh ciphertext (the model's depth).
    pub(super) top_level: usize,
    pub(super) public_key_bytes: usize,
    pub(super) relin_key_bytes: usize,
    /// One Galois key (every key has the same size).
    pub(super) galois_key_bytes: usize,
    pub(super) packings: Vec<PackingSizes>,
}

/// Ciphertext sizes and Galois-key count of one packing.
pub(super) struct PackingSizes {
    pub(super) run: &'static str,
    pub(super) input_ciphertexts: usize,
    /// One ciphertext at the top level.
    pub(super) ciphertext_bytes: usize,
    /// One ciphertext dropped to level 0.
    pub(super) level0_bytes: usize,
    /// Rotation steps the packing uses (one Galois key each).
    pub(super) galois_steps: usize,
}

/// Latency estimates from probed per-operation costs (one thread).
pub(super) struct Estimates {
    /// Costs per level, ascending.
    pub(super) costs: Vec<(usize, OpCosts)>,
    /// Per packing: run, estimated seconds with pre-encoded weights, extra encode seconds.
    pub(super) packings: Vec<(&'static str, f64, f64)>,
}

/// One measured latency run: one sample, one packing, one thread count.
pub(super) struct LatencyRun {
    pub(super) run: &'static str,
    /// Thread count (0 = all cores).
    pub(super) threads: usize,
    /// Timed on a second pass, the plaintext cache warm.
    pub(super) warm_cache: bool,
    /// Per stage: name, seconds, measured counts (equal to the plan).
    pub(super) stages: Vec<(String, f64, OpCounts)>,
    pub(super) encrypt_s: f64,
    pub(super) decrypt_s: f64,
    pub(super) keygen_s: f64,
    pub(super) galois_keys: usize,
    pub(super) cache_before: PlaintextCacheStats,
    pub(super) cache_after: PlaintextCacheStats,
    /// Largest |encrypted − plaintext| logit.
    pub(super) max_logit_error: f64,
    /// Peak resident memory of the process during the run (Linux; `None` elsewhere).
    pub(super) peak_rss_bytes: Option<f64>,
    /// Per stage (in the order of `stages`): Galois keys held and resident memory.
    pub(super) stage_memory: Vec<StageMemory>,
    /// Resident memory when the run started (compiled models and client keys).
    pub(super) start_rss_bytes: Option<f64>,
    /// The lockstep bound of the temporal convolutions (bytes).
    pub(super) lockstep_bytes: usize,
}

impl LatencyRun {
    /// Server seconds: the sum of the stages.
    pub(super) fn total_s(&self) -> f64 {
        self.stages.iter().map(|s| s.1).sum()
    }
}

/// The measured latency runs and the scale of the plaintext logits.
pub(super) struct Latency {
    /// Largest |logit| of the plaintext model on the timing input.
    pub(super) plain_max_abs_logit: f64,
    pub(super) runs: Vec<LatencyRun>,
}

/// The NTU-shaped model with random weights (seeded) and the configured pruning.
///
/// A freshly initialised network has running statistics mean 0 / variance 1 in every batch norm,
/// so with x² activations the values grow with every square (plaintext logits ~1e7 at full
/// width on inputs in [−1, 1), beyond what CKKS holds at Δ = 2^40). The batch-norm statistics
/// are therefore recomputed on a few random clips of the same distribution as the timing input
/// (precise BN, [`StGcn::recompute_bn_statistics`]), as training would leave them: every
/// activation then sees values of order one and the encrypted logits can be checked against
/// the plaintext ones. Weights and operation counts are unchanged.
fn ntu_model(t: &CryptogcnTask, seed: u64) -> Result<FoldedModel> {
    let g = Graph::ntu25();
    let graph = GraphSpec::from_edges("ntu-rgb+d", g.num_nodes, &g.edges, g.center)?;
    let mut cfg = StGcnConfig::new(
        t.architecture,
        t.width_divisor,
        3,
        t.frames,
        &graph.adjacency_array()?,
        t.classes,
    );
    cfg.graph = graph;
    cfg.num_persons = t.persons;
    for &[b, s] in &t.pruned_sites {
        cfg.prune(b, s, &(0..g.num_nodes).collect::<Vec<_>>())?;
    }
    let mut model = StGcn::new(cfg, seed)?;
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x6e74_7563_616c);
    let calib = Array5::from_shape_fn((4, 3, t.frames, g.num_nodes, t.persons), |_| {
        rng.gen_range(-1.0..1.0)
    });
    model.recompute_bn_statistics(calib.view(), 4)?;
    Ok(model.fold())
}

/// The random timing input `(3, T, 25, M)` in [−1, 1) (seeded).
pub(super) fn ntu_input(t: &CryptogcnTask, seed: u64) -> Array4<f64> {
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
    Array4::from_shape_fn((3, t.frames, 25, t.persons), |_| rng.gen_range(-1.0..1.0))
}

/// Builds the NTU-shaped model, picks its preset (the configured one, or the smallest that
/// holds it) and compiles it for AMA and the baseline.
pub(super) fn compile(t: &CryptogcnTask, seed: u64) -> Result<Ntu> {
    let arch = t.architecture.name();
    let model = ntu_model(t, seed)?;
    let (auto_preset, plan) = choose_preset(&model, Packing::Ama)?;
    let preset = match &t.preset {
        Some(p) => preset_by_name(p)?,
        None => auto_preset,
    };
    let params = preset.build()?;
    let pb = common::progress(2, "compiling");
    let mut compiled = Vec::new();
    let mut compile_s = Vec::new();
    for name in [PackingName::Ama, PackingName::Baseline] {
        pb.set_message(format!("compiling {}", name.run()));
        let t0 = Instant::now();
        let packing = name.packing().context("a uniform packing")?;
        let he = HeStgcn::compile(&model, packing, &params)
            .with_context(|| format!("compiling {arch} for {}", name.run()))?;
        he.set_plaintext_cache_budget(t.plaintext_cache_mib << 20);
        he.set_lockstep_budget(t.lockstep_mib << 20);
        compile_s.push((name, t0.elapsed().as_secs_f64()));
        compiled.push((name, he));
        pb.inc(1);
    }
    pb.finish_and_clear();
    let mut planner = None;
    if t.planner {
        let t0 = Instant::now();
        let threads = t.latency_threads.first().copied().unwrap_or(0);
        let (he, f) = planned::plan(&model, &params, threads)
            .with_context(|| format!("planning the packing of {arch}"))?;
        he.set_plaintext_cache_budget(t.plaintext_cache_mib << 20);
        he.set_lockstep_budget(t.lockstep_mib << 20);
        compile_s.push((PackingName::Planned, t0.elapsed().as_secs_f64()));
        compiled.push((PackingName::Planned, he));
        planner = Some(f);
    }
    Ok(Ntu {
        model,
        preset,
        depth: plan.depth,
        params,
        compiled,
        compile_s,
        planner,
    })
}

/// The planned counts of both compiled programs (`HeStgcn::planned_op_counts`).
pub(super) fn counts(ntu: &Ntu) -> Counts {
    Counts {
        levels: stage_levels(&ntu.compiled[0].1),
        planned: ntu
            .compiled
            .iter()
            .map(|(name, he)| (*name, he.planned_op_counts()))
            .collect(),
    }
}

/// Serialized key sizes and, per packing, the input ciphertexts of `x`.
pub(super) fn sizes(ntu: &Ntu, keys: &mut ClientKeys, x: &Array4<f64>) -> Result<Sizes> {
    let params = &ntu.params;
    let one_key = keys.kg.galois_keys(&keys.sk, &[1], false)?;
    let galois_key_bytes =
        one_key.to_bytes(params)?.len() - GaloisKeys::default().to_bytes(params)?.len();
    drop(one_key);
    let mut packings = Vec::new();
    for (name, he) in &ntu.compiled {
        let ct = he.encrypt_input(&keys.pk, x.view())?;
        let eval = Evaluator::new(params);
        packings.push(PackingSizes {
            run: name.run(),
            input_ciphertexts: ct.cts.len(),
            ciphertext_bytes: ct.cts[0].to_bytes(params)?.len(),
            level0_bytes: eval.drop_to_level(&ct.cts[0], 0)?.to_bytes(params)?.len(),
            galois_steps: he.rotation_steps().len(),
        });
    }
    Ok(Sizes {
        preset: ntu.preset.name,
        top_level: ntu.depth,
        public_key_bytes: keys.pk.to_bytes()?.len(),
        relin_key_bytes: keys.rk.to_bytes(params)?.len(),
        galois_key_bytes,
        packings,
    })
}

/// Probes per-operation costs at every level a stage starts at and estimates each packing's
/// one-thread latency (counts × costs) and the extra time of encoding every weight on the fly.
pub(super) fn estimates(ntu: &Ntu, counts: &Counts, keys: &mut ClientKeys) -> Result<Estimates> {
    let mut lv: Vec<usize> = counts.levels.iter().map(|l| l.1).collect();
    lv.sort_unstable();
    lv.dedup();
    let costs = probe_costs(&ntu.params, keys, &lv)?;
    let mut packings = Vec::new();
    for (name, planned) in &counts.planned {
        let mut secs = 0.0;
        let mut enc = 0.0;
        for (k, (_, level)) in counts.levels.iter().enumerate() {
            let c = cost_at(&costs, *level);
            secs += c.seconds(&planned[k].counts);
            enc += planned[k].counts.mul_plain as f64 * c.encode;
        }
        packings.push((name.run(), secs, enc));
    }
    Ok(Estimates { costs, packings })
}

/// Measures one sample's latency for every configured packing and thread count, checking
/// that the evaluator's counts equal the plan and the logits the plaintext model's. Takes the
/// compiled programs out of `ntu` and drops each after its runs (and those not measured before
/// the first), so that only the measured program is resident.
pub(super) fn latency(
    t: &CryptogcnTask,
    ntu: &mut Ntu,
    counts: &Counts,
    keys: &mut ClientKeys,
    x: &Array4<f64>,
) -> Result<Latency> {
    let want = {
        let x5: Array5<f64> = x.clone().insert_axis(Axis(0));
        ntu.model.forward(x5.view())?.row(0).to_owned()
    };
    let plain_max_abs_logit = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let mut runs = Vec::new();
    let mut compiled = std::mem::take(&mut ntu.compiled);
    compiled.retain(|c| t.latency_packings.contains(&c.0));
    for &name in &t.latency_packings {
        let i = compiled
            .iter()
            .position(|c| c.0 == name)
            .context("compiled packing")?;
        let (_, he) = compiled.swap_remove(i);
        let planned = &counts
            .planned
            .iter()
            .find(|c| c.0 == name)
            .context("planned counts of the packing")?
            .1;
        for &threads in &t.latency_threads {
            let run = latency_run(&he, keys, x, (name, threads), t.warm_cache)?;
            check_counts(&run, planned)?;
            let max_logit_error = run
                .logits
                .iter()
                .zip(want.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            runs.push(LatencyRun {
                max_logit_error,
                ..run.figures
            });
        }
        // Free this packing's program and plaintext cache before the next packing's run:
        // three full caches at once (AMA, baseline, planned) pushed STGCN-3-128 past 21 GB.
        drop(he);
    }
    Ok(Latency {
        plain_max_abs_logit,
        runs,
    })
}

/// A latency run before its logits are compared.
struct Timed {
    figures: LatencyRun,
    logits: Vec<f64>,
}

/// Times one sample on `he` with `threads` threads (0 = all cores).
fn latency_run(
    he: &HeStgcn,
    keys: &mut ClientKeys,
    x: &Array4<f64>,
    (name, threads): (PackingName, usize),
    warm_cache: bool,
) -> Result<Timed> {
    let run = name.run();
    let label = format!("{run}{}", super::engine::threads_suffix(threads));
    let cache_before = he.plaintext_cache_stats();
    let passes = if warm_cache { 2 } else { 1 };
    let r = in_pool(threads, || {
        run_staged(he, keys, &[vec![x.clone()]], passes, &label, None)
    })??;
    let mut cache_after = he.plaintext_cache_stats();
    // The cache is released after every stage: report the most it held in one.
    cache_after.bytes = cache_after.bytes.max(r.cache_peak_bytes);
    let mut logits = r.logits;
    Ok(Timed {
        figures: LatencyRun {
            run,
            threads,
            warm_cache,
            stages: r.stages.into_iter().map(|(n, s, c)| (n, s[0], c)).collect(),
            encrypt_s: r.encrypt_s[0],
            decrypt_s: r.decrypt_s[0],
            keygen_s: r.keygen_s,
            galois_keys: r.galois_keys,
            cache_before,
            cache_after,
            max_logit_error: 0.0,
            peak_rss_bytes: r.peak_rss_bytes,
            stage_memory: r.stage_memory,
            start_rss_bytes: r.start_rss_bytes,
            lockstep_bytes: he.lockstep_budget(),
        },
        logits: logits.swap_remove(0),
    })
}

/// Fails unless every stage of `r` counted exactly the planned operations.
fn check_counts(r: &Timed, planned: &[PlannedStage]) -> Result<()> {
    let run = r.figures.run;
    for (k, s) in r.figures.stages.iter().enumerate() {
        if s.2 != planned[k].counts {
            bail!(
                "{run} {}: measured counts {:?} differ from the plan {:?}",
                s.0,
                s.2,
                planned[k].counts
            );
        }
    }
    Ok(())
}

/// Everything the NTU-shaped part measured, for the report.
pub(super) struct NtuFigures {
    pub(super) preset: ckks::Preset,
    pub(super) depth: usize,
    /// Seconds each packing took to compile.
    pub(super) compile_s: Vec<(&'static str, f64)>,
    pub(super) counts: Counts,
    pub(super) sizes: Sizes,
    /// Present when the task asks for estimates.
    pub(super) estimates: Option<Estimates>,
    pub(super) latency: Latency,
    /// Present when the task runs the planner.
    pub(super) planner: Option<PlannerFigures>,
}
