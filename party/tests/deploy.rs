//! End-to-end tests of deploying a secret-shared ST-GCN to the encrypted-inference service and
//! of revealing it in the model-file format: two real `party serve` processes on loopback
//! (`support::Cluster`), the model entry stored as two additive shares over Z_2^64 the way a
//! training job stores it (one committed entry per party, same manifest, `ModelMeta::Stgcn`).
//!
//! The model is a tiny random-weight two-block ST-GCN (widths 1, 2; V = 5 joints on a chain,
//! T = 4, C = 3, every activation pruned: depth 4 (the four maps fused in pairs, `hegcn::open_maps`,
//! and the head), served under the parameters the party tailors
//! to it, `N14_L4_S40_Q50_P3x50_D2_128BIT`), so an encrypted
//! inference takes about a second. Its entry is at 20 fractional bits: every revealed tensor is
//! within half a unit (2^-21) of the original.
//!
//! Tolerance of an encrypted logit against the plaintext forward pass of the decoded model:
//! `1e-6 + 8·sd`, `sd` the flood's standard deviation the party announces (`flood_sd`; the
//! parties serve with `eval_error_bound = 2^-24`, as in `he_infer.rs`, so sd ≈ 3.6e-5; the
//! evaluation error is ~1e-8). The top class is compared with the original model's.

mod support;

use mpc::net::{Channel, ChannelExt};
use ndarray::{Array2, Array4};
use party::client::{Client, ClientError};
use party::deploy::{self, Revealed};
use party::infer::client::InferClient;
use party::infer::{self};
use party::proto::{
    ClientRequest, DeploySpec, EntryId, ErrorCode, ModelMeta, PeerReply, PeerRequest, Reply,
    ServeAt, ShareForm, MAX_CONTROL_FRAME,
};
use party::store::{EntryKind, Manifest, State, Store};
use party::transport::{self, Identity, PeerCert, TransportKind};
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use stgcn::StGcn;
use support::tiny_stgcn::{self, plain_logits, sample, SHAPE};
use support::{run_ok, Cluster, ALICE, BOB, PARTY};

const FRAC_BITS: u32 = 20;
/// The `[inference]` section of a serving party: no configured model, the default
/// `max_key_bytes` (what the served models need), a flood sized for the tiny model.
const INFERENCE: &str = "[inference]\nmax_sessions_per_client = 2\nmax_sessions = 4\n\
                         session_ttl_s = 600\neval_error_bound = 5.9604644775390625e-8\n";

fn frac_bits() -> mpc::FracBits {
    mpc::FracBits::new(FRAC_BITS).unwrap()
}

/// Splits `m`'s column into two additive shares (OS randomness) and stores one at each
/// party as `owner`'s committed ST-GCN model entry, as a training job would; returns its id.
fn store_shared_model(c: &Cluster, owner: &str, m: &StGcn) -> EntryId {
    store_shared_column(
        c,
        owner,
        party::model_file::stgcn_column(m),
        &m.config_json().unwrap(),
    )
}

/// Stores `col` as `owner`'s shared ST-GCN entry under the configuration `config_json`.
fn store_shared_column(c: &Cluster, owner: &str, col: Vec<f64>, config_json: &str) -> EntryId {
    let n = col.len();
    let x = Array2::from_shape_vec((n, 1), col).unwrap();
    let ring = mpc::FixedPoint::new(frac_bits())
        .encode_matrix(&x.view())
        .unwrap();
    let shares = mpc::share::share(&ring.view(), &mut mpc::share::os_rng());
    let job = EntryId::random();
    for (id, s) in shares.iter().enumerate() {
        let bytes = party::store::matrix_bytes(s);
        let manifest = Manifest {
            id: job,
            kind: EntryKind::Model,
            name: format!("model-{job}"),
            owner: owner.into(),
            rows: n as u64,
            cols: 1,
            label_column: 0,
            frac_bits: frac_bits(),
            form: ShareForm::Matrix,
            sha256: hex::encode(party::store::sha256(&bytes)),
            created: party::store::now(),
            state: State::Committed,
            appenders: Vec::new(),
            supersedes: None,
            appended: Vec::new(),
            tensor: None,
            model: Some(ModelMeta::Stgcn {
                config_json: config_json.into(),
            }),
            keys: None,
            standardization: None,
        };
        let store = Store::open(&c.dir.join(format!("p{id}/data"))).unwrap();
        store.put(&manifest, &bytes).unwrap();
    }
    job
}

