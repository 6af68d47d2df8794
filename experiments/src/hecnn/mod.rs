//! The `hecnn` task: encrypted CNN inference on MNIST with CKKS, design by design, beside the
//! published figures: `cryptonets` (the batch layout of [`hecnn::batch::BatchCnn`]: the whole
//! test set in batches of one image per slot), in [`batch`]; `lola` (the single-image layout
//! of [`hecnn::LolaCnn`]: images one at a time, latency on one thread and on all cores),
//! `ffconv` (an FFConv model, [`hecnn::FfConvCnn`]) and `pruned` (the pruning levels of
//! `pruned_model`, default the FFConv model, [`hecnn::prune`], metrics `pruned.<level>.*`), in
//! [`lola`]; `planned` (the packing
//! planner's choice, run and checked against its estimate), in [`planned`]; `matrix` (the
//! matrix layout of [`hecnn::MatrixCnn`]: a batch of images in one ciphertext), in [`matrix`];
//! `tile` (the CNN on tile tensors, the tile shape chosen by the planner), in [`tile`];
//! [`report`] writes
//! the comparison table and the pruning plot. Metrics `<design>.test_accuracy_pct`,
//! `.agreement_pct`, `.max_logit_error`, `.latency_s` (the server's forward pass of one full
//! batch), `.throughput_per_h`, `.he_ops_count`, key and ciphertext sizes.

pub mod batch;
pub mod keys;
pub mod lola;
pub mod matrix;
pub mod planned;
pub mod report;
pub mod tile;

#[cfg(test)]
mod tests;

use crate::config::hecnn::HecnnTask;
use crate::report::Report;
use anyhow::{Context, Result};
use ml::models::cnn::CnnModel;

/// Runs every design of the task.
///
/// # Errors
/// A model or data file that cannot be read, or a CKKS error.
pub fn run(task: &HecnnTask, report: &mut Report) -> Result<()> {
    let mut rows = Vec::new();
    for design in &task.designs {
        match design.as_str() {
            "cryptonets" => rows.push(batch::run(task, &load_model(&task.model)?, report)?),
            "lola" => rows.push(lola::run(task, &load_model(&task.model)?, report)?),
            "ffconv" => {
                let model = load_model(&task.ffconv_model)?;
                rows.push(lola::run_ffconv(task, &model, report)?);
            }
            "pruned" => pruned(task, report, &mut rows)?,
            "planned" => rows.push(planned::run(task, &load_model(&task.model)?, report)?),
            "matrix" => rows.push(matrix::run(task, &load_model(&task.model)?, report)?),
            "tile" => rows.push(tile::run(task, &load_model(&task.model)?, report)?),
            other => anyhow::bail!("design {other:?} is not implemented"),
        }
    }
    report.section("Encrypted CNN inference on MNIST", report::table(&rows));
    Ok(())
}

/// The pruning levels of `pruned_model` (default the FFConv model): each through the
/// single-image layout, then the table and the accuracy–latency plot (the unpruned model
/// first, from the row of the design that ran it before: `ffconv` for the FFConv model,
/// `lola` or `planned` when the base is `model`).
fn pruned(task: &HecnnTask, report: &mut Report, rows: &mut Vec<report::Row>) -> Result<()> {
    let base = task.pruned_base();
    let base_designs: &[&str] = if base == task.ffconv_model {
        &["ffconv"]
    } else if base == task.model {
        &["lola", "planned"]
    } else {
        &[]
    };
    let mut points: Vec<report::Row> = rows
        .iter()
        .find(|r| base_designs.iter().any(|d| r.design.starts_with(d)))
        .cloned()
        .into_iter()
        .collect();
    for level in &task.pruned {
        let model = load_model(&format!("{base}-{level}"))?;
        let row = lola::run_pruned(task, level, &model, report)?;
        points.push(row.clone());
        rows.push(row);
    }
    report::pruning(report, &points)
}

/// Loads `<path>.json` and `<path>.safetensors`.
///
/// # Errors
/// A missing or malformed file, named.
pub fn load_model(path: &str) -> Result<CnnModel> {
    let json = std::fs::read_to_string(format!("{path}.json"))
        .with_context(|| format!("reading {path}.json"))?;
    let st = std::fs::read(format!("{path}.safetensors"))
        .with_context(|| format!("reading {path}.safetensors"))?;
    CnnModel::from_json_and_safetensors(&json, &st)
        .with_context(|| format!("loading the CNN model {path}"))
}
