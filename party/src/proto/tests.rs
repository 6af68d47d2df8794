//! Property and round-trip tests of the message decoders.

use super::*;
use proptest::prelude::*;

proptest! {
    #[test]
    fn client_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode::<ClientHello>(&bytes, MAX_CONTROL_FRAME);
        let _ = decode::<ClientRequest>(&bytes, MAX_CONTROL_FRAME);
        let _ = decode::<Reply>(&bytes, MAX_CONTROL_FRAME);
    }

    #[test]
    fn peer_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode::<PeerRequest>(&bytes, MAX_CONTROL_FRAME);
        let _ = decode::<PeerReply>(&bytes, MAX_CONTROL_FRAME);
    }

    #[test]
    fn huge_length_prefixes_are_refused(tag in 0u32..8, len in (1u64 << 20)..u64::MAX) {
        // A variant tag followed by a string length far above the limit.
        let mut bytes = tag.to_le_bytes().to_vec();
        bytes.extend_from_slice(&len.to_le_bytes());
        prop_assert!(decode::<ClientRequest>(&bytes, MAX_CONTROL_FRAME).is_err());
        match decode::<PeerRequest>(&bytes, MAX_CONTROL_FRAME) {
            // JobFollows carries just a length, checked against MAX_JOB_FRAME by P1 before
            // it reads the frame.
            Ok(PeerRequest::JobFollows { bytes }) => {
                let follows = mpc::net::encode_message(&PeerRequest::JobFollows { bytes: 0 });
                let follows_tag = u32::from_le_bytes(follows.unwrap()[..4].try_into().unwrap());
                prop_assert!(tag == follows_tag && bytes == len)
            }
            other => prop_assert!(other.is_err()),
        }
    }

    #[test]
    fn requests_round_trip(name in "[a-z]{1,20}", rows in 0u64..1_000_000, seed in any::<u64>()) {
        let r = ClientRequest::Submit(JobSpec {
            model: ModelKind::Logreg, dataset: name.clone(), learning_rate: 0.5,
            batch_size: rows, epochs: 3, schedule_seed: seed, triples: TripleKind::Ot,
            intercept: false,
            ot_extension: if seed % 2 == 0 { OtExtension::Iknp } else { OtExtension::Silent },
        });
        let b = mpc::net::encode_message(&r).unwrap();
        prop_assert_eq!(decode::<ClientRequest>(&b, MAX_CONTROL_FRAME).unwrap(), r);
        let r = ClientRequest::Submit(JobSpec {
            model: ModelKind::Mlp(MlpSpec {
                layers: vec![rows as u32, 16, 10],
                softmax: ml::backend::SoftmaxKind::Exp,
                init_seed: seed,
            }),
            dataset: "mnist".into(), learning_rate: 0.25, batch_size: 64, epochs: 1,
            schedule_seed: seed, triples: TripleKind::Dealer,
            intercept: false,
            ot_extension: Default::default(),
        });
        let b = mpc::net::encode_message(&r).unwrap();
        prop_assert_eq!(decode::<ClientRequest>(&b, MAX_CONTROL_FRAME).unwrap(), r);
        let p = PeerRequest::Vote { id: EntryId([7; 16]), owner: name.clone(), name, rows, cols: 3, tensor: None, standardized: Some(vec![0, 2]) };
        let b = mpc::net::encode_message(&p).unwrap();
        prop_assert_eq!(decode::<PeerRequest>(&b, MAX_CONTROL_FRAME).unwrap(), p);
    }
}