/// The model as the parties hold it: every value rounded to the entry's fixed point.
fn quantized(m: &StGcn) -> StGcn {
    let fp = mpc::FixedPoint::new(frac_bits());
    let col: Vec<f64> = party::model_file::stgcn_column(m)
        .iter()
        .map(|&v| fp.decode(fp.encode(v).unwrap()))
        .collect();
    party::model_file::stgcn_from_column(&m.config_json().unwrap(), &col).unwrap()
}

async fn clients(c: &Cluster, token: &str) -> (Client, Client) {
    (
        c.client(0, token).await.unwrap(),
        c.client(1, token).await.unwrap(),
    )
}

fn assert_refused<T: std::fmt::Debug>(r: Result<T, ClientError>, want: ErrorCode, text: &str) {
    match r {
        Err(ClientError::Refused { code, message }) => {
            assert_eq!(code, want, "{message}");
            assert!(message.contains(text), "{message:?} lacks {text:?}");
        }
        other => panic!("expected a {want:?} refusal containing {text:?}, got {other:?}"),
    }
}

/// One encrypted inference of `x` on `model` at party `id` as alice: the decrypted logits and
/// the announced flood sd.
async fn encrypted_logits(c: &Cluster, id: usize, model: &str, x: &Array4<f64>) -> (Vec<f64>, f64) {
    let mut ic = InferClient::new(c.client(id, ALICE).await.unwrap());
    let info = ic.model_info(model).await.unwrap();
    let params = infer::params_for(&info).unwrap();
    let sk = Arc::new(ckks::KeyGenerator::new(&params).secret_key());
    let keys = infer::generate_keys(
        &params,
        sk.clone(),
        &info.rotation_keys(),
        info.output_level as usize,
    )
    .unwrap();
    assert!(keys.total_bytes() <= info.max_key_bytes, "{info:?}");
    let (session, _) = ic.open_session(model, keys).await.unwrap();
    let cts = infer::encrypt_input(&info, &params, &sk, x.view()).unwrap();
    let r = ic
        .infer(session, &cts, infer::max_ciphertext_bytes(&params))
        .await
        .unwrap();
    ic.close_session(session).await.unwrap();
    let got = infer::decrypt_logits(&params, &sk, &r.cts, &r.positions).unwrap();
    (got, info.flood_sd)
}

/// Checks encrypted logits against the plaintext twin: top class of the original model,
/// every logit within the tolerance of the decoded (fixed-point) model's.
fn check_logits(original: &StGcn, x: &Array4<f64>, got: &[f64], flood_sd: f64) {
    assert!(flood_sd > 0.0 && flood_sd <= 5e-5, "flood sd {flood_sd:e}");
    let tol = 1e-6 + 8.0 * flood_sd;
    let want = plain_logits(&quantized(original), x);
    let err = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        err <= tol,
        "max |logit error| {err:e} > {tol:e}: {got:?} vs {want:?}"
    );
    let plain = plain_logits(original, x);
    assert_eq!(
        infer::top_k(got, 1),
        infer::top_k(&plain, 1),
        "{got:?} vs {plain:?}"
    );
}

/// Sends a deployment-share request on the peer channel and returns the answer.
async fn ask(ch: &mut transport::PeerChannel, spec: DeploySpec) -> PeerReply {
    ch.send(&PeerRequest::DeployShare(spec)).await.unwrap();
    ch.flush().await.unwrap();
    ch.recv::<PeerReply>(MAX_CONTROL_FRAME).await.unwrap()
}

