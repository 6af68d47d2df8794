//! The evaluation engine of the `cryptogcn` runner: the client's keys, the stages of a forward
//! pass with the Galois steps each needs, and the stage-major run of a compiled model over
//! several inputs that times every stage and records its memory.
//!
//! Memory: each stage's Galois keys (only its steps) and the relinearization key are made
//! restricted to the stage's input level (`ckks::KeyGenerator::galois_keys_at_level`; key
//! switching at that level reads nothing else, so results are bit-for-bit those of whole keys)
//! and dropped after the stage; the plaintext cache is released after each stage (its
//! entries are at that stage's level, which no other stage shares). Here the client's
//! generator makes the keys stage by stage; in a service the client uploads whole keys once
//! (`party`), and a server can hold per stage the restricted copies instead (what this run
//! measures) or all of them whole (48 keys at full width: 3.0 GiB in memory).

use crate::common;
use anyhow::{Context, Result};
use ckks::{CkksParams, Evaluator, KeyGenerator, OpCounts, PublicKey, RelinKey, SecretKey};
use hegcn::{counts_diff, HeStgcn, PackedTensor};
use indicatif::ProgressBar;
use ndarray::Array4;
use std::time::Instant;

/// The client's keys; Galois keys are made per stage.
pub(super) struct ClientKeys {
    pub(super) kg: KeyGenerator,
    pub(super) sk: SecretKey,
    pub(super) pk: PublicKey,
    pub(super) rk: RelinKey,
}

impl ClientKeys {
    pub(super) fn new(params: &CkksParams) -> Result<Self> {
        // Keys come from the OS CSPRNG (KeyGenerator::new); only the model and input are seeded.
        let mut kg = KeyGenerator::new(params);
        let sk = kg.secret_key();
        let pk = kg.public_key(&sk)?;
        let rk = kg.relin_key(&sk)?;
        Ok(Self { kg, sk, pk, rk })
    }

