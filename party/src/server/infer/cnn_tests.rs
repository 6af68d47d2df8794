//! Tests of CNN models at the inference endpoint: detection of the model kind, compilation in
//! the LoLa, batch and matrix layouts and what is announced, the checks of announced and received input
//! ciphertexts (count, size, level), and one request through the service on a `Local` channel.

use super::tests::{ask, refusal, tiny_limits, tiny_model};
use super::*;
use crate::infer::client::send_object;
use crate::infer::{params_for, InferError};
use crate::proto::{decode, ClientRequest, MAX_CONTROL_FRAME};
use crate::server::config::ServedModelConfig;
use ckks::KeyGenerator;

/// The committed CryptoNets model (`experiments/models/cnn`).
fn cryptonets() -> ml::models::cnn::CnnModel {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/models/cnn");
    let json = std::fs::read_to_string(dir.join("mnist-cryptonets.json")).unwrap();
    let w = std::fs::read(dir.join("mnist-cryptonets.safetensors")).unwrap();
    ml::models::cnn::CnnModel::from_json_and_safetensors(&json, &w).unwrap()
}

/// A CNN is detected from its file, compiled in the LoLa layout at the smallest preset of
/// depth 5 with the layout's Galois keys only, announced with its architecture, and requests
/// of the wrong count or size are refused naming the limit; a layout it does not know and an
/// ST-GCN with a CNN layout are refused at start.
#[test]
fn cnn_models_are_served_in_the_lola_layout_and_their_inputs_checked() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/models");
    let read = |p: &str| std::fs::read_to_string(dir.join(p)).unwrap();
    let p = std::path::Path::new("m.json");
    assert_eq!(
        ModelKind::detect(&read("cnn/mnist-cryptonets.json"), p).unwrap(),
        ModelKind::Cnn
    );
    assert_eq!(
        ModelKind::detect(&read("bodypose-stgcn3x128-d4-square.json"), p).unwrap(),
        ModelKind::Stgcn
    );
    let e = ModelKind::detect("{\"side\": 28}", p)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("m.json: neither an ST-GCN") && e.contains("fields: side"),
        "{e}"
    );

    let model = cryptonets();
    let mut sc = ServedModelConfig {
        name: "digits".into(),
        path: "unused.json".into(),
        packing: "ama".into(),
        layout: None,
        preset: None,
    };
    let m = ServedModel::new_cnn(&sc, &model, &tiny_limits()).unwrap();
    assert_eq!(m.info.preset, "N14_L7_S40_128BIT");
    let cnn = m.info.cnn.clone().expect("the architecture is announced");
    assert_eq!(cnn.layout, hecnn::LayoutKind::Lola);
    assert_eq!(cnn.spec, model.spec);
    assert_eq!(m.input_cts(), 25);
    assert_eq!((m.info.input_level, m.info.output_level), (5, 0));
    assert_eq!(m.galois_key_count(), m.info.rotation_steps.len());
    assert_eq!(m.info.class_names[7], "7");
    params_for(&m.info).unwrap();
    // A client that does not know `cnn` sees a zero-slot ST-GCN layout and refuses it.
    let mut old = m.info.clone();
    old.cnn = None;
    assert!(matches!(
        params_for(&old),
        Err(InferError::BadInfo {
            what: "layout slots",
            ..
        })
    ));
    let Refusal(code, msg) = check_inputs(&m, &[100; 24]).unwrap_err();
    assert_eq!(code, ErrorCode::BadRequest);
    assert!(
        msg.contains("24 input ciphertexts announced, model \"digits\" takes 25"),
        "{msg}"
    );
    let limit = max_ciphertext_bytes(m.params());
    let mut lens = vec![100; 25];
    lens[3] = limit + 1;
    let Refusal(code, msg) = check_inputs(&m, &lens).unwrap_err();
    assert_eq!(code, ErrorCode::Limit);
    assert!(
        msg.contains(&format!("input ciphertext 3: {} bytes", limit + 1)),
        "{msg}"
    );
    assert!(check_inputs(&m, &[100; 25]).is_ok());

    // The batch layout: one ciphertext per pixel, no Galois keys, logits at level 0.
    sc.layout = Some("cryptonets".into());
    let b = ServedModel::new_cnn(&sc, &model, &tiny_limits()).unwrap();
    assert_eq!(
        b.info.cnn.as_ref().unwrap().layout,
        hecnn::LayoutKind::Batch
    );
    assert_eq!(b.input_cts(), 784);
    assert!(b.info.rotation_steps.is_empty() && b.galois_key_count() == 0);
    assert!(b.key_bytes() < m.key_bytes());
    params_for(&b.info).unwrap();
    let Refusal(_, msg) = check_inputs(&b, &[100; 25]).unwrap_err();
    assert!(msg.contains("takes 784"), "{msg}");

    // The matrix layout: one ciphertext per batch of 8, its rotations' Galois keys.
    sc.layout = Some("matrix".into());
    let x = ServedModel::new_cnn(&sc, &model, &tiny_limits()).unwrap();
    assert_eq!(
        x.info.cnn.as_ref().unwrap().layout,
        hecnn::LayoutKind::Matrix
    );
    assert_eq!((x.input_cts(), x.info.rotation_steps.len()), (1, 65));
    assert_eq!((x.info.input_level, x.info.output_level), (5, 0));
    params_for(&x.info).unwrap();
    let Refusal(_, msg) = check_inputs(&x, &[100; 25]).unwrap_err();
    assert!(msg.contains("takes 1"), "{msg}");

    sc.layout = Some("tiles".into());
    let e = ServedModel::new_cnn(&sc, &model, &tiny_limits())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(
            "unknown CNN layout \"tiles\" (served: lola, cryptonets (or batch), matrix, auto)"
        ),
        "{e}"
    );
    sc.layout = Some("lola".into());
    let e = ServedModel::new(&sc, &tiny_model(4), &tiny_limits())
        .unwrap_err()
        .to_string();
    assert!(e.contains("layout = \"lola\" is for CNN models"), "{e}");
}