/// Every tensor of `got` within half a fixed-point unit of `want`'s.
fn assert_tensors_close(got: &StGcn, want: &StGcn) {
    let half = 2f64.powi(-(FRAC_BITS as i32) - 1);
    assert_eq!(got.tensors().len(), want.tensors().len());
    for (a, b) in got.tensors().iter().zip(want.tensors()) {
        assert_eq!((&a.name, a.value.shape()), (&b.name, b.value.shape()));
        let worst = a
            .value
            .iter()
            .zip(&b.value)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f64::max);
        assert!(worst <= half * (1.0 + 1e-9), "{}: {worst:e}", a.name);
    }
}

/// Deploying to P0: refusals for a non-owner, a party without `[inference]` and a taken name;
/// the deployed model serves an encrypted inference equal to the plaintext model's, raises the
/// default `max_key_bytes` to what it needs, and is served again after P0 restarts; `party
/// reveal` writes the files `[inference]` loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploying_to_p0_serves_the_model_and_reveal_writes_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Cluster::with_sections(tmp.path(), 30, 1 << 30, [INFERENCE, ""]);
    let model = tiny_stgcn::model();
    let job = store_shared_model(&c, "alice", &model);
    let (mut a0, mut a1) = clients(&c, ALICE).await;

    // Bob is not the owner; P1 has no [inference]; "../x" is no name.
    let (mut b0, mut b1) = clients(&c, BOB).await;
    assert_refused(
        deploy::deploy(&mut b0, &mut b1, job, "stolen", ServeAt::P0, None).await,
        ErrorCode::Forbidden,
        "not yours",
    );
    assert_refused(
        deploy::deploy(&mut a0, &mut a1, job, "net", ServeAt::P1, None).await,
        ErrorCode::BadRequest,
        "P1 has no [inference] section",
    );
    assert_refused(
        deploy::deploy(&mut a0, &mut a1, job, "../x", ServeAt::P0, None).await,
        ErrorCode::BadRequest,
        "model name \"../x\"",
    );
    assert_eq!(
        InferClient::new(c.client(0, ALICE).await.unwrap())
            .list_models()
            .await
            .unwrap(),
        Vec::<String>::new()
    );

    // The owner deploys to P0; no restart.
    let served = deploy::deploy(&mut a0, &mut a1, job, "net", ServeAt::P0, None)
        .await
        .unwrap();
    assert_eq!(served.len(), 1, "{served:?}");
    assert_eq!(
        (served[0].role, served[0].preset.as_str()),
        (0, "N14_L4_S40_Q50_P3x50_D2_128BIT")
    );
    let x = sample(1);
    let (got, sd) = encrypted_logits(&c, 0, "net", &x).await;
    check_logits(&model, &x, &got, sd);
    let mut ic = InferClient::new(c.client(0, BOB).await.unwrap());
    let info = ic.model_info("net").await.unwrap();
    assert_eq!(
        info.max_key_bytes,
        served[0].key_bytes + served[0].key_bytes / 64
    );
    assert!(c.log_text(1).contains("sent this party's share of model"));
    // An entry whose column does not fit its configuration is refused at the serving party,
    // naming both lengths (and the owner's reveal refuses it too).
    let mut short = party::model_file::stgcn_column(&model);
    short.pop();
    let n = short.len();
    let bad = store_shared_column(&c, "alice", short, &model.config_json().unwrap());
    let lengths = format!(
        "model column has {n} values, the configuration's tensors take {}",
        n + 1
    );
    assert_refused(
        deploy::deploy(&mut a0, &mut a1, bad, "bad", ServeAt::P0, None).await,
        ErrorCode::BadRequest,
        &lengths,
    );
    match deploy::reveal(&mut a0, &mut a1, bad).await {
        Err(ClientError::ModelFile(e)) => assert!(e.to_string().contains(&lengths), "{e}"),
        other => panic!("{other:?}"),
    }
    // The name is taken now.
    assert_refused(
        deploy::deploy(&mut a0, &mut a1, job, "net", ServeAt::P0, None).await,
        ErrorCode::BadRequest,
        "served already",
    );

    // `party reveal --job J --out DIR/NAME` writes the model files.
    let out = tmp.path().join("revealed/net");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let printed = run_ok(Command::new(PARTY).args([
        "reveal",
        "--p0",
        &c.client[0].to_string(),
        "--p0-cert",
        c.cert(0).to_str().unwrap(),
        "--p1",
        &c.client[1].to_string(),
        "--p1-cert",
        c.cert(1).to_str().unwrap(),
        "--token",
        ALICE,
        "--job",
        &job.to_string(),
        "--out",
        out.to_str().unwrap(),
    ]));
    assert!(printed.contains("net.safetensors"), "{printed}");
    let back = StGcn::from_json_and_safetensors(
        &std::fs::read_to_string(out.with_extension("json")).unwrap(),
        &std::fs::read(out.with_extension("safetensors")).unwrap(),
    )
    .unwrap();
    assert_tensors_close(&back, &model);
    // The library reveal gives the same model; bob gets nothing.
    match deploy::reveal(&mut a0, &mut a1, job).await.unwrap() {
        Revealed::Stgcn(m) => assert_tensors_close(&m, &model),
        other => panic!("{other:?}"),
    }
    assert_refused(
        deploy::reveal(&mut b0, &mut b1, job).await,
        ErrorCode::Forbidden,
        "not your model",
    );

    // P0 restarts: the deployed model is served again, with the same announcement.
    c.kill9(0);
    c.start(0);
    c.wait_linked(2);
    let mut ic = InferClient::new(c.client(0, BOB).await.unwrap());
    assert_eq!(ic.list_models().await.unwrap(), vec!["net".to_string()]);
    assert_eq!(ic.model_info("net").await.unwrap(), info);
    assert!(c.log_text(0).contains("serving deployed model \"net\""));
}

