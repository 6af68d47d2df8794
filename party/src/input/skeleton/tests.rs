//! Reading skeleton arrays: a good set in each label format, and every bad case refused with
//! the file, the index and the bound named.

use super::super::{read, InputSpec};
use ndarray::{Array1, Array5};
use std::path::{Path, PathBuf};

fn clips(n: usize, dims: [usize; 4]) -> Array5<f32> {
    let [c, t, v, m] = dims;
    Array5::from_shape_fn((n, c, t, v, m), |(i, c, t, v, m)| {
        (i as f32) - 0.5 * c as f32 + 0.25 * t as f32 - 0.125 * v as f32 + m as f32 / 64.0
    })
}

fn spec(file: &Path, labels: &Path, graph: &str) -> InputSpec {
    InputSpec {
        file: file.to_path_buf(),
        labels: Some(labels.to_path_buf()),
        graph: Some(graph.into()),
        ..Default::default()
    }
}

fn frac16() -> mpc::FracBits {
    mpc::FracBits::new(16).unwrap()
}

/// Writes clips and `.npy` labels into `dir`; returns their paths.
fn write_set(dir: &Path, x: &Array5<f32>, labels: &[i64]) -> (PathBuf, PathBuf) {
    let (p, l) = (dir.join("clips.npy"), dir.join("labels.npy"));
    datasets::npy::write_npy(&p, x).unwrap();
    datasets::npy::write_npy(&l, &Array1::from(labels.to_vec())).unwrap();
    (p, l)
}

#[test]
fn clips_flatten_in_c_order_with_the_label_last() {
    let d = tempfile::tempdir().unwrap();
    let dims = [3, 4, 15, 2];
    let x = clips(5, dims);
    let (p, l) = write_set(d.path(), &x, &[0, 2, 1, 2, 0]);
    let t = read(&InputSpec {
        class_names: vec!["walk".into(), "run".into(), "jump".into()],
        ..spec(&p, &l, "mocap15")
    })
    .unwrap();
    let meta = t.tensor.clone().unwrap();
    assert_eq!(meta.dims, [3, 4, 15, 2]);
    assert_eq!(meta.graph, "mocap15");
    assert_eq!(meta.class_names, ["walk", "run", "jump"]);
    assert_eq!(t.data.dim(), (5, 3 * 4 * 15 * 2 + 1));
    assert_eq!(t.label_column, 360);
    // Row n, column ((c·T + t)·V + v)·M + m is x[n, c, t, v, m].
    for ((n, c, tt, v, m), &want) in x.indexed_iter() {
        let col = ((c * 4 + tt) * 15 + v) * 2 + m;
        assert_eq!(t.data[[n, col]], f64::from(want), "{n} {c} {tt} {v} {m}");
    }
    assert_eq!(t.data.column(360).to_vec(), [0.0, 2.0, 1.0, 2.0, 0.0]);
    t.check_range(frac16()).unwrap();
}

#[test]
fn text_labels_and_float_labels_holding_integers_are_read() {
    let d = tempfile::tempdir().unwrap();
    let x = clips(3, [2, 1, 25, 1]).mapv(f64::from);
    let p = d.path().join("pose.npy");
    datasets::npy::write_npy(&p, &x).unwrap();
    let txt = d.path().join("labels.txt");
    std::fs::write(&txt, "4\n\n 19 \n0\n\n").unwrap();
    let t = read(&spec(&p, &txt, "body25")).unwrap();
    assert_eq!(t.data.column(50).to_vec(), [4.0, 19.0, 0.0]);
    assert_eq!(t.tensor.unwrap().dims, [2, 1, 25, 1]);
    let f = d.path().join("labels.npy");
    datasets::npy::write_npy(&f, &ndarray::array![4.0f64, 19.0, 0.0]).unwrap();
    let t = read(&spec(&p, &f, "ntu25")).unwrap();
    assert_eq!(t.data.column(50).to_vec(), [4.0, 19.0, 0.0]);
}

fn err(s: &InputSpec) -> String {
    read(s).unwrap_err().to_string()
}

fn assert_has(msg: &str, want: &[&str]) {
    for w in want {
        assert!(msg.contains(w), "{msg:?} lacks {w:?}");
    }
}

#[test]
fn bad_values_name_the_clip_and_its_index() {
    let d = tempfile::tempdir().unwrap();
    let mut x = clips(3, [3, 2, 15, 1]);
    x[[1, 2, 0, 3, 0]] = f32::NAN;
    let (p, l) = write_set(d.path(), &x, &[0, 1, 2]);
    let msg = read(&spec(&p, &l, "mocap15"))
        .unwrap()
        .check_range(frac16())
        .unwrap_err()
        .to_string();
    assert_has(
        &msg,
        &["clips.npy", "clip 1, (c, t, v, m) = (2, 0, 3, 0)", "NaN"],
    );
    x[[1, 2, 0, 3, 0]] = 0.0;
    x[[2, 0, 1, 14, 0]] = 2f32.powi(50);
    let (p, l) = write_set(d.path(), &x, &[0, 1, 2]);
    let msg = read(&spec(&p, &l, "mocap15"))
        .unwrap()
        .check_range(frac16())
        .unwrap_err()
        .to_string();
    assert_has(
        &msg,
        &[
            "clip 2, (c, t, v, m) = (0, 1, 14, 0)",
            "1125899906842624",
            "140737488355328",
            "16 fractional bits",
        ],
    );
}

