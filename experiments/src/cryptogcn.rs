//! The `cryptogcn` task: encrypted ST-GCN inference with CKKS (crate [`hegcn`]), CryptoGCN's AMA
//! packing (Ran et al., NeurIPS 2022, §3) against the channel-major baseline packing, on the NTU
//! RGB+D shape (V = 25 joints, T frames, M persons, C = 3) with random weights and a random
//! input, and accuracy under encryption of a trained model on the Mocap-15 test set.
//!
//! What a run measures, per packing (`ama`, `baseline`):
//! - **counts** of every evaluator operation per stage and in total, from the compiled
//!   program ([`HeStgcn::planned_op_counts`], equal to what a forward pass counts — a latency
//!   run re-checks it): `<run>.he_ops_count` (all operations, [`hegcn::he_ops`]),
//!   `.rotations_count`, `.keyswitch_count`, `.pt_ct_mul_count`, `.ct_ct_mul_count`,
//!   `.rescale_count`, `.add_count`, per stage `<run>.<stage>_rotations_count` /
//!   `_he_ops_count`, and the ratios `ratio.<quantity>_baseline_over_ama`,
//!   `ama.he_ops_reduction_pct` (CryptoGCN reports 77.4 % fewer operations);
//! - **sizes**: input ciphertexts (`<run>.input_ciphertexts_count`, `.input_bytes`), one
//!   ciphertext at the top level and at level 0, Galois keys (`<run>.galois_keys_count`,
//!   `.galois_keys_bytes`: keys for exactly the steps the packing uses), public and
//!   relinearization keys (`keys.*_bytes`); byte sizes are the serialized sizes (seed-compressed
//!   key halves);
//! - **latency** of one sample, measured, for each configured packing and thread count
//!   (`latency_threads`, 0 = all cores): `<run>.latency_s` (all cores), `<run>.latency_1t_s`
//!   (one thread), per stage `<run>.<stage>_s[_1t]`, the client's `encrypt_s` / `decrypt_s`,
//!   the thread-time spent encoding weight plaintexts (`encode_thread_s`), the plaintext cache
//!   (`plaintext_cache_bytes`, `plaintext_cache_hit_pct`) and the max |logit error| against
//!   the plaintext model (`ntu_max_logit_error`; the logits' scale is
//!   `plain.ntu_max_abs_logit`). Galois keys are generated per stage (only that stage's
//!   steps) and dropped after it, so a full-width model runs in bounded memory; key
//!   generation is not part of the latency;
//! - **estimates** (only if `estimate = true`; never presented as measurements): the cost of
//!   each operation is probed at every level the model runs at (one thread), and
//!   `<run>.latency_1t_estimated_s` = Σ counts × per-op costs (with pre-encoded weights),
//!   `<run>.encode_1t_estimated_s` = plaintext products × encode cost (the extra time of
//!   encoding every weight on the fly, an upper bound);
//! - **accuracy** (`[task.accuracy]`): a trained model (JSON + safetensors) on the first
//!   `samples` clips of the Mocap-15 cross-view test set (`dataset = "mocap15"`) or of the
//!   BodyPose test split (`"bodypose"`) under AMA at the model's 128-bit preset, as many clips
//!   per forward pass as the slots hold (`HeStgcn::compile_batched`):
//!   `ama.agreement_pct` (encrypted top-1 = plaintext top-1), `ama.max_logit_error`,
//!   `ama.encrypted_accuracy_pct`, `plain.accuracy_pct` on the same clips, `ama.samples_count`,
//!   the smallest plaintext top-1 margin `plain.min_logit_margin` (what the logit error must
//!   stay below), and the server latency per pass and per clip (`ama.<data>_pass_latency_s`,
//!   median over the passes after the first, when the plaintext cache is warm;
//!   `ama.<data>_latency_per_clip_s`, `<data>` = `mocap` or `bodypose`); with
//!   `stage_errors = true` the first clip is decrypted after every stage and compared with the
//!   plaintext twin (`ama.<stage>_max_error`, `ama.<stage>_max_abs`).

use crate::common;
use crate::config::Config;
use crate::report::{fmt_bytes, fmt_num, Report};
use anyhow::{bail, Context, Result};
use ckks::{
    presets, CkksParams, Evaluator, GaloisKeys, KeyGenerator, OpCounts, PublicKey, RelinKey,
    SecretKey,
};
use datasets::skeleton::{BodyPoseNormalization, BodyPoseSet, Graph, Mocap15, Mocap15Config};
use hegcn::{choose_preset, counts_diff, counts_sum, he_ops, HeStgcn, PackedTensor, Packing};
use ndarray::{Array4, Array5, Axis};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;
use stgcn::{Architecture, FoldedModel, GraphSpec, StGcn, StGcnConfig};

/// Settings of a `cryptogcn` task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CryptogcnTask {
    /// Published variant (`"STGCN-3-128"`, `"STGCN-3-256"`, `"STGCN-6-256"`).
    #[serde(default = "default_architecture")]
    pub architecture: Architecture,
    /// Every published width is divided by this (1 = published size).
    #[serde(default = "one")]
    pub width_divisor: usize,
    /// Frames `T` of the NTU-shaped input.
    #[serde(default = "default_frames")]
    pub frames: usize,
    /// Persons `M`.
    #[serde(default = "default_persons")]
    pub persons: usize,
    /// Classes of the dense head.
    #[serde(default = "default_classes")]
    pub classes: usize,
    /// Activation sites `[block, site]` pruned on every node (the identity; no level).
    #[serde(default)]
    pub pruned_sites: Vec<[usize; 2]>,
    /// A 128-bit preset by name (default: the smallest that holds the model).
    #[serde(default)]
    pub preset: Option<String>,
    /// Packings whose latency is measured end to end on one sample (empty: counts only).
    #[serde(default = "default_packings")]
    pub latency_packings: Vec<PackingName>,
    /// Thread counts of the latency runs (0 = all cores).
    #[serde(default = "default_threads")]
    pub latency_threads: Vec<usize>,
    /// Memory bound of the plaintext cache, MiB (0: encode every weight on the fly).
    #[serde(default = "default_cache_mib")]
    pub plaintext_cache_mib: usize,
    /// Run every latency measurement twice and time the second pass, so that the weights held
    /// by the plaintext cache are pre-encoded (doubles the run time).
    #[serde(default)]
    pub warm_cache: bool,
    /// Probe per-operation costs and report `*_estimated_s` from counts × costs.
    #[serde(default = "yes")]
    pub estimate: bool,
    /// Accuracy under encryption of a trained model on Mocap-15.
    #[serde(default)]
    pub accuracy: Option<AccuracySpec>,
}

/// Accuracy-under-encryption settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccuracySpec {
    /// Model path without extension (`<model>.json` + `<model>.safetensors`), relative to the
    /// working directory or the workspace root.
    pub model: String,
    /// Test clips evaluated under encryption (the first ones of the test set; 0 = all).
    pub samples: usize,
    /// Training clips per class of the cross-view split (only fixes the generator streams).
    #[serde(default = "default_train_per_class")]
    pub train_per_class: usize,
    /// Test clips per class.
    #[serde(default = "default_test_per_class")]
    pub test_per_class: usize,
    /// Generator seed (default: the generator's own, 2024).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Accuracy–latency sweep: numbers of activation sites pruned on every node (deepest sites
    /// first); each pruned model is fine-tuned in plaintext on the training clips and evaluated
    /// on the whole test set; its latency is estimated from counts × probed op costs.
    #[serde(default)]
    pub pruning_levels: Vec<usize>,
    /// Pack several clips into one forward pass (`HeStgcn::compile_batched`: clip `i` owns
    /// the channel blocks `i·w ..` of every node ciphertext); `false`: one clip per pass.
    #[serde(default = "yes")]
    pub batch: bool,
    /// Clips per pass when batching (0: as many as the slots hold).
    #[serde(default)]
    pub clips_per_pass: usize,
    /// Test set: `"mocap15"` (cross-view, default) or `"bodypose"` (stratified 20 % split;
    /// `seed` is then the split seed, default 42).
    #[serde(default)]
    pub dataset: AccuracyData,
    /// Decrypt the first clip after every stage and report its error against the plaintext
    /// twin, with the stage's level and scale and the values' magnitude.
    #[serde(default)]
    pub stage_errors: bool,
    /// Fine-tuning epochs of each pruned model.
    #[serde(default = "default_pruning_epochs")]
    pub pruning_epochs: usize,
}

fn default_pruning_epochs() -> usize {
    5
}

