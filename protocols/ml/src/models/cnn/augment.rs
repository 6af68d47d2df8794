//! Data augmentation for plaintext CNN training: every training image of a batch is moved by
//! a random whole-pixel translation (`dx`, `dy` each uniform in `-s..=s`, drawn per image and
//! per epoch), the pixels shifted in from outside the image are 0 (background).
//!
//! A translation only moves pixel values, so an image in `[0, 1]` stays in `[0, 1]` and the
//! input range the CKKS scale was sized for is unchanged. Cost: one pass over the batch
//! (`B × side²` copies), negligible beside the products of a training step.
//!
//! The draws come from a seeded `ChaCha20Rng` (deterministic: the same seed gives the same
//! model); nothing here is secret.
//!
//! # Security model
//! None: plaintext training on data the trainer holds.

use ndarray::{ArrayViewMut1, Axis};
use rand::Rng;

/// Moves the square image `img` (`side × side`, row-major) by `dx` columns (right if
/// positive) and `dy` rows (down if positive) in place; vacated pixels become 0.
///
/// # Panics
/// If `img` does not hold `side²` values.
pub fn shift_image(mut img: ArrayViewMut1<'_, f64>, side: usize, dx: isize, dy: isize) {
    assert_eq!(img.len(), side * side, "image of {side}×{side} pixels");
    let src = img.to_owned();
    let side_i = side as isize;
    for r in 0..side_i {
        for c in 0..side_i {
            let (sr, sc) = (r - dy, c - dx);
            let inside = (0..side_i).contains(&sr) && (0..side_i).contains(&sc);
            img[(r * side_i + c) as usize] = if inside {
                src[(sr * side_i + sc) as usize]
            } else {
                0.0
            };
        }
    }
}

/// Shifts every row of `batch` (one `side × side` image per row) by its own random
/// translation of at most `max_shift` pixels in each direction (`max_shift = 0`: no change,
/// no draws).
pub fn shift_batch(
    batch: &mut ndarray::Array2<f64>,
    side: usize,
    max_shift: usize,
    rng: &mut impl Rng,
) {
    if max_shift == 0 {
        return;
    }
    let s = max_shift as isize;
    for img in batch.axis_iter_mut(Axis(0)) {
        let (dx, dy) = (rng.gen_range(-s..=s), rng.gen_range(-s..=s));
        if dx != 0 || dy != 0 {
            shift_image(img, side, dx, dy);
        }
    }
}
