use super::*;
use crate::proto::{ModelKind, TripleKind};

fn manifest(dims: [u64; 4], graph: &str, classes: usize) -> Manifest {
    let cols = dims.iter().product::<u64>() + 1;
    let mut m = crate::server::job::linear_spec::tests::table(8, cols);
    m.name = "clips".into();
    m.tensor = Some(TensorMeta {
        dims,
        graph: graph.into(),
        class_names: (0..classes).map(|c| format!("class{c}")).collect(),
    });
    m
}

fn scratch() -> StgcnSpec {
    StgcnSpec {
        init: None,
        architecture: "STGCN-3-128".into(),
        width_divisor: 16,
        activation: "square".into(),
        init_seed: 3,
        momentum: 0.9,
        weight_decay: 1e-4,
        classes: None,
        calibration_clips: 0,
    }
}

fn job(s: StgcnSpec) -> JobSpec {
    JobSpec {
        model: ModelKind::Stgcn(s),
        dataset: "clips".into(),
        learning_rate: 0.05,
        batch_size: 4,
        epochs: 2,
        schedule_seed: 1,
        triples: TripleKind::Dealer,
        intercept: false,
        ot_extension: Default::default(),
    }
}

fn check(s: StgcnSpec, m: &Manifest) -> Result<StgcnJob> {
    let spec = job(s.clone());
    validate(&spec, &s, m)
}

fn err(s: StgcnSpec, m: &Manifest) -> String {
    check(s, m).unwrap_err().to_string()
}

fn init_of(model: &StGcn) -> InitModel {
    InitModel {
        config_json: model.config_json().unwrap(),
        safetensors: model.to_safetensors_bytes().unwrap(),
    }
}

#[test]
fn a_model_from_scratch_fits_the_dataset() {
    let m = manifest([3, 8, 15, 1], "mocap15", 4);
    let j = check(scratch(), &m).unwrap();
    assert_eq!(j.dims, [3, 8, 15, 1]);
    assert_eq!(j.classes, 4);
    let cfg = j.model.config();
    assert_eq!(cfg.blocks.last().unwrap().out_channels, 8);
    assert_eq!(cfg.activation, ActivationKind::Square);
    assert_eq!(cfg.class_names.len(), 4);
    // The same public weights at both parties.
    let again = check(scratch(), &m).unwrap();
    for (a, b) in again.model.tensors().iter().zip(j.model.tensors()) {
        assert_eq!((&a.name, &a.value), (&b.name, &b.value));
    }
}

#[test]
fn tables_and_misshapen_datasets_are_refused() {
    let mut m = manifest([3, 8, 15, 1], "mocap15", 4);
    m.tensor = None;
    assert!(err(scratch(), &m).contains("not a skeleton dataset"));
    let mut m = manifest([3, 8, 15, 1], "mocap15", 4);
    m.cols += 1;
    m.label_column += 1;
    let e = err(scratch(), &m);
    assert!(e.contains("361") && e.contains("362"), "{e}");
    let mut m = manifest([3, 8, 15, 1], "mocap15", 4);
    m.label_column = 0;
    assert!(err(scratch(), &m).contains("last column"));
    let m = manifest([3, 8, 25, 1], "mocap15", 4);
    let e = err(scratch(), &m);
    assert!(e.contains("15 nodes") && e.contains("V = 25"), "{e}");
    let m = manifest([3, 8, 15, 1], "hands21", 4);
    assert!(err(scratch(), &m).contains("hands21"));
}

#[test]
fn architectures_activations_and_divisors_are_checked() {
    let m = manifest([3, 8, 15, 1], "mocap15", 4);
    let e = err(
        StgcnSpec {
            architecture: "STGCN-9-999".into(),
            ..scratch()
        },
        &m,
    );
    assert!(
        e.contains("STGCN-9-999") && e.contains("STGCN-3-128"),
        "{e}"
    );
    for div in [0, 3, 256] {
        let e = err(
            StgcnSpec {
                width_divisor: div,
                ..scratch()
            },
            &m,
        );
        assert!(e.contains(&format!("width divisor {div}")), "{e}");
    }
    let e = err(
        StgcnSpec {
            activation: "relu".into(),
            ..scratch()
        },
        &m,
    );
    assert!(e.contains("relu") && e.contains("CKKS"), "{e}");
    let poly = check(
        StgcnSpec {
            activation: "poly".into(),
            ..scratch()
        },
        &m,
    )
    .unwrap();
    assert_eq!(poly.model.config().activation, ActivationKind::Poly);
}

