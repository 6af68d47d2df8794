//! Tests of the `cryptogcn` runner: whole tasks end to end on tiny models, and the report
//! stage alone on hand-built figures.

use super::accuracy::{AccuracyFigures, StageError};
use super::measure::{Counts, PackingSizes, Sizes};
use crate::config::cryptogcn::{AccuracySpec, PackingName};
use crate::config::Config;
use crate::report::Report;
use anyhow::Result;
use ckks::OpCounts;
use datasets::skeleton::Graph;
use hegcn::PlannedStage;
use stgcn::{Architecture, GraphSpec, StGcn, StGcnConfig};

fn parse(body: &str) -> Result<Config> {
    Config::parse(
        &format!(
            "[experiment]\nname = \"cg-tiny\"\nseed = 3\n[[task]]\nkind = \"cryptogcn\"\n{body}"
        ),
        "cg.toml",
    )
}

/// Saves a random STGCN-3-128 / 16 with poly activations, every site pruned (depth 8), as
/// `<dir>/<name>.{json,safetensors}` like the committed models; returns the stem.
#[allow(clippy::too_many_arguments)]
fn save_pruned_poly_model(
    dir: &std::path::Path,
    name: &str,
    graph_name: &str,
    g: Graph,
    channels: usize,
    frames: usize,
    classes: usize,
    seed: u64,
) -> std::path::PathBuf {
    let graph = GraphSpec::from_edges(graph_name, g.num_nodes, &g.edges, g.center).unwrap();
    let mut mcfg = StGcnConfig::new(
        Architecture::Stgcn3x128,
        16,
        channels,
        frames,
        &graph.adjacency_array().unwrap(),
        classes,
    );
    mcfg.graph = graph;
    mcfg.activation = stgcn::ActivationKind::Poly;
    for b in 0..3 {
        for s in 0..2 {
            mcfg.prune(b, s, &(0..g.num_nodes).collect::<Vec<_>>())
                .unwrap();
        }
    }
    let m = StGcn::new(mcfg, seed).unwrap();
    let stem = dir.join(name);
    std::fs::write(stem.with_extension("json"), m.config_json().unwrap()).unwrap();
    std::fs::write(
        stem.with_extension("safetensors"),
        m.to_safetensors_bytes().unwrap(),
    )
    .unwrap();
    stem
}

/// A tiny NTU-shaped model with every activation pruned (depth 8 with the head's logit mask:
/// the 128-bit N = 2^15 preset) end to end: counts, sizes, estimates, measured latency of both packings whose
/// evaluator counts equal the plan (checked inside `run`), logits equal to the plaintext
/// model, and accuracy under encryption of a saved model on Mocap-15 clips.
#[tokio::test]
async fn tiny_model_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    // A random (untrained) Mocap-15-shaped model saved like the committed ones.
    let stem = save_pruned_poly_model(dir.path(), "m", "mocap15", Graph::mocap15(), 3, 8, 15, 9);
    let cfg = parse(&format!(
        "width_divisor = 16\nframes = 8\npersons = 2\nclasses = 5\npruned_sites = [[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]\nlatency_packings = [\"ama\", \"baseline\"]\nlatency_threads = [1]\nplaintext_cache_mib = 64\nestimate = false\naccuracy = {{ model = {:?}, samples = 2, train_per_class = 1, test_per_class = 1, pruning_levels = [2], pruning_epochs = 1 }}\n",
        stem.display().to_string()
    ))
    .unwrap();
    let report = crate::run(&cfg).await.unwrap();
    let mt = &report.metrics;
    // Six linear maps fused in pairs across the pruned sites (`hegcn::open_maps`) + head.
    assert_eq!(mt["model.depth_count"], 5.0);
    for run in ["ama", "baseline"] {
        for q in [
            "he_ops_count",
            "rotations_count",
            "keyswitch_count",
            "pt_ct_mul_count",
            "rescale_count",
            "latency_1t_s",
            "galois_keys_bytes",
        ] {
            let v = mt[&format!("{run}.{q}")];
            assert!(v > 0.0, "{run}.{q} = {v}");
        }
        // All sites pruned: no ciphertext products.
        assert_eq!(mt[&format!("{run}.ct_ct_mul_count")], 0.0);
        assert!(mt[&format!("{run}.ntu_max_logit_error")] < 1e-3);
    }
    let r = mt["ratio.he_ops_baseline_over_ama"];
    assert!((r - mt["baseline.he_ops_count"] / mt["ama.he_ops_count"]).abs() < 1e-12);
    assert_eq!(mt["ama.samples_count"], 2.0);
    assert_eq!(mt["ama.agreement_pct"], 100.0);
    assert!(mt["ama.max_logit_error"] < 1e-3);
    assert!(report
        .sections
        .iter()
        .any(|s| s.contains("2 evaluated under encryption")));
    for k in [0, 2] {
        let a = mt[&format!("prune{k}.test_accuracy_pct")];
        assert!((0.0..=100.0).contains(&a));
        assert!(mt[&format!("prune{k}.latency_1t_estimated_s")] > 0.0);
    }
    assert!(report
        .files
        .iter()
        .any(|(n, b)| n == "accuracy_latency.svg" && b.starts_with(b"<svg")));
    let out = report.write(dir.path()).unwrap();
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert!(j["metrics"]["ama.rotations_count"].is_number());
}

