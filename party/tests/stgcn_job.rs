//! An ST-GCN trained by two real `party serve` processes with dealer triples on a tiny
//! secret-shared skeleton dataset (8 clips of (C, T, V, M) = (3, 8, 15, 1) on the mocap15
//! graph), against its plaintext twin (`ml::models::stgcn` on `Plain`, same starting model,
//! same batches): the stored model shares reconstruct to the twin's tensors, and the losses the
//! owner reconstructs from both parties' per-epoch shares equal the twin's. Only the owner may
//! watch a job's statistics at P1.

mod support;

use datasets::skeleton::Graph;
use ml::models::stgcn::{self as model, StepOutputs, StgcnHyper, StgcnShape, StgcnState};
use ml::{Plain, Schedule};
use mpc::net::ChannelExt;
use ndarray::{Array2, Array5};
use party::client::{cross_entropy, Client, ClientError, JobUpdate};
use party::proto::{
    ClientRequest, EntryId, ErrorCode, InitModel, JobSpec, ModelKind, ModelMeta, Reply, StgcnSpec,
    TensorMeta, TripleKind, MAX_CONTROL_FRAME,
};
use party::store::Manifest;
use std::path::Path;
use std::process::Child;
use stgcn::{Architecture, GraphSpec, InputNorm, StGcn, StGcnConfig};
use support::*;

const MAX_UPLOAD: u64 = 10_000_000;
const DIMS: [usize; 4] = [3, 8, 15, 1];
const N: usize = 8;
const CLASSES: usize = 4;
/// Largest difference allowed between a revealed tensor value and the twin's: fixed point
/// with 16 fractional bits, every value through four steps of products, exact truncations and
/// the secure exp softmax; measured 3.1e-4 to 6.5e-4 over runs (the largest training update
/// is 0.42).
const TENSOR_TOL: f64 = 5e-3;
/// Largest difference allowed between the owner's reconstructed epoch loss and the twin's:
/// measured up to 1.9e-3 (losses 1.64 then 1.07; the secure softmax approximates exp).
const LOSS_TOL: f64 = 1e-2;

/// Clips whose coordinates depend on the class (so the loss can fall), labels `i mod 4`.
fn clips() -> (Array2<f64>, Vec<usize>) {
    let feats: usize = DIMS.iter().product();
    let labels: Vec<usize> = (0..N).map(|i| i % CLASSES).collect();
    let x = Array2::from_shape_fn((N, feats), |(i, j)| {
        let wobble = ((i * 31 + j * 17) % 23) as f64 / 23.0 - 0.5;
        0.3 * labels[i] as f64 * ((j % 7) as f64 / 7.0) + 0.2 * wobble
    });
    (x, labels)
}

fn as_clips(x: &Array2<f64>) -> Array5<f64> {
    let [c, t, v, m] = DIMS;
    x.to_owned().into_shape_with_order((N, c, t, v, m)).unwrap()
}

/// The public starting model: STGCN-3-128 / 8 (widths 8, 16, 16), node-wise polynomial
/// activations, input normalisation.
fn init_model(x: &Array2<f64>) -> StGcn {
    let g = Graph::mocap15();
    let graph = GraphSpec::from_edges("mocap15", g.num_nodes, &g.edges, g.center).unwrap();
    let a = graph.adjacency_array().unwrap();
    let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 8, DIMS[0], DIMS[1], &a, CLASSES);
    cfg.graph = graph;
    cfg.input_norm = Some(InputNorm::fit(as_clips(x).view()));
    // Near the identity with a small square term, so values stay in range through three blocks.
    cfg.activation = stgcn::ActivationKind::Poly;
    cfg.poly_init = [0.1, 1.0, 0.0];
    let mut m = StGcn::new(cfg, 7).unwrap();
    // Small logits at the start: no probability of the true class near the fixed-point
    // resolution, where its logarithm (the loss) would be ill-conditioned.
    let fc = m.tensor("fc.weight").unwrap().mapv(|w| 0.1 * w);
    m.set_tensor("fc.weight", fc).unwrap();
    m
}

