//! The bundled loaders find their files from any working directory (as in a fresh clone where
//! an experiment binary runs from elsewhere). Own test binary: it changes the process's cwd.

#[test]
fn bundled_loaders_work_from_another_directory() {
    let elsewhere = tempfile::tempdir().unwrap();
    std::env::set_current_dir(elsewhere.path()).unwrap();
    let iris = datasets::tabular::iris().unwrap();
    assert_eq!(iris.x.dim(), (150, 4));
    let diabetes = datasets::tabular::diabetes().unwrap();
    assert_eq!(diabetes.n_samples(), 442);
    let test = datasets::mnist::load_bundled(datasets::mnist::Split::Test).unwrap();
    assert_eq!(test.len(), 10_000);
}

#[test]
fn end_to_end_preprocessing_pipeline() {
    use datasets::preprocess::Standardizer;
    let ds = datasets::tabular::breast_cancer().unwrap();
    let (train, test) = datasets::split::stratified_split(&ds, 0.2, 7).unwrap();
    assert_eq!(train.n_samples() + test.n_samples(), 569);
    // 212 / 357 classes: round(0.2 · 212) = 42 and round(0.2 · 357) = 71 test rows.
    assert_eq!(test.class_counts().unwrap(), vec![42, 71]);
    let scaler = Standardizer::fit(&train.x);
    let z_train = scaler.transform(&train.x).unwrap();
    let z_test = scaler.transform(&test.x).unwrap();
    for j in 0..30 {
        assert!(z_train.column(j).mean().unwrap().abs() < 1e-12);
    }
    // The test set is scaled with training statistics, so its means are near, not at, zero.
    let worst = (0..30)
        .map(|j| z_test.column(j).mean().unwrap().abs())
        .fold(0.0f64, f64::max);
    assert!(worst > 1e-6 && worst < 0.5, "{worst}");
    assert_eq!(test.one_hot().unwrap().sum(), test.n_samples() as f64);
}