/// The test plays P0 on P1's peer link (P0's identity, P0's peer port, P0 stopped): P1 sends
/// its share only for the exact spec the owner authorized at P1, naming P0 as serving, once; a
/// forged request, another name, a spec serving P1 and a replay get `Refused` and no share.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p1_releases_its_share_only_under_the_owners_authorization_once() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Cluster::with_sections(tmp.path(), 30, 1 << 30, ["", INFERENCE]);
    let model = tiny_stgcn::model();
    let job = store_shared_model(&c, "alice", &model);
    c.kill9(0);
    let me = Identity::load(&c.dir.join("p0")).unwrap();
    let p1_cert = PeerCert::load(&c.cert(1)).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], c.peer_port));
    let opts = transport::TransportOptions::default();
    let l = transport::listen(TransportKind::TlsTcp, addr, me, &[p1_cert], &opts)
        .await
        .unwrap();
    let link = l.accept().await.unwrap();
    let mut to_p1 = link.next_channel().await.unwrap();
    let _from_p1 = link.next_channel().await.unwrap();
    let spec = DeploySpec {
        deploy: EntryId::random(),
        job,
        name: "net".into(),
        serve: ServeAt::P0,
        packing: None,
    };
    // Forged: the owner authorized nothing at P1.
    let refused = |r: PeerReply, text: &str| match r {
        PeerReply::Refused(why) => assert!(why.contains(text), "{why:?} lacks {text:?}"),
        other => panic!("P1 answered {other:?}"),
    };
    refused(ask(&mut to_p1, spec.clone()).await, "no authorization");
    // Alice authorizes at P1 (her own connection); P0 asks for another name, then with the
    // serving party changed.
    let mut a1 = c.client(1, ALICE).await.unwrap();
    let r = a1
        .request(&ClientRequest::Deploy(spec.clone()))
        .await
        .unwrap();
    assert_eq!(
        r,
        Reply::DeployAuthorized {
            deploy: spec.deploy
        }
    );
    let other_name = DeploySpec {
        name: "other".into(),
        ..spec.clone()
    };
    refused(ask(&mut to_p1, other_name).await, "was authorized as");
    let both = DeploySpec {
        serve: ServeAt::Both,
        ..spec.clone()
    };
    refused(ask(&mut to_p1, both).await, "was authorized as");
    // The exact spec: P1's share, which with P0's reconstructs the model.
    let n = party::model_file::column_len(&model) as u64;
    match ask(&mut to_p1, spec.clone()).await {
        PeerReply::DeployShare {
            rows,
            cols,
            frac_bits,
        } => assert_eq!((rows, cols, frac_bits.get()), (n, 1, FRAC_BITS)),
        other => panic!("P1 answered {other:?}"),
    }
    let s1 = to_p1.recv_ring(n as usize, 1).await.unwrap();
    let p0_store = Store::open(&c.dir.join("p0/data")).unwrap();
    let s0 = p0_store.load_share(&p0_store.get(&job).unwrap()).unwrap();
    let w = mpc::FixedPoint::new(frac_bits())
        .decode_matrix(&mpc::share::reconstruct(&s0, &mpc::Share::from_ring(s1)).view());
    let col: Vec<f64> = w.iter().copied().collect();
    let back = party::model_file::stgcn_from_column(&model.config_json().unwrap(), &col).unwrap();
    assert_tensors_close(&back, &model);
    // Replayed: refused.
    refused(ask(&mut to_p1, spec.clone()).await, "no authorization");
    // An authorization of P1 serving gives P0 nothing.
    let p1_serves = DeploySpec {
        deploy: EntryId::random(),
        serve: ServeAt::P1,
        ..spec.clone()
    };
    let r = a1
        .request(&ClientRequest::Deploy(p1_serves.clone()))
        .await
        .unwrap();
    assert_eq!(
        r,
        Reply::DeployAuthorized {
            deploy: p1_serves.deploy
        }
    );
    refused(ask(&mut to_p1, p1_serves).await, "P0 gets no share");
    // Bob cannot start alice's deployment at P1.
    let mut b1 = c.client(1, BOB).await.unwrap();
    assert_refused(
        b1.request(&ClientRequest::DeployStart {
            deploy: spec.deploy,
        })
        .await,
        ErrorCode::Forbidden,
        "no authorization",
    );
    assert!(c
        .log_text(1)
        .contains("refused the peer's request for a deployment share"));
}

