//! Tests of remote runs: export and preprocessing, settings checks, dataset lookup, and the
//! rendering of hand-built typed results into metrics and table rows.

use super::measure::{Measured, Twin};
use super::report::{render, RunInfo};
use super::*;
use crate::supervised::quality::Score;

fn cfg(text: &str) -> Config {
    Config::parse(text, "inline").unwrap()
}

#[test]
fn export_writes_the_preprocessed_training_data_of_each_task() {
    let c = cfg(r#"
[experiment]
name = "ex"
seed = 3
[[task]]
kind = "logreg"
epochs = 1
batch_size = 32
learning_rate = 0.25
data = { bundled = { name = "breast_cancer", test_fraction = 0.2 } }
remote = { dataset = "cancer" }
"#);
    let dir = tempfile::tempdir().unwrap();
    let files = export(&c, dir.path()).unwrap();
    assert_eq!(files.len(), 2);
    let tr = datasets::csv::read_csv(&files[0]).unwrap().data;
    let te = datasets::csv::read_csv(&files[1]).unwrap().data;
    assert_eq!(tr.ncols(), 31);
    assert_eq!(tr.nrows() + te.nrows(), 569);
    // Standardized with the training statistics: every training column has mean ~0.
    for j in 0..30 {
        assert!(tr.column(j).mean().unwrap().abs() < 1e-9);
    }
    assert!(tr.column(30).iter().all(|&v| v == 0.0 || v == 1.0));
    // The same preprocessing as the in-process run (same split, same standardizer).
    let p = prepare(Kind::Logreg, training_tasks(&c)[0].2, 3).unwrap();
    let (x, _) = p.train.unwrap();
    assert_eq!(x, tr.slice(ndarray::s![.., ..30]));
}

#[test]
fn exported_files_read_back_as_a_csv_source() {
    let c = cfg(r#"
[experiment]
name = "ex"
seed = 9
[[task]]
kind = "mlp"
layers = [4, 3, 3]
epochs = 1
batch_size = 16
learning_rate = 0.25
data = { bundled = { name = "iris", test_fraction = 0.2 } }
"#);
    let dir = tempfile::tempdir().unwrap();
    let files = export(&c, dir.path()).unwrap();
    let orig = prepare(Kind::Mlp, training_tasks(&c)[0].2, 9).unwrap();
    let base = "[experiment]\nname = \"csv\"\n[[task]]\nkind = \"mlp\"\nlayers = [4, 3, 3]\nepochs = 1\nbatch_size = 16\nlearning_rate = 0.25\nstandardize = false\n";
    let with_train = cfg(&format!(
        "{base}data = {{ csv = {{ train = {:?}, test = {:?} }} }}\n",
        files[0].display().to_string(),
        files[1].display().to_string()
    ));
    let p = prepare(Kind::Mlp, training_tasks(&with_train)[0].2, 0).unwrap();
    let ((x, y), (x0, y0)) = (p.train.unwrap(), orig.train.unwrap());
    assert_eq!((x, y), (x0, y0));
    assert_eq!(
        (p.test_x, p.test_y),
        (orig.test_x.clone(), orig.test_y.clone())
    );
    let test_only = cfg(&format!(
        "{base}data = {{ csv = {{ test = {:?} }} }}\n",
        files[1].display().to_string()
    ));
    let p = prepare(Kind::Mlp, training_tasks(&test_only)[0].2, 0).unwrap();
    assert!(p.train.is_none());
    assert_eq!(p.test_x, orig.test_x);
}

#[test]
fn remote_settings_are_checked() {
    let base = "[experiment]\nname = \"r\"\n[[task]]\nkind = \"logreg\"\nepochs = 1\nlearning_rate = 0.25\n";
    let e = Config::parse(
        &format!("{base}data = {{ csv = {{ test = \"t.csv\" }} }}\nremote = {{ dataset = \"d\", extra = 1 }}\n"),
        "c.toml",
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("extra"), "{e:#}");
    let e = Config::parse(
        &format!("{base}data = {{ csv = {{ test = \"t.csv\", regression = true }} }}\n"),
        "c.toml",
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("regression"), "{e:#}");
    // Standardizing needs the training statistics.
    let c = cfg(&format!(
        "{base}data = {{ csv = {{ test = \"t.csv\" }} }}\nremote = {{ dataset = \"d\" }}\n"
    ));
    let e = prepare(Kind::Logreg, training_tasks(&c)[0].2, 1).unwrap_err();
    assert!(format!("{e:#}").contains("standardize"), "{e:#}");
    assert!(load_parties(&[PathBuf::from("a.toml")]).is_err());
}

#[test]
fn datasets_are_found_by_name_or_id() {
    let e = |name: &str, b: u8| EntryInfo {
        id: party::proto::EntryId([b; 16]),
        name: name.into(),
        rows: 1,
        cols: 2,
        created: 0,
        tensor_dims: None,
    };
    let es = vec![e("cancer", 1), e("mnist", 2)];
    assert_eq!(find_dataset(&es, "mnist").unwrap().name, "mnist");
    assert_eq!(
        find_dataset(&es, &party::proto::EntryId([1; 16]).to_string())
            .unwrap()
            .name,
        "cancer"
    );
    let err = find_dataset(&es, "digits").unwrap_err().to_string();
    assert!(err.contains("digits") && err.contains("cancer"), "{err}");
}

fn job_stats(offline_s: f64, online_s: f64, sent: u64, rounds: u64) -> party::proto::JobStats {
    let online = mpc::net::CommStats {
        bytes_sent: sent,
        rounds,
        ..Default::default()
    };
    party::proto::JobStats {
        offline_s,
        online_s,
        online,
        ..Default::default()
    }
}

fn info(kind: Kind, label: &str) -> RunInfo {
    RunInfo {
        kind,
        title: "Logistic regression (piecewise sigmoid)".into(),
        label: label.into(),
        parties: ["127.0.0.1:7200".into(), "127.0.0.1:7201".into()],
        entry: EntryInfo {
            id: party::proto::EntryId([7; 16]),
            name: "cancer".into(),
            rows: 455,
            cols: 31,
            created: 0,
            tensor_dims: None,
        },
        data: "hand-built".into(),
        epochs: 2,
        batch_size: 32,
        learning_rate: 0.25,
        source: "ot".into(),
        triples: TripleKind::Ot,
    }
}

/// A hand-built classifier result with a twin renders both rows and the published metric names.
#[test]
fn remote_results_render_rows_and_metrics() {
    let m = Measured {
        job: party::proto::EntryId([9; 16]),
        job_s: 3.0,
        reveal_s: 0.125,
        stats: [job_stats(1.0, 2.0, 5000, 28), job_stats(1.5, 2.5, 4000, 28)],
        steps: 14,
        secure_test: 96.5,
        secure_train: Some(97.25),
        twin: Some(Twin {
            plain: Score {
                test: 95.0,
                train: 98.0,
            },
            agreement_pct: Some(99.0),
            max_weight_diff: 1e-3,
            train_s: 0.01,
        }),
    };
    let mut r = Report::default();
    render(&mut r, &info(Kind::Logreg, "x"), &m);
    let md = &r.sections[0];
    assert!(
        md.starts_with("## Logistic regression (piecewise sigmoid) — remote job (x)\n"),
        "{md}"
    );
    assert!(
        md.contains("| run | test accuracy | train accuracy |"),
        "{md}"
    );
    assert!(
        md.contains("| secure (remote 2PC) | 96.50 % | 97.25 % |"),
        "{md}"
    );
    assert!(
        md.contains("| plaintext twin (local) | 95.00 % | 98.00 % |"),
        "{md}"
    );
    assert!(md.contains("| online | 2.000 s / 2.500 s |"), "{md}");
    assert_eq!(r.metrics["secure_x.rounds_per_batch_count"], 2.0);
    assert_eq!(r.metrics["secure_x.online_p1_s"], 2.5);
    assert_eq!(r.metrics["secure_x.agreement_pct"], 99.0);
    assert_eq!(r.metrics["plain_x.train_accuracy_pct"], 98.0);
    for k in [
        "secure_x.job_s",
        "secure_x.reveal_s",
        "secure_x.max_weight_diff",
    ] {
        assert!(r.metrics.contains_key(k), "{k}");
    }
    assert!(r.notes.iter().any(|n| n.starts_with("Triples (`ot`)")));
    assert_eq!(r.metrics.len(), 23);
}

/// Without the owner's training copy: one row, no twin metrics, the "no twin" note.
#[test]
fn remote_regression_without_twin_renders_one_row() {
    let m = Measured {
        job: party::proto::EntryId([9; 16]),
        job_s: 3.0,
        reveal_s: 0.125,
        stats: [job_stats(1.0, 2.0, 5000, 28), job_stats(1.5, 2.5, 4000, 28)],
        steps: 14,
        secure_test: 2.5,
        secure_train: None,
        twin: None,
    };
    let mut r = Report::default();
    let mut i = info(Kind::Linreg, "");
    i.title = "Linear regression".into();
    render(&mut r, &i, &m);
    let md = &r.sections[0];
    assert!(
        md.starts_with("## Linear regression — remote job\n"),
        "{md}"
    );
    assert!(
        md.contains("| secure (remote 2PC) | 2.5000 |  |\n\n"),
        "{md}"
    );
    assert_eq!(r.metrics["secure.test_mse"], 2.5);
    assert!(!r.metrics.contains_key("plain.test_mse"));
    assert!(r.notes.iter().any(|n| n.starts_with("No plaintext twin")));
}

/// `experiment export` on an `stgcn` task: the Mocap-15 splits as rank-5 `.npy` files with
/// label files and a JSON sidecar, which `share-upload`'s reader takes with the sidecar's
/// options, holding the clips the in-process run trains on.
#[test]
fn export_writes_skeleton_clips_that_share_upload_reads() {
    let c = cfg(r#"
[experiment]
name = "sk"
seed = 5
[[task]]
kind = "stgcn"
epochs = 1
learning_rate = 0.1
dataset = { mocap15 = { train_per_class = 1, test_per_class = 1, frames = 8 } }
"#);
    let dir = tempfile::tempdir().unwrap();
    let files = export(&c, dir.path()).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "sk-task1-train.npy",
            "sk-task1-train-labels.npy",
            "sk-task1-test.npy",
            "sk-task1-test-labels.npy",
            "sk-task1-skeleton.json"
        ]
    );
    let meta: skeleton::SkeletonExport =
        serde_json::from_str(&std::fs::read_to_string(&files[4]).unwrap()).unwrap();
    assert_eq!((meta.graph.as_str(), meta.dims), ("mocap15", [3, 8, 15, 1]));
    assert_eq!((meta.train_clips, meta.test_clips), (15, 15));
    assert_eq!(meta.class_names.len(), 15);
    let want = crate::stgcn::data::load(c.tasks[0].skeleton().unwrap().0, 5).unwrap();
    assert_eq!(meta.class_names, want.train.class_names);
    assert_eq!(
        meta.share_upload_args[..2],
        ["--graph".to_string(), "mocap15".to_string()]
    );
    for (split, set) in [(0, &want.train), (2, &want.test)] {
        let t = party::input::read(&party::input::InputSpec {
            file: files[split].clone(),
            labels: Some(files[split + 1].clone()),
            graph: Some(meta.graph.clone()),
            class_names: meta.class_names.clone(),
            ..Default::default()
        })
        .unwrap();
        t.check_range(mpc::FracBits::new(16).unwrap()).unwrap();
        assert_eq!(t.data.dim(), (15, 3 * 8 * 15 + 1));
        assert_eq!(t.tensor.unwrap().dims, [3, 8, 15, 1]);
        let flat = set
            .data
            .mapv(f64::from)
            .into_shape_with_order((15, 360))
            .unwrap();
        assert_eq!(t.data.slice(ndarray::s![.., ..360]), flat);
        let labels: Vec<f64> = set.labels.iter().map(|&l| l as f64).collect();
        assert_eq!(t.data.column(360).to_vec(), labels);
    }
}

#[test]
fn remote_triple_sources_name_their_ot_extension_or_take_the_default() {
    use party::proto::{OtExtension, TripleKind};
    let k = |s: &str| triple_kind(s).unwrap();
    assert_eq!(k("he"), (TripleKind::He, OtExtension::Silent));
    assert_eq!(k("ot-iknp"), (TripleKind::Ot, OtExtension::Iknp));
    assert_eq!(k("auto-iknp"), (TripleKind::Auto, OtExtension::Iknp));
    assert_eq!(k("he-silent"), (TripleKind::He, OtExtension::Silent));
    assert_eq!(k("dealer"), (TripleKind::Dealer, OtExtension::Silent));
    for bad in ["dealer-iknp", "he-ferret", "client-aided", "gilboa"] {
        let e = triple_kind(bad).unwrap_err();
        assert!(format!("{e:#}").contains(bad), "{bad}: {e:#}");
    }
}
