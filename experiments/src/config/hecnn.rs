//! Settings of the `hecnn` task (encrypted CNN inference on MNIST with CKKS): which designs
//! run, which committed model each uses, how many test images, and the checks run when a
//! config is parsed.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Settings of a `hecnn` task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HecnnTask {
    /// Designs to run: `"cryptonets"` (the batch layout), `"lola"` (the single-image
    /// layout), `"ffconv"` (the FFConv model in the single-image layout), `"pruned"` (the
    /// pruning levels of the FFConv model, with the accuracy–latency plot), `"planned"` (the
    /// planner's choice for `objective`), `"matrix"` (the matrix layout: a batch of images
    /// in one ciphertext) and `"tile"` (tile tensors, the tile shape chosen by the planner).
    #[serde(default = "default_designs")]
    pub designs: Vec<String>,
    /// The CryptoNets model: path without extension of `<model>.json` + `<model>.safetensors`.
    #[serde(default = "default_model")]
    pub model: String,
    /// MNIST test images evaluated under encryption (the first `images` of the 10,000).
    #[serde(default = "default_images")]
    pub images: usize,
    /// Test images the `lola` design evaluates one by one under encryption for its accuracy
    /// and agreement (the first `lola_images`; default all 10,000).
    #[serde(default = "default_images")]
    pub lola_images: usize,
    /// Images whose single-image latency the `lola` and `planned` designs time (median), on
    /// one thread and on all cores.
    #[serde(default = "default_latency_runs")]
    pub lola_latency_runs: usize,
    /// The FFConv model of the `ffconv` design (path without extension).
    #[serde(default = "default_ffconv_model")]
    pub ffconv_model: String,
    /// Pruning levels of the `pruned` design: level `L` is the model `<pruned_model>-L`
    /// (written by `cargo run --release -p experiments --example prune_cnn`).
    #[serde(default)]
    pub pruned: Vec<String>,
    /// The model whose pruning levels the `pruned` design runs (path without extension; an
    /// FFConv or a plain model; default `ffconv_model`).
    #[serde(default)]
    pub pruned_model: Option<String>,
    /// A 128-bit preset by name (default: the smallest that leaves the depth).
    #[serde(default)]
    pub preset: Option<String>,
    /// What the `planned` design's planner optimises: `"latency"` (one image) or
    /// `"throughput"` (a batch); the other objective's choice is reported beside it.
    #[serde(default = "default_objective")]
    pub objective: String,
    /// Test images the `planned` design evaluates under encryption (the first
    /// `planned_images`); its latency is timed on `lola_latency_runs` of them.
    #[serde(default = "default_planned_images")]
    pub planned_images: usize,
    /// Test images the `tile` design evaluates under encryption (the first `tile_images`, in
    /// passes of `t_b`); its latency is timed on `lola_latency_runs` passes.
    #[serde(default = "default_tile_images")]
    pub tile_images: usize,
    /// The `tile` design's tiling `[t_f, t_h, t_b]` (default: the planner's best for
    /// `objective`).
    #[serde(default)]
    pub tile_shape: Option<[usize; 3]>,
    /// Timed runs of each operation kind in the planner's cost probe (median).
    #[serde(default = "default_probe_reps")]
    pub probe_reps: usize,
    /// Test images the `matrix` design evaluates under encryption (the first
    /// `matrix_images`, in batches of one ciphertext each).
    #[serde(default = "default_matrix_images")]
    pub matrix_images: usize,
}

fn default_matrix_images() -> usize {
    64
}

fn default_objective() -> String {
    "latency".into()
}

fn default_planned_images() -> usize {
    200
}

fn default_tile_images() -> usize {
    100
}

fn default_probe_reps() -> usize {
    5
}

/// The designs this task runs.
const DESIGNS: [&str; 7] = [
    "cryptonets",
    "lola",
    "ffconv",
    "pruned",
    "planned",
    "matrix",
    "tile",
];

fn default_designs() -> Vec<String> {
    vec!["cryptonets".into()]
}

fn default_model() -> String {
    "experiments/models/cnn/mnist-cryptonets".into()
}

fn default_ffconv_model() -> String {
    "experiments/models/cnn/mnist-ffconv-r8".into()
}

fn default_images() -> usize {
    10_000
}

fn default_latency_runs() -> usize {
    5
}

impl HecnnTask {
    /// Checks the design names and the image count.
    ///
    /// # Errors
    /// An unknown design or an image count outside `1..=10000`.
    pub fn validate(&self) -> Result<()> {
        for (i, d) in self.designs.iter().enumerate() {
            if !DESIGNS.contains(&d.as_str()) {
                bail!("designs[{i}] = {d:?}: only {DESIGNS:?} are implemented");
            }
        }
        if self.designs.iter().any(|d| d == "pruned") && self.pruned.is_empty() {
            bail!(
                "design \"pruned\" needs pruned = [\"<level>\", …] (models <pruned_model>-<level>)"
            );
        }
        if let Err(e) = self.objective.parse::<hecnn::planner::Objective>() {
            bail!("objective = {:?}: {e}", self.objective);
        }
        if self.probe_reps == 0 || self.probe_reps > 100 {
            bail!("probe_reps = {}: must be in 1..=100", self.probe_reps);
        }
        for (name, n) in [
            ("images", self.images),
            ("lola_images", self.lola_images),
            ("planned_images", self.planned_images),
            ("matrix_images", self.matrix_images),
            ("tile_images", self.tile_images),
        ] {
            if n == 0 || n > 10_000 {
                bail!("{name} = {n}: must be in 1..=10000 (the MNIST test set)");
            }
        }
        if self.lola_latency_runs == 0 || self.lola_latency_runs > 100 {
            bail!(
                "lola_latency_runs = {}: must be in 1..=100",
                self.lola_latency_runs
            );
        }
        if let Some(p) = &self.preset {
            super::cryptogcn::preset_by_name(p)?;
        }
        Ok(())
    }
}

impl HecnnTask {
    /// The base of the `pruned` levels: `pruned_model`, or `ffconv_model`.
    pub fn pruned_base(&self) -> &str {
        self.pruned_model.as_deref().unwrap_or(&self.ffconv_model)
    }
}
