//! Tests of the committed MNIST CNNs (their plaintext test accuracy on all 10,000 images) and
//! of the `hecnn` task on a small run.

use super::load_model;
use datasets::mnist::{load_bundled, Split};
use std::path::PathBuf;

fn model_path(name: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    root.join("models")
        .join("cnn")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn test_accuracy(name: &str) -> f64 {
    let model = load_model(&model_path(name)).unwrap();
    let test = load_bundled(Split::Test).unwrap();
    assert_eq!(test.len(), 10_000);
    let labels = test.labels.to_vec();
    model.accuracy(test.images_f64().view(), &labels).unwrap()
}

#[test]
fn committed_cryptonets_reaches_98_5_pct_on_the_test_set() {
    let acc = test_accuracy("mnist-cryptonets");
    assert!(acc >= 0.985, "mnist-cryptonets test accuracy {acc}");
}

#[test]
fn committed_wide_model_reaches_98_5_pct_on_the_test_set() {
    let acc = test_accuracy("mnist-wide");
    assert!(acc >= 0.985, "mnist-wide test accuracy {acc}");
}

/// The FFConv model measured 98.68 % (the goal, 98.9 %, is not reached); its pruned
/// levels 98.55, 98.22 and 98.13 %: p30 and p50 within the goal's 0.5 points, p70 0.55 points
/// below.
#[test]
fn committed_ffconv_reaches_98_6_pct_and_its_pruned_levels_stay_close() {
    let base = test_accuracy("mnist-ffconv-r8");
    assert!(base >= 0.986, "mnist-ffconv-r8 test accuracy {base}");
    for (level, loss) in [("p30", 0.005), ("p50", 0.005), ("p70", 0.006)] {
        let acc = test_accuracy(&format!("mnist-ffconv-r8-{level}"));
        assert!(
            acc >= base - loss,
            "mnist-ffconv-r8-{level}: {acc} vs {base}"
        );
    }
}

/// The models trained on randomly shifted images (`CnnHyper::max_shift = 2`) measured 99.18 %
/// (CryptoNets, 5 maps) and 99.21 % (wide, 16 maps): both reach the 98.9 %. The wide
/// model's pruning levels measured 98.93 % (p50, −48 % HE ops), 98.76 % (p55, −53 %) and
/// 98.72 % (p60, −56 %): each within the goal's 0.5 points.
#[test]
fn committed_augmented_models_reach_98_9_pct_and_their_pruned_levels_stay_close() {
    let cn = test_accuracy("mnist-cryptonets-aug");
    assert!(cn >= 0.991, "mnist-cryptonets-aug test accuracy {cn}");
    let base = test_accuracy("mnist-wide-aug");
    assert!(base >= 0.992, "mnist-wide-aug test accuracy {base}");
    for level in ["p50", "p55", "p60"] {
        let acc = test_accuracy(&format!("mnist-wide-aug-{level}"));
        assert!(
            acc >= base - 0.005,
            "mnist-wide-aug-{level}: {acc} vs {base}"
        );
    }
}

#[test]
fn config_refuses_unknown_designs_and_image_counts() {
    let t: crate::config::hecnn::HecnnTask = toml::from_str("designs = [\"tiles\"]").unwrap();
    assert!(t.validate().unwrap_err().to_string().contains("designs[0]"));
    let t: crate::config::hecnn::HecnnTask = toml::from_str("matrix_images = 0").unwrap();
    assert!(t
        .validate()
        .unwrap_err()
        .to_string()
        .contains("matrix_images = 0"));
    let t: crate::config::hecnn::HecnnTask = toml::from_str("designs = [\"pruned\"]").unwrap();
    assert!(t.validate().unwrap_err().to_string().contains("pruned = "));
    let t: crate::config::hecnn::HecnnTask = toml::from_str("images = 0").unwrap();
    assert!(t.validate().is_err());
    let t: crate::config::hecnn::HecnnTask = toml::from_str("lola_images = 10001").unwrap();
    assert!(t
        .validate()
        .unwrap_err()
        .to_string()
        .contains("lola_images = 10001"));
    let t: crate::config::hecnn::HecnnTask =
        toml::from_str("designs = [\"cryptonets\", \"lola\"]").unwrap();
    t.validate().unwrap();
}

#[test]
fn config_takes_the_planned_design_and_refuses_a_bad_objective() {
    let parse = |s: &str| -> crate::config::hecnn::HecnnTask { toml::from_str(s).unwrap() };
    parse("designs = [\"planned\"]\nobjective = \"throughput\"")
        .validate()
        .unwrap();
    let e = parse("designs = [\"planned\"]\nobjective = \"speed\"")
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("objective = \"speed\""), "{e}");
    let e = parse("probe_reps = 0").validate().unwrap_err().to_string();
    assert!(e.contains("probe_reps = 0"), "{e}");
}