/// `party deploy --serve both`: each party receives the other's share and serves the model;
/// `he-infer --model net` against P1 agrees with the model files `party reveal` wrote
/// (`--check`), within the tolerance of the announced flood.
#[test]
fn party_deploy_serves_at_both_and_he_infer_queries_the_deployed_model() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::with_sections(tmp.path(), 30, 1 << 30, [INFERENCE, INFERENCE]);
    let model = tiny_stgcn::model();
    let job = store_shared_model(&c, "alice", &model).to_string();
    let conn = c.conn_args(ALICE);
    let out = run_ok(
        Command::new(PARTY)
            .arg("deploy")
            .args(&conn)
            .args(["--job", &job, "--name", "net", "--serve", "both"]),
    );
    assert!(
        out.contains("P0 serves \"net\"") && out.contains("P1 serves \"net\""),
        "{out}"
    );
    let files = tmp.path().join("net");
    run_ok(Command::new(PARTY).arg("reveal").args(&conn).args([
        "--job",
        &job,
        "--out",
        files.to_str().unwrap(),
    ]));
    // The clip as CSV: one line per frame, joint-major x,y,z.
    let x = sample(3);
    let (ch, t, v, _) = SHAPE;
    let mut csv = String::new();
    for ti in 0..t {
        let row: Vec<String> = (0..v)
            .flat_map(|vi| (0..ch).map(move |ci| (ci, vi)))
            .map(|(ci, vi)| format!("{:.17e}", x[[ci, ti, vi, 0]]))
            .collect();
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    let input = tmp.path().join("clip.csv");
    std::fs::write(&input, csv).unwrap();
    let out = run_ok(Command::new(env!("CARGO_BIN_EXE_he-infer")).args([
        "--server",
        &c.client[1].to_string(),
        "--server-cert",
        c.cert(1).to_str().unwrap(),
        "--token",
        ALICE,
        "--model",
        "net",
        "--input",
        input.to_str().unwrap(),
        "--check",
        files.with_extension("json").to_str().unwrap(),
    ]));
    assert!(
        out.contains("preset N14_L4_S40_Q50_P3x50_D2_128BIT"),
        "{out}"
    );
    assert!(out.contains(": agrees"), "{out}");
    // The number right after `after` (up to white space or ';').
    let number = |after: &str| -> f64 {
        out.split(after)
            .nth(1)
            .and_then(|r| r.split([';', ' ', '\n']).next())
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no number after {after:?} in {out}"))
    };
    let sd = number("logit error of sd ");
    let err = number("max |logit error| = ");
    assert!(sd > 0.0 && sd <= 5e-5 && err <= 1e-6 + 8.0 * sd, "{out}");
    let best = infer::top_k(&plain_logits(&model, &x), 1)[0];
    let names = tiny_stgcn::CLASSES;
    assert!(out.contains(&format!("1. {}", names[best])), "{out}");
    for id in 0..2 {
        assert!(c.log_text(id).contains("sent this party's share of model"));
        assert!(c.log_text(id).contains("serving model \"net\" (deployed)"));
    }
}

