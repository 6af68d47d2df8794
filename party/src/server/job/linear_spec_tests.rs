use super::*;
use crate::proto::{EntryId, ModelKind, ShareForm, TensorMeta, TripleKind};
use crate::store::{EntryKind, State};
use ml::backend::SoftmaxKind;

/// A table of `rows × cols` (the label last) named `small`.
pub(in crate::server::job) fn table(rows: u64, cols: u64) -> Manifest {
    Manifest {
        id: EntryId([1; 16]),
        kind: EntryKind::Dataset,
        name: "small".into(),
        owner: "alice".into(),
        rows,
        cols,
        label_column: cols.saturating_sub(1),
        frac_bits: mpc::FracBits::new(16).unwrap(),
        form: ShareForm::Matrix,
        sha256: String::new(),
        created: 0,
        state: State::Committed,
        appenders: Vec::new(),
        supersedes: None,
        appended: Vec::new(),
        tensor: None,
        model: None,
        keys: None,
        standardization: None,
    }
}

/// A skeleton dataset of `(C, T, V, M) = (3, 2, 2, 1)` (12 features) with `classes` class names.
fn clips(classes: usize) -> Manifest {
    let mut m = table(40, 13);
    m.tensor = Some(TensorMeta {
        dims: [3, 2, 2, 1],
        graph: "mocap15".into(),
        class_names: (0..classes).map(|c| format!("c{c}")).collect(),
    });
    m
}

fn mlp(layers: Vec<u32>) -> MlpSpec {
    MlpSpec {
        layers,
        softmax: SoftmaxKind::Relu,
        init_seed: 1,
    }
}

fn spec(model: ModelKind) -> JobSpec {
    JobSpec {
        model,
        dataset: "small".into(),
        learning_rate: 0.3,
        batch_size: 10,
        epochs: 3,
        schedule_seed: 1,
        triples: TripleKind::Ot,
        intercept: false,
        ot_extension: Default::default(),
    }
}

/// The error text of a refusal; asserts it names every one of `words`.
fn refusal(r: Result<LinearJob>, words: &[&str]) -> String {
    let e = r.unwrap_err().to_string();
    for w in words {
        assert!(e.contains(w), "{w:?} missing in {e:?}");
    }
    e
}

#[test]
fn valid_jobs_of_every_kind_pass_with_their_step_count() {
    let m = table(50, 3);
    let j = validate_linreg(&spec(ModelKind::Linreg), &m).unwrap();
    assert_eq!((j.features, j.steps), (2, 15));
    assert_eq!(j.hyper.learning_rate(), 0.3);
    validate_logreg(&spec(ModelKind::Logreg), &m).unwrap();
    let n = mlp(vec![2, 4, 3]);
    validate_mlp_job(&spec(ModelKind::Mlp(n.clone())), &n, &m).unwrap();
    let n = mlp(vec![12, 4, 5]);
    validate_mlp_job(&spec(ModelKind::Mlp(n.clone())), &n, &clips(5)).unwrap();
}

#[test]
fn a_wrong_mlp_input_width_names_both_widths() {
    let n = mlp(vec![30, 8, 2]);
    let e = refusal(
        validate_mlp_job(&spec(ModelKind::Mlp(n.clone())), &n, &table(50, 3)),
        &[
            "mlp layers[0] (input width) = 30",
            "2 feature columns",
            "\"small\"",
        ],
    );
    assert!(e.contains("3 columns less the label"), "{e}");
}

#[test]
fn class_counts_are_checked_against_the_class_names() {
    let n = mlp(vec![12, 4, 3]);
    refusal(
        validate_mlp_job(&spec(ModelKind::Mlp(n.clone())), &n, &clips(5)),
        &["mlp layers[last] (classes) = 3", "5 class names"],
    );
    refusal(
        validate_logreg(&spec(ModelKind::Logreg), &clips(4)),
        &["logreg classes = 2", "4 class names"],
    );
    // A table has no class names: the owner's labels are trusted to be in range.
    validate_logreg(&spec(ModelKind::Logreg), &table(50, 3)).unwrap();
}

#[test]
fn mlp_architectures_are_validated() {
    let ok = |l: Vec<u32>| validate_mlp(&mlp(l));
    assert!(ok(vec![784, 128, 128, 10]).is_ok());
    let e = ok(vec![784]).unwrap_err().to_string();
    assert!(
        e.contains("mlp layers = [784]") && e.contains("at least 2"),
        "{e}"
    );
    let e = ok(vec![784, 0, 10]).unwrap_err().to_string();
    assert!(
        e.contains("mlp layers[1] = 0") && e.contains("1..=16384"),
        "{e}"
    );
    let e = ok(vec![784, 1]).unwrap_err().to_string();
    assert!(
        e.contains("(classes) = 1") && e.contains("at least 2"),
        "{e}"
    );
    let e = ok(vec![784, MAX_MLP_WIDTH + 1, 10])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains(&format!("layers[1] = {}", MAX_MLP_WIDTH + 1)),
        "{e}"
    );
    let e = ok(vec![MAX_MLP_WIDTH; 3]).unwrap_err().to_string();
    assert!(
        e.contains("mlp weights = 536870912") && e.contains("16777216"),
        "{e}"
    );
}

#[test]
fn batch_epochs_and_steps_are_bounded() {
    let m = table(50, 3);
    let with = |f: &dyn Fn(&mut JobSpec)| {
        let mut s = spec(ModelKind::Linreg);
        f(&mut s);
        validate_linreg(&s, &m)
    };
    refusal(
        with(&|s| s.batch_size = 0),
        &["batch_size = 0", "1..=50", "\"small\""],
    );
    refusal(with(&|s| s.batch_size = 51), &["batch_size = 51", "1..=50"]);
    refusal(with(&|s| s.epochs = 0), &["epochs = 0", "1..=1000"]);
    refusal(
        with(&|s| s.epochs = u64::MAX),
        &["epochs = 18446744073709551615", "1..=1000"],
    );
    let big = table(1 << 21, 3);
    let mut s = spec(ModelKind::Linreg);
    s.batch_size = 1;
    refusal(
        validate_linreg(&s, &big),
        &["steps", "2097152 / 1 × 3 = 6291456", "at most 1048576"],
    );
}

#[test]
fn learning_rates_are_bounded_but_need_not_be_powers_of_two() {
    let m = table(50, 3);
    for lr in [0.3, 0.001, 1.7, 64.0] {
        let mut s = spec(ModelKind::Logreg);
        s.learning_rate = lr;
        validate_logreg(&s, &m).unwrap();
    }
    for lr in [0.0, -0.5, f64::NAN, f64::INFINITY, 65.0] {
        let mut s = spec(ModelKind::Logreg);
        s.learning_rate = lr;
        refusal(
            validate_logreg(&s, &m),
            &["learning_rate", &lr.to_string(), "2^-30 ..= 64"],
        );
    }
}

#[test]
fn a_table_needs_a_feature_and_the_label() {
    let mut m = table(50, 1);
    refusal(
        validate_linreg(&spec(ModelKind::Linreg), &m),
        &["dataset \"small\" columns = 1", "at least 2"],
    );
    m.cols = 3;
    m.label_column = 3;
    refusal(
        validate_linreg(&spec(ModelKind::Linreg), &m),
        &["columns = 3", "label column 3"],
    );
}
