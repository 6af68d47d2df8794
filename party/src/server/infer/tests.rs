//! Tests of the encrypted-inference endpoint: packing, announced parameters, key and
//! session checks, expiry, the plaintext cache budget and the sanitized replies.

use super::*;
use crate::infer::{encrypt_input, params_for, InferError};
use crate::proto::{decode, ClientRequest, MAX_CONTROL_FRAME};
use crate::server::config::ServedModelConfig;
use ckks::KeyGenerator;
use hegcn::PackedTensor;
use ndarray::Array4;
use rand::{Rng, SeedableRng};
use stgcn::{spatial_partition, Architecture, InputNorm, StGcn, StGcnConfig};

/// Two blocks of widths 1, 2, V = 5, T = 4, C = 3, all activations pruned: depth 4 (the four
/// maps fused in pairs, `hegcn::open_maps`, + head), served under the tailored
/// `N14_L4_S40_Q50_P3x50_D2_128BIT` (or the named `preset`).
fn tiny() -> (ServedModel, InferenceConfig) {
    tiny_at(None)
}

fn tiny_at(preset: Option<&str>) -> (ServedModel, InferenceConfig) {
    let model = tiny_model(4);
    let limits = tiny_limits();
    let sc = ServedModelConfig {
        name: "tiny".into(),
        path: "unused.json".into(),
        packing: "ama".into(),
        layout: None,
        preset: preset.map(str::to_string),
    };
    (ServedModel::new(&sc, &model, &limits).unwrap(), limits)
}

/// The tiny two-block model of `tiny` with `t` frames.
pub(super) fn tiny_model(t: usize) -> StGcn {
    let (c, v) = (3, 5);
    let edges: Vec<(usize, usize)> = (0..v - 1).map(|i| (i, i + 1)).collect();
    let a = spatial_partition(v, &edges, 1).unwrap();
    let mut cfg = StGcnConfig::new(Architecture::Stgcn3x128, 64, c, t, &a, 3);
    // Two blocks: depth 2 (four maps fused in pairs) + 2 (dense layer and logit mask) = 4
    // fits N = 2^14 (6 with one level per map, as a single pose is served densely).
    cfg.architecture = None;
    cfg.blocks.truncate(2);
    cfg.activation_mask.truncate(2);
    let all: Vec<usize> = (0..v).collect();
    for b in 0..2 {
        for s in 0..2 {
            cfg.prune(b, s, &all).unwrap();
        }
    }
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    cfg.input_norm = Some(InputNorm {
        mean: vec![(0..v).map(|_| rng.gen_range(-0.5..0.5)).collect(); c],
        std: vec![(0..v).map(|_| rng.gen_range(0.5..2.0)).collect(); c],
    });
    StGcn::new(cfg, 3).unwrap()
}

pub(super) fn tiny_limits() -> InferenceConfig {
    InferenceConfig {
        models: vec![],
        max_key_bytes: Some(1 << 30),
        max_key_uploads: 2,
        max_key_uploads_per_client: 1,
        max_sessions_per_client: 1,
        max_sessions: 2,
        session_ttl_s: 60,
        max_concurrent_inferences: 1,
        plaintext_cache_mib: 1,
        lockstep_mib: 64,
        flood_bits: 0,
        eval_error_bound: hegcn::DEFAULT_EVAL_ERROR_BOUND,
    }
}

