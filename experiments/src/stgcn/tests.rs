//! Tests of the `stgcn` runner: whole tasks end to end on tiny data, the committed models,
//! and the report stage alone on hand-built outcomes.

use super::data::load;
use super::measure::{EpochPoint, RunOutcome, TaskSetup};
use crate::config::stgcn::{Activation, BodyPoseNorm, OtherViews, SkeletonData};
use crate::config::Config;
use crate::report::Report;
use serde::Deserialize;
use stgcn::{evaluate, ActivationKind, StGcn};

fn tiny(kind_body: &str) -> Config {
    Config::parse(
        &format!(
            "[experiment]\nname = \"stgcn-tiny\"\nseed = 7\n[[task]]\nkind = \"stgcn\"\n{kind_body}"
        ),
        "tiny.toml",
    )
    .unwrap()
}

#[tokio::test]
async fn mocap15_end_to_end() {
    let cfg = tiny(
        "architecture = \"STGCN-3-128\"\nwidth_divisor = 16\nactivations = [\"relu\", \"square\", \"poly\"]\nepochs = 1\nbatch_size = 8\nlearning_rate = 0.05\nclip_grad_norm = 5.0\nsave_models = true\ntrace_activations = true\nsquare = { from_relu = true, bn_init = [0.05, 1.0], learning_rate = 0.02 }\ndataset = { mocap15 = { train_per_class = 2, test_per_class = 1, frames = 12 } }\n",
    );
    let report = crate::run(&cfg).await.unwrap();
    let m = &report.metrics;
    for act in ["relu", "square", "poly"] {
        let acc = m[&format!("{act}.test_accuracy_pct")];
        assert!((0.0..=100.0).contains(&acc), "{act}: {acc}");
        assert!(m[&format!("{act}.final_train_loss")].is_finite());
        assert!(m[&format!("{act}.train_s")] >= 0.0);
        assert!(m[&format!("{act}.params_count")] > 0.0);
    }
    // Poly adds three coefficients per node and activation site: 3 blocks × 2 sites × 15.
    assert_eq!(
        m["poly.params_count"] - m["relu.params_count"],
        (3 * 2 * 3 * 15) as f64
    );
    let drop = m["poly.accuracy_drop_pp"];
    assert!((drop - (m["relu.test_accuracy_pct"] - m["poly.test_accuracy_pct"])).abs() < 1e-9);
    assert!(m.contains_key("square.accuracy_drop_pp"));
    assert!(!m.contains_key("relu.accuracy_drop_pp"));
    let files: std::collections::BTreeMap<_, _> =
        report.files.iter().map(|(n, b)| (n.as_str(), b)).collect();
    let svg = std::str::from_utf8(files["curves.svg"]).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("poly") && svg.contains("<polyline"));
    let csv = std::str::from_utf8(files["curves.csv"]).unwrap();
    assert_eq!(csv.lines().count(), 1 + 3);
    for act in ["relu", "square", "poly"] {
        assert!(m[&format!("{act}.train_per_clip_epoch_s")] > 0.0);
    }
    // Activation traces: before training and after the epoch, 3 blocks × 2 sites, 3 runs.
    let trace = std::str::from_utf8(files["activations.csv"]).unwrap();
    assert_eq!(trace.lines().count(), 1 + 2 * 6 * 3);
    assert!(trace.starts_with("run,epoch,block,site,mean,rms,max_abs"));
    // The square run started from the ReLU run's weights with the BN reset: its first
    // trace row (block 0, site 0, before training) has mean β = 1.
    let first_square: Vec<&str> = trace
        .lines()
        .find(|l| l.starts_with("square,0,0,0,"))
        .unwrap()
        .split(',')
        .collect();
    assert!((first_square[4].parse::<f64>().unwrap() - 1.0).abs() < 1e-9);
    let section = report.sections.join("\n");
    assert!(
        section.contains("starts from the trained ReLU model")
            && section.contains("learning rate 0.02"),
        "{section}"
    );
    // Saved models load back and reproduce the reported accuracy on the same test clips.
    let poly = StGcn::from_json_and_safetensors(
        std::str::from_utf8(files["poly.json"]).unwrap(),
        files["poly.safetensors"],
    )
    .unwrap();
    assert_eq!(poly.config().activation, ActivationKind::Poly);
    assert!(poly.config().input_norm.is_some());
    let data = load(
        &SkeletonData::Mocap15 {
            train_per_class: 2,
            test_per_class: 1,
            frames: 12,
            seed: None,
            views: None,
        },
        7,
    )
    .unwrap();
    let acc = evaluate(&poly, data.test.data_f64().view(), &data.test.labels)
        .unwrap()
        .accuracy;
    assert!((100.0 * acc - m["poly.test_accuracy_pct"]).abs() < 1e-9);
    assert!(report.sections.iter().any(|s| s.contains("cross-view")));
    assert!(report.notes.iter().any(|n| n.contains("InputNorm")));
    let dir = tempfile::tempdir().unwrap();
    let out = report.write(dir.path()).unwrap();
    assert!(out.join("curves.svg").exists() && out.join("relu.safetensors").exists());
}

