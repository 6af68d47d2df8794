//! The whole system with real processes: two `party serve` (P0 with an `[inference]` section),
//! a `dealer`, then the data owner's commands — `share-upload` of a skeleton set (`.npy` clips
//! of shape (N, C, T, V, M) with a label file, on the mocap15 graph), `party train --model stgcn`
//! fine-tuning a public model in 2PC, `party deploy` to P0, `party reveal` of the same model, and
//! `he-infer` classifying a clip under CKKS with the deployed model. The encrypted top class must
//! equal the plaintext evaluation of the revealed model.
//!
//! The model is tiny so that the encrypted inference takes about a second: STGCN-3-128 / 64
//! truncated to two blocks (widths 2, 4), T = 4, V = 15, `x²` kept on five joints of the first
//! block's second activation and pruned everywhere else (the CKKS depth stays small).

mod support;

use datasets::skeleton::Graph;
use ndarray::{Array1, Array5, Axis};
use std::path::Path;
use std::process::Command;
use stgcn::{ActivationKind, Architecture, GraphSpec, InputNorm, StGcn, StGcnConfig};
use support::*;

const DIMS: [usize; 4] = [3, 4, 15, 1];
const N: usize = 16;
const CLASSES: usize = 3;
const NAMES: [&str; CLASSES] = ["wave", "sit", "jump"];
/// The `[inference]` section of P0: no configured model; the flood sized for a tiny model, as
/// in `deploy.rs`.
const INFERENCE: &str = "[inference]\nmax_sessions_per_client = 2\nmax_sessions = 4\n\
                         session_ttl_s = 600\neval_error_bound = 5.9604644775390625e-8\n";

/// Clips whose coordinates depend on the class, labels `i mod 3`.
fn clips() -> (Array5<f64>, Vec<usize>) {
    let labels: Vec<usize> = (0..N).map(|i| i % CLASSES).collect();
    let [c, t, v, m] = DIMS;
    let x = Array5::from_shape_fn((N, c, t, v, m), |(i, ci, ti, vi, _)| {
        let wobble = ((i * 31 + ci * 7 + ti * 5 + vi * 3) % 23) as f64 / 23.0 - 0.5;
        0.4 * labels[i] as f64 * ((vi + ci) % 4) as f64 / 4.0 + 0.2 * wobble
    });
    (x, labels)
}

/// The public starting model (see the module docs).
fn init_model(x: &Array5<f64>) -> StGcn {
    let g = Graph::mocap15();
    let graph = GraphSpec::from_edges("mocap15", g.num_nodes, &g.edges, g.center).unwrap();
    let a = graph.adjacency_array().unwrap();
    let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 64, DIMS[0], DIMS[1], &a, CLASSES);
    cfg.graph = graph;
    cfg.class_names = NAMES.map(String::from).to_vec();
    cfg.architecture = None;
    cfg.blocks.truncate(2);
    cfg.activation_mask.truncate(2);
    cfg.activation = ActivationKind::Square;
    let v = DIMS[2];
    for b in 0..2 {
        for s in 0..2 {
            let pruned: Vec<usize> = if (b, s) == (0, 1) {
                (5..v).collect()
            } else {
                (0..v).collect()
            };
            cfg.prune(b, s, &pruned).unwrap();
        }
    }
    cfg.input_norm = Some(InputNorm::fit(x.view()));
    StGcn::new(cfg, 3).unwrap()
}

fn write_model(m: &StGcn, stem: &Path) {
    std::fs::write(stem.with_extension("json"), m.config_json().unwrap()).unwrap();
    std::fs::write(
        stem.with_extension("safetensors"),
        m.to_safetensors_bytes().unwrap(),
    )
    .unwrap();
}

/// One clip as he-infer's CSV: a line per frame, joint-major `x,y,z`.
fn clip_csv(x: &Array5<f64>, n: usize, path: &Path) {
    let [c, t, v, _] = DIMS;
    let mut csv = String::new();
    for ti in 0..t {
        let row: Vec<String> = (0..v)
            .flat_map(|vi| (0..c).map(move |ci| (ci, vi)))
            .map(|(ci, vi)| format!("{:.17e}", x[[n, ci, ti, vi, 0]]))
            .collect();
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    std::fs::write(path, csv).unwrap();
}

/// The text right after `after` up to the end of its line.
fn after<'a>(out: &'a str, after: &str) -> &'a str {
    out.split(after)
        .nth(1)
        .and_then(|r| r.lines().next())
        .unwrap_or_else(|| panic!("no {after:?} in {out}"))
}