/// A one-frame, one-person model is served in the dense layout: one input ciphertext, the
/// dense plan's keys only (steps 1, 2, ±B for B in P, P/2, P/4 and the node sum's `P·2^i`),
/// each at the highest level it is used at (the node sum's at level 1), a layout older
/// clients refuse, and replies that decrypt to the plaintext logits within the flood.
#[test]
fn single_pose_models_are_served_densely() {
    let model = tiny_model(1);
    let sc = ServedModelConfig {
        name: "pose".into(),
        path: "unused.json".into(),
        packing: "ama".into(),
        layout: None,
        preset: None,
    };
    let m = ServedModel::new(&sc, &model, &tiny_limits()).unwrap();
    assert!(m.is_dense());
    assert_eq!(m.input_cts(), 1);
    let d = m.info.dense.clone().expect("the dense layout is announced");
    let p = d.node_stride as i64;
    assert!(!m.info.rotation_steps.is_empty());
    let mut planned = vec![1, 2, p, -p, p / 2, -p / 2, p / 4, -p / 4];
    planned.extend((0..).map(|i| p << i).take_while(|&s| s < d.period as i64));
    assert!(m.info.rotation_steps.iter().all(|s| planned.contains(s)));
    let keys = m.info.rotation_keys();
    assert_eq!(keys.len(), m.info.rotation_steps.len());
    assert!(keys.iter().all(|&(_, l)| l <= m.info.input_level as usize));
    assert!(
        keys.iter().any(|&(s, l)| s > p && l == 1),
        "the node sum's keys are used at level 1 only: {keys:?}"
    );
    params_for(&m.info).expect("the client accepts the announcement");
    // A client that does not know `dense` sees a zero-slot layout and refuses it.
    let mut old = m.info.clone();
    old.dense = None;
    assert!(matches!(
        params_for(&old),
        Err(InferError::BadInfo {
            what: "layout slots",
            ..
        })
    ));
    // An input repeat beyond the node stride (or below the channels) is refused.
    for r in [2 * d.node_stride, d.channels.next_power_of_two() / 2] {
        let mut bad = m.info.clone();
        bad.dense.as_mut().expect("dense").input_repeat = r;
        assert!(
            matches!(params_for(&bad), Err(InferError::BadInfo { found, .. }) if found == r as u64),
            "input repeat {r}"
        );
    }
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(5);
    let x = Array4::from_shape_fn((3, 1, 5, 1), |_| rng.gen_range(-1.0..1.0));
    assert_reply_matches_plaintext(&m, &model, &x);
    // A request with two ciphertexts is refused before any byte moves.
    assert!(check_inputs(&m, &[100, 100]).is_err());
}

#[test]
fn client_packing_equals_hegcn_input_encryption() {
    let (m, _) = tiny();
    assert_eq!(m.info.preset, "N14_L4_S40_Q50_P3x50_D2_128BIT");
    assert_eq!((m.info.input_level, m.info.output_level), (4, 0));
    assert!(m.galois_key_count() > 0);
    let params = params_for(&m.info).unwrap();
    let sk = KeyGenerator::new(&params).secret_key();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(2);
    let x = Array4::from_shape_fn((3, 4, 5, 1), |_| rng.gen_range(-1.0..1.0));
    let bytes = encrypt_input(&m.info, &params, &sk, x.view()).unwrap();
    let cts = bytes
        .iter()
        .map(|b| {
            let c = Ciphertext::from_bytes(b, &params).unwrap();
            assert!(c.is_seeded(), "symmetric encryption keeps the seeded form");
            c
        })
        .collect();
    let packed = PackedTensor {
        cts,
        layout: m.stgcn().input_layout().clone(),
    };
    let dec = m.stgcn().decrypt_tensor(&sk, &packed).unwrap();
    let (scale, shift) = m.info.input_affine.clone().unwrap();
    let err = dec
        .indexed_iter()
        .map(|((c, t, v, p), &d)| {
            let want = scale[c * 5 + v] * x[[c, t, v, p]] + shift[c * 5 + v];
            (d - want).abs()
        })
        .fold(0.0, f64::max);
    assert!(err < 1e-6, "packing error {err}");
    // A sample of the wrong shape is refused.
    let y = Array4::zeros((3, 4, 6, 1));
    assert!(matches!(
        encrypt_input(&m.info, &params, &sk, y.view()),
        Err(InferError::Shape {
            what: "joints V",
            expected: 5,
            found: 6
        })
    ));
}

/// By default a model is served under the parameters tailored to it (exactly its depth, smaller
/// keys than the preset with spare levels), announced as a spec the client rebuilds; a named
/// preset is served as before, without a spec.
#[test]
fn served_models_get_tailored_parameters_unless_a_preset_is_named() {
    let (tailored, _) = tiny();
    let (named, _) = tiny_at(Some("N14_L7_S40_128BIT"));
    let spec = tailored
        .info
        .params
        .expect("a tailored set travels as a spec");
    assert_eq!((spec.log_n, spec.levels), (14, 4));
    assert_eq!(tailored.info.preset, spec.name());
    assert_eq!(named.info.params, None);
    assert_eq!(named.info.preset, "N14_L7_S40_128BIT");
    // Same rotations, so the same number of Galois keys, each smaller.
    assert_eq!(tailored.info.rotation_steps, named.info.rotation_steps);
    assert!(tailored.key_bytes() < named.key_bytes());
    let params = params_for(&tailored.info).unwrap();
    assert_eq!(params.q_primes(), tailored.info.q_primes);
    assert_eq!(params.max_level(), 4);
    assert!(params_for(&named.info).is_ok());
}