#[test]
fn bad_labels_name_the_label_file_the_index_and_the_bound() {
    let d = tempfile::tempdir().unwrap();
    let x = clips(4, [3, 2, 15, 1]);
    let (p, _) = write_set(d.path(), &x, &[0; 4]);
    let named = |l: &Path| InputSpec {
        class_names: vec!["a".into(), "b".into(), "c".into()],
        ..spec(&p, l, "mocap15")
    };
    let txt = d.path().join("y.txt");
    std::fs::write(&txt, "0\n1\n\n3\n2\n").unwrap();
    assert_has(
        &err(&named(&txt)),
        &[
            "y.txt",
            "line 4",
            "label 3",
            "outside 0..3",
            "3 class names",
        ],
    );
    std::fs::write(&txt, "0\n1\nwalk\n2\n").unwrap();
    assert_has(
        &err(&named(&txt)),
        &["y.txt", "line 3", "\"walk\"", "not a number"],
    );
    std::fs::write(&txt, "0\n1\n2\n").unwrap();
    assert_has(
        &err(&named(&txt)),
        &["y.txt", "labels", "expected 4", "found 3"],
    );
    let f = d.path().join("y.npy");
    datasets::npy::write_npy(&f, &ndarray::array![0.0f64, 1.0, 1.0, 2.5]).unwrap();
    assert_has(
        &err(&named(&f)),
        &["y.npy", "index 3 (0-based)", "2.5", "not an integer"],
    );
    datasets::npy::write_npy(&f, &ndarray::array![0i64, -1, 1, 1]).unwrap();
    assert_has(
        &err(&named(&f)),
        &["y.npy", "index 1 (0-based)", "label -1", "outside 0..3"],
    );
    datasets::npy::write_npy(&f, &ndarray::array![0i64, 1, 70000, 1]).unwrap();
    assert_has(
        &err(&spec(&p, &f, "mocap15")),
        &["index 2", "70000", "outside 0..65536", "no class names"],
    );
    datasets::npy::write_npy(&f, &ndarray::array![[0i64, 1], [1, 0]]).unwrap();
    assert_has(&err(&named(&f)), &["y.npy", "1-D [4]", "[2, 2]"]);
}

#[test]
fn graphs_dimensions_and_options_that_do_not_fit_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let (p, l) = write_set(d.path(), &clips(2, [3, 2, 25, 1]), &[0, 1]);
    assert_has(
        &err(&spec(&p, &l, "mocap15")),
        &["clips.npy", "mocap15 has 15 nodes", "V = 25"],
    );
    assert_has(
        &err(&spec(&p, &l, "coco")),
        &["clips.npy", "\"coco\"", "mocap15, body25, ntu25"],
    );
    let (p5, l5) = write_set(d.path(), &clips(2, [3, 2, 25, 5]), &[0, 1]);
    assert_has(&err(&spec(&p5, &l5, "ntu25")), &["M = 5", "1..=4"]);
    let (p, l) = write_set(d.path(), &clips(2, [3, 2, 15, 1]), &[0, 1]);
    let cases: [(InputSpec, &[&str]); 5] = [
        (
            InputSpec {
                graph: None,
                ..spec(&p, &l, "")
            },
            &["needs its graph", "--graph"],
        ),
        (
            InputSpec {
                labels: None,
                ..spec(&p, &l, "mocap15")
            },
            &["needs its labels", "--labels"],
        ),
        (
            InputSpec {
                label_column: Some(3),
                ..spec(&p, &l, "mocap15")
            },
            &["no label column", "--label-column"],
        ),
        (
            InputSpec {
                positive: Some(vec![1.0]),
                ..spec(&p, &l, "mocap15")
            },
            &["--positive"],
        ),
        (
            InputSpec {
                class_names: vec!["a".into(), "a".into()],
                ..spec(&p, &l, "mocap15")
            },
            &["class name 1", "repeats class name 0"],
        ),
    ];
    for (s, want) in cases {
        assert_has(&err(&s), &[&["clips.npy"][..], want].concat());
    }
    // No clips.
    let (p0, l0) = write_set(d.path(), &clips(0, [3, 2, 15, 1]), &[]);
    assert_has(
        &err(&spec(&p0, &l0, "mocap15")),
        &["clips", "N ≥ 1", "[0, 3, 2, 15, 1]"],
    );
    // A graph with a table.
    let t = d.path().join("t.npy");
    datasets::npy::write_npy(&t, &ndarray::array![[1.0f64, 0.0]]).unwrap();
    assert_has(
        &err(&spec(&t, &l, "mocap15")),
        &["t.npy", "--graph", "rank 5", "[1, 2]"],
    );
    let c = d.path().join("t.csv");
    std::fs::write(&c, "1,0\n").unwrap();
    assert_has(&err(&spec(&c, &l, "mocap15")), &["t.csv", "--graph"]);
}
