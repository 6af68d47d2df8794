//! Settings of the `secure-stgcn` task: fine-tune a public ST-GCN model in 2PC on private
//! Mocap-15 cross-view clips beside its plaintext twin, then serve the secure-trained model
//! under CKKS. The task table, its serde defaults and the checks run when a config is parsed.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Settings of a `secure-stgcn` task. The 2PC run always truncates exactly (no failure event,
/// whatever `[mpc] truncation` says); `[mpc] triples` and `frac_bits` and the transport apply.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecureStgcnTask {
    /// Appended to the metric prefixes (`secure_stgcn_<label>.…`); empty for `secure_stgcn.…`.
    #[serde(default)]
    pub label: String,
    /// When set, the task also reports `<summary>.secure_test_accuracy_pct`,
    /// `<summary>.plain_test_accuracy_pct` and `<summary>.he_agreement_pct` (the quickstart's
    /// `stgcn_quick`).
    #[serde(default)]
    pub summary: Option<String>,
    /// The public starting models (path stems of `<stem>.json` + `<stem>.safetensors`, relative
    /// to the working directory or the workspace root), one secure run each; the first is the
    /// main run (its metrics carry no activation suffix) and the one served under CKKS.
    pub models: Vec<String>,
    /// Training clips per class of the private cross-view split (±45°).
    pub train_per_class: usize,
    /// Test clips per class (0°).
    pub test_per_class: usize,
    /// Epochs of fine-tuning.
    #[serde(default = "one")]
    pub epochs: usize,
    /// Stop after this many SGD steps in all (the quickstart's few steps); default: every
    /// full batch of every epoch.
    #[serde(default)]
    pub max_steps: Option<usize>,
    /// Clips per step (the last partial batch of an epoch is dropped).
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Learning rate (constant).
    pub learning_rate: f64,
    /// SGD momentum.
    #[serde(default = "default_momentum")]
    pub momentum: f64,
    /// L2 weight decay on convolution and dense weights.
    #[serde(default = "default_weight_decay")]
    pub weight_decay: f64,
    /// Training clips on which every BN is re-calibrated in 2PC before fine-tuning (per-channel
    /// mean and variance on shares, see `ml::models::stgcn::calibrate`; the first clips of a
    /// public shuffle, at most the training set; 0 = keep the public model's statistics).
    #[serde(default = "default_calibration")]
    pub calibration_clips: usize,
    /// Steps whose triples are made at once (the offline phase runs in chunks to bound
    /// memory; one chunk never spans two epochs).
    #[serde(default = "default_chunk")]
    pub chunk_steps: usize,
    /// With `he` triples: the offline phase is also run with the RLWE source for this many
    /// steps (0 = not), the online phase run on them, and the per-epoch offline cost
    /// extrapolated from them.
    #[serde(default)]
    pub he_steps: usize,
    /// Serve the first model's secure-trained weights under CKKS (default `true`).
    #[serde(default = "yes")]
    pub serve: bool,
    /// Test clips classified under CKKS (AMA packing; the first ones of the test set, 0 = all).
    #[serde(default = "default_he_clips")]
    pub he_clips: usize,
    /// Plaintext cache of the encrypted evaluation, MiB.
    #[serde(default = "default_cache")]
    pub plaintext_cache_mib: usize,
    /// Generator seed of the clips (default: the generator's own, 2024).
    #[serde(default)]
    pub data_seed: Option<u64>,
}

fn yes() -> bool {
    true
}

fn one() -> usize {
    1
}

fn default_batch() -> usize {
    16
}

fn default_momentum() -> f64 {
    0.9
}

fn default_weight_decay() -> f64 {
    1e-4
}

fn default_calibration() -> usize {
    128
}

fn default_chunk() -> usize {
    8
}

/// 60 clips: four passes of 16 clips at the committed Mocap-15 size, a few minutes on 2 cores.
fn default_he_clips() -> usize {
    60
}

fn default_cache() -> usize {
    512
}

impl SecureStgcnTask {
    /// Checks the settings; errors name the field and value.
    pub fn validate(&self) -> Result<()> {
        if self.models.is_empty() {
            bail!("models must name at least one public model");
        }
        for (i, m) in self.models.iter().enumerate() {
            if m.trim().is_empty() {
                bail!("models[{i}] is empty");
            }
        }
        for (name, v) in [
            ("train_per_class", self.train_per_class),
            ("test_per_class", self.test_per_class),
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("chunk_steps", self.chunk_steps),
        ] {
            if v == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if self.max_steps == Some(0) {
            bail!("max_steps must be at least 1");
        }
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            bail!("learning_rate = {} must be positive", self.learning_rate);
        }
        if !(0.0..1.0).contains(&self.momentum) {
            bail!("momentum = {} must be in [0, 1)", self.momentum);
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            bail!("weight_decay = {} must be non-negative", self.weight_decay);
        }
        let ok = |s: &str| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok(&self.label) {
            bail!(
                "label {:?} must use only letters, digits and '_'",
                self.label
            );
        }
        if let Some(s) = &self.summary {
            if s.is_empty() || !ok(s) {
                bail!("summary {s:?} must be non-empty and use only letters, digits and '_'");
            }
        }
        Ok(())
    }

    /// The metric prefix of `run` (`secure_stgcn`, `plain_stgcn`, …) with the label.
    pub(crate) fn prefix(&self, run: &str) -> String {
        if self.label.is_empty() {
            run.to_string()
        } else {
            format!("{run}_{}", self.label)
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Config, Task};

    const BASE: &str = "[experiment]\nname = \"x\"\n[[task]]\nkind = \"secure-stgcn\"\n";

    #[test]
    fn parses_with_defaults() {
        let c = Config::parse(
            &format!("{BASE}models = [\"m\"]\ntrain_per_class = 2\ntest_per_class = 1\nlearning_rate = 0.01\n"),
            "c.toml",
        )
        .unwrap();
        let Task::SecureStgcn(t) = &c.tasks[0] else {
            panic!("{:?}", c.tasks[0])
        };
        assert_eq!((t.epochs, t.batch_size, t.chunk_steps), (1, 16, 8));
        assert_eq!((t.he_clips, t.he_steps, t.max_steps), (60, 0, None));
        assert_eq!(t.calibration_clips, 128);
        assert_eq!(t.prefix("secure_stgcn"), "secure_stgcn");
    }

    #[test]
    fn bad_settings_are_rejected() {
        let ok = "train_per_class = 2\ntest_per_class = 1\nlearning_rate = 0.01\n";
        for (extra, needle) in [
            ("models = []\n", "models"),
            ("models = [\"m\"]\nepochs = 0\n", "epochs"),
            ("models = [\"m\"]\nmax_steps = 0\n", "max_steps"),
            ("models = [\"m\"]\nmomentum = 1.5\n", "1.5"),
            ("models = [\"m\"]\nlabel = \"a b\"\n", "label"),
            ("models = [\"m\"]\nsummary = \"\"\n", "summary"),
            ("models = [\"m\"]\nhe_clipz = 3\n", "he_clipz"),
        ] {
            let e = Config::parse(&format!("{BASE}{extra}{ok}"), "c.toml").unwrap_err();
            let m = format!("{e:#}");
            assert!(m.contains(needle) && m.contains("c.toml"), "{m}");
        }
        let e = Config::parse(
            &format!("{BASE}models = [\"m\"]\ntrain_per_class = 2\ntest_per_class = 1\nlearning_rate = -1.0\n"),
            "c.toml",
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("learning_rate = -1"));
    }
}
