//! Settings of the `cryptogcn` task (encrypted ST-GCN inference with CKKS): the task table, the
//! accuracy-under-encryption settings, the packing and data-set names, their serde defaults,
//! the checks run when a config is parsed, and the lookup of a 128-bit preset by name.

use anyhow::{bail, Context, Result};
use ckks::presets;
use hegcn::Packing;
use serde::{Deserialize, Serialize};
use stgcn::Architecture;

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
    /// Bound on the baby-step rotations a lockstep BSGS map (the AMA temporal convolution)
    /// holds at once, MiB (0: `hegcn::DEFAULT_LOCKSTEP_BYTES`); smaller bounds encode each
    /// shared weight diagonal once per smaller chunk of nodes (more encodes, less memory).
    #[serde(default)]
    pub lockstep_mib: usize,
    /// Run every latency measurement twice and time the second pass, so that the weights held
    /// by the plaintext cache are pre-encoded (doubles the run time).
    #[serde(default)]
    pub warm_cache: bool,
    /// Probe per-operation costs and report `*_estimated_s` from counts × costs.
    #[serde(default = "yes")]
    pub estimate: bool,
    /// Run `hegcn`'s packing planner: probe this machine's operation costs (in the pool of the
    /// first `latency_threads` entry), price every per-stage packing plan (AMA, channel-major
    /// and their mixes), and compile the cheapest as the run `planned` (counts, sizes,
    /// estimates; its latency if `latency_packings` names `"planned"`).
    #[serde(default)]
    pub planner: bool,
    /// Accuracy under encryption of a trained model on Mocap-15.
    #[serde(default)]
    pub accuracy: Option<AccuracySpec>,
    /// One test sample of the `accuracy` model and data set through the party's inference
    /// service, in process, as `party serve` and `he-infer` run it (metrics `<data>_single.*`).
    #[serde(default)]
    pub single: Option<SingleSpec>,
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
    /// Serve under the parameters `hegcn::choose_params` tailors to the model (the smallest
    /// ring for its slots and depth, exactly its levels, the smallest keys: what `party serve`
    /// uses by default) instead of the smallest named preset that holds its depth.
    #[serde(default)]
    pub tailored_params: bool,
    /// The learned-linearisation frontier on this model (an `x²` or polynomial model) and
    /// data set.
    #[serde(default)]
    pub frontier: Option<FrontierSpec>,
    /// Throughput mode: as many clips per pass as the slots hold, timed against one clip per
    /// pass (metrics `ama.throughput_s_per_sample`, `ama.clips_per_pass`, `ama.latency_s`, …).
    #[serde(default)]
    pub throughput: Option<ThroughputSpec>,
}

/// Throughput mode: one pass of `HeStgcn::max_clips` test clips and one pass of one clip,
/// under AMA at the accuracy run's parameters, timed at every thread count.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThroughputSpec {
    /// Thread counts (0 = all cores).
    #[serde(default = "default_throughput_threads")]
    pub threads: Vec<usize>,
    /// Skip the whole-test-set accuracy run of the model.
    #[serde(default)]
    pub only: bool,
}

/// The accuracy–latency frontier of learned structural linearisation
/// (`ml::models::stgcn_gates`): for each budget `k` of non-linear nodes, gates are searched
/// jointly with the weights, projected onto `⌈k / V⌉` sites, the model fine-tuned, evaluated
/// in plaintext on the whole test set and under CKKS (AMA, tailored parameters) on a few clips.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontierSpec {
    /// Budgets `k` (non-linear `(site, node)` pairs, at most sites × V).
    pub budgets: Vec<usize>,
    /// Epochs of the joint gate and weight search.
    #[serde(default = "default_search_epochs")]
    pub search_epochs: usize,
    /// Fine-tuning epochs after hardening.
    #[serde(default = "default_pruning_epochs")]
    pub finetune_epochs: usize,
    /// Test clips timed one per pass (the first ones); the latency is the median of the
    /// passes after the first (plaintext cache warm).
    #[serde(default = "default_latency_samples")]
    pub latency_samples: usize,
    /// Test clips whose encrypted top-1 is compared with the plaintext top-1 (batched passes).
    #[serde(default = "default_agreement_samples")]
    pub agreement_samples: usize,
    /// A ReLU twin evaluated in plaintext on the same test set (the accuracy ceiling).
    #[serde(default)]
    pub relu_model: Option<String>,
    /// Skip the whole-test-set accuracy run of the base model.
    #[serde(default)]
    pub only: bool,
}

fn default_search_epochs() -> usize {
    4
}
fn default_latency_samples() -> usize {
    3
}
fn default_agreement_samples() -> usize {
    16
}