#[test]
fn pruned_levels_default_to_the_ffconv_model_and_take_another_base() {
    let parse = |s: &str| -> crate::config::hecnn::HecnnTask { toml::from_str(s).unwrap() };
    let t = parse("designs = [\"pruned\"]\npruned = [\"p50\"]");
    assert_eq!(t.pruned_base(), t.ffconv_model);
    let t = parse("designs = [\"pruned\"]\npruned = [\"p50\"]\npruned_model = \"m/wide\"");
    assert_eq!(t.pruned_base(), "m/wide");
    t.validate().unwrap();
}

/// The planned design end to end on a few images: the planner's choice runs, its operation
/// counts are the priced ones (checked inside the run) and its estimate is compared.
#[test]
fn the_planned_design_runs_its_choice_and_reports_the_estimate_error() {
    let task: crate::config::hecnn::HecnnTask = toml::from_str(&format!(
        "designs = [\"planned\"]\nmodel = \"{}\"\nplanned_images = 3\nlola_latency_runs = 1\nprobe_reps = 1",
        model_path("mnist-cryptonets")
    ))
    .unwrap();
    task.validate().unwrap();
    let model = load_model(&task.model).unwrap();
    let mut report = crate::report::Report::default();
    let row = super::planned::run(&task, &model, &mut report).unwrap();
    assert!(row.design.starts_with("planned: lola"), "{}", row.design);
    let m = &report.metrics;
    assert_eq!(m["planned.agreement_pct"], 100.0);
    assert!(m["planned.estimate_s"] > 0.0 && m["planned.estimate_error_pct"].is_finite());
    assert!(m["planned.throughput_choice_images_per_h"] > 0.0);
    assert_eq!(report.sections.len(), 2, "one table per objective");
}

/// The matrix design end to end on a few images (one batch of 8 and a partial one): every
/// image agrees with the plaintext model, the op counts are the plan's (checked inside the
/// run), and the upload is one ciphertext per batch.
#[test]
fn the_matrix_design_runs_a_batch_per_ciphertext() {
    let task: crate::config::hecnn::HecnnTask = toml::from_str(&format!(
        "designs = [\"matrix\"]\nmodel = \"{}\"\nmatrix_images = 11",
        model_path("mnist-cryptonets-aug")
    ))
    .unwrap();
    task.validate().unwrap();
    let model = load_model(&task.model).unwrap();
    let mut report = crate::report::Report::default();
    let row = super::matrix::run(&task, &model, &mut report).unwrap();
    assert!(row.design.starts_with("matrix (8 images"), "{}", row.design);
    let m = &report.metrics;
    assert_eq!(m["matrix.agreement_pct"], 100.0);
    assert_eq!((m["matrix.batches"], m["matrix.batch_images"]), (2.0, 8.0));
    assert!(m["matrix.upload_bytes"] < m["matrix.upload_bytes_public_key"]);
    assert!(m["matrix.latency_s"] > 0.0 && m["matrix.throughput_per_h"] > 0.0);
}

/// The tile design end to end on a few images at a set tiling: the planner's tables include
/// the tile shapes, the op counts are the priced ones (checked inside the run), the logits
/// agree with the plaintext model.
#[test]
fn the_tile_design_runs_a_tiling_and_reports_the_planner_tables() {
    let task: crate::config::hecnn::HecnnTask = toml::from_str(&format!(
        "designs = [\"tile\"]\nmodel = \"{}\"\ntile_images = 2\ntile_shape = [128, 64, 1]\nlola_latency_runs = 1\nprobe_reps = 1",
        model_path("mnist-cryptonets")
    ))
    .unwrap();
    task.validate().unwrap();
    let model = load_model(&task.model).unwrap();
    let mut report = crate::report::Report::default();
    let row = super::tile::run(&task, &model, &mut report).unwrap();
    assert!(row.design.starts_with("tile 128×64×1"), "{}", row.design);
    let m = &report.metrics;
    assert_eq!(m["tile.agreement_pct"], 100.0);
    assert_eq!(m["tile.tile_features"], 128.0);
    assert_eq!(m["tile.depth"], 6.0);
    assert!(m["tile.estimate_s"] > 0.0 && m["tile.he_ops_count"] > 0.0);
    let body = &report.sections[0];
    assert!(
        body.contains("| tile ") && body.contains("Best tile shapes"),
        "{body}"
    );
}
