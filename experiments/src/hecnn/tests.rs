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

#[test]
fn committed_ffconv_reaches_98_9_pct_and_its_pruned_levels_lose_at_most_half_a_point() {
    let base = test_accuracy("mnist-ffconv-r8");
    assert!(base >= 0.989, "mnist-ffconv-r8 test accuracy {base}");
    for level in ["p30", "p50", "p70"] {
        let acc = test_accuracy(&format!("mnist-ffconv-r8-{level}"));
        assert!(
            acc >= base - 0.005,
            "mnist-ffconv-r8-{level}: {acc} vs {base}"
        );
    }
}

#[test]
fn config_refuses_unknown_designs_and_image_counts() {
    let t: crate::config::hecnn::HecnnTask = toml::from_str("designs = [\"matrix\"]").unwrap();
    assert!(t.validate().unwrap_err().to_string().contains("designs[0]"));
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
