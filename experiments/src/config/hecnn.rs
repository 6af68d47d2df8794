//! Settings of the `hecnn` task (encrypted CNN inference on MNIST with CKKS): which designs
//! run, which committed model each uses, how many test images, and the checks run when a
//! config is parsed.

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

/// Settings of a `hecnn` task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HecnnTask {
    /// Designs to run; only `"cryptonets"` (the batch layout) exists so far.
    #[serde(default = "default_designs")]
    pub designs: Vec<String>,
    /// The CryptoNets model: path without extension of `<model>.json` + `<model>.safetensors`.
    #[serde(default = "default_model")]
    pub model: String,
    /// MNIST test images evaluated under encryption (the first `images` of the 10,000).
    #[serde(default = "default_images")]
    pub images: usize,
    /// A 128-bit preset by name (default: the smallest that leaves the depth).
    #[serde(default)]
    pub preset: Option<String>,
}

fn default_designs() -> Vec<String> {
    vec!["cryptonets".into()]
}

fn default_model() -> String {
    "experiments/models/cnn/mnist-cryptonets".into()
}

fn default_images() -> usize {
    10_000
}

impl HecnnTask {
    /// Checks the design names and the image count.
    ///
    /// # Errors
    /// An unknown design or an image count outside `1..=10000`.
    pub fn validate(&self) -> Result<()> {
        for (i, d) in self.designs.iter().enumerate() {
            if d != "cryptonets" {
                bail!("designs[{i}] = {d:?}: only \"cryptonets\" is implemented (lola, ffconv, matrix, planned are not yet)");
            }
        }
        if self.images == 0 || self.images > 10_000 {
            bail!(
                "images = {}: must be in 1..=10000 (the MNIST test set)",
                self.images
            );
        }
        if let Some(p) = &self.preset {
            super::cryptogcn::preset_by_name(p)?;
        }
        Ok(())
    }
}
