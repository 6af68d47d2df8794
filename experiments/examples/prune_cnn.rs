//! Prunes a committed MNIST CNN for the single-image layout (`hecnn::prune`: whole kernel taps
//! and whole diagonals of the dense layers, lowest sum of squares first), fine-tunes each level
//! in plaintext with the mask fixed, and writes `<name>-<level>.json` + `.safetensors`.
//! FFConv models are folded first (the encrypted pass runs the folded network).
//!
//! `cargo run --release -p experiments --example prune_cnn -- [model_path] [out_dir]
//! [--levels NAME:TAPS/FC1/FC2,…] [--epochs E] [--lr LR] [--lr-decay D] [--shift S]
//! [--steps K]`
//! (default `experiments/models/cnn/mnist-ffconv-r8`, written beside it).
//!
//! Default levels (fractions of taps, fc1 diagonals, fc2 diagonals): `p30` 0.2/0.3/0.3, `p50`
//! 0.32/0.5/0.5, `p70` 0.4/0.7/0.7; fine-tuning 3 epochs, lr 0.005 × 0.7 per epoch, batch 64,
//! momentum 0.9, seed 2, no augmentation. `--shift S` fine-tunes on random translations of up
//! to S pixels (`CnnHyper::max_shift`); `--steps K` prunes iteratively: K masks of growing
//! fractions (`i/K` of the level's, each computed on the previous step's fine-tuned model, so
//! they nest), `E` epochs of fine-tuning after each. Masks are computed at 8,192 slots
//! (`N14_L7_S40_128BIT`, the preset of the single-image layout); each level's planned HE
//! operations per image (`hecnn::he_ops` of `hecnn::LolaPlan`'s stages) are printed beside the
//! unpruned model's.

mod cli;

use anyhow::{bail, Context, Result};
use cli::{opt, split_options};
use datasets::mnist::{load_bundled, Split};
use experiments::hecnn::load_model;
use hecnn::{PruneLevel, PruneMask};
use ml::models::cnn::{fine_tune_plain, CnnHyper, CnnModel};
use ndarray::Array2;
use std::path::PathBuf;

/// Training and test images with their labels.
struct Data {
    x: Array2<f64>,
    labels: Vec<u8>,
    xt: Array2<f64>,
    test_labels: Vec<u8>,
}

fn main() -> Result<()> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let (args, opts) = split_options(
        &all,
        &["levels", "epochs", "lr", "lr-decay", "shift", "steps"],
    )?;
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
    let (train, test) = (load_bundled(Split::Train)?, load_bundled(Split::Test)?);
    let data = Data {
        x: train.images_f64(),
        labels: train.labels.to_vec(),
        xt: test.images_f64(),
        test_labels: test.labels.to_vec(),
    };
    let params = hecnn::choose_preset("prune", hecnn::LOLA_DEPTH)?.build()?;
    let base = model.accuracy(data.xt.view(), &data.test_labels)?;
    println!(
        "{} (folded): test accuracy {:.2} %, {} HE ops",
        model.spec.name,
        100.0 * base,
        planned_ops(&model, &params)?
    );
    let hyper = CnnHyper {
        epochs: opt(&opts, "epochs")?.unwrap_or(3),
        lr: opt(&opts, "lr")?.unwrap_or(0.005),
        lr_decay: opt(&opts, "lr-decay")?.unwrap_or(0.7),
        seed: 2,
        max_shift: opt(&opts, "shift")?.unwrap_or(0),
        ..CnnHyper::default()
    };
    let steps: usize = opt(&opts, "steps")?.unwrap_or(1).max(1);
    println!("fine-tuning {hyper:?}, {steps} step(s)");
    for (name, level) in levels(&opts)? {
        let t0 = std::time::Instant::now();
        let mut tuned = model.clone();
        let mut last = None;
        for step in 1..=steps {
            let frac = step as f64 / steps as f64;
            let mask = PruneMask::new(&tuned, params.slots(), &scaled(&level, frac))?;
            let pruned = mask.apply(&tuned);
            let before = pruned.accuracy(data.xt.view(), &data.test_labels)?;
            println!(
                "  {name} step {step}: {:.2} % after pruning",
                100.0 * before
            );
            tuned = tune(&pruned, &mask, &data, &hyper, &name)?;
            last = Some(mask);
        }
        let mask = last.context("at least one step")?;
        tuned.spec.name = format!("{}-{name}", model.spec.name);
        let after = tuned.accuracy(data.xt.view(), &data.test_labels)?;
        println!(
            "{}: taps kept {}/25, fc1 diagonals {}, fc2 diagonals {}; {} HE ops; test accuracy \
             {:.2} % after fine-tuning ({:.0} s)",
            tuned.spec.name,
            mask.taps.iter().filter(|&&k| k).count(),
            mask.kept[0].len(),
            mask.kept[1].len(),
            planned_ops(&tuned, &params)?,
            100.0 * after,
            t0.elapsed().as_secs_f64()
        );
        anyhow::ensure!(mask.apply(&tuned) == tuned, "fine-tuning left the mask");
        println!(
            "  stage max |x| on test: {:?}",
            tuned.stage_max_abs(data.xt.view())?
        );
        write(&tuned, &out)?;
    }
    Ok(())
}