/// The ST-GCN job messages round-trip; a job carrying a large initial model fits only the
/// job frame it is announced for.
#[test]
fn stgcn_job_messages_round_trip_within_their_limits() {
    let spec = JobSpec {
        model: ModelKind::Stgcn(StgcnSpec {
            init: Some(InitModel {
                config_json: "{}".into(),
                safetensors: vec![7; 100_000],
            }),
            architecture: "STGCN-3-128".into(),
            width_divisor: 4,
            activation: "poly".into(),
            init_seed: 3,
            momentum: 0.9,
            weight_decay: 1e-4,
            classes: Some(10),
            calibration_clips: 7,
        }),
        dataset: "clips".into(),
        learning_rate: 0.01,
        batch_size: 16,
        epochs: 10,
        schedule_seed: 1,
        triples: TripleKind::He,
        intercept: false,
        ot_extension: Default::default(),
    };
    let r = ClientRequest::Submit(spec.clone());
    let b = mpc::net::encode_message(&r).unwrap();
    assert!(decode::<ClientRequest>(&b, MAX_CONTROL_FRAME).is_err());
    assert_eq!(decode::<ClientRequest>(&b, MAX_JOB_FRAME).unwrap(), r);
    let id = EntryId([3; 16]);
    let msgs = [
        ClientRequest::SubmitFollows {
            bytes: b.len() as u64,
        },
        ClientRequest::Watch { job: id },
    ];
    for m in msgs {
        let b = mpc::net::encode_message(&m).unwrap();
        assert_eq!(decode::<ClientRequest>(&b, MAX_CONTROL_FRAME).unwrap(), m);
    }
    let rep = Reply::EpochShares {
        job: id,
        epoch: 2,
        epochs: 10,
        count: 64,
        frac_bits: mpc::FracBits::new(16).unwrap(),
    };
    let b = mpc::net::encode_message(&rep).unwrap();
    assert_eq!(decode::<Reply>(&b, MAX_CONTROL_FRAME).unwrap(), rep);
    let p = PeerRequest::JobFollows { bytes: 1 << 20 };
    let b = mpc::net::encode_message(&p).unwrap();
    assert_eq!(decode::<PeerRequest>(&b, MAX_CONTROL_FRAME).unwrap(), p);
}

#[test]
fn oversized_frames_are_refused_before_decoding() {
    let big = vec![0u8; MAX_CONTROL_FRAME + 1];
    assert!(matches!(
        decode::<ClientRequest>(&big, MAX_CONTROL_FRAME),
        Err(mpc::MpcError::FrameTooLarge { .. })
    ));
}

#[test]
fn fractional_bits_are_a_u32_on_the_wire_and_validated_when_decoded() {
    let reply = |frac_bits| Reply::ModelShare {
        rows: 2,
        cols: 1,
        frac_bits,
    };
    let f = mpc::FracBits::new(16).unwrap();
    let b = mpc::net::encode_message(&reply(f)).unwrap();
    let mut raw = mpc::net::encode_message(&8u32).unwrap(); // the variant index
    raw.extend_from_slice(&2u64.to_le_bytes());
    raw.extend_from_slice(&1u64.to_le_bytes());
    raw.extend_from_slice(&16u32.to_le_bytes());
    assert_eq!(b, raw);
    assert_eq!(decode::<Reply>(&b, MAX_CONTROL_FRAME).unwrap(), reply(f));
    let n = raw.len();
    raw[n - 4..].copy_from_slice(&0u32.to_le_bytes());
    assert!(decode::<Reply>(&raw, MAX_CONTROL_FRAME).is_err());
    raw[n - 4..].copy_from_slice(&31u32.to_le_bytes());
    assert!(decode::<Reply>(&raw, MAX_CONTROL_FRAME).is_err());
}

