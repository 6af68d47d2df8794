//! Tests of FFConv in the single-image layout and of pruning: encrypted vs plaintext logits
//! (tolerance 1e-3 as the LoLa tests, measured well below), op counts planned = measured, the
//! refusals, and the pruning mask's invariants (pruned taps and diagonals produce no product,
//! kept weights are untouched).

use crate::error::HeCnnError;
use crate::ffconv::FfConvCnn;
use crate::layout::{CnnLayout, LayoutKind};
use crate::lola::{LolaCnn, LOLA_DEPTH};
use crate::plan::choose_preset;
use crate::prune::{PruneLevel, PruneMask};
use crate::tests::{committed, keys_with_rotations, Keys};
use ckks::CkksParams;
use ml::models::cnn::{to_tensors, CnnModel, CnnSpec};

/// Largest |logit| error accepted between the encrypted and the plaintext forward pass.
const LOGIT_TOLERANCE: f64 = 1e-3;

fn params() -> CkksParams {
    choose_preset("ffconv", LOLA_DEPTH)
        .unwrap()
        .build()
        .unwrap()
}

/// Encrypts the first `images` MNIST test images, runs `he` and compares with `want` (the
/// plaintext logits of the same images); asserts planned = measured op counts.
fn differential<L>(he: &L, lola: &LolaCnn, want: &CnnModel, images: usize)
where
    L: CnnLayout<Input = crate::EncryptedImage, Output = crate::EncryptedLogit>,
{
    let p = lola.params();
    let Keys { sk, eval, .. } = keys_with_rotations(p, &lola.rotation_steps());
    let m = datasets::mnist::load_bundled(datasets::mnist::Split::Test)
        .unwrap()
        .head(images);
    let x = m.images_f64();
    let plain = want.logits(x.view()).unwrap();
    for (i, row) in x.outer_iter().enumerate() {
        let ct = lola
            .encrypt_image_symmetric(&sk, row.as_slice().unwrap())
            .unwrap();
        eval.reset_counters();
        let out = he.forward(&eval, &ct).unwrap();
        assert_eq!(eval.counters(), he.planned_op_counts(), "image {i}");
        let got = lola.decrypt_logits(&sk, &out).unwrap();
        let err = got
            .iter()
            .zip(plain.row(i))
            .fold(0.0f64, |e, (a, b)| e.max((a - b).abs()));
        assert!(err < LOGIT_TOLERANCE, "image {i}: max |Δlogit| {err}");
    }
}

#[test]
fn ffconv_logits_match_the_plaintext_model_at_fewer_ops_than_lola_wide() {
    let model = committed("mnist-ffconv-r8");
    assert_eq!((model.spec.rank, model.spec.maps), (Some(8), 16));
    let p = params();
    let he = FfConvCnn::new(&model, &p).unwrap();
    assert_eq!(he.kind(), LayoutKind::FfConv);
    // The unfolded FFConv model is the reference: the fold is checked too.
    differential(&he, he.folded(), &model, 3);
    let wide = LolaCnn::new(&committed("mnist-wide"), &p).unwrap();
    let (ff, lw) = (
        crate::he_ops(&he.planned_op_counts()),
        crate::he_ops(&wide.planned_op_counts()),
    );
    assert!(ff < lw, "FFConv {ff} HE ops vs LoLa wide (16 maps) {lw}");
}

#[test]
fn layouts_refuse_the_other_kind_of_model() {
    let p = params();
    let ff = CnnModel::init(CnnSpec::ffconv(3, 6), 1).unwrap();
    let err = LolaCnn::new(&ff, &p).unwrap_err().to_string();
    assert!(err.contains("rank") && err.contains("FfConvCnn"), "{err}");
    assert!(crate::BatchCnn::new(&ff, &p).is_err());
    let plain = CnnModel::init(CnnSpec::cryptonets(), 1).unwrap();
    let err = FfConvCnn::new(&plain, &p).unwrap_err().to_string();
    assert!(
        err.contains("rank") && err.contains("mnist-cryptonets"),
        "{err}"
    );
}

fn half() -> PruneLevel {
    PruneLevel {
        taps: 0.2,
        fc1: 0.5,
        fc2: 0.5,
    }
}

#[test]
fn pruned_units_produce_no_product_and_kept_weights_are_untouched() {
    let model = committed("mnist-ffconv-r8").folded();
    let p = params();
    let full = LolaCnn::new(&model, &p).unwrap();
    let none = PruneMask::new(
        &model,
        p.slots(),
        &PruneLevel {
            taps: 0.0,
            fc1: 0.0,
            fc2: 0.0,
        },
    )
    .unwrap();
    assert_eq!(none.apply(&model), model);
    assert_eq!(none.kept[0].as_slice(), full.dense_shifts()[0]);
    let mask = PruneMask::new(&model, p.slots(), &half()).unwrap();
    let pruned = mask.apply(&model);
    let he = LolaCnn::new(&pruned, &p).unwrap();
    let n1 = full.dense_shifts()[0].len();
    assert_eq!(mask.kept[0].len(), n1 - n1 / 2);
    assert_eq!(he.dense_shifts()[0], mask.kept[0].as_slice());
    assert_eq!(he.dense_shifts()[1], mask.kept[1].as_slice());
    let live: Vec<usize> = (0..25).filter(|&k| mask.taps[k]).collect();
    assert_eq!((he.live_taps(), live.len()), (live, 20));
    for ((w, &p1), &keep) in pruned.fc1_w.iter().zip(&model.fc1_w).zip(&mask.fc1) {
        assert_eq!(*w, if keep { p1 } else { 0.0 });
    }
    let (a, b) = (he.planned_op_counts(), full.planned_op_counts());
    assert!(
        a.mul_plain < b.mul_plain && a.rotate <= b.rotate,
        "{a:?} vs {b:?}"
    );
    let t = mask.tensors(&model);
    let shapes = |v: &Vec<ndarray::Array2<f64>>| v.iter().map(|x| x.dim()).collect::<Vec<_>>();
    assert_eq!(shapes(&t), shapes(&to_tensors(&model)));
    assert_eq!(t[2].sum() as usize, mask.fc1.iter().filter(|&&k| k).count());
    differential(&he, &he, &pruned, 2);
}

#[test]
fn bad_fractions_and_unfolded_models_are_refused() {
    let p = params();
    let m = CnnModel::init(CnnSpec::cryptonets(), 2).unwrap();
    let bad = PruneLevel { fc1: 1.0, ..half() };
    let err = PruneMask::new(&m, p.slots(), &bad).unwrap_err().to_string();
    assert!(err.contains("prune.fc1") && err.contains('1'), "{err}");
    let ff = CnnModel::init(CnnSpec::ffconv(3, 6), 1).unwrap();
    assert!(matches!(
        PruneMask::new(&ff, p.slots(), &half()),
        Err(HeCnnError::Model(_))
    ));
}