/// The data set of the accuracy run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccuracyData {
    /// Mocap-15 cross-view test clips.
    #[default]
    Mocap15,
    /// BodyPose test poses.
    Bodypose,
}

impl AccuracyData {
    fn name(self) -> &'static str {
        match self {
            AccuracyData::Mocap15 => "mocap15",
            AccuracyData::Bodypose => "bodypose",
        }
    }

    /// Quantity prefix of the per-pass metrics (`ama.<key>_pass_latency_s`).
    fn metric_key(self) -> &'static str {
        match self {
            AccuracyData::Mocap15 => "mocap",
            AccuracyData::Bodypose => "bodypose",
        }
    }

    fn title(self) -> &'static str {
        match self {
            AccuracyData::Mocap15 => "Mocap-15",
            AccuracyData::Bodypose => "BodyPose",
        }
    }
}

/// A packing by config name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackingName {
    /// CryptoGCN AMA.
    Ama,
    /// Channel-major baseline.
    Baseline,
}

impl PackingName {
    fn packing(self) -> Packing {
        match self {
            PackingName::Ama => Packing::Ama,
            PackingName::Baseline => Packing::ChannelMajor,
        }
    }

    fn run(self) -> &'static str {
        match self {
            PackingName::Ama => "ama",
            PackingName::Baseline => "baseline",
        }
    }
}

fn default_architecture() -> Architecture {
    Architecture::Stgcn3x128
}
fn one() -> usize {
    1
}
fn default_frames() -> usize {
    256
}
fn default_persons() -> usize {
    2
}
fn default_classes() -> usize {
    60
}
fn default_packings() -> Vec<PackingName> {
    vec![PackingName::Ama, PackingName::Baseline]
}
fn default_threads() -> Vec<usize> {
    vec![0]
}
fn default_cache_mib() -> usize {
    4096
}
fn yes() -> bool {
    true
}
fn default_train_per_class() -> usize {
    40
}
fn default_test_per_class() -> usize {
    20
}

impl CryptogcnTask {
    /// Checks the settings (called when the config is parsed).
    pub fn validate(&self) -> Result<()> {
        if self.width_divisor == 0 || self.frames == 0 || self.persons == 0 || self.classes == 0 {
            bail!(
                "width_divisor ({}), frames ({}), persons ({}) and classes ({}) must be at least 1",
                self.width_divisor,
                self.frames,
                self.persons,
                self.classes
            );
        }
        let blocks = self.architecture.blocks(3, self.width_divisor).len();
        for &[b, s] in &self.pruned_sites {
            if b >= blocks || s > 1 {
                bail!("pruned_sites entry [{b}, {s}]: block must be < {blocks} and site 0 or 1");
            }
        }
        if let Some(p) = &self.preset {
            preset_by_name(p)?;
        }
        let mut seen = self.latency_packings.clone();
        seen.dedup();
        if seen.len() != self.latency_packings.len() {
            bail!("latency_packings names a packing twice");
        }
        if let Some(a) = &self.accuracy {
            if a.test_per_class == 0 {
                bail!("accuracy.test_per_class must be at least 1");
            }
            if let Some(&k) = a.pruning_levels.iter().find(|&&k| k == 0 || k > 2 * blocks) {
                bail!(
                    "accuracy.pruning_levels entry {k} must be in 1..={}",
                    2 * blocks
                );
            }
        }
        Ok(())
    }
}