#[test]
fn classes_come_from_the_job_or_the_class_names() {
    let m = manifest([3, 8, 15, 1], "mocap15", 0);
    assert!(err(scratch(), &m).contains("--classes"));
    let with = |k| StgcnSpec {
        classes: Some(k),
        ..scratch()
    };
    assert_eq!(check(with(5), &m).unwrap().classes, 5);
    assert!(err(with(1), &m).contains("at least 2"));
    let named = manifest([3, 8, 15, 1], "mocap15", 4);
    assert!(err(with(3), &named).contains("4 class names"));
}

#[test]
fn hyper_parameters_are_bounded() {
    let m = manifest([3, 8, 15, 1], "mocap15", 4);
    let s = scratch();
    let run = |f: &dyn Fn(&mut JobSpec, &mut StgcnSpec)| {
        let (mut spec, mut st) = (job(s.clone()), s.clone());
        f(&mut spec, &mut st);
        validate(&spec, &st, &m).unwrap_err().to_string()
    };
    assert!(run(&|j, _| j.learning_rate = f64::NAN).contains("learning rate"));
    assert!(run(&|_, s| s.momentum = 1.0).contains("momentum 1"));
    assert!(run(&|_, s| s.weight_decay = -1.0).contains("weight decay"));
    assert!(run(&|j, _| j.epochs = 0).contains("0 epochs"));
    let e = run(&|j, _| j.batch_size = 9);
    assert!(e.contains("batch size 9") && e.contains("1..=8"), "{e}");
    let e = run(&|_, s| s.calibration_clips = 257);
    assert!(
        e.contains("257 calibration clips") && e.contains("256"),
        "{e}"
    );
}

#[test]
fn an_initial_model_must_load_and_match_the_dataset() {
    let m = manifest([3, 8, 15, 1], "mocap15", 4);
    let base = check(scratch(), &m).unwrap().model;
    let with = |init: InitModel| StgcnSpec {
        init: Some(init),
        architecture: String::new(),
        activation: String::new(),
        ..scratch()
    };
    assert!(check(with(init_of(&base)), &m).is_ok());
    // Corrupt weights, non-finite weights.
    let mut bad = init_of(&base);
    bad.safetensors.truncate(100);
    assert!(err(with(bad), &m).contains("does not load"));
    let mut nan = base.clone();
    let name = nan.tensors()[0].name.clone();
    let mut t = nan.tensors()[0].value.clone();
    t[[0, 0]] = f64::NAN;
    nan.set_tensor(&name, t).unwrap();
    let e = err(with(init_of(&nan)), &m);
    assert!(e.contains("not finite"), "{e}");
    // Another dataset shape.
    let other = manifest([3, 10, 15, 1], "mocap15", 4);
    let e = err(with(init_of(&base)), &other);
    assert!(e.contains("[3, 10, 15, 1]"), "{e}");
    // A ReLU model.
    let mut cfg = base.config().clone();
    cfg.activation = ActivationKind::Relu;
    let relu = StGcn::new(cfg, 1).unwrap();
    assert!(err(with(init_of(&relu)), &m).contains("CKKS"));
    // Named fields must agree with the model.
    let e = err(
        StgcnSpec {
            architecture: "STGCN-3-256".into(),
            ..with(init_of(&base))
        },
        &m,
    );
    assert!(e.contains("STGCN-3-256"), "{e}");
    let e = err(
        StgcnSpec {
            classes: Some(7),
            ..with(init_of(&base))
        },
        &m,
    );
    assert!(e.contains("7"), "{e}");
}

#[test]
fn oversized_models_are_refused() {
    let m = manifest([3, 8, 15, 1], "mocap15", 4);
    let base = check(scratch(), &m).unwrap().model;
    let mut cfg = base.config().clone();
    cfg.architecture = None;
    cfg.blocks = vec![stgcn::BlockSpec {
        in_channels: 3,
        out_channels: 512,
        stride: 1,
        residual: false,
    }];
    cfg.activation_mask.truncate(1);
    let big = StGcn::new(cfg, 1).unwrap();
    let e = err(
        StgcnSpec {
            init: Some(init_of(&big)),
            architecture: String::new(),
            activation: String::new(),
            ..scratch()
        },
        &m,
    );
    assert!(e.contains(&MAX_STGCN_PARAMS.to_string()), "{e}");
}