#[test]
fn deploy_messages_round_trip_and_serving_parties_parse() {
    let spec = DeploySpec {
        deploy: EntryId::random(),
        job: EntryId::random(),
        name: "net".into(),
        serve: ServeAt::Both,
        packing: Some("ama".into()),
    };
    let msgs = [
        ClientRequest::Deploy(spec.clone()),
        ClientRequest::DeployStart {
            deploy: spec.deploy,
        },
        ClientRequest::DeployCancel {
            deploy: spec.deploy,
        },
        ClientRequest::RevealModel { job: spec.job },
    ];
    for r in msgs {
        let b = mpc::net::encode_message(&r).unwrap();
        assert_eq!(decode::<ClientRequest>(&b, MAX_CONTROL_FRAME).unwrap(), r);
    }
    let p = PeerRequest::DeployShare(spec);
    let b = mpc::net::encode_message(&p).unwrap();
    assert_eq!(decode::<PeerRequest>(&b, MAX_CONTROL_FRAME).unwrap(), p);
    let r = Reply::ModelShareMeta {
        rows: 3,
        cols: 1,
        frac_bits: mpc::FracBits::new(20).unwrap(),
        model: Some(ModelMeta::Stgcn {
            config_json: "{}".into(),
        }),
        standardization: None,
    };
    let b = mpc::net::encode_message(&r).unwrap();
    assert_eq!(decode::<Reply>(&b, MAX_CONTROL_FRAME).unwrap(), r);
    for (text, want) in [
        ("p0", ServeAt::P0),
        ("P1", ServeAt::P1),
        ("both", ServeAt::Both),
    ] {
        assert_eq!(text.parse::<ServeAt>().unwrap(), want);
    }
    assert!("p2"
        .parse::<ServeAt>()
        .unwrap_err()
        .contains("p0, p1 or both"));
    assert_eq!(ServeAt::Both.roles(), vec![0, 1]);
    assert_eq!(ServeAt::P1.roles(), vec![1]);
    assert!(ServeAt::P0.serves(0) && !ServeAt::P0.serves(1));
}

#[test]
fn entry_ids_print_and_parse() {
    let id = EntryId::random();
    assert_eq!(EntryId::parse(&id.to_string()), Some(id));
    assert_eq!(EntryId::parse("zz"), None);
}

/// A job spec written before `intercept` existed (JSON) keeps its old meaning: no intercept.
#[test]
fn a_job_spec_without_intercept_means_none() {
    let old = r#"{"model":"Linreg","dataset":"d","learning_rate":0.5,"batch_size":8,
                  "epochs":1,"schedule_seed":1,"triples":"Ot"}"#;
    let spec: JobSpec = serde_json::from_str(old).unwrap();
    assert!(!spec.intercept);
}

/// A linear model's description crosses the wire (bincode) intact, with and without the MLP's
/// optional fields.
#[test]
fn linear_model_descriptions_round_trip_on_the_wire() {
    for mlp in [false, true] {
        let meta = LinearModelMeta {
            kind: if mlp { "mlp" } else { "logreg" }.into(),
            layers: if mlp { vec![4, 3, 2] } else { vec![4, 1] },
            softmax: mlp.then_some(ml::backend::SoftmaxKind::Relu),
            intercept: true,
            learning_rate: 0.3,
            batch_size: 8,
            epochs: 2,
            schedule_seed: u64::MAX.to_string(),
            init_seed: mlp.then(|| "7".to_string()),
            triples: TripleKind::Ot,
            dataset: "cancer".into(),
            dataset_id: EntryId([9; 16]),
            rows: 455,
        };
        let r = Reply::ModelShareMeta {
            rows: 5,
            cols: 1,
            frac_bits: mpc::FracBits::new(16).unwrap(),
            model: Some(ModelMeta::Linear(meta)),
            standardization: Some(super::StandardizationInfo {
                origin: EntryId([4; 16]),
                columns: vec![0, 1, 2, 3],
                label: true,
                revealed: false,
            }),
        };
        let b = mpc::net::encode_message(&r).unwrap();
        assert_eq!(decode::<Reply>(&b, MAX_CONTROL_FRAME).unwrap(), r);
    }
}

/// The jobs that are not training runs round-trip as control frames, their specs intact.
#[test]
fn standardize_and_evaluate_jobs_round_trip() {
    let kinds = [
        ModelKind::Standardize(StandardizeSpec {
            reveal_stats: true,
            label: false,
        }),
        ModelKind::Evaluate(EvaluateSpec {
            model: EntryId([9; 16]),
            predict: true,
        }),
    ];
    for model in kinds {
        let r = ClientRequest::Submit(JobSpec {
            model,
            dataset: "reg".into(),
            learning_rate: 1.0,
            batch_size: 1,
            epochs: 1,
            schedule_seed: 0,
            triples: TripleKind::Ot,
            intercept: false,
            ot_extension: Default::default(),
        });
        let b = mpc::net::encode_message(&r).unwrap();
        assert_eq!(decode::<ClientRequest>(&b, MAX_CONTROL_FRAME).unwrap(), r);
    }
}
