//! The private data of the `secure-stgcn` task: the Mocap-15 cross-view split (±45° training
//! clips, 0° test clips) at the public model's frame count, as the owner's matrices (one row
//! per clip in `(c, t, v, m)` order, one-hot labels), and the public batch schedule.

use anyhow::{ensure, Context, Result};
use datasets::skeleton::{Mocap15, Mocap15Config, SkeletonSet};
use ndarray::{Array2, Array5};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

/// The private split and its matrices.
pub(super) struct PrivateData {
    pub(super) train: SkeletonSet,
    pub(super) test: SkeletonSet,
    /// `N × (C·T·V·M)` training clips.
    pub(super) x: Array2<f64>,
    /// `N × Q` one-hot labels.
    pub(super) y: Array2<f64>,
    /// The test clips as `(N, C, T, V, M)`.
    pub(super) xte: Array5<f64>,
    pub(super) description: String,
}

/// Generates the cross-view split with `frames` frames per clip.
pub(super) fn load(
    train_per_class: usize,
    test_per_class: usize,
    frames: usize,
    seed: Option<u64>,
) -> Result<PrivateData> {
    let mut mc = Mocap15Config {
        frames,
        ..Mocap15Config::default()
    };
    if let Some(s) = seed {
        mc.seed = s;
    }
    let gen_seed = mc.seed;
    let gen = Mocap15::load_bundled(mc).context("loading the bundled mocap clips")?;
    let split = gen
        .cross_view(train_per_class, test_per_class)
        .context("generating the Mocap-15 cross-view split")?;
    let (train, test) = (split.train.set, split.test.set);
    let x = flatten(&train.data_f64());
    let q = train.num_classes();
    let mut y = Array2::zeros((train.len(), q));
    for (i, &l) in train.labels.iter().enumerate() {
        y[[i, l]] = 1.0;
    }
    let xte = test.data_f64();
    Ok(PrivateData {
        description: format!(
            "Mocap-15 cross-view (private): {} training clips ({train_per_class} per class, cameras at ±45°), {} test clips ({test_per_class} per class, camera at 0°), (C, T, V, M) = (3, {frames}, 15, 1), generator seed {gen_seed}",
            train.len(),
            test.len()
        ),
        train,
        test,
        x,
        y,
        xte,
    })
}

/// `(N, C, T, V, M)` → `N × (C·T·V·M)`, row-major (`c`, then `t`, `v`, `m`).
pub(super) fn flatten(x: &Array5<f64>) -> Array2<f64> {
    let n = x.dim().0;
    let cols = x.len() / n.max(1);
    Array2::from_shape_vec((n, cols), x.iter().copied().collect()).expect("sizes match")
}

/// The public batch schedule: per epoch a shuffle of the `n` clips (seeded by `seed` and the
/// epoch), cut into full batches of `batch` (the rest dropped), stopping after `max_steps`
/// steps in all. Returns the batches of each epoch and the full-epoch step count.
pub(super) fn schedule(
    n: usize,
    batch: usize,
    epochs: usize,
    max_steps: Option<usize>,
    seed: u64,
) -> Result<(Vec<Vec<Vec<usize>>>, usize)> {
    let per_epoch = n / batch;
    ensure!(
        per_epoch > 0,
        "batch_size = {batch} is larger than the {n} training clips"
    );
    let mut left = max_steps.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for e in 0..epochs {
        if left == 0 {
            break;
        }
        let mut rng = ChaCha20Rng::seed_from_u64(seed ^ (0x5eed_0000 + e as u64));
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let take = per_epoch.min(left);
        left -= take;
        out.push(
            order
                .chunks_exact(batch)
                .take(take)
                .map(<[usize]>::to_vec)
                .collect(),
        );
    }
    Ok((out, per_epoch))
}