/// One LoLa request through the service: input ciphertexts one level below the model's input
/// level, or not ciphertexts at all, are refused naming the ciphertext and the level; then a
/// correct request returns logits whose top class is the plaintext model's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cnn_inputs_at_the_wrong_level_are_refused_and_right_ones_answered() {
    let model = cryptonets();
    let sc = ServedModelConfig {
        name: "digits".into(),
        path: "unused.json".into(),
        packing: "ama".into(),
        layout: None,
        preset: None,
    };
    let m = ServedModel::new_cnn(&sc, &model, &tiny_limits()).unwrap();
    let info = m.info.clone();
    let params = m.params().clone();
    let svc = Arc::new(
        InferenceService::with_models(&tiny_limits(), vec![m], Duration::from_secs(30)).unwrap(),
    );
    let (client, mut server) = mpc::net::mem_pair();
    let s2 = svc.clone();
    tokio::spawn(async move {
        while let Ok(f) = server.recv_frame(MAX_CONTROL_FRAME).await {
            match decode::<ClientRequest>(&f, MAX_CONTROL_FRAME).unwrap() {
                ClientRequest::Inference(r) => s2.handle(&mut server, "alice", r).await.unwrap(),
                other => panic!("{other:?}"),
            }
        }
    });
    let sk = Arc::new(KeyGenerator::new(&params).secret_key());
    let keys = crate::infer::generate_keys(&params, sk.clone(), &info.rotation_keys(), 0).unwrap();
    let mut c = crate::infer::client::InferClient::new(crate::infer::client::Local(client));
    let (session, _) = c.open_session("digits", keys).await.unwrap();
    let image = datasets::mnist::load_bundled(datasets::mnist::Split::Test)
        .unwrap()
        .head(1)
        .images_f64();
    let good = crate::infer::cnn::encrypt_images(&info, &params, &sk, image.view()).unwrap();
    let low = {
        let ct = ckks::Ciphertext::from_bytes(&good[0], &params).unwrap();
        let ct = Evaluator::new(&params).drop_level(&ct).unwrap();
        ct.to_bytes(&params).unwrap()
    };
    for (cts, want) in [
        (vec![low; 25], "input ciphertext 0: level 4 scale"),
        (vec![vec![7u8; 64]; 25], "input ciphertext 0: "),
    ] {
        let ch = &mut c.client().0;
        let lens = cts.iter().map(|b| b.len() as u64).collect();
        let r = ask(
            ch,
            InferRequest::Infer {
                session,
                ct_lens: lens,
            },
        )
        .await;
        assert_eq!(r, Reply::Inference(InferReply::Ready));
        for b in &cts {
            send_object(ch, b).await.unwrap();
        }
        ch.flush().await.unwrap();
        let (code, msg) = refusal(ch.recv::<Reply>(MAX_CONTROL_FRAME).await.unwrap());
        assert_eq!(code, ErrorCode::BadRequest, "{msg}");
        assert!(msg.contains(want), "{msg:?} lacks {want:?}");
        assert!(
            !want.contains("level") || msg.contains("the model takes level 5"),
            "{msg}"
        );
    }
    let limit = crate::infer::max_ciphertext_bytes(&params);
    let r = c.infer(session, &good, limit).await.unwrap();
    let got =
        crate::infer::cnn::decrypt_logits(&info, &params, &sk, &r.cts, &r.positions, 1).unwrap();
    let want = model.logits(image.view()).unwrap();
    let top = |v: &[f64]| crate::infer::top_k(v, 1)[0];
    assert_eq!(top(&got[0]), top(want.row(0).as_slice().unwrap()));
}

/// `layout = "auto"`: the planner's choice for latency (the single-image layout for the
/// CryptoNets network), compiled with the splits it chose and announced with their rotation
/// steps; a preset beside it is refused.
#[test]
fn the_auto_layout_serves_the_planners_choice() {
    let model = cryptonets();
    let mut sc = ServedModelConfig {
        name: "digits".into(),
        path: "unused.json".into(),
        packing: "ama".into(),
        layout: Some("auto".into()),
        preset: None,
    };
    let m = ServedModel::new_cnn(&sc, &model, &tiny_limits()).unwrap();
    let cnn = m.info.cnn.clone().expect("the architecture is announced");
    assert_eq!(cnn.layout, hecnn::LayoutKind::Lola);
    assert_eq!(m.info.preset, "N14_L7_S40_128BIT");
    let params = ckks::presets::N14_L7_S40_128BIT.build().unwrap();
    let steps_of = |s: [usize; 2]| {
        hecnn::LolaCnn::with_splits(&model, &params, s)
            .unwrap()
            .rotation_steps()
    };
    let plan = hecnn::LolaPlan::new(&model, &params).unwrap();
    let [c1, c2] = plan.split_choices();
    let announced = &m.info.rotation_steps;
    assert!(
        c1.iter()
            .any(|&a| c2.iter().any(|&b| steps_of([a, b]) == *announced)),
        "announced steps {announced:?} are those of some split"
    );
    sc.preset = Some("N14_L7_S40_128BIT".into());
    let e = ServedModel::new_cnn(&sc, &model, &tiny_limits())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("auto") && e.contains("preset"), "{e}");
}
