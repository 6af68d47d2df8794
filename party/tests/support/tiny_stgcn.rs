//! The tiny ST-GCN the encrypted-inference tests serve (two blocks of widths 1 and 2 on a
//! 5-joint chain, T = 4, C = 3, every activation pruned, input normalisation on: depth 6, an
//! encrypted inference in about a second), its random clips and its plaintext logits.

use ndarray::{Array4, Axis};
use rand::{Rng, SeedableRng};
use stgcn::{spatial_partition, Architecture, InputNorm, StGcn, StGcnConfig};

/// `(C, T, V, M)` of the tiny model's clips.
pub const SHAPE: (usize, usize, usize, usize) = (3, 4, 5, 1);
/// Its class names.
pub const CLASSES: [&str; 4] = ["wave", "sit", "jump", "walk"];

/// The tiny model (fixed seeds: the same weights in every test).
pub fn model() -> StGcn {
    let (c, t, v, _) = SHAPE;
    let edges: Vec<(usize, usize)> = (0..v - 1).map(|i| (i, i + 1)).collect();
    let a = spatial_partition(v, &edges, 1).unwrap();
    let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 64, c, t, &a, 4);
    cfg.class_names = CLASSES.map(String::from).to_vec();
    cfg.architecture = None;
    cfg.blocks.truncate(2);
    cfg.activation_mask.truncate(2);
    let all: Vec<usize> = (0..v).collect();
    for b in 0..2 {
        for s in 0..2 {
            cfg.prune(b, s, &all).unwrap();
        }
    }
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    cfg.input_norm = Some(InputNorm {
        mean: (0..c)
            .map(|_| (0..v).map(|_| rng.gen_range(-0.2..0.2)).collect())
            .collect(),
        std: (0..c)
            .map(|_| (0..v).map(|_| rng.gen_range(0.5..1.5)).collect())
            .collect(),
    });
    StGcn::new(cfg, 9).unwrap()
}

/// A clip with coordinates uniform in [−1, 1) from `seed`.
pub fn sample(seed: u64) -> Array4<f64> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    Array4::from_shape_fn(SHAPE, |_| rng.gen_range(-1.0..1.0))
}

/// The plaintext logits of the BN-folded `m` on one clip.
pub fn plain_logits(m: &StGcn, x: &Array4<f64>) -> Vec<f64> {
    m.fold()
        .forward(x.view().insert_axis(Axis(0)))
        .unwrap()
        .row(0)
        .to_vec()
}
