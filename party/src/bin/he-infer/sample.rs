//! What `he-infer` sends: the input named on the command line (a sequence for an ST-GCN, one or
//! more images for a CNN), its true classes for a bundled dataset, its encryption, and the
//! plaintext model's logits on it for `--check`.

use crate::Cli;
use anyhow::{bail, Context, Result};
use ndarray::{Array2, Array4, Axis};
use party::infer::{self, ModelInfo};
use std::path::Path;

/// The input of one request.
pub enum Sample {
    /// A sequence `(C, T, V, M)` for an ST-GCN.
    Sequence(Array4<f64>),
    /// Images `n × side²` (pixels in `[0, 1]`) for a CNN: one in the LoLa layout, up to the
    /// slot count in the batch layout.
    Images(Array2<f64>),
}

impl Sample {
    /// Inputs (sequences or images) in the request.
    pub fn len(&self) -> usize {
        match self {
            Sample::Sequence(_) => 1,
            Sample::Images(x) => x.nrows(),
        }
    }

    /// The serialized input ciphertexts, freshly encrypted.
    pub fn encrypt(
        &self,
        info: &ModelInfo,
        params: &ckks::CkksParams,
        sk: &ckks::SecretKey,
    ) -> Result<Vec<Vec<u8>>> {
        Ok(match self {
            Sample::Sequence(x) => infer::encrypt_input(info, params, sk, x.view())?,
            Sample::Images(x) => infer::cnn::encrypt_images(info, params, sk, x.view())?,
        })
    }

    /// The plaintext logits of the model in `path` (its weights beside it), one row per input.
    pub fn plain_logits(&self, path: &Path) -> Result<Vec<Vec<f64>>> {
        let json =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let wpath = path.with_extension("safetensors");
        let w = std::fs::read(&wpath).with_context(|| format!("reading {}", wpath.display()))?;
        let rows = match self {
            Sample::Sequence(x) => {
                let m = stgcn::StGcn::from_json_and_safetensors(&json, &w)?;
                m.fold().forward(x.view().insert_axis(Axis(0)))?
            }
            Sample::Images(x) => {
                let m = ml::models::cnn::CnnModel::from_json_and_safetensors(&json, &w)?;
                m.logits(x.view())?
            }
        };
        Ok(rows.outer_iter().map(|r| r.to_vec()).collect())
    }
}

/// The input and, for a dataset, the true class name of each sample.
pub fn load(cli: &Cli, info: &ModelInfo) -> Result<(Sample, Vec<Option<String>>)> {
    if let Some(cnn) = &info.cnn {
        let (x, labels) = load_images(cli, &cnn.spec)?;
        return Ok((Sample::Images(x), labels));
    }
    let (x, label) = load_sequence(cli, info)?;
    Ok((Sample::Sequence(x), vec![label]))
}

/// The images for a CNN model (`--input` files, or `--dataset mnist` with `--index` or
/// `--range`) and, for the dataset, their digits.
fn load_images(
    cli: &Cli,
    spec: &ml::models::cnn::CnnSpec,
) -> Result<(Array2<f64>, Vec<Option<String>>)> {
    let pixels = spec.pixels();
    if !cli.input.is_empty() {
        let mut x = Array2::zeros((cli.input.len(), pixels));
        for (mut row, p) in x.outer_iter_mut().zip(&cli.input) {
            let img = infer::image::read_image(p, spec.side)?;
            row.assign(&ndarray::ArrayView1::from(&img));
        }
        return Ok((x, vec![None; cli.input.len()]));
    }
    let Some(name) = cli.dataset.as_deref() else {
        bail!("give --input FILE (PNG or NPY; several for a batch) or --dataset mnist --index I | --range A..B");
    };
    anyhow::ensure!(
        name == "mnist",
        "unknown dataset {name:?} for a CNN (mnist)"
    );
    let set = datasets::mnist::load_bundled(datasets::mnist::Split::Test)?;
    let (a, b) = match (cli.index, cli.range.as_deref()) {
        (Some(i), None) => (i, i + 1),
        (None, Some(r)) => parse_range(r)?,
        _ => bail!("--dataset mnist takes --index I or --range A..B"),
    };
    anyhow::ensure!(
        b <= set.len(),
        "images {a}..{b}: the MNIST test set has {} images",
        set.len()
    );
    anyhow::ensure!(
        (set.rows * set.cols) == pixels,
        "MNIST images are {} × {}, the model takes {s} × {s}",
        set.rows,
        set.cols,
        s = spec.side
    );
    let x = set
        .images
        .slice(ndarray::s![a..b, ..])
        .mapv(|p| f64::from(p) / 255.0);
    let labels = (a..b).map(|i| Some(set.labels[i].to_string())).collect();
    Ok((x, labels))
}

/// `A..B` with `A < B`.
fn parse_range(r: &str) -> Result<(usize, usize)> {
    let parsed = r
        .split_once("..")
        .and_then(|(a, b)| Some((a.parse::<usize>().ok()?, b.parse::<usize>().ok()?)));
    match parsed {
        Some((a, b)) if a < b => Ok((a, b)),
        _ => bail!("--range {r:?}: expected A..B with A < B (e.g. 0..100)"),
    }
}

/// The sequence for an ST-GCN model and, for a dataset, its true class name.
fn load_sequence(cli: &Cli, info: &ModelInfo) -> Result<(Array4<f64>, Option<String>)> {
    let l = &info.input_layout;
    let shape = (l.channels, l.frames, l.nodes, l.persons);
    anyhow::ensure!(
        cli.range.is_none() && cli.input.len() <= 1,
        "model {:?} is an ST-GCN: one --input or --index per request",
        info.name
    );
    if let Some(p) = cli.input.first() {
        return Ok((infer::input::read_sequence(p, shape)?, None));
    }
    let (Some(name), Some(i)) = (cli.dataset.as_deref(), cli.index) else {
        bail!("give --input FILE or --dataset NAME --index I");
    };
    use datasets::skeleton::{BodyPoseNormalization, BodyPoseSet, Mocap15, Mocap15Config};
    let set = match name {
        "bodypose" => {
            BodyPoseSet::load_bundled(BodyPoseNormalization::AsProvided)?
                .set
                .split_stratified(0.2, 42)?
                .1
        }
        "mocap15" => {
            Mocap15::load_bundled(Mocap15Config {
                frames: l.frames,
                ..Default::default()
            })?
            .cross_view(40, 20)?
            .test
            .set
        }
        d => bail!("unknown dataset {d:?} (bodypose, mocap15)"),
    };
    anyhow::ensure!(
        i < set.len(),
        "--index {i}: the {name} test split has {} samples",
        set.len()
    );
    let x = set.data.index_axis(Axis(0), i).mapv(f64::from);
    anyhow::ensure!(
        x.dim() == shape,
        "{name} samples are {:?}, model {:?} takes (C, T, V, M) = {shape:?}",
        x.dim(),
        info.name
    );
    Ok((x, Some(set.class_names[set.labels[i]].clone())))
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_are_half_open_and_non_empty() {
        assert_eq!(parse_range("3..7").unwrap(), (3, 7));
        for bad in ["7..3", "3..3", "3-7", "a..4"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }
}