fn write_csv(dir: &Path, x: &Array2<f64>, labels: &[usize]) -> std::path::PathBuf {
    let p = dir.join("clips.csv");
    let mut s: String = (0..x.ncols()).map(|j| format!("f{j},")).collect();
    s.push_str("label\n");
    for (row, l) in x.rows().into_iter().zip(labels) {
        for v in row {
            s.push_str(&format!("{v},"));
        }
        s.push_str(&format!("{l}\n"));
    }
    std::fs::write(&p, s).unwrap();
    p
}

/// Marks the uploaded table `name` a skeleton dataset in both stores (what an upload of clips
/// records), with the parties stopped.
fn mark_skeleton(c: &Cluster, name: &str) {
    for id in 0..2 {
        let dir = c.entries_dir(id);
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let mut m: Manifest = toml::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
            if m.name == name {
                m.tensor = Some(TensorMeta {
                    dims: DIMS.map(|d| d as u64),
                    graph: "mocap15".into(),
                    class_names: (0..CLASSES).map(|k| format!("move{k}")).collect(),
                });
                std::fs::write(&p, toml::to_string(&m).unwrap()).unwrap();
            }
        }
    }
}

fn spec(init: &StGcn, epochs: u64, triples: TripleKind) -> JobSpec {
    JobSpec {
        model: ModelKind::Stgcn(StgcnSpec {
            init: Some(InitModel {
                config_json: init.config_json().unwrap(),
                safetensors: init.to_safetensors_bytes().unwrap(),
            }),
            architecture: "STGCN-3-128".into(),
            width_divisor: 8,
            activation: String::new(),
            init_seed: 0,
            momentum: 0.9,
            weight_decay: 1e-4,
            classes: None,
            calibration_clips: 6,
        }),
        dataset: "clips".into(),
        learning_rate: 0.01,
        batch_size: 4,
        epochs,
        schedule_seed: 11,
        triples,
        intercept: false,
        ot_extension: Default::default(),
    }
}

/// The plaintext twin: the same model code on `Plain`, same start, same batches. Returns the
/// exported tensors flattened (the stored column) and each epoch's loss.
async fn twin(
    init: &StGcn,
    x: &Array2<f64>,
    labels: &[usize],
    s: &JobSpec,
) -> (Vec<f64>, Vec<f64>) {
    let ModelKind::Stgcn(st) = &s.model else {
        unreachable!()
    };
    let shape = StgcnShape::from_model(init).unwrap();
    let hyper = StgcnHyper {
        learning_rate: s.learning_rate,
        momentum: st.momentum,
        weight_decay: st.weight_decay,
        batch_size: s.batch_size as usize,
    };
    let y = Array2::from_shape_fn((N, CLASSES), |(i, k)| f64::from(u8::from(labels[i] == k)));
    let sched = Schedule::shuffled(N, 4, s.epochs as usize, s.schedule_seed).unwrap();
    let mut b = Plain::new();
    let xp = model::prepare_inputs(&mut b, &shape, x).await.unwrap();
    let mut params = model::initial_params(&shape, init);
    let rows = model::calibration_rows(N, st.calibration_clips as usize, s.schedule_seed);
    model::calibrate(&mut b, &shape, &xp, &mut params, &rows)
        .await
        .unwrap();
    let velocity = params.iter().map(|p| Array2::zeros(p.dim())).collect();
    let mut state = StgcnState { params, velocity };
    let mut losses = Vec::new();
    for batches in &sched.epochs {
        let mut p = Vec::new();
        let mut cb = |_: usize, o: &StepOutputs<Array2<f64>>| p.extend(o.p_true.iter().copied());
        model::train(
            &mut b, &shape, &xp, &y, &mut state, batches, &hyper, &mut cb,
        )
        .await
        .unwrap();
        losses.push(cross_entropy(&p));
    }
    let tensors = model::export_tensors(&mut b, &shape, &state.params)
        .await
        .unwrap();
    (
        tensors.iter().flat_map(|t| t.iter().copied()).collect(),
        losses,
    )
}