/// The committed Mocap-15 poly model (STGCN-3-128 / 4) as a shared entry: `party reveal`
/// writes files that load to the same tensors within half a fixed-point unit.
#[test]
fn reveal_writes_the_committed_mocap15_model_in_the_inference_format() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::new(tmp.path(), 30, 1 << 30);
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../experiments/models/mocap15-stgcn3x128-d4-poly");
    let model = party::model_file::read_files(&base).unwrap();
    let job = store_shared_model(&c, "alice", &model).to_string();
    let out = tmp.path().join("mocap15");
    run_ok(Command::new(PARTY).args([
        "reveal",
        "--p0",
        &c.client[0].to_string(),
        "--p0-cert",
        c.cert(0).to_str().unwrap(),
        "--p1",
        &c.client[1].to_string(),
        "--p1-cert",
        c.cert(1).to_str().unwrap(),
        "--token",
        ALICE,
        &job,
        "--out",
        out.to_str().unwrap(),
    ]));
    let back = party::model_file::read_files(&out).unwrap();
    assert_tensors_close(&back, &model);
    assert_eq!(back.config_json().unwrap(), model.config_json().unwrap());
}

/// Deploying the committed Mocap-15 poly model (STGCN-3-128 / 4): P0 compiles it under the
/// parameters it tailors to the model (depth 14: `N15_L14_S40_Q50_P5x50_D3_128BIT`) and announces them (the
/// weights are encoded lazily per request, so this takes well under a second; no inference is
/// run: minutes at N = 2^15, see `he_infer.rs`). The time the deployment took is printed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploying_the_committed_mocap15_model_compiles_it_at_n15() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Cluster::with_sections(tmp.path(), 120, 1 << 30, [INFERENCE, ""]);
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../experiments/models/mocap15-stgcn3x128-d4-poly");
    let model = party::model_file::read_files(&base).unwrap();
    let job = store_shared_model(&c, "alice", &model);
    let (mut a0, mut a1) = clients(&c, ALICE).await;
    let t0 = std::time::Instant::now();
    let served = deploy::deploy(&mut a0, &mut a1, job, "mocap15", ServeAt::P0, None)
        .await
        .unwrap();
    eprintln!("deployed in {:.2}s: {served:?}", t0.elapsed().as_secs_f64());
    assert_eq!(served[0].preset, "N15_L14_S40_Q50_P5x50_D3_128BIT");
    let info = InferClient::new(c.client(0, BOB).await.unwrap())
        .model_info("mocap15")
        .await
        .unwrap();
    assert_eq!(info.class_names, model.config().class_names);
}
