//! Round trips of `dyad-model/2` files (and reading `/1` ones) (inline and with a safetensors side file) and refusals of
//! malformed ones, each naming the field.

use super::*;
use crate::proto::TripleKind;

fn meta(kind: &str, layers: Vec<u64>, intercept: bool) -> LinearModelMeta {
    LinearModelMeta {
        kind: kind.into(),
        softmax: (kind == "mlp").then_some(SoftmaxKind::Relu),
        init_seed: (kind == "mlp").then(|| u64::MAX.to_string()),
        layers,
        intercept,
        learning_rate: 0.3,
        batch_size: 7,
        epochs: 2,
        schedule_seed: "5".into(),
        triples: TripleKind::He,
        dataset: "cancer".into(),
        dataset_id: EntryId([7; 16]),
        rows: 53,
    }
}

fn model(kind: &str, layers: Vec<u64>, intercept: bool) -> LinearModel {
    let m = meta(kind, layers, intercept);
    let n: usize = weight_dims(&m.layers, intercept)
        .iter()
        .map(|(r, c)| r * c)
        .sum();
    let col = Array2::from_shape_fn((n, 1), |(i, _)| (i as f64 * 0.37).sin());
    LinearModel::from_column(EntryId([3; 16]), m, 16, col.view()).unwrap()
}

#[test]
fn small_and_large_models_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        model("linreg", vec![5, 1], true),
        model("logreg", vec![5, 1], false),
        model("mlp", vec![4, 3, 2], true),
        model("mlp", vec![100, 50, 10], true),
    ];
    for (i, m) in cases.iter().enumerate() {
        let out = dir.path().join(format!("m{i}.json"));
        let files = m.write(&out).unwrap();
        let large = m.weight_count() > INLINE_MAX_WEIGHTS;
        assert_eq!(files.len(), 1 + usize::from(large), "{files:?}");
        let back = LinearModel::read(&files[0]).unwrap();
        assert_eq!(&back, m);
        let x = Array2::from_shape_fn((3, m.meta.layers[0] as usize), |(r, c)| (r + c) as f64);
        assert_eq!(back.outputs(&x).unwrap(), m.outputs(&x).unwrap());
    }
    // Predictions are the ml crate's: the intercept is the last weight.
    let m = &cases[0];
    let x = Array2::from_shape_fn((2, 5), |(r, c)| (r * 5 + c) as f64 / 10.0);
    let want = ml::models::linreg::predict(&m.weights[0], &x).unwrap();
    assert_eq!(m.outputs(&x).unwrap(), want);
}

/// Writes `m`, edits its JSON with `f` and reads it back: the error text.
fn refused(m: &LinearModel, f: impl FnOnce(&mut serde_json::Value)) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.json");
    m.write(&out).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    f(&mut v);
    std::fs::write(&out, serde_json::to_vec(&v).unwrap()).unwrap();
    let e = LinearModel::read(&out).unwrap_err().to_string();
    assert!(e.contains("m.json"), "names the file: {e}");
    e
}

#[test]
fn malformed_files_are_refused_by_field_value_and_limit() {
    let m = model("logreg", vec![3, 1], true);
    let e = refused(&m, |v| v["format"] = "dyad-model/9".into());
    assert!(e.contains("format") && e.contains("dyad-model/9") && e.contains("dyad-model/1"));
    let e = refused(&m, |v| v["kind"] = "svm".into());
    assert!(e.contains("kind") && e.contains("svm") && e.contains("linreg, logreg or mlp"));
    let e = refused(&m, |v| v["features"] = 4.into());
    assert!(
        e.contains("features = 4") && e.contains("layers[0] = 3"),
        "{e}"
    );
    let e = refused(&m, |v| v["classes"] = 3.into());
    assert!(e.contains("classes") && e.contains("Some(2)"), "{e}");
    let e = refused(&m, |v| {
        v["weights"][0]
            .as_array_mut()
            .unwrap()
            .pop()
            .map(|_| ())
            .unwrap()
    });
    assert!(
        e.contains("weights[0]") && e.contains("3 × 1") && e.contains("4 × 1"),
        "{e}"
    );
    let e = refused(&m, |v| v["intercept"] = false.into());
    assert!(e.contains("weights[0]") && e.contains("3 × 1"), "{e}");
    let e = refused(&m, |v| v["training"]["triples"] = "magic".into());
    assert!(e.contains("training.triples") && e.contains("magic"), "{e}");
    let e = refused(&m, |v| v["job"] = "xyz".into());
    assert!(e.contains("job") && e.contains("32 hex digits"), "{e}");
    let e = refused(&m, |v| {
        v["preprocessing"] = serde_json::json!({"mean": [1]})
    });
    assert!(
        e.contains("preprocessing") && e.contains("{standardization, folded, columns, label}"),
        "{e}"
    );
    let e = refused(&m, |v| {
        v["format"] = "dyad-model/1".into();
        v["preprocessing"] = serde_json::json!({"mean": [1]})
    });
    assert!(e.contains("preprocessing") && e.contains("reserved"), "{e}");
    let e = refused(&m, |v| v["weights_file"] = "../x.safetensors".into());
    assert!(e.contains("weights / weights_file"), "{e}");
    let e = refused(&m, |v| v["frac_bits"] = 99.into());
    assert!(e.contains("frac_bits = 99"), "{e}");
    let e = refused(&m, |v| v["extra"] = 1.into());
    assert!(
        e.contains("not a dyad-model/2 file") && e.contains("extra"),
        "{e}"
    );
    let e = refused(&m, |v| v["training"]["learning_rate"] = (-1.0).into());
    assert!(e.contains("training.learning_rate = -1"), "{e}");
}

