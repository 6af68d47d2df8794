//! Trains the MNIST CNNs of `experiments/models/cnn/` (CryptoNets, the wider variant and the
//! FFConv low-rank variant) on the bundled MNIST training set, in plaintext, and writes
//! `<name>.json` + `<name>.safetensors`.
//!
//! `cargo run --release -p experiments --example train_cnn -- [cryptonets|wide|ffconv] [out_dir]
//! [--shift S] [--epochs E] [--lr LR] [--lr-decay D] [--wd W] [--rank R] [--name NAME]`
//!
//! `ffconv`: a rank-8 convolution mixed into 16 maps after the activation
//! (`CnnSpec::ffconv(8, 16)`), 20 epochs, learning-rate decay 0.88.
//! The options override the network's hyper-parameters (`--shift`: random translations of up
//! to S pixels, `CnnHyper::max_shift`), FFConv's rank (`--rank`) and the file stem (`--name`).
//!
//! Reproducible: the initial weights and the shuffling are seeded (`CnnHyper::seed`).

mod cli;

use anyhow::{bail, Context, Result};
use cli::{opt, split_options};
use datasets::mnist::{load_bundled, Split};
use ml::models::cnn::{train_plain, CnnHyper, CnnSpec};
use std::path::PathBuf;

fn main() -> Result<()> {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let (args, opts) = split_options(
        &all,
        &[
            "shift", "epochs", "lr", "lr-decay", "wd", "rank", "name", "seed",
        ],
    )?;
    let which = args.first().map_or("cryptonets", String::as_str);
    let out = PathBuf::from(args.get(1).map_or("experiments/models/cnn", String::as_str));
    let rank = opt(&opts, "rank")?.unwrap_or(8);
    let (mut spec, mut hyper) = match which {
        "cryptonets" => (CnnSpec::cryptonets(), CnnHyper::default()),
        "wide" => (CnnSpec::wide(), CnnHyper::default()),
        "ffconv" => (
            CnnSpec::ffconv(rank, 16),
            CnnHyper {
                epochs: 20,
                lr_decay: 0.88,
                ..CnnHyper::default()
            },
        ),
        other => bail!("unknown network {other:?}: expected cryptonets, wide or ffconv"),
    };
    override_hyper(&mut hyper, &opts)?;
    if let Some(name) = opts.iter().find(|(k, _)| k == "name") {
        spec.name.clone_from(&name.1);
    }
    println!("{}: {hyper:?}", spec.name);
    let train = load_bundled(Split::Train)?;
    let test = load_bundled(Split::Test)?;
    let (x, xt) = (train.images_f64(), test.images_f64());
    let labels = train.labels.to_vec();
    let t0 = std::time::Instant::now();
    let model = train_plain(&spec, &x, &labels, &hyper, |r| {
        println!(
            "epoch {:2}  loss {:.4}  train acc {:.2} %  lr {:.4}  ({:.0} s)",
            r.epoch,
            r.loss,
            100.0 * r.train_accuracy,
            r.lr,
            t0.elapsed().as_secs_f64()
        );
    })?;
    let acc = model.accuracy(xt.view(), test.labels.as_slice().context("labels")?)?;
    println!("{}: test accuracy {:.2} %", spec.name, 100.0 * acc);
    println!(
        "stage max |x| on test: {:?}",
        model.stage_max_abs(xt.view())?
    );
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join(format!("{}.json", spec.name)), model.spec_json())?;
    std::fs::write(
        out.join(format!("{}.safetensors", spec.name)),
        model.to_safetensors_bytes()?,
    )?;
    Ok(())
}

fn override_hyper(h: &mut CnnHyper, opts: &[(String, String)]) -> Result<()> {
    h.max_shift = opt(opts, "shift")?.unwrap_or(h.max_shift);
    h.epochs = opt(opts, "epochs")?.unwrap_or(h.epochs);
    h.lr = opt(opts, "lr")?.unwrap_or(h.lr);
    h.lr_decay = opt(opts, "lr-decay")?.unwrap_or(h.lr_decay);
    h.weight_decay = opt(opts, "wd")?.unwrap_or(h.weight_decay);
    h.seed = opt(opts, "seed")?.unwrap_or(h.seed);
    Ok(())
}