/// The starting model's tensors as the stored column.
fn initial_column(init: &StGcn) -> Vec<f64> {
    init.tensors()
        .iter()
        .flat_map(|t| t.value.iter().copied())
        .collect()
}

async fn reveal(c: &Cluster, job: EntryId) -> Vec<f64> {
    let (s0, f) = c
        .client(0, ALICE)
        .await
        .unwrap()
        .model_share(job)
        .await
        .unwrap();
    let (s1, _) = c
        .client(1, ALICE)
        .await
        .unwrap()
        .model_share(job)
        .await
        .unwrap();
    let fp = mpc::FixedPoint::new(f);
    fp.decode_matrix(&mpc::share::reconstruct(&s0, &s1).view())
        .iter()
        .copied()
        .collect()
}

/// A cluster with a dealer and the skeleton dataset `clips` of alice.
fn cluster(tmp: &Path, x: &Array2<f64>, labels: &[usize]) -> (Cluster, Child) {
    let mut c = Cluster::new(tmp, 60, MAX_UPLOAD);
    upload_ok(c.upload(ALICE, &["--name", "clips"], &write_csv(tmp, x, labels)));
    let dealer = c.start_dealer(tmp);
    for id in 0..2 {
        c.kill9(id);
    }
    mark_skeleton(&c, "clips");
    c.start(0);
    c.start(1);
    c.wait_log(0, "peer connected from", 2);
    (c, dealer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stgcn_job_matches_its_plaintext_twin_and_reports_losses_to_the_owner() {
    let tmp = tempfile::tempdir().unwrap();
    let (x, labels) = clips();
    let init = init_model(&x);
    let (c, mut dealer) = cluster(tmp.path(), &x, &labels);
    let s = spec(&init, 2, TripleKind::Dealer);
    // The initial model makes the job larger than a control frame: SubmitFollows / JobFollows.
    let framed = mpc::net::encode_message(&ClientRequest::Submit(s.clone())).unwrap();
    assert!(framed.len() > MAX_CONTROL_FRAME, "{} bytes", framed.len());
    let mut p0 = c.client(0, ALICE).await.unwrap();
    let mut p1 = c.client(1, ALICE).await.unwrap();
    let mut epochs = Vec::new();
    let mut steps = 0;
    let mut on = |u: JobUpdate| match u {
        JobUpdate::Progress(p) => steps = p.step.max(steps),
        JobUpdate::Epoch(e) => epochs.push(e),
    };
    let done = p0.submit_watched(&mut p1, &s, &mut on).await.unwrap();
    assert_eq!(steps, 4);
    let (want, want_losses) = twin(&init, &x, &labels, &s).await;
    assert_eq!(epochs.len(), 2);
    eprintln!(
        "losses: owner {:?}, twin {want_losses:?}",
        epochs.iter().map(|e| e.loss).collect::<Vec<_>>()
    );
    for (e, want) in epochs.iter().zip(&want_losses) {
        assert_eq!((e.epochs, e.samples), (2, N as u64));
        assert!(
            (e.loss - want).abs() < LOSS_TOL,
            "epoch {}: {} vs {want}",
            e.epoch,
            e.loss
        );
    }
    let got = reveal(&c, done.job).await;
    assert_eq!(
        got.len(),
        init.tensors().iter().map(|t| t.value.len()).sum::<usize>()
    );
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    let moved = want
        .iter()
        .zip(initial_column(&init))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    eprintln!("tensors: largest difference {worst}, largest training update {moved}");
    assert!(worst < TENSOR_TOL, "largest difference {worst}");
    assert!(
        moved > 10.0 * TENSOR_TOL,
        "training moved the model by {moved} only"
    );
    for id in 0..2 {
        let m = c
            .manifests(id)
            .into_iter()
            .find(|m| m.id == done.job)
            .unwrap();
        let Some(ModelMeta::Stgcn { config_json }) = &m.model else {
            panic!("{m:?}")
        };
        assert_eq!(config_json, &init.config_json().unwrap());
        assert_eq!((m.rows, m.cols), (got.len() as u64, 1));
    }
    let _ = dealer.kill();
    let _ = dealer.wait();
}

/// A job nobody watched keeps P1's shares for its owner alone: another client is refused,
/// the owner then reads every epoch and the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_owner_watches_a_job_at_p1() {
    let tmp = tempfile::tempdir().unwrap();
    let (x, labels) = clips();
    let init = init_model(&x);
    let (c, mut dealer) = cluster(tmp.path(), &x, &labels);
    let mut p0 = c.client(0, ALICE).await.unwrap();
    let done = p0
        .submit(&spec(&init, 1, TripleKind::Dealer), &mut |_| {})
        .await
        .unwrap();
    let watch = ClientRequest::Watch { job: done.job };
    let mut bob = c.client(1, BOB).await.unwrap();
    let r = bob.request(&watch).await;
    assert!(
        matches!(
            r,
            Err(ClientError::Refused {
                code: ErrorCode::Forbidden,
                ..
            })
        ),
        "{r:?}"
    );
    let r = c.client(0, ALICE).await.unwrap().request(&watch).await;
    assert!(
        matches!(
            r,
            Err(ClientError::Refused {
                code: ErrorCode::BadRequest,
                ..
            })
        ),
        "{r:?}"
    );
    let mut alice: Client = c.client(1, ALICE).await.unwrap();
    match alice.request(&watch).await.unwrap() {
        Reply::EpochShares {
            epoch: 1,
            epochs: 1,
            count,
            ..
        } => {
            assert_eq!(count, N as u64);
            alice.channel().recv_ring(count as usize, 1).await.unwrap();
        }
        r => panic!("{r:?}"),
    }
    assert_eq!(alice.recv().await.unwrap(), Reply::Done);
    // Read once: the feed is gone.
    let r = alice.request(&watch).await;
    assert!(
        matches!(
            r,
            Err(ClientError::Refused {
                code: ErrorCode::NotFound,
                ..
            })
        ),
        "{r:?}"
    );
    let _ = dealer.kill();
    let _ = dealer.wait();
}

/// The RLWE offline phase (`he`: no third party) serves an ST-GCN job too: one epoch, the
/// revealed model equals the twin's. Measured on a loaded 2-core machine: 49.5 s, P0 sending
/// 1.99 GB in the offline phase (two steps of many small matrix triples, each at least one
/// RLWE ciphertext of N = 16384).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "slow: about 50 s of RLWE offline phase for two steps"]
async fn stgcn_job_with_he_triples_matches_its_twin() {
    let tmp = tempfile::tempdir().unwrap();
    let (x, labels) = clips();
    let init = init_model(&x);
    let (c, mut dealer) = cluster(tmp.path(), &x, &labels);
    let _ = dealer.kill();
    let _ = dealer.wait();
    let s = spec(&init, 1, TripleKind::He);
    let t = std::time::Instant::now();
    let done = c
        .client(0, ALICE)
        .await
        .unwrap()
        .submit(&s, &mut |_| {})
        .await
        .unwrap();
    eprintln!(
        "he job: {:.1} s, P0 offline {:.1} s, {} B sent",
        t.elapsed().as_secs_f64(),
        done.stats[0].offline_s,
        done.stats[0].offline.bytes_sent
    );
    let (want, _) = twin(&init, &x, &labels, &s).await;
    let got = reveal(&c, done.job).await;
    let worst = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(worst < TENSOR_TOL, "largest difference {worst}");
}
