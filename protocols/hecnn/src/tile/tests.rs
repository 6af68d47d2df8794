//! Tests of the tile tensors: pack/unpack round trips (proptest), the summation's replicated
//! and unknown results on ciphertexts, and the CNN on tile tensors against the plaintext model
//! (the committed CryptoNets model on real MNIST test images, insecure N = 2^11 parameters for
//! speed: 1,024 slots, 6 levels) for three tilings — single image with a clean, four images
//! with a clean, four images without (depth 5) — with planned = measured op counts.

use super::ops::{mul_sum, CtTiles, PtTiles};
use super::pack::{locate, pack, unpack};
use super::shape::{flat, unflat, DimKind, TileDim, TileShape};
use super::{CnnTiling, TileCnn, TilePlan};
use crate::error::HeCnnError;
use crate::layout::CnnLayout;
use crate::sanitize::FloodConfig;
use crate::tests::{committed, keys_with_rotations, Keys};
use ckks::{presets, Encoder};
use proptest::prelude::*;

/// Largest |logit| error accepted between the encrypted and the plaintext forward pass (the
/// LoLa layout's tolerance; measured below 1e-4 here).
const LOGIT_TOLERANCE: f64 = 1e-3;

/// A random shape of 2–4 dimensions over `2^log_slots` slots, full or replicated.
fn shapes(log_slots: u32) -> impl Strategy<Value = TileShape> {
    (2usize..=4)
        .prop_flat_map(move |k| {
            (
                prop::collection::vec(0u32..=log_slots, k - 1),
                prop::collection::vec((1usize..=3, 0usize..=2, any::<bool>()), k),
            )
        })
        .prop_map(move |(mut cuts, dims)| {
            cuts.sort_unstable();
            let mut logs = Vec::new();
            let mut prev = 0;
            for c in cuts.iter().chain(std::iter::once(&log_slots)) {
                logs.push(c - prev);
                prev = *c;
            }
            let dims = logs
                .iter()
                .zip(dims)
                .map(|(&lt, (mult, extra, rep))| {
                    let tile = 1usize << lt;
                    if rep {
                        TileDim::replicated("r", tile)
                    } else {
                        TileDim::full("f", (mult * tile).saturating_sub(extra).max(1), tile)
                    }
                })
                .collect();
            TileShape::new(dims, 1 << log_slots).unwrap()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// unpack(pack(v)) = v; every copy of a replicated dimension holds the value; slots past
    /// a full dimension's size hold zero.
    #[test]
    fn pack_then_unpack_is_the_identity(shape in shapes(6), seed in any::<u64>()) {
        let n: usize = shape.sizes().iter().product();
        let v: Vec<f64> = (0..n).map(|i| ((i as u64 ^ seed) % 1000) as f64 / 7.0 - 50.0).collect();
        let tiles = pack(&shape, &v).unwrap();
        prop_assert_eq!(tiles.len(), shape.tile_count());
        prop_assert_eq!(unpack(&shape, &tiles).unwrap(), v.clone());
        let per_tile: Vec<usize> = shape.dims().iter().map(|d| d.tile).collect();
        let grid = shape.grid();
        for (t, tile) in tiles.iter().enumerate() {
            let g = unflat(t, &grid);
            for (s, &x) in tile.iter().enumerate() {
                let mut u = unflat(s, &per_tile);
                let past = shape.dims().iter().enumerate().any(|(i, d)| {
                    d.kind == DimKind::Full && g[i] * d.tile + u[i] >= d.size
                });
                if past {
                    prop_assert_eq!(x, 0.0);
                    continue;
                }
                for (i, d) in shape.dims().iter().enumerate() {
                    if d.kind == DimKind::Replicated {
                        u[i] = 0;
                    }
                }
                prop_assert_eq!(x, tile[flat(&u, &per_tile)]);
            }
        }
        // locate agrees with the packing of a single element.
        let e = unflat(n / 2, &shape.sizes());
        let (t, s) = locate(&shape, &e);
        prop_assert_eq!(tiles[t][s], v[n / 2]);
    }
}

#[test]
fn every_split_of_the_slots_is_a_tiling() {
    let all = CnnTiling::all(1 << 13);
    assert_eq!(all.len(), 14 * 15 / 2);
    assert!(all
        .iter()
        .all(|t| t.to_array().iter().product::<usize>() == 1 << 13));
    assert_eq!(all[0].batch, 1, "single-image tilings first");
    let bad = TilePlan::new(
        &ml::models::cnn::CnnSpec::cryptonets(),
        1024,
        CnnTiling::from_array([64, 8, 4]),
    );
    assert!(matches!(
        bad,
        Err(HeCnnError::Packing {
            value: 2048,
            limit: 1024,
            ..
        })
    ));
}

/// `Σ_j a[i, j]·w[i, j]` over the outer dimension is replicated in every slot; over the inner
/// dimension it is right at index 0 (unknown elsewhere).
#[test]
fn summing_the_outer_dimension_replicates_and_the_inner_one_is_unknown() {
    let params = presets::INSECURE_N11_L6_S40_TEST_ONLY.build().unwrap();
    let slots = params.slots();
    let dims = |a: usize, b: usize| {
        TileShape::new(
            vec![TileDim::full("a", a, 32), TileDim::full("b", b, slots / 32)],
            slots,
        )
        .unwrap()
    };
    let (na, nb) = (50, 70); // two tiles along each dimension
    let x: Vec<f64> = (0..na * nb)
        .map(|i| ((i * 37) % 101) as f64 / 101.0)
        .collect();
    let w: Vec<f64> = (0..na * nb)
        .map(|i| ((i * 11) % 13) as f64 / 13.0 - 0.5)
        .collect();
    let steps: Vec<i64> = (0..10).map(|j| 1i64 << j).collect();
    let Keys { sk, pk, eval } = keys_with_rotations(&params, &steps);
    let enc = Encoder::new(&params);
    let delta = params.default_scale();
    let ct = CtTiles {
        shape: dims(na, nb),
        tiles: pack(&dims(na, nb), &x)
            .unwrap()
            .iter()
            .map(|v| pk.encrypt(&enc.encode(v, 2, delta).unwrap()).unwrap())
            .collect(),
    };
    let q = params.q_prime(2).unwrap() as f64;
    let pw = PtTiles::encode(dims(na, nb), &w, &enc, 2, q).unwrap();
    let decode = |t: &CtTiles| -> Vec<Vec<f64>> {
        t.tiles
            .iter()
            .map(|c| enc.decode(&sk.decrypt(c).unwrap()))
            .collect()
    };
    for (dim, want_kind) in [(0, DimKind::Replicated), (1, DimKind::Unknown)] {
        let out = mul_sum(&eval, &ct, &pw, dim).unwrap();
        assert_eq!(out.shape.dim(dim).kind, want_kind);
        let got = unpack(&out.shape, &decode(&out)).unwrap();
        let (outer, inner) = if dim == 0 { (nb, na) } else { (na, nb) };
        for (o, g) in got.iter().enumerate().take(outer) {
            let want: f64 = (0..inner)
                .map(|i| {
                    let k = if dim == 0 { i * nb + o } else { o * nb + i };
                    x[k] * w[k]
                })
                .sum();
            assert!((g - want).abs() < 1e-6, "dim {dim}, {o}: {g} vs {want}");
        }
        if dim == 0 {
            // every copy along the replicated dimension holds the sum
            let tiles = decode(&out);
            for (t, tile) in tiles.iter().enumerate() {
                for (s, v) in tile.iter().enumerate() {
                    let b = t * (slots / 32) + s % (slots / 32);
                    let want = if b < nb { got[b] } else { 0.0 };
                    assert!((v - want).abs() < 1e-6, "tile {t} slot {s}");
                }
            }
        }
    }
}

/// The committed CryptoNets model through the tile layout with `tiling`, `images` test
/// images per pass: logits within [`LOGIT_TOLERANCE`] of the plaintext model, planned op
/// counts = the evaluator's, returned slots other than the logits zero, the flood applied.
fn differential(tiling: [usize; 3], images: usize, depth: usize) {
    let model = committed("mnist-cryptonets");
    let params = presets::INSECURE_N11_L6_S40_TEST_ONLY.build().unwrap();
    let he = TileCnn::new(&model, &params, CnnTiling::from_array(tiling)).unwrap();
    assert_eq!(he.depth(), depth, "{tiling:?}");
    let Keys { sk, pk, eval } = keys_with_rotations(&params, &he.rotation_steps());
    let x = datasets::mnist::load_bundled(datasets::mnist::Split::Test)
        .unwrap()
        .head(images)
        .images_f64();
    let ct = he.encrypt_images(&pk, x.view()).unwrap();
    assert_eq!(ct.tiles.len(), he.plan().input_cts());
    eval.reset_counters();
    let out = he.forward(&eval, &ct).unwrap();
    assert_eq!(eval.counters(), he.planned_op_counts(), "{tiling:?}");
    assert_eq!(out.shape, he.plan().output);
    let got = he.decrypt_logits(&sk, &out, images).unwrap();
    let want = model.logits(x.view()).unwrap();
    let err = (&got - &want).iter().fold(0.0f64, |m, v| m.max(v.abs()));
    assert!(err < LOGIT_TOLERANCE, "{tiling:?}: max |Δlogit| {err}");
    // Nothing but logits (and the network's output on the zero padding images) leaves: every
    // slot outside the logits' positions decrypts to zero when the hidden dimension is
    // cleaned, to a copy of a logit when it is replicated.
    let enc = Encoder::new(&params);
    let tb = tiling[2];
    let stride_c = tiling[1] * tb;
    for (t, c) in out.tiles.iter().enumerate() {
        let v = enc.decode(&sk.decrypt(c).unwrap());
        for (s, &val) in v.iter().enumerate() {
            let (class, h, b) = (t * tiling[0] + s / stride_c, (s / tb) % tiling[1], s % tb);
            let expect = if class >= 10 || (h != 0 && he.plan().cleans()) {
                0.0
            } else if b < images {
                want[[b, class]]
            } else {
                continue; // the zero image's logits
            };
            assert!(
                (val - expect).abs() < LOGIT_TOLERANCE,
                "{tiling:?} slot {s}: {val} vs {expect}"
            );
        }
    }
    let pk0 = pk.at_level(he.output_level()).unwrap();
    let clean = he
        .sanitize_logits(&eval, &out, &pk0, &FloodConfig::default())
        .unwrap();
    let after = he.decrypt_logits(&sk, &clean, images).unwrap();
    assert_ne!(after, got, "the flood changed the noise");
}

#[test]
fn single_image_tiles_match_the_plaintext_model() {
    differential([128, 8, 1], 1, 6);
}

#[test]
fn batched_tiles_match_the_plaintext_model() {
    differential([64, 4, 4], 3, 6);
}

#[test]
fn tiles_without_a_clean_match_the_plaintext_model_at_depth_five() {
    differential([256, 1, 4], 4, 5);
}

#[test]
fn shallow_parameters_and_too_many_images_are_refused() {
    let model = committed("mnist-cryptonets");
    let shallow = presets::INSECURE_N10_L4_S40_TEST_ONLY.build().unwrap();
    let e = TileCnn::new(&model, &shallow, CnnTiling::from_array([64, 8, 1])).unwrap_err();
    assert!(
        matches!(
            e,
            HeCnnError::DepthExceeded {
                needed: 6,
                available: 4,
                ..
            }
        ),
        "{e}"
    );
    let params = presets::INSECURE_N11_L6_S40_TEST_ONLY.build().unwrap();
    let plan = TilePlan::new(
        &model.spec,
        params.slots(),
        CnnTiling::from_array([128, 4, 2]),
    )
    .unwrap();
    let x = ndarray::Array2::zeros((3, 784));
    assert!(matches!(
        plan.pack_images(x.view()),
        Err(HeCnnError::BatchTooLarge {
            images: 3,
            slots: 2
        })
    ));
    let mut bad = ndarray::Array2::zeros((1, 784));
    bad[[0, 17]] = 255.0;
    let e = plan.pack_images(bad.view()).unwrap_err().to_string();
    assert!(e.contains("pixel 17") && e.contains("255"), "{e}");
}