#[test]
fn upload_train_deploy_and_classify_encrypted_with_real_processes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut c = Cluster::with_sections(dir, 60, 1 << 30, [INFERENCE, ""]);
    let mut dealer = c.start_dealer(dir);
    for id in 0..2 {
        c.kill9(id);
    }
    c.start(0);
    c.start(1);
    c.wait_log(0, "peer connected from", 2);

    // The data owner's files: clips, labels and the public model to fine-tune.
    let (x, labels) = clips();
    let (clips_npy, labels_npy) = (dir.join("clips.npy"), dir.join("labels.npy"));
    datasets::npy::write_npy(&clips_npy, &x).unwrap();
    let y = Array1::from_iter(labels.iter().map(|&l| l as i64));
    datasets::npy::write_npy(&labels_npy, &y).unwrap();
    let init = init_model(&x);
    write_model(&init, &dir.join("public"));

    let up = [
        "--graph",
        "mocap15",
        "--labels",
        labels_npy.to_str().unwrap(),
    ];
    let names = NAMES.join(",");
    let mut args = vec!["--name", "clips", "--class-names", &names];
    args.extend(up);
    upload_ok(c.upload(ALICE, &args, &clips_npy));
    let m = c
        .manifests(1)
        .into_iter()
        .find(|m| m.name == "clips")
        .unwrap();
    assert_eq!(m.tensor.unwrap().dims, DIMS.map(|d| d as u64));

    let conn = c.conn_args(ALICE);
    let init_json = dir.join("public.json");
    let out = run_ok(Command::new(PARTY).arg("train").args(&conn).args([
        "--dataset",
        "clips",
        "--model",
        "stgcn",
        "--init",
        init_json.to_str().unwrap(),
        "--epochs",
        "2",
        "--batch-size",
        "4",
        "--learning-rate",
        "0.02",
        "--momentum",
        "0.9",
        "--triples",
        "dealer",
    ]));
    eprintln!("{out}");
    // The owner saw each epoch's loss (both parties' shares, reconstructed by the client).
    assert!(out.contains("epoch 2/2  loss"), "{out}");
    let job = after(&out, "job ")
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(job.len(), 32, "{out}");

    let out = run_ok(
        Command::new(PARTY)
            .arg("deploy")
            .args(&conn)
            .args(["--job", &job, "--name", "net"]),
    );
    assert!(out.contains("P0 serves \"net\""), "{out}");
    let files = dir.join("revealed");
    run_ok(Command::new(PARTY).arg("reveal").args(&conn).args([
        "--job",
        &job,
        "--out",
        files.to_str().unwrap(),
    ]));
    let json = std::fs::read_to_string(files.with_extension("json")).unwrap();
    let weights = std::fs::read(files.with_extension("safetensors")).unwrap();
    let trained = StGcn::from_json_and_safetensors(&json, &weights).unwrap();
    let moved = init
        .tensors()
        .iter()
        .zip(trained.tensors())
        .map(|(a, b)| {
            (&a.value - &b.value)
                .mapv(f64::abs)
                .fold(0.0, |m: f64, &d| m.max(d))
        })
        .fold(0.0, f64::max);
    assert!(moved > 1e-3, "training moved the weights by {moved} only");

    // Two clips of different classes, classified encrypted by the deployed model.
    for n in [0, 1] {
        let input = dir.join(format!("clip{n}.csv"));
        clip_csv(&x, n, &input);
        let out = run_ok(Command::new(env!("CARGO_BIN_EXE_he-infer")).args([
            "--server",
            &c.client[0].to_string(),
            "--server-cert",
            c.cert(0).to_str().unwrap(),
            "--token",
            ALICE,
            "--model",
            "net",
            "--input",
            input.to_str().unwrap(),
        ]));
        let logits = trained
            .forward(x.index_axis(Axis(0), n).insert_axis(Axis(0)))
            .unwrap();
        let best = party::infer::top_k(&logits.row(0).to_vec(), 1)[0];
        assert!(
            after(&out, "1. ").starts_with(NAMES[best]),
            "clip {n}: plaintext top class {} but he-infer says\n{out}",
            NAMES[best]
        );
    }
    let _ = dealer.kill();
    let _ = dealer.wait();
}