#[tokio::test]
async fn square_calibrated_from_relu_with_distillation() {
    let cfg = tiny(
        "width_divisor = 16\nactivations = [\"relu\", \"square\"]\nepochs = 2\nbatch_size = 8\nlearning_rate = 0.05\nclip_grad_norm = 1.0\nsquare = { from_relu = true, calibrate = true, distill = { temperature = 4.0, weight = 0.7 }, epochs = 1 }\ndataset = { mocap15 = { train_per_class = 2, test_per_class = 1, frames = 12 } }\n",
    );
    let report = crate::run(&cfg).await.unwrap();
    let m = &report.metrics;
    let initial = m["square.initial_test_accuracy_pct"];
    assert!((0.0..=100.0).contains(&initial), "{initial}");
    assert!(!m.contains_key("relu.initial_test_accuracy_pct"));
    assert!(m["square.final_train_loss"].is_finite());
    let section = report.sections.join("\n");
    assert!(
        section.contains("calibrated per channel")
            && section.contains("knowledge distillation from the ReLU model (temperature 4")
            && section.contains("right after the activation replacement"),
        "{section}"
    );
}

#[tokio::test]
async fn bodypose_single_frame_with_label() {
    let cfg = tiny(
        "label = \"bp\"\nwidth_divisor = 16\nactivations = [\"relu\", \"poly\"]\nepochs = 1\nbatch_size = 16\nlearning_rate = 0.05\nclip_grad_norm = 1.0\ndataset = { bodypose = { test_fraction = 0.9 } }\n",
    );
    let report = crate::run(&cfg).await.unwrap();
    let m = &report.metrics;
    // T = 1 trains: well above the 5 % of guessing among 20 classes after one epoch.
    assert!(m["relu_bp.test_accuracy_pct"] > 20.0, "{m:?}");
    assert!((0.0..=100.0).contains(&m["poly_bp.test_accuracy_pct"]));
    assert!(m.contains_key("poly_bp.accuracy_drop_pp"));
    assert!(!m.contains_key("poly.test_accuracy_pct"));
    assert!(report.files.iter().any(|(n, _)| n == "curves_bp.svg"));
    assert!(!report
        .files
        .iter()
        .any(|(n, _)| n.ends_with(".safetensors")));
    assert!(report.notes.iter().any(|n| n.contains("T = 1")));
}