#[test]
fn clients_refuse_announced_parameters_that_do_not_match_their_preset() {
    let (m, _) = tiny();
    let mut i = m.info.clone();
    i.preset = "INSECURE_N10_L4_S40_TEST_ONLY".into();
    assert!(matches!(
        params_for(&i),
        Err(InferError::UnknownPreset { .. })
    ));
    let mut i = m.info.clone();
    i.q_primes[2] += 2;
    assert!(matches!(params_for(&i), Err(InferError::BadInfo { .. })));
    let mut i = m.info.clone();
    i.input_layout.slots *= 2;
    assert!(matches!(
        params_for(&i),
        Err(InferError::BadInfo {
            what: "layout slots",
            ..
        })
    ));
    let mut i = m.info.clone();
    i.input_layout.block = 0;
    assert!(params_for(&i).is_err());
    let mut i = m.info.clone();
    i.input_layout.frames = 1 << 20;
    assert!(params_for(&i).is_err());
    let mut i = m.info.clone();
    i.input_affine = Some((vec![1.0; 3], vec![0.0; 3]));
    assert!(params_for(&i).is_err());
    // A tailored spec: its name must match, the client's builder refuses one above the
    // 128-bit bound (the same chain at N = 2^13), and the announced chain must be the spec's.
    let mut i = m.info.clone();
    i.preset = "N14_L7_S40_128BIT".into();
    assert!(matches!(
        params_for(&i),
        Err(InferError::UnknownPreset { .. })
    ));
    let mut i = m.info.clone();
    let mut spec = i.params.unwrap();
    spec.log_n = 13;
    i.params = Some(spec);
    i.preset = spec.name();
    assert!(matches!(
        params_for(&i),
        Err(InferError::Ckks(ckks::CkksError::InsecureParameters { .. }))
    ));
    let mut i = m.info.clone();
    let mut spec = i.params.unwrap();
    (spec.special_primes, spec.dnum) = (1, 5);
    i.params = Some(spec);
    i.preset = spec.name();
    assert!(matches!(params_for(&i), Err(InferError::BadInfo { .. })));
}

pub(super) async fn ask<C: Channel>(ch: &mut C, r: InferRequest) -> Reply {
    ch.send(&ClientRequest::Inference(r)).await.unwrap();
    ch.flush().await.unwrap();
    ch.recv::<Reply>(MAX_CONTROL_FRAME).await.unwrap()
}

