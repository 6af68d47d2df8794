//! Prunes a committed MNIST CNN for the single-image layout (`hecnn::prune`: whole kernel taps
//! and whole diagonals of the dense layers, lowest sum of squares first), fine-tunes each level
//! in plaintext with the mask fixed, and writes `<name>-p<level>.json` + `.safetensors`.
//! FFConv models are folded first (the encrypted pass runs the folded network).
//!
//! `cargo run --release -p experiments --example prune_cnn -- [model_path] [out_dir]`
//! (default `experiments/models/cnn/mnist-ffconv-r8`, written beside it).
//!
//! Levels (fractions of taps, fc1 diagonals, fc2 diagonals): `p30` 0.2/0.3/0.3, `p50`
//! 0.32/0.5/0.5, `p70` 0.4/0.7/0.7; fine-tuning 3 epochs, lr 0.005 × 0.7 per epoch, batch 64,
//! momentum 0.9, seed 2. Masks are computed at 8,192 slots (`N14_L7_S40_128BIT`, the preset
//! of the single-image layout).

use anyhow::{Context, Result};
use datasets::mnist::{load_bundled, Split};
use experiments::hecnn::load_model;
use hecnn::{PruneLevel, PruneMask};
use ml::models::cnn::{fine_tune_plain, CnnHyper};
use std::path::PathBuf;

const LEVELS: [(&str, PruneLevel); 3] = [
    (
        "p30",
        PruneLevel {
            taps: 0.2,
            fc1: 0.3,
            fc2: 0.3,
        },
    ),
    (
        "p50",
        PruneLevel {
            taps: 0.32,
            fc1: 0.5,
            fc2: 0.5,
        },
    ),
    (
        "p70",
        PruneLevel {
            taps: 0.4,
            fc1: 0.7,
            fc2: 0.7,
        },
    ),
];

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let path = args
        .first()
        .map_or("experiments/models/cnn/mnist-ffconv-r8", String::as_str);
    let model = load_model(path)?.folded();
    let out = args.get(1).map_or_else(
        || {
            PathBuf::from(path)
                .parent()
                .map(PathBuf::from)
                .unwrap_or_default()
        },
        PathBuf::from,
    );
    let train = load_bundled(Split::Train)?;
    let test = load_bundled(Split::Test)?;
    let (x, xt) = (train.images_f64(), test.images_f64());
    let (labels, test_labels) = (train.labels.to_vec(), test.labels.to_vec());
    let slots = hecnn::choose_preset("prune", hecnn::LOLA_DEPTH)?
        .build()?
        .slots();
    let base = model.accuracy(xt.view(), &test_labels)?;
    println!(
        "{} (folded): test accuracy {:.2} %",
        model.spec.name,
        100.0 * base
    );
    let hyper = CnnHyper {
        epochs: 3,
        lr: 0.005,
        lr_decay: 0.7,
        seed: 2,
        ..CnnHyper::default()
    };
    for (name, level) in LEVELS {
        let mask = PruneMask::new(&model, slots, &level)?;
        let pruned = mask.apply(&model);
        let before = pruned.accuracy(xt.view(), &test_labels)?;
        let t0 = std::time::Instant::now();
        let mut tuned = fine_tune_plain(
            &pruned,
            Some(&mask.tensors(&model)),
            &x,
            &labels,
            &hyper,
            |r| {
                println!(
                    "  {name} epoch {} loss {:.4} train {:.2} %",
                    r.epoch,
                    r.loss,
                    100.0 * r.train_accuracy
                );
            },
        )?;
        tuned.spec.name = format!("{}-{name}", model.spec.name);
        let after = tuned.accuracy(xt.view(), &test_labels)?;
        println!(
            "{}: taps kept {}/25, fc1 diagonals {}, fc2 diagonals {}; test accuracy {:.2} % after \
             pruning, {:.2} % after fine-tuning ({:.0} s)",
            tuned.spec.name,
            mask.taps.iter().filter(|&&k| k).count(),
            mask.kept[0].len(),
            mask.kept[1].len(),
            100.0 * before,
            100.0 * after,
            t0.elapsed().as_secs_f64()
        );
        anyhow::ensure!(mask.apply(&tuned) == tuned, "fine-tuning left the mask");
        std::fs::write(
            out.join(format!("{}.json", tuned.spec.name)),
            tuned.spec_json(),
        )
        .context("writing the model")?;
        std::fs::write(
            out.join(format!("{}.safetensors", tuned.spec.name)),
            tuned.to_safetensors_bytes()?,
        )?;
    }
    Ok(())
}
