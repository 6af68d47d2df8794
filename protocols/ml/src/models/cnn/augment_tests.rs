//! Tests of the training augmentation: translations move pixels where they should, keep the
//! values in `[0, 1]`, are deterministic in the seed and leave `max_shift = 0` untouched.

use super::augment::{shift_batch, shift_image};
use ndarray::{Array1, Array2};
use rand::Rng;
use rand_chacha::rand_core::SeedableRng;

fn random_images(n: usize, side: usize, seed: u64) -> Array2<f64> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    Array2::from_shape_simple_fn((n, side * side), || rng.gen_range(0.0..=1.0))
}

#[test]
fn a_shift_moves_each_pixel_by_dx_dy_and_fills_with_zero() {
    let side = 5;
    let src = Array1::from_shape_fn(side * side, |i| (i + 1) as f64 / 25.0);
    for (dx, dy) in [(1, 0), (0, -2), (-1, 2), (2, 1)] {
        let mut img = src.clone();
        shift_image(img.view_mut(), side, dx, dy);
        for r in 0..side as isize {
            for c in 0..side as isize {
                let (sr, sc) = (r - dy, c - dx);
                let want = if (0..5).contains(&sr) && (0..5).contains(&sc) {
                    src[(sr * 5 + sc) as usize]
                } else {
                    0.0
                };
                assert_eq!(
                    img[(r * 5 + c) as usize],
                    want,
                    "({dx}, {dy}) at ({r}, {c})"
                );
            }
        }
    }
    // The centre pixel (2, 2) lands on (3, 4) under dx = 2, dy = 1.
    let mut img = Array1::zeros(25);
    img[12] = 0.7;
    shift_image(img.view_mut(), side, 2, 1);
    assert_eq!(img[3 * 5 + 4], 0.7);
    assert_eq!(img.iter().filter(|&&v| v != 0.0).count(), 1);
}

#[test]
fn shifted_batches_stay_in_the_unit_interval_and_are_reproducible() {
    let x = random_images(50, 28, 1);
    let run = |seed| {
        let mut b = x.clone();
        shift_batch(
            &mut b,
            28,
            2,
            &mut rand_chacha::ChaCha20Rng::seed_from_u64(seed),
        );
        b
    };
    let (a, b, c) = (run(3), run(3), run(4));
    assert!(a.iter().all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(a, b, "same seed, same batch");
    assert_ne!(a, c, "another seed, other shifts");
    // Most images moved (25 translations, one of them the identity), and each moved image
    // keeps its values: the multiset of non-zero pixels of a shift is a subset of the original.
    let moved = a
        .outer_iter()
        .zip(x.outer_iter())
        .filter(|(s, o)| s != o)
        .count();
    assert!(moved >= 40, "{moved} of 50 moved");
    for (s, o) in a.outer_iter().zip(x.outer_iter()) {
        assert!(s
            .iter()
            .filter(|&&v| v != 0.0)
            .all(|v| o.iter().any(|w| w == v)));
    }
    let mut same = x.clone();
    shift_batch(
        &mut same,
        28,
        0,
        &mut rand_chacha::ChaCha20Rng::seed_from_u64(3),
    );
    assert_eq!(same, x, "max_shift 0 is the identity");
}

#[test]
fn training_with_shifts_is_reproducible_and_differs_from_training_without() {
    let spec = super::tests::tiny();
    let x = random_images(30, 7, 2);
    let labels: Vec<u8> = (0..30).map(|i| (i % 3) as u8).collect();
    let train = |max_shift| {
        let hyper = super::CnnHyper {
            epochs: 2,
            batch: 10,
            lr: 0.005,
            max_shift,
            ..super::CnnHyper::default()
        };
        super::train_plain(&spec, &x, &labels, &hyper, |_| {}).unwrap()
    };
    assert_eq!(train(1), train(1));
    assert_ne!(train(1), train(0));
}
