//! Accuracy under encryption of a trained model (the `[task.accuracy]` part of the `cryptogcn`
//! task), measured and returned as typed figures: the model and test set are loaded, the
//! clips are packed many per forward pass under AMA, and the decrypted logits are compared
//! with the plaintext model's; optionally the first clip's error after every stage.

use super::engine::{in_pool, run_staged, ClientKeys, StageProbe};
use crate::common;
use crate::config::cryptogcn::{AccuracyData, AccuracySpec};
use anyhow::{bail, Context, Result};
use ckks::{CkksParams, SecretKey};
use datasets::skeleton::{BodyPoseNormalization, BodyPoseSet, Mocap15, Mocap15Config, SkeletonSet};
use hegcn::{choose_preset, HeStgcn, LevelPlan, PackedTensor, Packing, PlaintextCacheStats};
use ndarray::{Array2, Array4, Axis};
use std::path::{Path, PathBuf};
use stgcn::{ActivationKind, FoldedModel, StGcn};

/// Per-stage error of the first clip against the plaintext twin ([`hegcn::reference`]).
#[derive(Debug, Clone)]
pub(crate) struct StageError {
    pub(crate) name: String,
    pub(crate) level: usize,
    pub(crate) log_scale: f64,
    pub(crate) max_abs: f64,
    pub(crate) max_err: f64,
}

/// What the accuracy run measured.
pub(crate) struct AccuracyFigures {
    /// The configured model path (without extension).
    pub(crate) model: String,
    /// Published variant name, or `ST-GCN` when the model does not record one.
    pub(crate) architecture: &'static str,
    pub(crate) width_divisor: usize,
    pub(crate) activation: ActivationKind,
    /// `(C, T, V, M)` of a clip.
    pub(crate) shape: [usize; 4],
    pub(crate) preset: String,
    pub(crate) depth: usize,
    /// The test set, for the report.
    pub(crate) data_desc: String,
    /// Clips evaluated under encryption (the first ones of the test set).
    pub(crate) samples: usize,
    pub(crate) clips_per_pass: usize,
    /// Server seconds of every pass, in order.
    pub(crate) pass_s: Vec<f64>,
    /// Clips whose encrypted top-1 equals the plaintext top-1.
    pub(crate) agree: usize,
    pub(crate) correct_encrypted: usize,
    pub(crate) correct_plain: usize,
    pub(crate) max_logit_error: f64,
    /// Smallest plaintext top-1 − top-2 logit.
    pub(crate) min_logit_margin: f64,
    pub(crate) max_abs_logit: f64,
    pub(crate) cache: PlaintextCacheStats,
    /// Per-stage errors of the first clip (empty without `stage_errors`).
    pub(crate) stage_errors: Vec<StageError>,
}

impl AccuracyFigures {
    /// Median seconds of the passes after the first (the plaintext cache warm); the first
    /// pass's when there is only one.
    pub(crate) fn warm_pass_s(&self) -> f64 {
        if self.pass_s.len() > 1 {
            common::median(&self.pass_s[1..])
        } else {
            self.pass_s[0]
        }
    }
}