/// Fine-tunes `pruned` with `mask` fixed.
fn tune(
    pruned: &CnnModel,
    mask: &PruneMask,
    d: &Data,
    hyper: &CnnHyper,
    name: &str,
) -> Result<CnnModel> {
    let tensors = mask.tensors(pruned);
    Ok(fine_tune_plain(
        pruned,
        Some(&tensors),
        &d.x,
        &d.labels,
        hyper,
        |r| {
            println!(
                "    {name} epoch {} loss {:.4} train {:.2} % lr {:.5}",
                r.epoch,
                r.loss,
                100.0 * r.train_accuracy,
                r.lr
            );
        },
    )?)
}

/// The planned HE operations of one image of `model` in the single-image layout.
fn planned_ops(model: &CnnModel, params: &ckks::CkksParams) -> Result<u64> {
    let plan = hecnn::LolaPlan::new(model, params)?;
    Ok(plan.stages().iter().map(|s| hecnn::he_ops(&s.ops)).sum())
}

fn scaled(l: &PruneLevel, f: f64) -> PruneLevel {
    PruneLevel {
        taps: l.taps * f,
        fc1: l.fc1 * f,
        fc2: l.fc2 * f,
    }
}

fn write(m: &CnnModel, out: &std::path::Path) -> Result<()> {
    std::fs::write(out.join(format!("{}.json", m.spec.name)), m.spec_json())
        .context("writing the model")?;
    std::fs::write(
        out.join(format!("{}.safetensors", m.spec.name)),
        m.to_safetensors_bytes()?,
    )?;
    Ok(())
}

/// `--levels p50:0.32/0.5/0.5,p70:…`, or the three default levels.
fn levels(opts: &[(String, String)]) -> Result<Vec<(String, PruneLevel)>> {
    let spec = opts.iter().find(|(k, _)| k == "levels").map_or(
        "p30:0.2/0.3/0.3,p50:0.32/0.5/0.5,p70:0.4/0.7/0.7",
        |(_, v)| v,
    );
    spec.split(',')
        .map(|item| {
            let (name, f) = item.split_once(':').context("NAME:TAPS/FC1/FC2")?;
            let f: Vec<f64> = f.split('/').map(str::parse).collect::<Result<_, _>>()?;
            let [taps, fc1, fc2] = f[..] else {
                bail!("{item}: three fractions TAPS/FC1/FC2");
            };
            Ok((name.to_string(), PruneLevel { taps, fc1, fc2 }))
        })
        .collect()
}