/// The models under `experiments/models/` load and reproduce the test accuracies that
/// `models/accuracies.json` (and the README table) records, on regenerated test sets; every
/// model file in the folder is listed there.
#[test]
fn committed_models_reproduce_their_accuracy() {
    #[derive(Deserialize)]
    struct Entry {
        stem: String,
        data: String,
        activation: ActivationKind,
        correct: usize,
        of: usize,
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let entries: Vec<Entry> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("accuracies.json")).unwrap())
            .unwrap();
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_suffix(".safetensors").map(str::to_string)
        })
        .collect();
    files.sort();
    let mut listed: Vec<String> = entries.iter().map(|e| e.stem.clone()).collect();
    listed.sort();
    listed.dedup();
    assert_eq!(files, listed, "model files vs accuracies.json");
    let bodypose = load(
        &SkeletonData::Bodypose {
            test_fraction: 0.2,
            normalization: BodyPoseNorm::AsProvided,
        },
        42,
    )
    .unwrap();
    // Mocap-15 test sets by (data, frames): the cross-view 0° clips or the other-view held-out
    // clips of stgcn-mocap15-otherviews.toml.
    let mocap = |other: bool, frames: usize| {
        let views = other.then(|| OtherViews {
            angles_deg: vec![-135.0, 135.0, -90.0, 90.0],
        });
        load(
            &SkeletonData::Mocap15 {
                train_per_class: 40,
                test_per_class: 20,
                frames,
                seed: None,
                views,
            },
            42,
        )
        .unwrap()
    };
    let mut cache = std::collections::HashMap::new();
    let mut wrong = Vec::new();
    for e in &entries {
        let json = std::fs::read_to_string(dir.join(format!("{}.json", e.stem))).unwrap();
        let bytes = std::fs::read(dir.join(format!("{}.safetensors", e.stem))).unwrap();
        assert!(bytes.len() < 1 << 20, "{}: {} bytes", e.stem, bytes.len());
        let model = StGcn::from_json_and_safetensors(&json, &bytes).unwrap();
        assert_eq!(model.config().activation, e.activation, "{}", e.stem);
        let frames = model.config().num_frames;
        let data = match e.data.as_str() {
            "bodypose" => &bodypose,
            "mocap15" | "mocap15-otherviews" => {
                let other = e.data == "mocap15-otherviews";
                cache
                    .entry((other, frames))
                    .or_insert_with(|| mocap(other, frames))
            }
            other => panic!("{}: unknown data {other:?}", e.stem),
        };
        assert_eq!(data.test.len(), e.of, "{}", e.stem);
        let acc = evaluate(&model, data.test.data_f64().view(), &data.test.labels)
            .unwrap()
            .accuracy;
        let n = data.test.len() as f64;
        if (acc * n - e.correct as f64).abs() > 1e-6 {
            wrong.push(format!(
                "{} on {}: {} of {n} correct, {} recorded",
                e.stem,
                e.data,
                (acc * n).round(),
                e.correct
            ));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

fn point(epoch: usize, test_accuracy: f64) -> EpochPoint {
    EpochPoint {
        epoch,
        learning_rate: 0.05,
        train_loss: 1.25,
        train_accuracy: 0.5,
        test_accuracy,
        test_loss: 1.5,
        train_s: 2.0,
    }
}

fn outcome(act: Activation, test_accuracy: f64) -> RunOutcome {
    RunOutcome {
        act,
        name: act.name().into(),
        curve: vec![point(0, 0.25), point(1, test_accuracy)],
        params: 1000,
        train_s: 4.0,
        train_cpu_s: Some(8.0),
        eval_s: 0.5,
        test_accuracy,
        diverged_at: None,
        trace: Vec::new(),
        deviations: Vec::new(),
        initial_test_accuracy: None,
    }
}

/// The report stage alone: two hand-built runs render into the results table, the targets,
/// the metrics and the curve files, without training anything.
#[test]
fn outcomes_render_into_the_report() {
    let cfg = tiny(
        "width_divisor = 16\nactivations = [\"relu\", \"poly\"]\nepochs = 2\nlearning_rate = 0.05\nmax_drop_pp = 5.0\ndataset = { mocap15 = { train_per_class = 2, test_per_class = 1 } }\n",
    );
    let crate::config::Task::Stgcn(t) = &cfg.tasks[0] else {
        panic!("not an stgcn task");
    };
    let setup = TaskSetup {
        description: "hand-built".into(),
        protocol_note: "protocol".into(),
        short_name: "Mocap-15 cross-view",
        n_train: 4,
        blocks: vec![(3, 4, 1), (4, 8, 2)],
        poly_init: [0.2, 0.5, 0.2],
        seed: 7,
    };
    let runs = [
        outcome(Activation::Relu, 0.75),
        outcome(Activation::Poly, 0.625),
    ];
    let mut report = Report::default();
    super::report::render(&mut report, t, &setup, &runs).unwrap();
    let s = report.sections.join("\n");
    assert!(s.starts_with("## ST-GCN on Mocap-15 cross-view\n"), "{s}");
    assert!(
        s.contains("| poly | 1000 | **62.50 %** | 62.50 % (epoch 2) | +12.50 pp | 50.00 % | 1.2500 | 4.0 s | 0.5 s |"),
        "{s}"
    );
    assert!(s.contains("(blocks 3→4, 4→8 (stride 2))"), "{s}");
    assert!(
        s.contains("poly is 12.50 pp below ReLU against the target of at most 5 pp below: not met"),
        "{s}"
    );
    let m = &report.metrics;
    assert_eq!(m["relu.test_accuracy_pct"], 75.0);
    assert_eq!(m["poly.accuracy_drop_pp"], 12.5);
    // 4 s over 2 epochs × 4 clips; 8 CPU-s likewise.
    assert_eq!(m["poly.train_per_clip_epoch_s"], 0.5);
    assert_eq!(m["poly.train_cpu_per_clip_epoch_s"], 1.0);
    assert!(!m.contains_key("relu.accuracy_drop_pp"));
    assert!(report.notes.iter().any(|n| n == "protocol"));
    let names: Vec<&str> = report.files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["curves.svg", "curves.csv"]);
    let csv = std::str::from_utf8(&report.files[1].1).unwrap();
    assert!(
        csv.contains("\npoly,2,0.05,1.25,0.5,1.5,0.625,2\n"),
        "{csv}"
    );
}