pub(super) fn refusal(r: Reply) -> (ErrorCode, String) {
    match r {
        Reply::Error { code, message } => (code, message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// The session's Galois keys must be exactly the model's: extra or missing elements are
/// refused after the announced bytes are read, and the connection stays usable. A complete
/// upload opens a session, which expires once idle longer than `session_ttl_s` (0 here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn galois_keys_must_match_the_model_and_idle_sessions_expire() {
    let (m, mut limits) = tiny();
    limits.session_ttl_s = 0;
    let params = m.stgcn().params().clone();
    let steps = m.info.rotation_steps.clone();
    let m_keys = m.info.rotation_keys();
    let svc =
        Arc::new(InferenceService::with_models(&limits, vec![m], Duration::from_secs(30)).unwrap());
    let (mut client, mut server) = mpc::net::mem_pair();
    let s2 = svc.clone();
    let srv = tokio::spawn(async move {
        loop {
            let Ok(f) = server.recv_frame(MAX_CONTROL_FRAME).await else {
                return;
            };
            match decode::<ClientRequest>(&f, MAX_CONTROL_FRAME).unwrap() {
                ClientRequest::Inference(r) => s2.handle(&mut server, "alice", r).await.unwrap(),
                other => panic!("{other:?}"),
            }
        }
    });
    let mut kg = KeyGenerator::new(&params);
    let sk = kg.secret_key();
    let relin = kg.relin_key(&sk).unwrap().to_bytes(&params).unwrap();
    // A step the model does not rotate by.
    let unused = (1..params.slots() as i64)
        .find(|s| !steps.contains(s))
        .unwrap();
    let extra = kg
        .galois_keys(&sk, &[unused], false)
        .unwrap()
        .to_bytes(&params)
        .unwrap();
    // The public key at the output level (level 0), and one at the top level (refused).
    let pk_top = kg.public_key(&sk).unwrap();
    let pk0 = pk_top.at_level(0).unwrap().to_bytes().unwrap();
    let pk_top = pk_top.to_bytes().unwrap();
    // Every key the model needs, the first one restricted a level below what it is used at.
    let rot_keys = m_keys.clone();
    let mut low = vec![relin.clone()];
    for (i, &(s, level)) in rot_keys.iter().enumerate() {
        let at = if i == 0 { level - 1 } else { level };
        let g = kg.galois_keys_at_level(&sk, &[s], false, at).unwrap();
        low.push(g.to_bytes(&params).unwrap());
    }
    for (objects, pk, want) in [
        (low, &pk0, "switches at levels up to"),
        (vec![relin.clone(), extra], &pk0, "is not used by model"),
        (vec![relin.clone()], &pk0, "no Galois key for element"),
        (vec![extra_garbage()], &pk0, "relinearization key"),
        (vec![relin.clone()], &extra_garbage(), "public key: "),
    ] {
        let key_lens = objects.iter().map(|o| o.len() as u64).collect();
        let r = ask(
            &mut client,
            InferRequest::OpenSession {
                model: "tiny".into(),
                key_lens,
                public_key_len: pk.len() as u64,
            },
        )
        .await;
        assert_eq!(r, Reply::Inference(InferReply::Ready));
        for o in &objects {
            send_object(&mut client, o).await.unwrap();
        }
        send_object(&mut client, pk).await.unwrap();
        client.flush().await.unwrap();
        let (code, msg) = refusal(client.recv::<Reply>(MAX_CONTROL_FRAME).await.unwrap());
        assert_eq!(code, ErrorCode::BadRequest, "{msg}");
        assert!(msg.contains(want), "{msg:?} lacks {want:?}");
    }
    // Announcements the model cannot take are refused before any byte moves.
    let (code, msg) = refusal(
        ask(
            &mut client,
            InferRequest::OpenSession {
                model: "tiny".into(),
                key_lens: vec![10; steps.len() + 5],
                public_key_len: 10,
            },
        )
        .await,
    );
    assert_eq!(code, ErrorCode::BadRequest, "{msg}");
    let (code, msg) = refusal(
        ask(
            &mut client,
            InferRequest::OpenSession {
                model: "tiny".into(),
                key_lens: vec![10],
                public_key_len: pk_top.len() as u64,
            },
        )
        .await,
    );
    // A key above the output level is larger than the limit (one limb at N = 2^14).
    assert_eq!(code, ErrorCode::BadRequest, "{msg}");
    let want = format!(
        "public key of {} bytes announced, one takes 1 to 135168",
        pk_top.len()
    );
    assert!(msg.contains(&want), "{msg}");
    let (code, _) = refusal(
        ask(
            &mut client,
            InferRequest::Infer {
                session: EntryId::random(),
                ct_lens: vec![1],
            },
        )
        .await,
    );
    assert_eq!(code, ErrorCode::NotFound);
    assert_eq!(svc.session_count(), 0);
    // The complete, correct key set opens a session; with a zero TTL it is gone right after.
    let keys = crate::infer::generate_keys(&params, Arc::new(sk), &rot_keys, 0).unwrap();
    let key_lens = keys.lens.clone();
    let mut rx = keys.rx;
    let r = ask(
        &mut client,
        InferRequest::OpenSession {
            model: "tiny".into(),
            key_lens: key_lens.clone(),
            public_key_len: keys.public_key.len() as u64,
        },
    )
    .await;
    assert_eq!(r, Reply::Inference(InferReply::Ready));
    for _ in &key_lens {
        let k = rx.recv().await.unwrap().unwrap();
        send_object(&mut client, &k).await.unwrap();
    }
    send_object(&mut client, &keys.public_key).await.unwrap();
    client.flush().await.unwrap();
    let session = match client.recv::<Reply>(MAX_CONTROL_FRAME).await.unwrap() {
        Reply::Inference(InferReply::SessionOpened { session, ttl_s: 0 }) => session,
        other => panic!("{other:?}"),
    };
    std::thread::sleep(Duration::from_millis(5));
    let (code, msg) = refusal(
        ask(
            &mut client,
            InferRequest::Infer {
                session,
                ct_lens: vec![1; 5],
            },
        )
        .await,
    );
    assert_eq!(code, ErrorCode::NotFound, "{msg}");
    assert!(msg.contains("closed or expired"), "{msg}");
    let r = ask(&mut client, InferRequest::ListModels).await;
    assert_eq!(r, Reply::Inference(InferReply::Models(vec!["tiny".into()])));
    drop(client);
    srv.await.unwrap();
}

/// `plaintext_cache_mib` bounds the encoded weights of all served models together: each
/// of two models gets half, a forward pass stores no more than that, and repeats reuse it.
#[test]
fn plaintext_cache_budget_is_split_between_models_and_respected() {
    let (a, mut limits) = tiny();
    let (mut b, _) = tiny();
    b.info.name = "tiny2".into();
    limits.plaintext_cache_mib = 8;
    let svc = InferenceService::with_models(&limits, vec![a, b], Duration::from_secs(5)).unwrap();
    let share = 4 << 20;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(3);
    let x = Array4::from_shape_fn((3, 4, 5, 1), |_| rng.gen_range(-1.0..1.0));
    for m in svc.models().values() {
        let params = m.stgcn().params().clone();
        let mut kg = KeyGenerator::new(&params);
        let sk = kg.secret_key();
        let pk = kg.public_key(&sk).unwrap();
        let eval = Evaluator::new(&params)
            .with_relin_key(kg.relin_key(&sk).unwrap())
            .with_galois_keys(kg.galois_keys(&sk, &m.info.rotation_steps, false).unwrap());
        let mut first = None;
        for _ in 0..2 {
            let ct = m.stgcn().encrypt_input(&pk, x.view()).unwrap();
            let (l, _) = m.stgcn().forward(&eval, &ct).unwrap();
            let l = m.stgcn().decrypt_logits(&sk, &l).unwrap();
            let s = m.stgcn().plaintext_cache_stats();
            assert_eq!(s.budget_bytes, share, "{s:?}");
            assert!(s.bytes <= share && s.entries > 0, "{s:?}");
            assert!(s.misses > s.entries as u64, "the bound is binding: {s:?}");
            let f = *first.get_or_insert(s.entries);
            assert_eq!(s.entries, f, "nothing is added once full");
            assert!(l.iter().all(|v| v.is_finite()));
        }
    }
}

/// A server reply is masked and sanitized with the session's public key: it decrypts to the
/// logits within the announced flood (`flood_sd`, default settings), every other slot holds
/// flood noise of that spread, and two replies to the same ciphertexts differ in `c1`.
#[test]
fn server_replies_are_sanitized_with_the_session_public_key() {
    let (m, _) = tiny();
    let params = m.stgcn().params().clone();
    let mut kg = KeyGenerator::new(&params);
    let sk = kg.secret_key();
    let pk = kg.public_key(&sk).unwrap();
    let pk_out = pk.at_level(m.info.output_level as usize).unwrap();
    let eval = Evaluator::new(&params)
        .with_relin_key(kg.relin_key(&sk).unwrap())
        .with_galois_keys(kg.galois_keys(&sk, &m.info.rotation_steps, false).unwrap());
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
    let x = Array4::from_shape_fn((3, 4, 5, 1), |_| rng.gen_range(-1.0..1.0));
    let ct = m.stgcn().encrypt_input(&pk, x.view()).unwrap();
    let (plain, _) = m.stgcn().forward(&eval, &ct).unwrap();
    let want = m.stgcn().decrypt_logits(&sk, &plain).unwrap();
    let a = m.evaluate(&eval, &pk_out, ct.cts.clone()).unwrap();
    let b = m.evaluate(&eval, &pk_out, ct.cts).unwrap();
    let load = |r: &Evaluated| Ciphertext::from_bytes(&r.bytes[0], &params).unwrap();
    let (ca, cb) = (load(&a), load(&b));
    assert_ne!(ca.parts().1, cb.parts().1, "c1 must be fresh per reply");
    assert_ne!(ca.parts().1, plain.cts[0].parts().1);
    let sd = m.info.flood_sd;
    assert!(sd > 0.0 && sd < 0.05, "flood sd {sd}");
    let got = decrypt_reply(&params, &sk, &a);
    for (g, w) in got.iter().zip(&want) {
        assert!((g - w).abs() <= 8.0 * sd, "{g} vs {w} (flood sd {sd})");
    }
    let slots = ckks::Encoder::new(&params).decode(&sk.decrypt(&ca).unwrap());
    let rest: Vec<f64> = (0..slots.len())
        .filter(|&s| !a.positions.contains(&(0, s)))
        .map(|s| slots[s])
        .collect();
    let rms = (rest.iter().map(|v| v * v).sum::<f64>() / rest.len() as f64).sqrt();
    assert!(
        (0.8..1.2).contains(&(rms / sd)),
        "rms {rms} vs flood sd {sd}"
    );
    assert!(rest.iter().all(|v| v.abs() <= 8.0 * sd));
}

fn extra_garbage() -> Vec<u8> {
    vec![0xAB; 64]
}

/// A model registered while serving (a deployment) is listed and announced at once; an unset
/// `max_key_bytes` grows from 0 (no model) to what it needs, a configured one stays; a name
/// cannot be registered twice.
#[test]
fn registering_a_model_while_serving_updates_the_registry_and_the_key_bound() {
    let (m, mut limits) = tiny();
    limits.max_key_bytes = None;
    let svc = InferenceService::with_models(&limits, vec![], Duration::from_secs(5)).unwrap();
    assert!(svc.models().is_empty());
    assert_eq!(svc.max_key_bytes(), 0);
    svc.check_free("tiny").unwrap();
    let need = m.key_bytes();
    let sm = svc.register(m).unwrap();
    assert_eq!(svc.max_key_bytes(), need + need / 64);
    assert_eq!(sm.info().max_key_bytes, need + need / 64);
    assert_eq!(svc.models().keys().collect::<Vec<_>>(), ["tiny"]);
    assert!(svc
        .check_free("tiny")
        .unwrap_err()
        .contains("served already"));
    let (again, _) = tiny();
    assert!(matches!(svc.register(again), Err(InferenceError::Config(e)) if e.contains("tiny")));
    // A configured bound is kept as set.
    let (m, limits) = tiny();
    let svc = InferenceService::with_models(&limits, vec![], Duration::from_secs(5)).unwrap();
    svc.register(m).unwrap();
    assert_eq!(svc.max_key_bytes(), 1 << 30);
}

/// One request as a client makes it — keys for the announced rotations, the input packed by
/// `encrypt_input`, the reply read at its logit positions — decrypts to the plaintext model's
/// logits within 8 flood standard deviations (+1e-4 of evaluation error).
pub(super) fn assert_reply_matches_plaintext(m: &ServedModel, model: &StGcn, x: &Array4<f64>) {
    let params = params_for(&m.info).unwrap();
    let mut kg = KeyGenerator::new(&params);
    let sk = kg.secret_key();
    let pk_out = kg
        .public_key(&sk)
        .unwrap()
        .at_level(m.info.output_level as usize)
        .unwrap();
    let eval = Evaluator::new(&params)
        .with_relin_key(kg.relin_key(&sk).unwrap())
        .with_galois_keys(kg.galois_keys(&sk, &m.info.rotation_steps, false).unwrap());
    let bytes = encrypt_input(&m.info, &params, &sk, x.view()).unwrap();
    assert_eq!(bytes.len(), m.input_cts());
    let cts = bytes
        .iter()
        .map(|b| Ciphertext::from_bytes(b, &params).unwrap())
        .collect();
    let r = m.evaluate(&eval, &pk_out, cts).unwrap();
    let got = decrypt_reply(&params, &sk, &r);
    let want = model
        .fold()
        .forward(x.view().insert_axis(ndarray::Axis(0)))
        .unwrap();
    let sd = m.info.flood_sd;
    assert_eq!(got.len(), want.ncols());
    for (g, w) in got.iter().zip(want.row(0)) {
        assert!(
            (g - w).abs() <= 8.0 * sd + 1e-4,
            "{g} vs {w} (flood sd {sd})"
        );
    }
}

/// The logits of an evaluation's reply, decrypted by the client's routine at its positions.
fn decrypt_reply(params: &ckks::CkksParams, sk: &ckks::SecretKey, r: &Evaluated) -> Vec<f64> {
    let positions: Vec<(u32, u32)> = r
        .positions
        .iter()
        .map(|&(c, s)| (c as u32, s as u32))
        .collect();
    crate::infer::decrypt_logits(params, sk, &r.bytes, &positions).unwrap()
}