fn preset_by_name(name: &str) -> Result<ckks::Preset> {
    presets::ALL_128BIT
        .iter()
        .find(|p| p.name == name)
        .copied()
        .with_context(|| {
            format!(
                "preset {name:?} is not one of {}",
                presets::ALL_128BIT
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
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

/// The client's keys; Galois keys are made per stage.
struct ClientKeys {
    kg: KeyGenerator,
    sk: SecretKey,
    pk: PublicKey,
    rk: RelinKey,
}

impl ClientKeys {
    fn new(params: &CkksParams) -> Result<Self> {
        // Keys come from the OS CSPRNG (KeyGenerator::new); only the model and input are seeded.
        let mut kg = KeyGenerator::new(params);
        let sk = kg.secret_key();
        let pk = kg.public_key(&sk)?;
        let rk = kg.relin_key(&sk)?;
        Ok(Self { kg, sk, pk, rk })
    }

    fn evaluator(&mut self, params: &CkksParams, steps: &[i64]) -> Result<Evaluator> {
        let gk = self.kg.galois_keys(&self.sk, steps, false)?;
        Ok(Evaluator::new(params)
            .with_relin_key(self.rk.clone())
            .with_galois_keys(gk))
    }
}

/// One stage of a forward pass, with the Galois steps it needs.
#[derive(Clone)]
struct Stage {
    name: String,
    block: usize,
    kind: StageKind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StageKind {
    Gcn,
    Act1,
    Tcn,
    Act2,
    Head,
}

fn stages(he: &HeStgcn) -> Vec<Stage> {
    let mut v = Vec::new();
    for i in 0..he.num_blocks() {
        for (kind, suffix) in [
            (StageKind::Gcn, "gcn"),
            (StageKind::Act1, "act1"),
            (StageKind::Tcn, "tcn"),
            (StageKind::Act2, "act2"),
        ] {
            v.push(Stage {
                name: format!("block{i}.{suffix}"),
                block: i,
                kind,
            });
        }
    }
    v.push(Stage {
        name: "head".into(),
        block: 0,
        kind: StageKind::Head,
    });
    v
}

fn stage_steps(he: &HeStgcn, s: &Stage) -> Vec<i64> {
    match s.kind {
        StageKind::Gcn => he.block_rotation_steps(s.block, 0),
        StageKind::Tcn => he.block_rotation_steps(s.block, 1),
        StageKind::Head => he.head_rotation_steps(),
        StageKind::Act1 | StageKind::Act2 => Vec::new(),
    }
}

/// What a stage-major run of several samples produced.
struct StagedRun {
    /// Decrypted logits per sample.
    logits: Vec<Vec<f64>>,
    /// Per stage: name, seconds per sample, counts of the first sample.
    stages: Vec<(String, Vec<f64>, OpCounts)>,
    keygen_s: f64,
    encrypt_s: Vec<f64>,
    decrypt_s: Vec<f64>,
    galois_keys: usize,
}

/// Called after every stage of the first input with the stage's name and its encrypted output
/// (not after the head), and the secret key: the per-stage error diagnosis.
type StageProbe<'a> = &'a mut dyn FnMut(&str, &PackedTensor, &SecretKey) -> Result<()>;

/// Runs `he` on every input (each a list of up to `he.clips()` samples packed into one pass),
/// stage by stage (each stage's Galois keys generated once, used for every input, then
/// dropped), timing every stage of every input. `passes` > 1 repeats each stage and keeps the
/// last timing (to time with a warm plaintext cache).
fn run_staged(
    he: &HeStgcn,
    keys: &mut ClientKeys,
    inputs: &[Vec<Array4<f64>>],
    passes: usize,
    label: &str,
    mut probe: Option<StageProbe<'_>>,
) -> Result<StagedRun> {
    let params = he.params().clone();
    let all = stages(he);
    let pb = common::progress((all.len() * inputs.len() * passes) as u64, label);
    let mut encrypt_s = Vec::new();
    let mut cur: Vec<PackedTensor> = Vec::with_capacity(inputs.len());
    for x in inputs {
        let t0 = Instant::now();
        let views: Vec<_> = x.iter().map(|c| c.view()).collect();
        cur.push(he.encrypt_clips(&keys.pk, &views)?);
        encrypt_s.push(t0.elapsed().as_secs_f64());
    }
    let mut mid: Vec<Option<PackedTensor>> = vec![None; inputs.len()];
    let mut logits = vec![None; inputs.len()];
    let mut out = Vec::new();
    let mut keygen_s = 0.0;
    let mut galois = std::collections::BTreeSet::new();
    for st in &all {
        pb.set_message(format!("{label} {}", st.name));
        let steps = stage_steps(he, st);
        galois.extend(steps.iter().copied());
        let t0 = Instant::now();
        let eval = keys.evaluator(&params, &steps)?;
        keygen_s += t0.elapsed().as_secs_f64();
        let mut secs = Vec::with_capacity(inputs.len());
        let mut first_counts = None;
        for s in 0..inputs.len() {
            let mut last = 0.0;
            let mut result = None;
            for _ in 0..passes {
                let c0 = eval.counters();
                let t0 = Instant::now();
                let mid_in = || mid[s].as_ref().context("previous stage output");
                let r = match st.kind {
                    StageKind::Gcn => Out::Mid(he.gcn(&eval, st.block, &cur[s])?),
                    StageKind::Act1 => Out::Mid(he.activation(&eval, st.block, 0, mid_in()?)?),
                    StageKind::Tcn => Out::Mid(he.temporal(&eval, st.block, mid_in()?, &cur[s])?),
                    StageKind::Act2 => Out::Cur(he.activation(&eval, st.block, 1, mid_in()?)?),
                    StageKind::Head => Out::Logits(he.head(&eval, &cur[s])?),
                };
                last = t0.elapsed().as_secs_f64();
                if first_counts.is_none() {
                    first_counts = Some(counts_diff(&c0, &eval.counters()));
                }
                result = Some(r);
                pb.inc(1);
            }
            let result = result.context("at least one pass")?;
            if s == 0 {
                if let Some(p) = probe.as_mut() {
                    match &result {
                        Out::Mid(t) | Out::Cur(t) => p(&st.name, t, &keys.sk)?,
                        Out::Logits(_) => {}
                    }
                }
            }
            match result {
                Out::Mid(m) => mid[s] = Some(m),
                Out::Cur(c) => cur[s] = c,
                Out::Logits(l) => logits[s] = Some(l),
            }
            secs.push(last);
        }
        out.push((st.name.clone(), secs, first_counts.unwrap_or_default()));
    }
    pb.finish_and_clear();
    let mut dec = Vec::new();
    let mut decrypt_s = Vec::new();
    for l in logits {
        let l = l.context("logits")?;
        let t0 = Instant::now();
        dec.push(he.decrypt_logits(&keys.sk, &l)?);
        decrypt_s.push(t0.elapsed().as_secs_f64());
    }
    Ok(StagedRun {
        logits: dec,
        stages: out,
        keygen_s,
        encrypt_s,
        decrypt_s,
        galois_keys: galois.len(),
    })
}

enum Out {
    Mid(PackedTensor),
    Cur(PackedTensor),
    Logits(hegcn::EncryptedLogits),
}

/// Per-operation costs at one level (seconds, one thread).
#[derive(Debug, Clone, Copy, Default)]
struct OpCosts {
    encode: f64,
    mul_plain: f64,
    add: f64,
    rescale: f64,
    tensor: f64,
    decompose: f64,
    key_switch: f64,
}

impl OpCosts {
    /// Seconds of `c` with pre-encoded plaintexts.
    fn seconds(&self, c: &OpCounts) -> f64 {
        c.decompose as f64 * self.decompose
            + c.key_switch as f64 * self.key_switch
            + c.mul_plain as f64 * self.mul_plain
            + (c.add + c.mul_const) as f64 * self.add
            + c.mul as f64 * self.tensor
            + c.rescale as f64 * self.rescale
    }
}

fn time_median(reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    let mut v = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t0 = Instant::now();
        f()?;
        v.push(t0.elapsed().as_secs_f64());
    }
    Ok(common::median(&v))
}

/// Probes the cost of each operation at each of `levels` on one thread: a rotation (one
/// decomposition + one key switch) and a hoisted batch of 4 (one decomposition + 4 key
/// switches) separate the two parts.
fn probe_costs(
    params: &CkksParams,
    keys: &mut ClientKeys,
    levels: &[usize],
) -> Result<Vec<(usize, OpCosts)>> {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let eval = keys.evaluator(params, &[1, 2, 3, 4])?;
    let pk = &keys.pk;
    let enc = ckks::Encoder::new(params);
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let vals: Vec<f64> = (0..params.slots())
        .map(|_| rng.gen_range(-1.0..1.0))
        .collect();
    let scale = params.default_scale();
    let pb = common::progress(levels.len() as u64, "probing op costs");
    let mut out = Vec::new();
    for &level in levels {
        let costs = pool.install(|| -> Result<OpCosts> {
            let pt = enc.encode(&vals, level, scale)?;
            let ct = pk.encrypt(&pt)?;
            let encode = time_median(3, || {
                enc.encode(&vals, level, scale)?;
                Ok(())
            })?;
            let mul_plain = time_median(5, || {
                eval.mul_plain(&ct, &pt)?;
                Ok(())
            })?;
            let add = time_median(5, || {
                eval.add(&ct, &ct)?;
                Ok(())
            })?;
            let prod = eval.mul_plain(&ct, &pt)?;
            let rescale = if level > 0 {
                time_median(3, || {
                    eval.rescale(&prod)?;
                    Ok(())
                })?
            } else {
                0.0
            };
            let tensor = time_median(3, || {
                eval.mul_no_relin(&ct, &ct)?;
                Ok(())
            })?;
            let rot = time_median(3, || {
                eval.rotate(&ct, 1)?;
                Ok(())
            })?;
            let hoisted = time_median(2, || {
                eval.rotate_hoisted(&ct, &[1, 2, 3, 4])?;
                Ok(())
            })?;
            let key_switch = ((hoisted - rot) / 3.0).max(0.0);
            Ok(OpCosts {
                encode,
                mul_plain,
                add,
                rescale,
                tensor,
                decompose: (rot - key_switch).max(0.0),
                key_switch,
            })
        })?;
        out.push((level, costs));
        pb.inc(1);
    }
    pb.finish_and_clear();
    Ok(out)
}

/// Level at which each stage of `he` starts (its input level).
fn stage_levels(he: &HeStgcn) -> Vec<(String, usize)> {
    let plan = he.plan();
    let mut level = plan.depth;
    plan.stages
        .iter()
        .map(|s| {
            let l = level;
            level = s.level_after;
            (s.name.clone(), l)
        })
        .collect()
}

/// Stage names as metric quantities (`block0.gcn` → `block0_gcn`).
fn key_of(stage: &str) -> String {
    stage.replace('.', "_")
}

fn total_metrics(report: &mut Report, run: &str, c: &OpCounts) {
    report.metric(format!("{run}.he_ops_count"), he_ops(c) as f64);
    report.metric(format!("{run}.rotations_count"), c.rotate as f64);
    report.metric(format!("{run}.keyswitch_count"), c.key_switch as f64);
    report.metric(format!("{run}.pt_ct_mul_count"), c.mul_plain as f64);
    report.metric(format!("{run}.ct_ct_mul_count"), c.mul as f64);
    report.metric(format!("{run}.rescale_count"), c.rescale as f64);
    report.metric(format!("{run}.add_count"), c.add as f64);
    report.metric(format!("{run}.relinearize_count"), c.relinearize as f64);
    report.metric(format!("{run}.decompose_count"), c.decompose as f64);
}

fn resolve_model(stem: &str) -> Result<PathBuf> {
    let json = |p: &Path| PathBuf::from(format!("{}.json", p.display()));
    let direct = PathBuf::from(stem);
    if json(&direct).exists() {
        return Ok(direct);
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(stem);
    if json(&root).exists() {
        return Ok(root);
    }
    bail!("model {stem}.json not found in the working directory or the workspace root")
}

fn load_model(stem: &str) -> Result<StGcn> {
    let base = resolve_model(stem)?;
    let json_path = PathBuf::from(format!("{}.json", base.display()));
    let st_path = PathBuf::from(format!("{}.safetensors", base.display()));
    let json = std::fs::read_to_string(&json_path)
        .with_context(|| format!("reading {}", json_path.display()))?;
    let bytes =
        std::fs::read(&st_path).with_context(|| format!("reading {}", st_path.display()))?;
    StGcn::from_json_and_safetensors(&json, &bytes)
        .with_context(|| format!("loading {}", base.display()))
}

fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |p| p.0)
}

fn threads_suffix(t: usize) -> String {
    match t {
        0 => String::new(),
        1 => "_1t".into(),
        n => format!("_{n}t"),
    }
}

fn threads_text(t: usize) -> String {
    match t {
        0 => format!("all cores ({})", num_cores()),
        1 => "1 thread".into(),
        n => format!("{n} threads"),
    }
}

fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> Result<T> {
    let n = if threads == 0 { num_cores() } else { threads };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build()?;
    Ok(pool.install(f))
}

/// Runs a `cryptogcn` task.
pub fn run(t: &CryptogcnTask, cfg: &Config, report: &mut Report) -> Result<()> {
    let seed = cfg.experiment.seed;
    let arch = t.architecture.name();
    let model = ntu_model(t, seed)?;
    let (auto_preset, plan) = choose_preset(&model, Packing::Ama)?;
    let preset = match &t.preset {
        Some(p) => preset_by_name(p)?,
        None => auto_preset,
    };
    let params = preset.build()?;
    let shape = format!(
        "(C, T, V, M) = (3, {}, 25, {}), {} classes",
        t.frames, t.persons, t.classes
    );
    let mut setup = String::new();
    let _ = writeln!(
        setup,
        "{arch} (widths ÷ {}) on the NTU RGB+D shape {shape}, NTU 25-joint graph with K = 3 spatial partitions, x² activations{}; random weights (seed {seed}) and a random input in [−1, 1). CKKS preset `{}` (N = 2^{}, {} levels, Δ = 2^{}; 128-bit classical security per the HE standard), model depth {}.",
        t.width_divisor,
        if t.pruned_sites.is_empty() {
            String::new()
        } else {
            format!(", sites pruned on every node: {:?}", t.pruned_sites)
        },
        preset.name,
        preset.log_n,
        preset.levels,
        preset.scale_bits,
        plan.depth
    );
    report.metric("model.depth_count", plan.depth as f64);
    report.metric("model.log_n", f64::from(preset.log_n));

    // ---- compile both packings ----
    let pb = common::progress(2, "compiling");
    let mut compiled = Vec::new();
    for name in [PackingName::Ama, PackingName::Baseline] {
        pb.set_message(format!("compiling {}", name.run()));
        let t0 = Instant::now();
        let he = HeStgcn::compile(&model, name.packing(), &params)
            .with_context(|| format!("compiling {arch} for {}", name.run()))?;
        he.set_plaintext_cache_budget(t.plaintext_cache_mib << 20);
        report.metric(
            format!("{}.compile_s", name.run()),
            t0.elapsed().as_secs_f64(),
        );
        compiled.push((name, he));
        pb.inc(1);
    }
    pb.finish_and_clear();
    let levels = stage_levels(&compiled[0].1);

    // ---- counts ----
    let mut totals = Vec::new();
    let mut counts_md = String::from(
        "Counts derived from the compiled programs (`HeStgcn::planned_op_counts`; a latency run re-counts them on the evaluator and checks equality). `all ops` = additions + pt×ct + ct×ct + relinearizations + rotations + rescales + level drops.\n\n| stage | level in | AMA rot | AMA key sw. | AMA pt×ct | AMA ct×ct | AMA rescale | AMA all ops | base rot | base key sw. | base pt×ct | base ct×ct | base rescale | base all ops |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let planned: Vec<Vec<hegcn::PlannedStage>> = compiled
        .iter()
        .map(|(_, he)| he.planned_op_counts())
        .collect();
    for (k, (name, level)) in levels.iter().enumerate() {
        let a = &planned[0][k].counts;
        let b = &planned[1][k].counts;
        let _ = writeln!(
            counts_md,
            "| {name} | {level} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            a.rotate,
            a.key_switch,
            a.mul_plain,
            a.mul,
            a.rescale,
            he_ops(a),
            b.rotate,
            b.key_switch,
            b.mul_plain,
            b.mul,
            b.rescale,
            he_ops(b)
        );
    }
    for (i, (name, _)) in compiled.iter().enumerate() {
        let run = name.run();
        for p in &planned[i] {
            let q = key_of(&p.name);
            report.metric(format!("{run}.{q}_rotations_count"), p.counts.rotate as f64);
            report.metric(
                format!("{run}.{q}_pt_ct_mul_count"),
                p.counts.mul_plain as f64,
            );
            report.metric(format!("{run}.{q}_he_ops_count"), he_ops(&p.counts) as f64);
        }
        let total = counts_sum(planned[i].iter().map(|p| &p.counts));
        total_metrics(report, run, &total);
        totals.push(total);
    }
    let (ta, tb) = (&totals[0], &totals[1]);
    let _ = writeln!(
        counts_md,
        "| **total** | | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        ta.rotate,
        ta.key_switch,
        ta.mul_plain,
        ta.mul,
        ta.rescale,
        he_ops(ta),
        tb.rotate,
        tb.key_switch,
        tb.mul_plain,
        tb.mul,
        tb.rescale,
        he_ops(tb)
    );
    let ratio = |b: u64, a: u64| {
        if a == 0 {
            f64::NAN
        } else {
            b as f64 / a as f64
        }
    };
    let mut ratio_md =
        String::from("| quantity | AMA | baseline | baseline / AMA |\n|---|---|---|---|\n");
    for (q, a, b) in [
        ("he_ops", he_ops(ta), he_ops(tb)),
        ("rotations", ta.rotate, tb.rotate),
        ("keyswitch", ta.key_switch, tb.key_switch),
        ("pt_ct_mul", ta.mul_plain, tb.mul_plain),
        ("ct_ct_mul", ta.mul, tb.mul),
        ("rescale", ta.rescale, tb.rescale),
    ] {
        let r = ratio(b, a);
        report.metric(format!("ratio.{q}_baseline_over_ama"), r);
        let _ = writeln!(
            ratio_md,
            "| {q} | {a} | {b} | {} |",
            fmt_num((r * 1000.0).round() / 1000.0)
        );
    }
    let reduction = 100.0 * (1.0 - he_ops(ta) as f64 / he_ops(tb).max(1) as f64);
    report.metric("ama.he_ops_reduction_pct", reduction);
    let (amount, direction) = if reduction >= 0.0 {
        (reduction, "fewer")
    } else {
        // Narrow models: the baseline's few channel ciphertexts need fewer operations than
        // one AMA ciphertext per node; say "x % more" rather than "−x % fewer".
        (
            he_ops(ta) as f64 / he_ops(tb).max(1) as f64 * 100.0 - 100.0,
            "more",
        )
    };
    let _ = writeln!(
        ratio_md,
        "\nAMA performs {amount:.1} % {direction} HE operations than the baseline (CryptoGCN reports 77.4 % fewer on its setting); rotations (the expensive operations) are in the second row."
    );

    // ---- keys and sizes ----
    let mut keys = ClientKeys::new(&params)?;
    let one_key = keys.kg.galois_keys(&keys.sk, &[1], false)?;
    let galois_key_bytes =
        one_key.to_bytes(&params)?.len() - GaloisKeys::default().to_bytes(&params)?.len();
    drop(one_key);
    let pk_bytes = keys.pk.to_bytes()?.len();
    let rk_bytes = keys.rk.to_bytes(&params)?.len();
    report.metric("keys.public_key_bytes", pk_bytes as f64);
    report.metric("keys.relin_key_bytes", rk_bytes as f64);
    report.metric("keys.galois_key_bytes", galois_key_bytes as f64);
    let mut sizes_md = format!(
        "Serialized sizes at `{}`: public key {}, relinearization key {}, one Galois key {} (seed-compressed: the `a` halves are regenerated from a seed).\n\n| packing | input ciphertexts | one ciphertext (level {}) | one ciphertext (level 0) | input upload | Galois keys (steps) | Galois keys bytes |\n|---|---|---|---|---|---|---|\n",
        preset.name,
        fmt_bytes(pk_bytes as f64),
        fmt_bytes(rk_bytes as f64),
        fmt_bytes(galois_key_bytes as f64),
        plan.depth
    );
    let mut rng = ChaCha20Rng::seed_from_u64(seed ^ 0x5eed);
    let x: Array4<f64> =
        Array4::from_shape_fn((3, t.frames, 25, t.persons), |_| rng.gen_range(-1.0..1.0));
    for (name, he) in &compiled {
        let run = name.run();
        let ct = he.encrypt_input(&keys.pk, x.view())?;
        let top = ct.cts[0].to_bytes(&params)?.len();
        let eval = Evaluator::new(&params);
        let low = eval.drop_to_level(&ct.cts[0], 0)?.to_bytes(&params)?.len();
        let n = ct.cts.len();
        let steps = he.rotation_steps().len();
        report.metric(format!("{run}.input_ciphertexts_count"), n as f64);
        report.metric(format!("{run}.ciphertext_bytes"), top as f64);
        report.metric(format!("{run}.ciphertext_level0_bytes"), low as f64);
        report.metric(format!("{run}.input_bytes"), (n * top) as f64);
        report.metric(format!("{run}.galois_keys_count"), steps as f64);
        report.metric(
            format!("{run}.galois_keys_bytes"),
            (steps * galois_key_bytes) as f64,
        );
        let _ = writeln!(
            sizes_md,
            "| {run} | {n} | {} | {} | {} | {steps} | {} |",
            fmt_bytes(top as f64),
            fmt_bytes(low as f64),
            fmt_bytes((n * top) as f64),
            fmt_bytes((steps * galois_key_bytes) as f64)
        );
    }
    let _ = writeln!(
        sizes_md,
        "\nGalois-key bytes are the number of steps × the size of one key (every key has the same size)."
    );

    // ---- estimates from per-op costs ----
    let mut est_md = String::new();
    if t.estimate {
        let mut lv: Vec<usize> = levels.iter().map(|l| l.1).collect();
        lv.sort_unstable();
        lv.dedup();
        let costs = probe_costs(&params, &mut keys, &lv)?;
        let cost_at = |l: usize| {
            costs
                .iter()
                .find(|c| c.0 == l)
                .map(|c| c.1)
                .unwrap_or_default()
        };
        let _ = writeln!(
            est_md,
            "Per-operation costs probed on one thread (medians of 2–5 runs), at the top and bottom levels used:\n\n| level | encode | pt×ct | add | rescale | ct×ct (tensor) | decomposition | key switch (inner product) |\n|---|---|---|---|---|---|---|---|"
        );
        for (l, c) in [costs.last(), costs.first()].into_iter().flatten() {
            let ms = |x: f64| format!("{:.2} ms", 1e3 * x);
            let _ = writeln!(
                est_md,
                "| {l} | {} | {} | {} | {} | {} | {} | {} |",
                ms(c.encode),
                ms(c.mul_plain),
                ms(c.add),
                ms(c.rescale),
                ms(c.tensor),
                ms(c.decompose),
                ms(c.key_switch)
            );
        }
        let _ = writeln!(est_md, "\n| packing | estimated latency, 1 thread, pre-encoded weights | extra time to encode every weight on the fly (upper bound: AMA nodes share diagonals) |\n|---|---|---|");
        for (i, (name, _)) in compiled.iter().enumerate() {
            let run = name.run();
            let mut secs = 0.0;
            let mut enc = 0.0;
            for (k, (_, level)) in levels.iter().enumerate() {
                let c = cost_at(*level);
                secs += c.seconds(&planned[i][k].counts);
                enc += planned[i][k].counts.mul_plain as f64 * c.encode;
            }
            report.metric(format!("{run}.latency_1t_estimated_s"), secs);
            report.metric(format!("{run}.encode_1t_estimated_s"), enc);
            let _ = writeln!(est_md, "| {run} | {secs:.1} s | {enc:.1} s |");
        }
        let _ = writeln!(est_md, "\nThese are **estimates** (counts × probed per-op costs), not measurements; metrics `*_estimated_s`.");
    }

    // ---- latency ----
    let mut lat_md = String::new();
    let want = {
        let x5: Array5<f64> = x.clone().insert_axis(Axis(0));
        model.forward(x5.view())?.row(0).to_owned()
    };
    // The scale an absolute logit error is read against.
    let want_max = want.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    report.metric("plain.ntu_max_abs_logit", want_max);
    let mut measured: Vec<(&'static str, usize, f64)> = Vec::new();
    if t.latency_packings.is_empty() {
        let _ = writeln!(lat_md, "Latency not run (`latency_packings = []`).");
    }
    for &name in &t.latency_packings {
        let i = compiled
            .iter()
            .position(|c| c.0 == name)
            .context("compiled packing")?;
        let he = &compiled[i].1;
        let run = name.run();
        for &threads in &t.latency_threads {
            let sfx = threads_suffix(threads);
            let label = format!("{run}{sfx}");
            let cache0 = he.plaintext_cache_stats();
            let passes = if t.warm_cache { 2 } else { 1 };
            let r = in_pool(threads, || {
                run_staged(he, &mut keys, &[vec![x.clone()]], passes, &label, None)
            })??;
            let cache1 = he.plaintext_cache_stats();
            let total_s: f64 = r.stages.iter().map(|s| s.1[0]).sum();
            let measured_counts = counts_sum(r.stages.iter().map(|s| &s.2));
            for (k, s) in r.stages.iter().enumerate() {
                if s.2 != planned[i][k].counts {
                    bail!(
                        "{run} {}: measured counts {:?} differ from the plan {:?}",
                        s.0,
                        s.2,
                        planned[i][k].counts
                    );
                }
                report.metric(format!("{run}.{}_s{sfx}", key_of(&s.0)), s.1[0]);
            }
            let err = r.logits[0]
                .iter()
                .zip(want.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            report.metric(format!("{run}.latency{sfx}_s"), total_s);
            report.metric(format!("{run}.encrypt{sfx}_s"), r.encrypt_s[0]);
            report.metric(format!("{run}.decrypt{sfx}_s"), r.decrypt_s[0]);
            report.metric(format!("{run}.keygen{sfx}_s"), r.keygen_s);
            report.metric(
                format!("{run}.encode_thread{sfx}_s"),
                (cache1.encode_ns - cache0.encode_ns) as f64 * 1e-9,
            );
            report.metric(format!("{run}.plaintext_cache_bytes"), cache1.bytes as f64);
            report.metric(
                format!("{run}.encoded_plaintexts{sfx}_count"),
                (cache1.misses - cache0.misses) as f64,
            );
            let lookups = (cache1.hits + cache1.misses - cache0.hits - cache0.misses).max(1);
            report.metric(
                format!("{run}.plaintext_cache_hit{sfx}_pct"),
                100.0 * (cache1.hits - cache0.hits) as f64 / lookups as f64,
            );
            report.metric(format!("{run}.ntu_max_logit_error"), err);
            measured.push((run, threads, total_s));
            let _ = writeln!(
                lat_md,
                "**{run}, {}**: {total_s:.2} s server latency for one sample (sum of the stages below; {}); client encryption {:.2} s, decryption {:.3} s; Galois keys for {} steps made stage by stage in {:.1} s (not in the latency); weight encoding took {:.1} s of thread time for {} plaintexts (pt×ct products: {}; AMA nodes share the temporal kernel's diagonals, lockstep budget {}); plaintext cache {} of {} ({} entries, {:.1} % of lookups hit); max |logit error| vs the plaintext model {err:.2e} (max |logit| {want_max:.3e}); counts equal the plan ({} HE ops).\n",
                threads_text(threads),
                if passes == 2 { "second pass, plaintext cache warm" } else { "one pass, cache cold: weights encoded on the fly except repeats" },
                r.encrypt_s[0],
                r.decrypt_s[0],
                r.galois_keys,
                r.keygen_s,
                (cache1.encode_ns - cache0.encode_ns) as f64 * 1e-9,
                cache1.misses - cache0.misses,
                measured_counts.mul_plain,
                fmt_bytes(hegcn::DEFAULT_LOCKSTEP_BYTES as f64),
                fmt_bytes(cache1.bytes as f64),
                fmt_bytes(cache1.budget_bytes as f64),
                cache1.entries,
                100.0 * (cache1.hits - cache0.hits) as f64 / lookups as f64,
                he_ops(&measured_counts)
            );
            let _ = writeln!(
                lat_md,
                "| stage | seconds | rotations | pt×ct |\n|---|---|---|---|"
            );
            for s in &r.stages {
                let _ = writeln!(
                    lat_md,
                    "| {} | {:.3} | {} | {} |",
                    s.0, s.1[0], s.2.rotate, s.2.mul_plain
                );
            }
            lat_md.push('\n');
        }
    }
    for &threads in &t.latency_threads {
        let a = measured.iter().find(|m| m.0 == "ama" && m.1 == threads);
        let b = measured
            .iter()
            .find(|m| m.0 == "baseline" && m.1 == threads);
        if let (Some(a), Some(b)) = (a, b) {
            let r = b.2 / a.2;
            report.metric(
                format!("ratio.latency{}_baseline_over_ama", threads_suffix(threads)),
                r,
            );
            let _ = writeln!(
                lat_md,
                "Measured latency ratio baseline / AMA, {}: **{r:.2}×** (CryptoGCN: 3.10×).\n",
                threads_text(threads)
            );
        }
    }
    for name in [PackingName::Ama, PackingName::Baseline] {
        if !t.latency_packings.contains(&name) {
            let _ = writeln!(
                lat_md,
                "{}: latency **not run** (not in `latency_packings`).\n",
                name.run()
            );
        }
    }

    report.section(&format!("{arch} on the NTU shape: setup"), setup);
    report.section("HE operation counts per stage (AMA vs baseline)", counts_md);
    report.section("AMA vs baseline", ratio_md);
    report.section("Ciphertext and key sizes", sizes_md);
    if t.estimate {
        report.section("Latency estimates from per-operation costs", est_md);
    }
    report.section("Measured latency, one sample", lat_md);
    drop(compiled);

    if let Some(acc) = &t.accuracy {
        accuracy(acc, t.plaintext_cache_mib, report)?;
    }
    report.note("CKKS parameters are 128-bit presets (HE standard v1.1, ternary secret); the server never holds the secret key. Semi-honest server; CKKS decryption results are approximate and IND-CPA^D attacks on shared decryptions are out of scope (the client keeps its decrypted logits).");
    report.note("Latency is wall-clock time of the server's evaluation only; key generation, client encryption and decryption are reported separately. The machine is shared with other jobs (load not controlled), so timings are indicative.");
    Ok(())
}

/// The test (and training) split of the accuracy dataset, with a description.
fn accuracy_data(
    acc: &AccuracySpec,
    frames: usize,
) -> Result<(
    datasets::skeleton::SkeletonSet,
    datasets::skeleton::SkeletonSet,
    String,
)> {
    match acc.dataset {
        AccuracyData::Mocap15 => {
            let mut mc = Mocap15Config {
                frames,
                ..Mocap15Config::default()
            };
            if let Some(s) = acc.seed {
                mc.seed = s;
            }
            let gen_seed = mc.seed;
            let gen = Mocap15::load_bundled(mc).context("loading the bundled mocap clips")?;
            let split = gen
                .cross_view(acc.train_per_class, acc.test_per_class)
                .context("generating the Mocap-15 cross-view split")?;
            let n = split.test.set.len();
            Ok((
                split.train.set,
                split.test.set,
                format!(
                    "Mocap-15 cross-view, camera at 0°, generator seed {gen_seed}, {n} test clips"
                ),
            ))
        }
        AccuracyData::Bodypose => {
            let seed = acc.seed.unwrap_or(42);
            let all = BodyPoseSet::load_bundled(BodyPoseNormalization::AsProvided)
                .context("loading BodyPose")?;
            let (train, test) = all
                .set
                .split_stratified(0.2, seed)
                .context("splitting BodyPose")?;
            let n = test.len();
            Ok((
                train,
                test,
                format!("BodyPose (real 2-D BODY_25 poses, T = 1), stratified 20 % test split, seed {seed}, {n} test poses"),
            ))
        }
    }
}

/// Per-stage error of the first clip against the plaintext twin ([`hegcn::reference`]).
#[derive(Debug, Clone)]
struct StageError {
    name: String,
    level: usize,
    log_scale: f64,
    max_abs: f64,
    max_err: f64,
}

/// A plaintext stage output: name, tensor `(C, T, V, M)`, per-node factor of its encrypted twin.
type RefStage = (String, Array4<f64>, Vec<f64>);

/// The plaintext stages of one clip, in the order of [`stages`], with the node factors the
/// encrypted tensors carry ([`HeStgcn::stage_node_scales`]).
fn reference_stages(f: &FoldedModel, he: &HeStgcn, x: &Array4<f64>) -> Result<Vec<RefStage>> {
    use hegcn::reference;
    let mut out = Vec::new();
    let mut cur = reference::input_affine(f, x.view());
    for (i, blk) in f.blocks.iter().enumerate() {
        let (gs, fs) = he.stage_node_scales(i).context("block scales")?;
        let g = reference::gcn(blk, cur.view());
        let h = reference::activation(&blk.act1, g.view());
        let r = reference::temporal(blk, h.view(), cur.view());
        let y = reference::activation(&blk.act2, r.view());
        out.push((format!("block{i}.gcn"), g, gs.to_vec()));
        out.push((format!("block{i}.act1"), h, fs.to_vec()));
        out.push((format!("block{i}.tcn"), r, fs.to_vec()));
        out.push((format!("block{i}.act2"), y.clone(), vec![1.0; f.num_nodes]));
        cur = y;
    }
    Ok(out)
}

/// Accuracy under encryption of a trained model on the Mocap-15 cross-view or BodyPose test
/// set, many clips per forward pass ([`HeStgcn::compile_batched`]).
fn accuracy(acc: &AccuracySpec, cache_mib: usize, report: &mut Report) -> Result<()> {
    let model = load_model(&acc.model)?;
    let folded = model.fold();
    let frames = folded.num_frames;
    let (train_set, test, data_desc) = accuracy_data(acc, frames)?;
    let n_all = test.len();
    let n = if acc.samples == 0 {
        n_all
    } else {
        acc.samples.min(n_all)
    };
    let data = test.data_f64();
    let (preset, plan) = choose_preset(&folded, Packing::Ama)?;
    let params = preset.build()?;
    let max_clips = HeStgcn::max_clips(&folded, params.slots());
    let per_ct = match (acc.batch, acc.clips_per_pass) {
        (false, _) => 1,
        (true, 0) => max_clips,
        (true, k) => k.min(max_clips),
    }
    .min(n.max(1));
    let he = HeStgcn::compile_batched(&folded, Packing::Ama, &params, per_ct)?;
    he.set_plaintext_cache_budget(cache_mib << 20);
    let clips: Vec<Array4<f64>> = (0..n)
        .map(|i| data.index_axis(Axis(0), i).to_owned())
        .collect();
    let inputs: Vec<Vec<Array4<f64>>> = clips.chunks(per_ct).map(<[_]>::to_vec).collect();
    let plain = folded.forward(data.slice(ndarray::s![..n, .., .., .., ..]))?;
    let mut keys = ClientKeys::new(&params)?;
    let refs = if acc.stage_errors {
        reference_stages(&folded, &he, &clips[0])?
    } else {
        Vec::new()
    };
    let mut errors: Vec<StageError> = Vec::new();
    let mut probe = |name: &str, t: &PackedTensor, sk: &SecretKey| -> Result<()> {
        let Some((_, want, scale)) = refs.iter().find(|r| r.0 == name) else {
            return Ok(());
        };
        let got = he.decrypt_tensor(sk, t)?;
        let mut max_abs = 0.0f64;
        let mut max_err = 0.0f64;
        for ((c, tt, v, m), &w) in want.indexed_iter() {
            max_abs = max_abs.max(w.abs());
            max_err = max_err.max((got[[c, tt, v, m]] / scale[v] - w).abs());
        }
        errors.push(StageError {
            name: name.to_string(),
            level: t.cts[0].level(),
            log_scale: t.cts[0].scale().log2(),
            max_abs,
            max_err,
        });
        Ok(())
    };
    let label = format!("{} ama", acc.dataset.name());
    let r = in_pool(0, || {
        let p: Option<StageProbe<'_>> = if acc.stage_errors {
            Some(&mut probe)
        } else {
            None
        };
        run_staged(&he, &mut keys, &inputs, 1, &label, p)
    })??;
    let nq = folded.num_classes;
    let logits: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            let (b, j) = (i / per_ct, i % per_ct);
            r.logits[b][j * nq..(j + 1) * nq].to_vec()
        })
        .collect();
    let mut agree = 0;
    let mut correct_enc = 0;
    let mut correct_plain = 0;
    let mut max_err = 0.0f64;
    let mut min_margin = f64::INFINITY;
    let mut max_abs_logit = 0.0f64;
    for (i, l) in logits.iter().enumerate() {
        let p: Vec<f64> = plain.row(i).to_vec();
        let (ae, ap) = (argmax(l), argmax(&p));
        agree += usize::from(ae == ap);
        correct_enc += usize::from(ae == test.labels[i]);
        correct_plain += usize::from(ap == test.labels[i]);
        for (a, b) in l.iter().zip(&p) {
            max_err = max_err.max((a - b).abs());
            max_abs_logit = max_abs_logit.max(b.abs());
        }
        let second = p
            .iter()
            .enumerate()
            .filter(|&(q, _)| q != ap)
            .map(|(_, &v)| v)
            .fold(f64::NEG_INFINITY, f64::max);
        min_margin = min_margin.min(p[ap] - second);
    }
    let per_pass: Vec<f64> = (0..inputs.len())
        .map(|b| r.stages.iter().map(|st| st.1[b]).sum())
        .collect();
    let warm = if per_pass.len() > 1 {
        common::median(&per_pass[1..])
    } else {
        per_pass[0]
    };
    let pct = |k: usize| 100.0 * k as f64 / n as f64;
    let ds = acc.dataset.metric_key();
    report.metric("ama.agreement_pct", pct(agree));
    report.metric("ama.max_logit_error", max_err);
    report.metric("ama.encrypted_accuracy_pct", pct(correct_enc));
    report.metric("plain.accuracy_pct", pct(correct_plain));
    report.metric("plain.min_logit_margin", min_margin);
    report.metric("plain.max_abs_logit", max_abs_logit);
    report.metric("ama.samples_count", n as f64);
    report.metric(format!("ama.{ds}_pass_latency_s"), warm);
    report.metric(format!("ama.{ds}_latency_per_clip_s"), warm / per_ct as f64);
    report.metric(format!("ama.{ds}_clips_per_pass_count"), per_ct as f64);
    report.metric(format!("ama.{ds}_first_pass_s"), per_pass[0]);
    let stats = he.plaintext_cache_stats();
    report.metric(
        format!("ama.{ds}_plaintext_cache_bytes"),
        stats.bytes as f64,
    );
    let name = model.config().architecture.map_or("ST-GCN", |a| a.name());
    let mut md = format!(
        "Model `{}` ({name}, widths ÷ {}, {:?} activations), (C, T, V, M) = ({}, {frames}, {}, {}); AMA packing at `{}` (depth {}). Test set: {data_desc}; **{n} evaluated under encryption** (the first {n}), {per_ct} clips per forward pass ({} passes; clip i of a pass owns the channel blocks i·w .. i·w+w of every node ciphertext, `HeStgcn::compile_batched`).\n\n| quantity | value |\n|---|---|\n| encrypted top-1 = plaintext top-1 | {agree}/{n} ({:.2} %) |\n| max \\|logit error\\| | {max_err:.3e} |\n| smallest plaintext top-1 margin (top-1 − top-2 logit) | {min_margin:.3e} |\n| max \\|logit\\| | {max_abs_logit:.3e} |\n| encrypted accuracy | {:.2} % |\n| plaintext accuracy (same clips) | {:.2} % |\n| server latency of one pass of {per_ct} clips (median after the first pass; all cores) | {warm:.2} s |\n| per clip (pass / {per_ct}) | {:.3} s |\n| first pass (cold plaintext cache) | {:.2} s |\n| plaintext cache | {} ({} entries, budget {}) |\n",
        acc.model,
        model.config().width_divisor,
        model.config().activation,
        folded.in_channels,
        folded.num_nodes,
        folded.num_persons,
        preset.name,
        plan.depth,
        inputs.len(),
        pct(agree),
        pct(correct_enc),
        pct(correct_plain),
        warm / per_ct as f64,
        per_pass[0],
        fmt_bytes(stats.bytes as f64),
        stats.entries,
        fmt_bytes(stats.budget_bytes as f64),
    );
    if !errors.is_empty() {
        let _ = writeln!(
            md,
            "\nError of every stage for the first clip (decrypted after the stage, divided by the per-node factors of the coefficient folding, against `hegcn::reference` on the same clip; the error compounds from stage to stage):\n\n| stage | level after | log2 scale | max \\|x\\| | max \\|error\\| | relative |\n|---|---|---|---|---|---|"
        );
        for e in &errors {
            let rel = e.max_err / e.max_abs.max(f64::MIN_POSITIVE);
            let _ = writeln!(
                md,
                "| {} | {} | {:.2} | {:.3e} | {:.3e} | {rel:.2e} |",
                e.name, e.level, e.log_scale, e.max_abs, e.max_err
            );
            let k = key_of(&e.name);
            report.metric(format!("ama.{k}_max_abs"), e.max_abs);
            report.metric(format!("ama.{k}_max_error"), e.max_err);
        }
    }
    report.section(
        &format!(
            "Accuracy under encryption: {} test set",
            acc.dataset.title()
        ),
        md,
    );
    if !acc.pruning_levels.is_empty() {
        pruning_sweep(acc, &model, &train_set, &test, report)?;
    }
    Ok(())
}

/// Estimated one-thread latency of `folded` under AMA at its preset (counts × probed costs;
/// probes are cached per preset).
fn estimate_latency(
    folded: &FoldedModel,
    probes: &mut Vec<(&'static str, Vec<(usize, OpCosts)>)>,
) -> Result<(f64, u64, usize, &'static str)> {
    let (preset, plan) = choose_preset(folded, Packing::Ama)?;
    let params = preset.build()?;
    let he = HeStgcn::compile(folded, Packing::Ama, &params)?;
    let levels = stage_levels(&he);
    if !probes.iter().any(|p| p.0 == preset.name) {
        let mut keys = ClientKeys::new(&params)?;
        let mut lv: Vec<usize> = (1..=plan.depth).collect();
        lv.dedup();
        probes.push((preset.name, probe_costs(&params, &mut keys, &lv)?));
    }
    let costs = &probes
        .iter()
        .find(|p| p.0 == preset.name)
        .context("probe")?
        .1;
    let planned = he.planned_op_counts();
    let mut secs = 0.0;
    for (k, (_, level)) in levels.iter().enumerate() {
        let c = costs
            .iter()
            .find(|c| c.0 == *level)
            .map(|c| c.1)
            .unwrap_or_default();
        secs += c.seconds(&planned[k].counts);
    }
    let ops = he_ops(&counts_sum(planned.iter().map(|p| &p.counts)));
    Ok((secs, ops, plan.depth, preset.name))
}

/// Prunes 0, k1, k2, … activation sites (deepest first), fine-tunes each model in plaintext,
/// and plots test accuracy against estimated encrypted latency.
fn pruning_sweep(
    acc: &AccuracySpec,
    base: &StGcn,
    train_set: &datasets::skeleton::SkeletonSet,
    test: &datasets::skeleton::SkeletonSet,
    report: &mut Report,
) -> Result<()> {
    let blocks = base.config().blocks.len();
    let order: Vec<(usize, usize)> = (0..blocks).rev().flat_map(|b| [(b, 1), (b, 0)]).collect();
    if let Some(&k) = acc.pruning_levels.iter().find(|&&k| k > order.len()) {
        bail!(
            "accuracy.pruning_levels entry {k}: the model has {} activation sites",
            order.len()
        );
    }
    let nodes: Vec<usize> = (0..base.config().num_nodes()).collect();
    let (tx, ty) = (train_set.data_f64(), &train_set.labels);
    let (ex, ey) = (test.data_f64(), &test.labels);
    let mut probes = Vec::new();
    let mut points = Vec::new();
    let mut levels = vec![0];
    levels.extend(acc.pruning_levels.iter().copied());
    let pb = common::progress(levels.len() as u64, "pruning sweep");
    let mut md = format!(
        "Activation pruning (CryptoGCN's AP / LinGCN's node-wise linearisation): the deepest activation sites are replaced by the identity on every node, each pruned model is fine-tuned in plaintext for {} epochs on the {} training clips (SGD lr 0.01 cosine, momentum 0.9, batch 16, gradient norm clipped at 1) and evaluated on all {} test clips. Latency is **estimated** (counts × per-op costs probed on one thread at the model's preset), not measured.\n\n| sites pruned | depth | preset | HE ops | test accuracy | latency (1 thread, estimated) |\n|---|---|---|---|---|---|\n",
        acc.pruning_epochs,
        train_set.len(),
        test.len()
    );
    for &k in &levels {
        pb.set_message(format!("pruning {k} sites"));
        let mut m = base.clone();
        for &(b, s) in &order[..k] {
            m.prune_activations(b, s, &nodes)?;
        }
        if k > 0 {
            let cfg = stgcn::TrainConfig {
                epochs: acc.pruning_epochs,
                batch_size: 16,
                learning_rate: 0.01,
                momentum: 0.9,
                weight_decay: 1e-4,
                schedule: stgcn::LrSchedule::Cosine,
                seed: 42,
                clip_grad_norm: Some(1.0),
                warmup_epochs: 0,
            };
            stgcn::train(&mut m, tx.view(), ty, &cfg, |_| {})?;
        }
        let a = 100.0 * stgcn::evaluate(&m, ex.view(), ey)?.accuracy;
        let (secs, ops, depth, preset) = estimate_latency(&m.fold(), &mut probes)?;
        report.metric(format!("prune{k}.test_accuracy_pct"), a);
        report.metric(format!("prune{k}.latency_1t_estimated_s"), secs);
        report.metric(format!("prune{k}.he_ops_count"), ops as f64);
        report.metric(format!("prune{k}.depth_count"), depth as f64);
        let _ = writeln!(
            md,
            "| {k} | {depth} | `{preset}` | {ops} | {a:.2} % | {secs:.1} s |"
        );
        points.push((k, secs, a));
        pb.inc(1);
    }
    pb.finish_and_clear();
    let _ = writeln!(
        md,
        "\nPlot: [`accuracy_latency.svg`](accuracy_latency.svg)."
    );
    report.files.push((
        "accuracy_latency.svg".into(),
        plot_sweep(&points, acc.dataset.title())?.into_bytes(),
    ));
    report.section(
        &format!(
            "Accuracy–latency trade-off of activation pruning ({})",
            acc.dataset.title()
        ),
        md,
    );
    Ok(())
}

fn plot_sweep(points: &[(usize, f64, f64)], data: &str) -> Result<String> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Debug| anyhow::anyhow!("drawing the pruning plot: {e:?}");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 440)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let xmax = points.iter().map(|p| p.1).fold(0.0f64, f64::max).max(1e-3) * 1.1;
        let ymin = points.iter().map(|p| p.2).fold(100.0f64, f64::min);
        let y0 = ((ymin - 5.0) / 10.0).floor().max(0.0) * 10.0;
        let mut chart = ChartBuilder::on(&root)
            .margin(16)
            .caption(
                format!("{data}: accuracy vs estimated encrypted latency (AMA)"),
                ("sans-serif", 18),
            )
            .x_label_area_size(40)
            .y_label_area_size(52)
            .build_cartesian_2d(0f64..xmax, y0..100.0)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("estimated latency, 1 thread (s)")
            .y_desc("test accuracy (%)")
            .draw()
            .map_err(|e| err(&e))?;
        let blue = RGBColor(31, 119, 180);
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (p.1, p.2)),
                blue.stroke_width(2),
            ))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(points.iter().map(|p| {
                EmptyElement::at((p.1, p.2))
                    + Circle::new((0, 0), 4, blue.filled())
                    + Text::new(
                        format!("{} pruned", p.0),
                        (6, -14),
                        ("sans-serif", 13).into_font(),
                    )
            }))
            .map_err(|e| err(&e))?;
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Config> {
        Config::parse(
            &format!(
                "[experiment]\nname = \"cg-tiny\"\nseed = 3\n[[task]]\nkind = \"cryptogcn\"\n{body}"
            ),
            "cg.toml",
        )
    }

    /// Saves a random STGCN-3-128 / 16 with poly activations, every site pruned (depth 8), as
    /// `<dir>/<name>.{json,safetensors}` like the committed models; returns the stem.
    #[allow(clippy::too_many_arguments)]
    fn save_pruned_poly_model(
        dir: &std::path::Path,
        name: &str,
        graph_name: &str,
        g: Graph,
        channels: usize,
        frames: usize,
        classes: usize,
        seed: u64,
    ) -> std::path::PathBuf {
        let graph = GraphSpec::from_edges(graph_name, g.num_nodes, &g.edges, g.center).unwrap();
        let mut mcfg = StGcnConfig::new(
            Architecture::Stgcn3x128,
            16,
            channels,
            frames,
            &graph.adjacency_array().unwrap(),
            classes,
        );
        mcfg.graph = graph;
        mcfg.activation = stgcn::ActivationKind::Poly;
        for b in 0..3 {
            for s in 0..2 {
                mcfg.prune(b, s, &(0..g.num_nodes).collect::<Vec<_>>())
                    .unwrap();
            }
        }
        let m = StGcn::new(mcfg, seed).unwrap();
        let stem = dir.join(name);
        std::fs::write(stem.with_extension("json"), m.config_json().unwrap()).unwrap();
        std::fs::write(
            stem.with_extension("safetensors"),
            m.to_safetensors_bytes().unwrap(),
        )
        .unwrap();
        stem
    }

    /// A tiny NTU-shaped model with every activation pruned (depth 8 with the head's logit mask:
    /// the 128-bit N = 2^15 preset) end to end: counts, sizes, estimates, measured latency of both packings whose
    /// evaluator counts equal the plan (checked inside `run`), logits equal to the plaintext
    /// model, and accuracy under encryption of a saved model on Mocap-15 clips.
    #[tokio::test]
    async fn tiny_model_end_to_end() {
        let dir = tempfile::tempdir().unwrap();
        // A random (untrained) Mocap-15-shaped model saved like the committed ones.
        let stem =
            save_pruned_poly_model(dir.path(), "m", "mocap15", Graph::mocap15(), 3, 8, 15, 9);
        let cfg = parse(&format!(
            "width_divisor = 16\nframes = 8\npersons = 2\nclasses = 5\npruned_sites = [[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]\nlatency_packings = [\"ama\", \"baseline\"]\nlatency_threads = [1]\nplaintext_cache_mib = 64\nestimate = false\naccuracy = {{ model = {:?}, samples = 2, train_per_class = 1, test_per_class = 1, pruning_levels = [2], pruning_epochs = 1 }}\n",
            stem.display().to_string()
        ))
        .unwrap();
        let report = crate::run(&cfg).await.unwrap();
        let mt = &report.metrics;
        assert_eq!(mt["model.depth_count"], 8.0);
        for run in ["ama", "baseline"] {
            for q in [
                "he_ops_count",
                "rotations_count",
                "keyswitch_count",
                "pt_ct_mul_count",
                "rescale_count",
                "latency_1t_s",
                "galois_keys_bytes",
            ] {
                let v = mt[&format!("{run}.{q}")];
                assert!(v > 0.0, "{run}.{q} = {v}");
            }
            // All sites pruned: no ciphertext products.
            assert_eq!(mt[&format!("{run}.ct_ct_mul_count")], 0.0);
            assert!(mt[&format!("{run}.ntu_max_logit_error")] < 1e-3);
        }
        let r = mt["ratio.he_ops_baseline_over_ama"];
        assert!((r - mt["baseline.he_ops_count"] / mt["ama.he_ops_count"]).abs() < 1e-12);
        assert_eq!(mt["ama.samples_count"], 2.0);
        assert_eq!(mt["ama.agreement_pct"], 100.0);
        assert!(mt["ama.max_logit_error"] < 1e-3);
        assert!(report
            .sections
            .iter()
            .any(|s| s.contains("2 evaluated under encryption")));
        for k in [0, 2] {
            let a = mt[&format!("prune{k}.test_accuracy_pct")];
            assert!((0.0..=100.0).contains(&a));
            assert!(mt[&format!("prune{k}.latency_1t_estimated_s")] > 0.0);
        }
        assert!(report
            .files
            .iter()
            .any(|(n, b)| n == "accuracy_latency.svg" && b.starts_with(b"<svg")));
        let out = report.write(dir.path()).unwrap();
        let j: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
        assert!(j["metrics"]["ama.rotations_count"].is_number());
    }

    /// BodyPose under encryption with many poses per pass (T = 1: hundreds fit one
    /// ciphertext per node), the per-stage errors of the first pose, and the logit margin.
    #[tokio::test]
    async fn bodypose_accuracy_batches_many_poses_per_pass() {
        let dir = tempfile::tempdir().unwrap();
        let stem = save_pruned_poly_model(dir.path(), "bp", "body25", Graph::body25(), 2, 1, 20, 4);
        let cfg = parse(&format!(
            "width_divisor = 16\nframes = 4\npersons = 1\nclasses = 5\npruned_sites = [[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]\nlatency_packings = []\nestimate = false\nplaintext_cache_mib = 64\naccuracy = {{ model = {:?}, dataset = \"bodypose\", samples = 40, stage_errors = true }}\n",
            stem.display().to_string()
        ))
        .unwrap();
        let report = crate::run(&cfg).await.unwrap();
        let mt = &report.metrics;
        assert_eq!(mt["ama.samples_count"], 40.0);
        assert_eq!(mt["ama.bodypose_clips_per_pass_count"], 40.0);
        assert_eq!(mt["ama.agreement_pct"], 100.0);
        assert!(
            mt["ama.max_logit_error"] < 1e-4,
            "{}",
            mt["ama.max_logit_error"]
        );
        assert!(mt["plain.min_logit_margin"] >= 0.0);
        for st in ["block0_gcn", "block1_tcn", "block2_act2"] {
            let (e, a) = (
                mt[&format!("ama.{st}_max_error")],
                mt[&format!("ama.{st}_max_abs")],
            );
            assert!(a > 0.0 && e <= 1e-4 * a.max(1.0), "{st}: {e} vs {a}");
        }
        assert!(report
            .sections
            .iter()
            .any(|s| s.contains("BodyPose") && s.contains("| stage | level after")));
    }

    #[test]
    fn bad_settings_are_rejected() {
        for (body, needle) in [
            ("width_divisor = 0\n", "width_divisor"),
            ("pruned_sites = [[3, 0]]\n", "pruned_sites"),
            ("preset = \"N9\"\n", "N9"),
            ("latency_packings = [\"ama\", \"ama\"]\n", "twice"),
            ("latency_packings = [\"cm\"]\n", "cm"),
        ] {
            let e = parse(body).unwrap_err();
            let m = format!("{e:#}");
            assert!(m.contains(needle) && m.contains("cg.toml"), "{m}");
        }
        parse("").unwrap();
    }
}