#[test]
fn side_files_are_checked() {
    let m = model("mlp", vec![100, 50, 10], false);
    let e = refused(&m, |v| v["weights_file"] = "../m.safetensors".into());
    assert!(
        e.contains("weights_file") && e.contains("beside the JSON"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("big.json");
    let files = m.write(&out).unwrap();
    let other = model("mlp", vec![100, 51, 10], false);
    std::fs::write(&files[1], safetensors_bytes(&other.weights).unwrap()).unwrap();
    let e = LinearModel::read(&files[0]).unwrap_err().to_string();
    assert!(
        e.contains("big.safetensors") && e.contains("layer0") && e.contains("[100, 50]"),
        "{e}"
    );
    std::fs::remove_file(&files[1]).unwrap();
    let e = LinearModel::read(&files[0]).unwrap_err().to_string();
    assert!(e.contains("read") && e.contains("big.safetensors"), "{e}");
}

#[test]
fn a_column_of_the_wrong_length_or_with_nan_is_refused() {
    let m = meta("linreg", vec![3, 1], true);
    let col = Array2::zeros((3, 1));
    let e = LinearModel::from_column(EntryId([1; 16]), m.clone(), 16, col.view()).unwrap_err();
    assert!(
        e.to_string().contains("3 values") && e.to_string().contains("take 4"),
        "{e}"
    );
    let mut col = Array2::zeros((4, 1));
    col[[2, 0]] = f64::NAN;
    let e = LinearModel::from_column(EntryId([1; 16]), m, 16, col.view()).unwrap_err();
    assert!(
        e.to_string().contains("value 2") && e.to_string().contains("NaN"),
        "{e}"
    );
}

fn info(columns: Vec<u64>, label: bool) -> crate::proto::StandardizationInfo {
    crate::proto::StandardizationInfo {
        origin: EntryId([6; 16]),
        columns,
        label,
        revealed: false,
    }
}

#[test]
fn folded_models_round_trip_with_their_preprocessing_and_v1_files_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let col = Array2::from_shape_fn((4, 1), |(i, _)| i as f64 - 1.5);
    let meta = meta("linreg", vec![3, 1], false);
    let st = info(vec![0, 1, 2, 3], true);
    let m = LinearModel::folded(EntryId([3; 16]), meta, 16, &st, col.view()).unwrap();
    assert!(m.meta.intercept, "folding gives the bias row");
    let out = dir.path().join("f.json");
    m.write(&out).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["format"], "dyad-model/2");
    assert_eq!(v["preprocessing"]["folded"], true);
    assert_eq!(
        v["preprocessing"]["standardization"],
        EntryId([6; 16]).to_string()
    );
    assert_eq!(LinearModel::read(&out).unwrap(), m);
    let e = refused(&m, |v| {
        v["preprocessing"]["columns"] = serde_json::json!([0, 1])
    });
    assert!(
        e.contains("preprocessing.columns") && e.contains("4 columns"),
        "{e}"
    );
    let e = refused(&m, |v| v["preprocessing"]["folded"] = false.into());
    assert!(e.contains("preprocessing.folded = false"), "{e}");
    // A file of the earlier format reads as a model on raw data.
    let raw = model("logreg", vec![3, 1], true);
    let old = dir.path().join("old.json");
    raw.write(&old).unwrap();
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&old).unwrap()).unwrap();
    v["format"] = "dyad-model/1".into();
    std::fs::write(&old, serde_json::to_vec(&v).unwrap()).unwrap();
    assert_eq!(LinearModel::read(&old).unwrap(), raw);
}
