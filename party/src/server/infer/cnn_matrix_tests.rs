//! One request of a CNN served in the matrix layout through the service on a `Local`
//! channel: three MNIST images in one ciphertext, their logits decrypted from one reply
//! ciphertext, each top class the plaintext model's and each logit within the flood's error.

use super::tests::tiny_limits;
use super::*;
use crate::proto::{decode, ClientRequest, MAX_CONTROL_FRAME};
use crate::server::config::ServedModelConfig;
use ckks::KeyGenerator;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_images_is_answered_in_one_ciphertext() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../experiments/models/cnn");
    let json = std::fs::read_to_string(dir.join("mnist-cryptonets-aug.json")).unwrap();
    let w = std::fs::read(dir.join("mnist-cryptonets-aug.safetensors")).unwrap();
    let model = ml::models::cnn::CnnModel::from_json_and_safetensors(&json, &w).unwrap();
    let sc = ServedModelConfig {
        name: "digits".into(),
        path: "unused.json".into(),
        packing: "ama".into(),
        layout: Some("matrix".into()),
        preset: None,
    };
    let m = ServedModel::new_cnn(&sc, &model, &tiny_limits()).unwrap();
    let (info, params) = (m.info.clone(), m.params().clone());
    let svc = Arc::new(
        InferenceService::with_models(&tiny_limits(), vec![m], Duration::from_secs(30)).unwrap(),
    );
    let (client, mut server) = mpc::net::mem_pair();
    tokio::spawn(async move {
        while let Ok(f) = server.recv_frame(MAX_CONTROL_FRAME).await {
            match decode::<ClientRequest>(&f, MAX_CONTROL_FRAME).unwrap() {
                ClientRequest::Inference(r) => svc.handle(&mut server, "alice", r).await.unwrap(),
                other => panic!("{other:?}"),
            }
        }
    });
    let sk = Arc::new(KeyGenerator::new(&params).secret_key());
    let keys = crate::infer::generate_keys(&params, sk.clone(), &info.rotation_keys(), 0).unwrap();
    let mut c = crate::infer::client::InferClient::new(crate::infer::client::Local(client));
    let (session, _) = c.open_session("digits", keys).await.unwrap();
    let x = datasets::mnist::load_bundled(datasets::mnist::Split::Test)
        .unwrap()
        .head(3)
        .images_f64();
    let cts = crate::infer::cnn::encrypt_images(&info, &params, &sk, x.view()).unwrap();
    assert_eq!(cts.len(), 1, "one ciphertext for the batch");
    let limit = crate::infer::max_ciphertext_bytes(&params);
    let r = c.infer(session, &cts, limit).await.unwrap();
    assert_eq!(r.cts.len(), 1, "one logit ciphertext for the batch");
    let got =
        crate::infer::cnn::decrypt_logits(&info, &params, &sk, &r.cts, &r.positions, 3).unwrap();
    let want = model.logits(x.view()).unwrap();
    let top = |v: &[f64]| crate::infer::top_k(v, 1)[0];
    // The evaluation error is ~1e-6; the flood's per-slot sd is info.flood_sd (~0.025).
    let tol = 1e-3 + 8.0 * info.flood_sd;
    for (g, w) in got.iter().zip(want.outer_iter()) {
        assert_eq!(top(g), top(w.as_slice().unwrap()));
        for (a, b) in g.iter().zip(w) {
            assert!((a - b).abs() < tol, "{a} vs {b} (tolerance {tol})");
        }
    }
}