/// The loaded model and its data set (the pruning sweep reuses them).
pub(crate) struct AccuracyInputs {
    pub(crate) model: StGcn,
    pub(crate) train: SkeletonSet,
    pub(crate) test: SkeletonSet,
    pub(crate) data_desc: String,
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

pub(crate) fn load_model(stem: &str) -> Result<StGcn> {
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

/// The test (and training) split of the accuracy dataset, with a description.
fn accuracy_data(acc: &AccuracySpec, frames: usize) -> Result<(SkeletonSet, SkeletonSet, String)> {
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

/// Loads the configured model and the train and test splits of its data set.
pub(crate) fn load(acc: &AccuracySpec) -> Result<AccuracyInputs> {
    let model = load_model(&acc.model)?;
    let frames = model.config().num_frames;
    let (train, test, data_desc) = accuracy_data(acc, frames)?;
    Ok(AccuracyInputs {
        model,
        train,
        test,
        data_desc,
    })
}

/// A plaintext stage output: name, tensor `(C, T, V, M)`, per-node factor of its encrypted twin.
type RefStage = (String, Array4<f64>, Vec<f64>);

/// The plaintext stages of one clip, in the order of the encrypted stages, with the node
/// factors the encrypted tensors carry ([`HeStgcn::stage_node_scales`]).
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

/// The error of the decrypted stage output `t` against its plaintext twin in `refs` (`None`
/// for a stage without one).
fn stage_error(
    he: &HeStgcn,
    refs: &[RefStage],
    name: &str,
    t: &PackedTensor,
    sk: &SecretKey,
) -> Result<Option<StageError>> {
    let Some((_, want, scale)) = refs.iter().find(|r| r.0 == name) else {
        return Ok(None);
    };
    let got = he.decrypt_tensor(sk, t)?;
    let mut max_abs = 0.0f64;
    let mut max_err = 0.0f64;
    for ((c, tt, v, m), &w) in want.indexed_iter() {
        max_abs = max_abs.max(w.abs());
        max_err = max_err.max((got[[c, tt, v, m]] / scale[v] - w).abs());
    }
    Ok(Some(StageError {
        name: name.to_string(),
        level: t.cts[0].level(),
        log_scale: t.cts[0].scale().log2(),
        max_abs,
        max_err,
    }))
}

pub(super) fn argmax(v: &[f64]) -> usize {
    v.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map_or(0, |p| p.0)
}

/// Agreement, correctness, logit error, margin and magnitude of encrypted against plaintext
/// logits.
#[derive(Default)]
struct Tally {
    agree: usize,
    correct_encrypted: usize,
    correct_plain: usize,
    max_err: f64,
    min_margin: f64,
    max_abs_logit: f64,
}

fn tally(logits: &[Vec<f64>], plain: &Array2<f64>, labels: &[usize]) -> Tally {
    let mut t = Tally {
        min_margin: f64::INFINITY,
        ..Tally::default()
    };
    for (i, l) in logits.iter().enumerate() {
        let p: Vec<f64> = plain.row(i).to_vec();
        let (ae, ap) = (argmax(l), argmax(&p));
        t.agree += usize::from(ae == ap);
        t.correct_encrypted += usize::from(ae == labels[i]);
        t.correct_plain += usize::from(ap == labels[i]);
        for (a, b) in l.iter().zip(&p) {
            t.max_err = t.max_err.max((a - b).abs());
            t.max_abs_logit = t.max_abs_logit.max(b.abs());
        }
        let second = p
            .iter()
            .enumerate()
            .filter(|&(q, _)| q != ap)
            .map(|(_, &v)| v)
            .fold(f64::NEG_INFINITY, f64::max);
        t.min_margin = t.min_margin.min(p[ap] - second);
    }
    t
}

/// The logits of each of the `n` clips, cut out of the passes' decrypted logits (clip `i` is
/// slot block `i % per_pass` of pass `i / per_pass`).
pub(super) fn per_clip(
    passes: &[Vec<f64>],
    n: usize,
    per_pass: usize,
    classes: usize,
) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| {
            let (b, j) = (i / per_pass, i % per_pass);
            passes[b][j * classes..(j + 1) * classes].to_vec()
        })
        .collect()
}

/// The parameters the model is served under: the ones `hegcn::choose_params` tailors to it
/// (`tailored_params`) or the smallest named 128-bit preset that holds it; with the preset's
/// name and the level plan.
pub(super) fn serving_params(
    acc: &AccuracySpec,
    folded: &FoldedModel,
) -> Result<(String, CkksParams, LevelPlan)> {
    Ok(if acc.tailored_params {
        let c = hegcn::choose_params(folded, Packing::Ama)?;
        (c.spec.name(), c.params, c.plan)
    } else {
        let (p, plan) = choose_preset(folded, Packing::Ama)?;
        (p.name.to_string(), p.build()?, plan)
    })
}

/// The first `n` clips of `test`, each `(C, T, V, M)`; the set's clips repeated in order when
/// it holds fewer than `n`.
pub(super) fn test_clips(test: &SkeletonSet, n: usize) -> Vec<Array4<f64>> {
    let data = test.data_f64();
    let len = data.dim().0.max(1);
    (0..n)
        .map(|i| data.index_axis(Axis(0), i % len).to_owned())
        .collect()
}

/// Clips per forward pass: one without batching, else as configured (0: as many as the slots
/// hold), never more than the slots hold or the clips there are.
fn clips_per_pass(acc: &AccuracySpec, max_clips: usize, n: usize) -> usize {
    match (acc.batch, acc.clips_per_pass) {
        (false, _) => 1,
        (true, 0) => max_clips,
        (true, k) => k.min(max_clips),
    }
    .min(n.max(1))
}

/// Evaluates the first `samples` test clips (0 = all) under encryption, many per forward pass
/// ([`HeStgcn::compile_batched`]), and compares them with the plaintext model.
pub(crate) fn measure(
    acc: &AccuracySpec,
    inputs: &AccuracyInputs,
    cache_mib: usize,
) -> Result<AccuracyFigures> {
    let (model, test) = (&inputs.model, &inputs.test);
    let folded = model.fold();
    let n = if acc.samples == 0 {
        test.len()
    } else {
        acc.samples.min(test.len())
    };
    let data = test.data_f64();
    let (preset, params, plan) = serving_params(acc, &folded)?;
    let per_ct = clips_per_pass(acc, HeStgcn::max_clips(&folded, params.slots()), n);
    let he = HeStgcn::compile_batched(&folded, Packing::Ama, &params, per_ct)?;
    he.set_plaintext_cache_budget(cache_mib << 20);
    let clips = test_clips(test, n);
    let passes: Vec<Vec<Array4<f64>>> = clips.chunks(per_ct).map(<[_]>::to_vec).collect();
    let plain = folded.forward(data.slice(ndarray::s![..n, .., .., .., ..]))?;
    let mut keys = ClientKeys::new(&params)?;
    let refs = if acc.stage_errors {
        reference_stages(&folded, &he, &clips[0])?
    } else {
        Vec::new()
    };
    let mut stage_errors: Vec<StageError> = Vec::new();
    let mut probe = |name: &str, t: &PackedTensor, sk: &SecretKey| -> Result<()> {
        stage_errors.extend(stage_error(&he, &refs, name, t, sk)?);
        Ok(())
    };
    let label = format!("{} ama", acc.dataset.name());
    let r = in_pool(0, || {
        let p: Option<StageProbe<'_>> = if acc.stage_errors {
            Some(&mut probe)
        } else {
            None
        };
        run_staged(&he, &mut keys, &passes, 1, &label, p)
    })??;
    let logits = per_clip(&r.logits, n, per_ct, folded.num_classes);
    let t = tally(&logits, &plain, &test.labels);
    let pass_s = (0..passes.len())
        .map(|b| r.stages.iter().map(|st| st.1[b]).sum())
        .collect();
    Ok(AccuracyFigures {
        model: acc.model.clone(),
        architecture: model.config().architecture.map_or("ST-GCN", |a| a.name()),
        width_divisor: model.config().width_divisor,
        activation: model.config().activation,
        shape: [
            folded.in_channels,
            folded.num_frames,
            folded.num_nodes,
            folded.num_persons,
        ],
        preset,
        depth: plan.depth,
        data_desc: inputs.data_desc.clone(),
        samples: n,
        clips_per_pass: per_ct,
        pass_s,
        agree: t.agree,
        correct_encrypted: t.correct_encrypted,
        correct_plain: t.correct_plain,
        max_logit_error: t.max_err,
        min_logit_margin: t.min_margin,
        max_abs_logit: t.max_abs_logit,
        // Released after every stage: the bytes are the most it held in one.
        cache: PlaintextCacheStats {
            bytes: r.cache_peak_bytes,
            ..he.plaintext_cache_stats()
        },
        stage_errors,
    })
}