/// One BodyPose pose through the party's inference service (the code of `party serve` and
/// `he-infer`, in process) under the parameters the party tailors to a depth-8 model: N = 2^14
/// with exactly 8 levels (every named preset that holds depth 8 is at N = 2^15). Both requests
/// agree with the plaintext model within `1e-6 + 8·sd` (CKKS error ~1e-8 plus the flood sized
/// for `eval_error_bound = 2^-24`, sd ≤ 1e-4), the key upload is the relinearization key, one
/// Galois key per announced rotation (each at its level: some below the top) and a public key
/// at level 0, and the second request finds weights the first one encoded.
#[tokio::test]
async fn one_pose_through_the_party_service_under_tailored_parameters() {
    let dir = tempfile::tempdir().unwrap();
    let stem = save_pruned_poly_model(dir.path(), "bp", "body25", Graph::body25(), 2, 1, 20, 4);
    let cfg = parse(&format!(
        "width_divisor = 16\nframes = 4\npersons = 1\nclasses = 5\npruned_sites = [[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]\nlatency_packings = []\nestimate = false\nplaintext_cache_mib = 64\naccuracy = {{ model = {:?}, dataset = \"bodypose\", samples = 1 }}\nsingle = {{ index = 5, requests = 2, eval_error_bound = 5.9604644775390625e-8 }}\n",
        stem.display().to_string()
    ))
    .unwrap();
    let report = crate::run(&cfg).await.unwrap();
    let mt = &report.metrics;
    let t = "bodypose_single";
    assert_eq!(mt[&format!("{t}.levels_count")], 8.0);
    assert_eq!(mt[&format!("{t}.ring_degree_log2")], 14.0);
    assert_eq!(mt[&format!("{t}.agreement_pct")], 100.0);
    let sd = mt[&format!("{t}.flood_sd")];
    assert!(sd > 0.0 && sd <= 1e-4, "flood sd {sd}");
    let err = mt[&format!("{t}.max_logit_error")];
    assert!(err <= 1e-6 + 8.0 * sd, "{err} vs sd {sd}");
    assert!(mt[&format!("{t}.cache_hits_count")] > 0.0);
    // 64 MiB hold ~50 of the ~2,000 plaintexts (1.2 MB each at N = 2^14, level ≤ 8) a
    // request encodes: the second request still encodes most, and the need says how much more.
    let need = mt[&format!("{t}.plaintext_need_bytes")];
    assert!(need > 64.0 * 1048576.0, "{need}");
    assert!(mt[&format!("{t}.cache_misses_count")] > 0.0);
    assert!(mt[&format!("{t}.server_s")] > 0.0);
    let (_, params) = hegcn::smallest_params(8, 1, hegcn::Packing::Ama).unwrap();
    // Each Galois key is made at the highest level it is used at: between a level-0 key and a
    // whole one.
    let galois = mt[&format!("{t}.galois_keys_count")] as u64;
    let relin = ckks::RelinKey::serialized_len(&params);
    let (lo, hi) = (
        ckks::GaloisKeys::serialized_len_at_level(&params, 0),
        ckks::GaloisKeys::serialized_len(&params, 1),
    );
    let bytes = mt[&format!("{t}.key_bytes")] as u64;
    let pk_max = party::infer::max_public_key_bytes(&params, 0);
    assert!(galois > 0, "{galois}");
    assert!(
        bytes > relin + galois * lo && bytes <= relin + galois * hi + pk_max,
        "{bytes}"
    );
    assert!(
        bytes < relin + galois * hi,
        "some key is cut below the top level: {bytes}"
    );
    assert!(!mt.contains_key("bodypose_single_preset.key_bytes"));
    assert!(report
        .sections
        .iter()
        .any(|s| s.contains("through the party's inference service")));
}