    /// An evaluator with the relinearization key and the Galois keys of `steps`, every key
    /// restricted to levels `≤ level` (the stage's input level: no stage switches keys above
    /// it), which at `N15_L17_S40_128BIT` holds `⌈(level+1)/3⌉·(level+4)` of the whole key's
    /// 6·21 limbs per half (level 8: 29 %).
    pub(super) fn evaluator(
        &mut self,
        params: &CkksParams,
        steps: &[i64],
        level: usize,
    ) -> Result<Evaluator> {
        let gk = self
            .kg
            .galois_keys_at_level(&self.sk, steps, false, level)?;
        Ok(Evaluator::new(params)
            .with_relin_key(self.rk.restrict_to_level(params, level)?)
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

/// Level at which each stage of `he` starts (its input level).
pub(super) fn stage_levels(he: &HeStgcn) -> Vec<(String, usize)> {
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

/// What a stage-major run of several samples produced.
pub(super) struct StagedRun {
    /// Decrypted logits per sample.
    pub(super) logits: Vec<Vec<f64>>,
    /// Per stage: name, seconds per sample, counts of the first sample.
    pub(super) stages: Vec<(String, Vec<f64>, OpCounts)>,
    pub(super) keygen_s: f64,
    pub(super) encrypt_s: Vec<f64>,
    pub(super) decrypt_s: Vec<f64>,
    pub(super) galois_keys: usize,
    /// Per stage (in the order of `stages`): Galois keys held, peak and final resident memory
    /// of the process during the stage in bytes (`None` where `/proc` is unavailable).
    pub(super) stage_memory: Vec<StageMemory>,
    /// Peak resident memory of the whole run (encryption, every stage, decryption).
    pub(super) peak_rss_bytes: Option<f64>,
    /// Resident memory when the run started (compiled models, client keys, caller's data).
    pub(super) start_rss_bytes: Option<f64>,
    /// Most bytes the plaintext cache held in one stage (it is released after each stage).
    pub(super) cache_peak_bytes: usize,
}

/// What one stage held: its Galois keys and the process's resident memory.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct StageMemory {
    pub(super) galois_keys: usize,
    pub(super) peak_rss_bytes: Option<f64>,
    pub(super) end_rss_bytes: Option<f64>,
}

/// Tracks the peak resident memory over segments of a run (each segment resets `VmHWM`).
struct PeakTracker {
    ok: bool,
    max: f64,
}

impl PeakTracker {
    fn start() -> Self {
        Self {
            ok: procstat::reset_peak_rss(),
            max: 0.0,
        }
    }

    /// The peak since the last call (or start), folded into the run's maximum; resets it.
    fn segment(&mut self) -> Option<f64> {
        let p = procstat::peak_rss_bytes().filter(|_| self.ok)?;
        self.max = self.max.max(p);
        self.ok = procstat::reset_peak_rss();
        Some(p)
    }

    fn peak(&self) -> Option<f64> {
        (self.max > 0.0).then_some(self.max)
    }
}

/// Called after every stage of the first input with the stage's name and its encrypted output
/// (not after the head), and the secret key: the per-stage error diagnosis.
pub(super) type StageProbe<'a> = &'a mut dyn FnMut(&str, &PackedTensor, &SecretKey) -> Result<()>;

enum Out {
    Mid(PackedTensor),
    Cur(PackedTensor),
    Logits(hegcn::EncryptedLogits),
}

/// The state of a stage-major run: every input's block input (`cur`), its intermediate
/// tensor inside a block (`mid`) and, after the head, its encrypted logits.
struct StagedPass<'a> {
    he: &'a HeStgcn,
    passes: usize,
    pb: ProgressBar,
    cur: Vec<PackedTensor>,
    mid: Vec<Option<PackedTensor>>,
    logits: Vec<Option<hegcn::EncryptedLogits>>,
}

impl StagedPass<'_> {
    /// Evaluates stage `st` on input `s` once.
    fn eval_stage(&self, eval: &Evaluator, st: &Stage, s: usize) -> Result<Out> {
        let he = self.he;
        let mid_in = || self.mid[s].as_ref().context("previous stage output");
        Ok(match st.kind {
            StageKind::Gcn => Out::Mid(he.gcn(eval, st.block, &self.cur[s])?),
            StageKind::Act1 => Out::Mid(he.activation(eval, st.block, 0, mid_in()?)?),
            StageKind::Tcn => Out::Mid(he.temporal(eval, st.block, mid_in()?, &self.cur[s])?),
            StageKind::Act2 => Out::Cur(he.activation(eval, st.block, 1, mid_in()?)?),
            StageKind::Head => Out::Logits(he.head(eval, &self.cur[s])?),
        })
    }

    /// Runs stage `st` on every input (`passes` times each, keeping the last timing); returns
    /// the seconds per input and the counts of the first evaluation.
    fn run_stage(
        &mut self,
        eval: &Evaluator,
        st: &Stage,
        sk: &SecretKey,
        probe: &mut Option<StageProbe<'_>>,
    ) -> Result<(Vec<f64>, OpCounts)> {
        let n = self.cur.len();
        let mut secs = Vec::with_capacity(n);
        let mut first_counts = None;
        for s in 0..n {
            let mut last = 0.0;
            let mut result = None;
            for _ in 0..self.passes {
                let c0 = eval.counters();
                let t0 = Instant::now();
                let r = self.eval_stage(eval, st, s)?;
                last = t0.elapsed().as_secs_f64();
                if first_counts.is_none() {
                    first_counts = Some(counts_diff(&c0, &eval.counters()));
                }
                result = Some(r);
                self.pb.inc(1);
            }
            let result = result.context("at least one pass")?;
            if s == 0 {
                if let Some(p) = probe.as_mut() {
                    match &result {
                        Out::Mid(t) | Out::Cur(t) => p(&st.name, t, sk)?,
                        Out::Logits(_) => {}
                    }
                }
            }
            match result {
                Out::Mid(m) => self.mid[s] = Some(m),
                Out::Cur(c) => self.cur[s] = c,
                Out::Logits(l) => self.logits[s] = Some(l),
            }
            secs.push(last);
        }
        Ok((secs, first_counts.unwrap_or_default()))
    }
}

/// Encrypts every input (its clips packed into one pass); returns the ciphertexts and the
/// seconds each encryption took.
fn encrypt_inputs(
    he: &HeStgcn,
    pk: &PublicKey,
    inputs: &[Vec<Array4<f64>>],
) -> Result<(Vec<PackedTensor>, Vec<f64>)> {
    let mut encrypt_s = Vec::new();
    let mut cur: Vec<PackedTensor> = Vec::with_capacity(inputs.len());
    for x in inputs {
        let t0 = Instant::now();
        let views: Vec<_> = x.iter().map(|c| c.view()).collect();
        cur.push(he.encrypt_clips(pk, &views)?);
        encrypt_s.push(t0.elapsed().as_secs_f64());
    }
    Ok((cur, encrypt_s))
}

/// Decrypts every input's logits; returns them and the seconds each decryption took.
fn decrypt_all(
    he: &HeStgcn,
    sk: &SecretKey,
    logits: Vec<Option<hegcn::EncryptedLogits>>,
) -> Result<(Vec<Vec<f64>>, Vec<f64>)> {
    let mut dec = Vec::new();
    let mut decrypt_s = Vec::new();
    for l in logits {
        let l = l.context("logits")?;
        let t0 = Instant::now();
        dec.push(he.decrypt_logits(sk, &l)?);
        decrypt_s.push(t0.elapsed().as_secs_f64());
    }
    Ok((dec, decrypt_s))
}

/// Runs `he` on every input (each a list of up to `he.clips()` samples packed into one pass),
/// stage by stage (each stage's Galois keys generated once, used for every input, then
/// dropped), timing every stage of every input. `passes` > 1 repeats each stage and keeps the
/// last timing (to time with a warm plaintext cache).
pub(super) fn run_staged(
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
    let start_rss_bytes = procstat::rss_bytes();
    let mut rss = PeakTracker::start();
    let (cur, encrypt_s) = encrypt_inputs(he, &keys.pk, inputs)?;
    let mut pass = StagedPass {
        he,
        passes,
        pb,
        cur,
        mid: vec![None; inputs.len()],
        logits: vec![None; inputs.len()],
    };
    let mut out = Vec::new();
    let mut keygen_s = 0.0;
    let mut galois = std::collections::BTreeSet::new();
    let mut stage_memory = Vec::with_capacity(all.len());
    let mut cache_peak_bytes = 0;
    rss.segment();
    let levels = stage_levels(he);
    for st in &all {
        pass.pb.set_message(format!("{label} {}", st.name));
        let steps = stage_steps(he, st);
        galois.extend(steps.iter().copied());
        let level = levels
            .iter()
            .find(|l| l.0 == st.name)
            .with_context(|| format!("level of stage {}", st.name))?
            .1;
        let t0 = Instant::now();
        let eval = keys.evaluator(&params, &steps, level)?;
        keygen_s += t0.elapsed().as_secs_f64();
        let galois_keys = eval.galois_keys().len();
        let (secs, counts) = pass.run_stage(&eval, st, &keys.sk, &mut probe)?;
        drop(eval);
        // Weights are encoded at this stage's level and scale: no later stage can hit them.
        cache_peak_bytes = cache_peak_bytes.max(he.plaintext_cache_stats().bytes);
        he.release_plaintext_cache();
        out.push((st.name.clone(), secs, counts));
        stage_memory.push(StageMemory {
            galois_keys,
            peak_rss_bytes: rss.segment(),
            end_rss_bytes: procstat::rss_bytes(),
        });
    }
    pass.pb.finish_and_clear();
    let (logits, decrypt_s) = decrypt_all(he, &keys.sk, pass.logits)?;
    rss.segment();
    Ok(StagedRun {
        logits,
        stages: out,
        keygen_s,
        encrypt_s,
        decrypt_s,
        galois_keys: galois.len(),
        stage_memory,
        peak_rss_bytes: rss.peak(),
        start_rss_bytes,
        cache_peak_bytes,
    })
}

pub(super) fn num_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs `f` in a rayon pool of `threads` threads (0 = all cores).
pub(super) fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> Result<T> {
    let n = if threads == 0 { num_cores() } else { threads };
    let pool = rayon::ThreadPoolBuilder::new().num_threads(n).build()?;
    Ok(pool.install(f))
}

/// Metric suffix of a thread count (`""` for all cores, `_1t`, `_<n>t`).
pub(super) fn threads_suffix(t: usize) -> String {
    match t {
        0 => String::new(),
        1 => "_1t".into(),
        n => format!("_{n}t"),
    }
}
