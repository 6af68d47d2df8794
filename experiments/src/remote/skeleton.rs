//! `experiment export` for tasks that train on skeleton clips (the `stgcn` task's Mocap-15
//! cross-view or BodyPose split, loaded exactly as the in-process run loads them): for each
//! split, the clips as a rank-5 `f32` `.npy` `(N, C, T, V, M)` and their class indices as a 1-D
//! `i64` `.npy`, plus one JSON file with the graph's name, the dimensions, the class names and
//! the `share-upload` arguments that upload the training split.
//!
//! Security model: none of its own; it writes the data owner's plaintext into the owner's own
//! folder, for the owner to secret-share with `share-upload`.

use crate::config::stgcn::SkeletonData;
use anyhow::{Context, Result};
use datasets::skeleton::SkeletonSet;
use std::path::{Path, PathBuf};

/// The sidecar `share-upload` reads its options from (also written as `<stem>-skeleton.json`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SkeletonExport {
    /// The skeleton graph (`--graph`).
    pub graph: String,
    /// `[C, T, V, M]` of every clip.
    pub dims: [usize; 4],
    /// Class names, one per label value (`--class-names`).
    pub class_names: Vec<String>,
    /// Clips in the training split.
    pub train_clips: usize,
    /// Clips in the test split.
    pub test_clips: usize,
    /// Where the data came from.
    pub description: String,
    /// The `share-upload` arguments for the training split (before the connection flags).
    pub share_upload_args: Vec<String>,
}

fn write_split(out: &Path, stem: &str, split: &str, set: &SkeletonSet) -> Result<[PathBuf; 2]> {
    let data = out.join(format!("{stem}-{split}.npy"));
    datasets::npy::write_npy(&data, &set.data)?;
    let labels = out.join(format!("{stem}-{split}-labels.npy"));
    let y: ndarray::Array1<i64> = set.labels.iter().map(|&l| l as i64).collect();
    datasets::npy::write_npy(&labels, &y)?;
    Ok([data, labels])
}

/// Writes `<out>/<stem>-train.npy`, `…-train-labels.npy`, `…-test.npy`, `…-test-labels.npy`
/// and `…-skeleton.json` for the skeleton data `d` (`seed` fixes the BodyPose split). Returns
/// the files written.
///
/// # Errors
/// Loading the bundled data, a class name with a comma (it could not be passed to
/// `--class-names`), writing.
pub fn export(d: &SkeletonData, seed: u64, stem: &str, out: &Path) -> Result<Vec<PathBuf>> {
    let data = crate::stgcn::data::load(d, seed)?;
    let graph = data
        .graph
        .name
        .clone()
        .context("the skeleton graph has no name")?;
    let names = &data.train.class_names;
    if let Some(n) = names.iter().find(|n| n.contains(',')) {
        anyhow::bail!("class name {n:?} has a comma; --class-names could not carry it");
    }
    let [_, c, t, v, m] = data.train.shape();
    let mut files = Vec::new();
    files.extend(write_split(out, stem, "train", &data.train)?);
    files.extend(write_split(out, stem, "test", &data.test)?);
    let arg = |p: &Path| p.display().to_string();
    let meta = SkeletonExport {
        graph: graph.clone(),
        dims: [c, t, v, m],
        class_names: names.clone(),
        train_clips: data.train.len(),
        test_clips: data.test.len(),
        description: data.description,
        share_upload_args: vec![
            "--graph".into(),
            graph,
            "--labels".into(),
            arg(&files[1]),
            "--class-names".into(),
            names.join(","),
            arg(&files[0]),
        ],
    };
    let json = out.join(format!("{stem}-skeleton.json"));
    let text = serde_json::to_string_pretty(&meta).expect("plain data serializes");
    std::fs::write(&json, text + "\n").with_context(|| format!("writing {}", json.display()))?;
    files.push(json);
    Ok(files)
}