/// BodyPose under encryption with many poses per pass (T = 1: hundreds fit one
/// ciphertext per node), the per-stage errors of the first pose, and the logit margin.
#[tokio::test]
async fn bodypose_accuracy_batches_many_poses_per_pass() {
    let dir = tempfile::tempdir().unwrap();
    let stem = save_pruned_poly_model(dir.path(), "bp", "body25", Graph::body25(), 2, 1, 20, 4);
    let cfg = parse(&format!(
        "width_divisor = 16\nframes = 4\npersons = 1\nclasses = 5\npruned_sites = [[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]\nlatency_packings = []\nestimate = false\nplaintext_cache_mib = 64\naccuracy = {{ model = {:?}, dataset = \"bodypose\", samples = 40, stage_errors = true }}\n",
        stem.display().to_string()
    ))
    .unwrap();
    let report = crate::run(&cfg).await.unwrap();
    let mt = &report.metrics;
    assert_eq!(mt["ama.samples_count"], 40.0);
    assert_eq!(mt["ama.bodypose_clips_per_pass_count"], 40.0);
    assert_eq!(mt["ama.agreement_pct"], 100.0);
    assert!(
        mt["ama.max_logit_error"] < 1e-4,
        "{}",
        mt["ama.max_logit_error"]
    );
    assert!(mt["plain.min_logit_margin"] >= 0.0);
    // Every site is pruned, so the six maps are fused in pairs (`hegcn::open_maps`): each
    // carries ~20 bits of weight precision, and a stage's error is ~1e-4 of its values (~1e-8
    // with one level per map).
    for st in ["block0_gcn", "block1_tcn", "block2_act2"] {
        let (e, a) = (
            mt[&format!("ama.{st}_max_error")],
            mt[&format!("ama.{st}_max_abs")],
        );
        assert!(a > 0.0 && e <= 1e-3 * a.max(1.0), "{st}: {e} vs {a}");
    }
    assert!(report
        .sections
        .iter()
        .any(|s| s.contains("BodyPose") && s.contains("| stage | level after")));
}

fn planned(name: &str, rotate: u64, mul_plain: u64) -> PlannedStage {
    PlannedStage {
        name: name.into(),
        counts: OpCounts {
            rotate,
            key_switch: rotate,
            mul_plain,
            add: 2 * mul_plain,
            rescale: 1,
            ..OpCounts::default()
        },
    }
}

/// The report stage alone: hand-built counts and sizes render into the counts table (a stage
/// row and the total row), the ratio table and the metrics, without compiling anything.
#[test]
fn counts_and_sizes_render_from_typed_figures() {
    let counts = Counts {
        levels: vec![("block0.gcn".into(), 8), ("head".into(), 1)],
        planned: vec![
            (
                PackingName::Ama,
                vec![planned("block0.gcn", 10, 4), planned("head", 2, 1)],
            ),
            (
                PackingName::Baseline,
                vec![planned("block0.gcn", 30, 8), planned("head", 5, 2)],
            ),
        ],
    };
    let mut report = Report::default();
    let md = super::report::counts(&mut report, &counts);
    // block0.gcn: AMA 10 rotations, 10 key switches, 4 pt×ct, 0 ct×ct, 1 rescale and
    // 8 + 4 + 10 + 1 = 23 operations; the baseline 30, 30, 8, 0, 1 and 16 + 8 + 30 + 1 = 55.
    assert!(
        md.contains("| block0.gcn | 8 | 10 | 10 | 4 | 0 | 1 | 23 | 30 | 30 | 8 | 0 | 1 | 55 |"),
        "{md}"
    );
    assert!(
        md.contains("| **total** | | 12 | 12 | 5 | 0 | 2 | 29 | 35 | 35 | 10 | 0 | 2 | 67 |"),
        "{md}"
    );
    let m = &report.metrics;
    assert_eq!(m["ama.he_ops_count"], 29.0);
    assert_eq!(m["baseline.rotations_count"], 35.0);
    assert_eq!(m["ama.block0_gcn_rotations_count"], 10.0);
    assert_eq!(m["baseline.head_he_ops_count"], 12.0);
    let sizes = Sizes {
        preset: "N15_L17_S40_128BIT",
        top_level: 8,
        public_key_bytes: 1 << 20,
        relin_key_bytes: 3 << 20,
        galois_key_bytes: 2 << 20,
        packings: vec![PackingSizes {
            run: "ama",
            input_ciphertexts: 25,
            ciphertext_bytes: 1 << 20,
            level0_bytes: 1 << 17,
            galois_steps: 7,
        }],
    };
    let md = super::report::sizes(&mut report, &sizes);
    assert!(
        md.contains("| ama | 25 | 1.00 MiB | 128.00 KiB | 25.00 MiB | 7 | 14.00 MiB |"),
        "{md}"
    );
    assert_eq!(report.metrics["ama.galois_keys_bytes"], (14 << 20) as f64);
    assert_eq!(report.metrics["keys.relin_key_bytes"], (3 << 20) as f64);
}

