//! The evaluation engine of the `cryptogcn` runner: the client's keys, the stages of a forward
//! pass with the Galois steps each needs, and the stage-major run of a compiled model over
//! several inputs that times every stage (Galois keys made per stage and dropped after it).

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

    pub(super) fn evaluator(&mut self, params: &CkksParams, steps: &[i64]) -> Result<Evaluator> {
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
    for st in &all {
        pass.pb.set_message(format!("{label} {}", st.name));
        let steps = stage_steps(he, st);
        galois.extend(steps.iter().copied());
        let t0 = Instant::now();
        let eval = keys.evaluator(&params, &steps)?;
        keygen_s += t0.elapsed().as_secs_f64();
        let (secs, counts) = pass.run_stage(&eval, st, &keys.sk, &mut probe)?;
        out.push((st.name.clone(), secs, counts));
    }
    pass.pb.finish_and_clear();
    let (logits, decrypt_s) = decrypt_all(he, &keys.sk, pass.logits)?;
    Ok(StagedRun {
        logits,
        stages: out,
        keygen_s,
        encrypt_s,
        decrypt_s,
        galois_keys: galois.len(),
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