/// One sample through the party's inference service (`experiments::cryptogcn::single`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SingleSpec {
    /// Index of the sample in the test set.
    #[serde(default)]
    pub index: usize,
    /// Requests in the session (the first fills the plaintext cache).
    #[serde(default = "default_single_requests")]
    pub requests: usize,
    /// Also serve the model under this named 128-bit preset, for comparison
    /// (`<data>_single_preset.*`).
    #[serde(default)]
    pub compare_preset: Option<String>,
    /// The party's `[inference] eval_error_bound` (what its reply flood hides; default: the
    /// party's default).
    #[serde(default)]
    pub eval_error_bound: Option<f64>,
    /// Run only this part of the accuracy section (skip the whole-test-set accuracy run).
    #[serde(default)]
    pub only: bool,
}

fn default_single_requests() -> usize {
    2
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
    /// The config name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            AccuracyData::Mocap15 => "mocap15",
            AccuracyData::Bodypose => "bodypose",
        }
    }

    /// Quantity prefix of the per-pass metrics (`ama.<key>_pass_latency_s`).
    pub(crate) fn metric_key(self) -> &'static str {
        match self {
            AccuracyData::Mocap15 => "mocap",
            AccuracyData::Bodypose => "bodypose",
        }
    }

    /// The name in report titles.
    pub(crate) fn title(self) -> &'static str {
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
    /// The packing plan `hegcn::planner` chose (needs `planner = true`).
    Planned,
}

impl PackingName {
    /// The uniform packing it names (`None` for the planner's choice).
    pub(crate) fn packing(self) -> Option<Packing> {
        match self {
            PackingName::Ama => Some(Packing::Ama),
            PackingName::Baseline => Some(Packing::ChannelMajor),
            PackingName::Planned => None,
        }
    }

    /// The run's metric prefix (`ama`, `baseline`).
    pub(crate) fn run(self) -> &'static str {
        match self {
            PackingName::Ama => "ama",
            PackingName::Baseline => "baseline",
            PackingName::Planned => "planned",
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
fn default_throughput_threads() -> Vec<usize> {
    vec![1, 0]
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
        if self.latency_packings.contains(&PackingName::Planned) && !self.planner {
            bail!("latency_packings names \"planned\" but planner = false: set planner = true");
        }
        if let Some(single) = &self.single {
            if self.accuracy.is_none() {
                bail!("single needs an accuracy section (its model and data set)");
            }
            if single.requests == 0 {
                bail!("single.requests must be at least 1");
            }
            if let Some(p) = &single.compare_preset {
                preset_by_name(p)?;
            }
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
            if let Some(tp) = &a.throughput {
                self.validate_throughput(tp)?;
            }
        }
        Ok(())
    }
}

impl CryptogcnTask {
    fn validate_throughput(&self, tp: &ThroughputSpec) -> Result<()> {
        let mut t = tp.threads.clone();
        t.sort_unstable();
        t.dedup();
        if tp.threads.is_empty() || t.len() != tp.threads.len() {
            bail!(
                "accuracy.throughput.threads = {:?}: name at least one thread count, each once",
                tp.threads
            );
        }
        if self.latency_packings.contains(&PackingName::Ama) {
            bail!("accuracy.throughput reports ama.latency_s of the accuracy model, which latency_packings = [\"ama\", ...] writes for the NTU-shaped model: drop \"ama\" from latency_packings or the throughput section");
        }
        Ok(())
    }
}

/// The 128-bit preset called `name`; the error lists the names there are.
pub(crate) fn preset_by_name(name: &str) -> Result<ckks::Preset> {
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

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use anyhow::Result;

    fn parse(body: &str) -> Result<Config> {
        Config::parse(
            &format!(
                "[experiment]\nname = \"cg-tiny\"\nseed = 3\n[[task]]\nkind = \"cryptogcn\"\n{body}"
            ),
            "cg.toml",
        )
    }

    #[test]
    fn bad_settings_are_rejected() {
        for (body, needle) in [
            ("width_divisor = 0\n", "width_divisor"),
            ("pruned_sites = [[3, 0]]\n", "pruned_sites"),
            ("preset = \"N9\"\n", "N9"),
            ("latency_packings = [\"ama\", \"ama\"]\n", "twice"),
            ("latency_packings = [\"cm\"]\n", "cm"),
            ("latency_packings = [\"planned\"]\n", "planner = true"),
            ("single = { index = 0 }\n", "accuracy section"),
            (
                "latency_packings = []\naccuracy = { model = \"m\", samples = 1, throughput = { threads = [] } }\n",
                "throughput.threads",
            ),
            (
                "latency_packings = []\naccuracy = { model = \"m\", samples = 1, throughput = { threads = [1, 1] } }\n",
                "throughput.threads",
            ),
            (
                "accuracy = { model = \"m\", samples = 1, throughput = {} }\n",
                "latency_packings",
            ),
            (
                "accuracy = { model = \"m\", samples = 1 }\nsingle = { requests = 0 }\n",
                "single.requests",
            ),
            (
                "accuracy = { model = \"m\", samples = 1 }\nsingle = { compare_preset = \"N9\" }\n",
                "N9",
            ),
        ] {
            let e = parse(body).unwrap_err();
            let m = format!("{e:#}");
            assert!(m.contains(needle) && m.contains("cg.toml"), "{m}");
        }
        parse("").unwrap();
    }
}