/// The accuracy section renders from hand-built figures: its table row, the per-stage error
/// row and the metric names with the data set's key.
#[test]
fn accuracy_renders_from_typed_figures() {
    let acc: AccuracySpec =
        toml::from_str("model = \"m\"\nsamples = 4\ndataset = \"bodypose\"\n").unwrap();
    let f = AccuracyFigures {
        model: "m".into(),
        architecture: "STGCN-3-128",
        width_divisor: 16,
        activation: stgcn::ActivationKind::Poly,
        shape: [2, 1, 25, 1],
        preset: "N15_L17_S40_128BIT".into(),
        depth: 8,
        data_desc: "BodyPose".into(),
        samples: 4,
        clips_per_pass: 2,
        pass_s: vec![3.0, 1.0],
        agree: 3,
        correct_encrypted: 2,
        correct_plain: 2,
        max_logit_error: 1e-5,
        min_logit_margin: 0.5,
        max_abs_logit: 9.0,
        cache: hegcn::PlaintextCacheStats::default(),
        stage_errors: vec![StageError {
            name: "block0.gcn".into(),
            level: 7,
            log_scale: 40.0,
            max_abs: 2.0,
            max_err: 1e-6,
        }],
    };
    let mut report = Report::default();
    super::report::accuracy(&mut report, &acc, &f);
    let s = report.sections.join("\n");
    assert!(
        s.contains("## Accuracy under encryption: BodyPose test set"),
        "{s}"
    );
    assert!(
        s.contains("| encrypted top-1 = plaintext top-1 | 3/4 (75.00 %) |"),
        "{s}"
    );
    assert!(
        s.contains("| block0.gcn | 7 | 40.00 | 2.000e0 | 1.000e-6 | 5.00e-7 |"),
        "{s}"
    );
    let m = &report.metrics;
    assert_eq!(m["ama.agreement_pct"], 75.0);
    assert_eq!(m["ama.bodypose_pass_latency_s"], 1.0);
    assert_eq!(m["ama.bodypose_latency_per_clip_s"], 0.5);
    assert_eq!(m["ama.block0_gcn_max_error"], 1e-6);
}

/// Throughput mode on a tiny Mocap-15-shaped model: the batched pass's logits of every clip
/// equal the logits of the same clip evaluated alone, and both the plaintext model's. Each
/// pass is within the CKKS error of the plaintext logits: ~1e-4 for logits of order one, its
/// six maps fused in pairs across the pruned sites (`hegcn::open_maps`, ~20 bits of weight
/// precision per map, encoded differently alone and batched; ~1e-7 with one level per map),
/// so the stated tolerance is 1e-3 · max(1, max |logit|).
#[test]
fn batched_pass_logits_equal_single_clip_logits() {
    use super::throughput::timed_pass;
    let dir = tempfile::tempdir().unwrap();
    let stem = save_pruned_poly_model(dir.path(), "m", "mocap15", Graph::mocap15(), 3, 8, 15, 9);
    let acc: AccuracySpec = toml::from_str(&format!(
        "model = {:?}\nsamples = 3\ntrain_per_class = 1\ntest_per_class = 1\ntailored_params = true\n",
        stem.display().to_string()
    ))
    .unwrap();
    let inputs = super::accuracy::load(&acc).unwrap();
    let folded = inputs.model.fold();
    let (_, params, _) = super::accuracy::serving_params(&acc, &folded).unwrap();
    assert!(hegcn::HeStgcn::max_clips(&folded, params.slots()) >= 3);
    let clips = super::accuracy::test_clips(&inputs.test, 3);
    let mut keys = super::engine::ClientKeys::new(&params).unwrap();
    let single = hegcn::HeStgcn::compile(&folded, hegcn::Packing::Ama, &params).unwrap();
    let batched =
        hegcn::HeStgcn::compile_batched(&folded, hegcn::Packing::Ama, &params, 3).unwrap();
    let (_, many) = timed_pass(&batched, &mut keys, &clips, 1, 1).unwrap();
    let x: Vec<_> = clips
        .iter()
        .map(|c| c.view().insert_axis(ndarray::Axis(0)))
        .collect();
    let plain = folded
        .forward(ndarray::concatenate(ndarray::Axis(0), &x).unwrap().view())
        .unwrap();
    let scale = plain.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    for (i, clip) in clips.iter().enumerate() {
        let (_, one) = timed_pass(&single, &mut keys, std::slice::from_ref(clip), 1, 1).unwrap();
        assert_eq!((one[0].len(), many[i].len()), (15, 15));
        for ((a, b), p) in one[0].iter().zip(&many[i]).zip(plain.row(i)) {
            assert!(
                (a - b).abs() <= 1e-3 * scale,
                "clip {i}: alone {a}, batched {b}"
            );
            assert!(
                (b - p).abs() <= 1e-3 * scale,
                "clip {i}: batched {b}, plain {p}"
            );
        }
    }
}

/// The throughput section end to end on a tiny model (one thread, the test set of 15 clips
/// repeated to fill a pass): the report carries every key, the per-sample and per-hour
/// figures follow from the pass time, and every clip agrees with the plaintext model (no
/// timing is asserted).
#[tokio::test]
async fn throughput_reports_its_keys() {
    let dir = tempfile::tempdir().unwrap();
    let stem = save_pruned_poly_model(dir.path(), "m", "mocap15", Graph::mocap15(), 3, 8, 15, 9);
    let cfg = parse(&format!(
        "width_divisor = 16\nframes = 4\npersons = 1\nclasses = 5\npruned_sites = [[0, 0], [0, 1], [1, 0], [1, 1], [2, 0], [2, 1]]\nlatency_packings = []\nestimate = false\nplaintext_cache_mib = 64\naccuracy = {{ model = {:?}, samples = 1, train_per_class = 1, test_per_class = 1, tailored_params = true, throughput = {{ threads = [1], only = true }} }}\n",
        stem.display().to_string()
    ))
    .unwrap();
    let report = crate::run(&cfg).await.unwrap();
    let mt = &report.metrics;
    let per_ct = mt["ama.clips_per_pass"];
    assert!(per_ct > 15.0, "{per_ct}");
    for k in ["latency_1t_s", "pass_1t_s", "throughput_1t_s_per_sample"] {
        assert!(mt[&format!("ama.{k}")] > 0.0, "{k}");
    }
    let per_sample = mt["ama.throughput_1t_s_per_sample"];
    assert_eq!(per_sample, mt["ama.pass_1t_s"] / per_ct);
    assert_eq!(mt["ama.throughput_1t_per_h"], 3600.0 / per_sample);
    assert_eq!(mt["ama.throughput_agreement_pct"], 100.0);
    assert!(mt["ama.throughput_max_logit_error"] < 1e-3);
    assert!(mt["ama.batch_vs_single_max_logit_diff"] < 1e-3);
    assert!(
        !mt.contains_key("ama.samples_count"),
        "only = true skips the accuracy run"
    );
    assert!(report
        .sections
        .iter()
        .any(|s| s.contains("repeated in order")));
}

/// A shape whose one clip fills the slots is reported with throughput = latency, and says so.
#[test]
fn throughput_without_free_slots_is_the_latency() {
    use super::throughput::{ThroughputFigures, ThroughputRun};
    let acc: AccuracySpec = toml::from_str("model = \"m\"\nsamples = 1\n").unwrap();
    let f = ThroughputFigures {
        preset: "N15_L17_S40_128BIT".into(),
        clips_per_pass: 1,
        distinct_clips: 1,
        warm_cache: false,
        runs: vec![ThroughputRun {
            threads: 0,
            latency_s: 400.0,
            pass_s: 400.0,
        }],
        agree: 1,
        max_logit_error: 1e-6,
        max_batch_vs_single: 0.0,
    };
    let mut report = Report::default();
    super::throughput_report::throughput(&mut report, &acc, "NTU", &f);
    let m = &report.metrics;
    assert_eq!(m["ama.latency_s"], 400.0);
    assert_eq!(m["ama.throughput_s_per_sample"], 400.0);
    assert_eq!(m["ama.throughput_per_h"], 9.0);
    assert_eq!(m["ama.clips_per_pass"], 1.0);
    let s = report.sections.join("\n");
    assert!(s.contains("the throughput is the latency"), "{s}");
    assert!(
        s.contains("| 400.00 s | 400.00 s | 400.000 s | 9 | 1.0× |"),
        "{s}"
    );
}
