//! NTU RGB+D formats on fixture files (`tests/fixtures/`, written by `make_fixtures.py`).

use std::path::{Path, PathBuf};

use datasets::skeleton::graph::{Graph, NTU25_CENTER};
use datasets::skeleton::ntu::{
    load_arrays, load_skeleton_files, read_labels, save_arrays, NtuFileName, NtuSkeletonFile,
};
use datasets::skeleton::SkeletonError;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

const SKELETON: &str = "S001C002P003R001A005.skeleton";

#[test]
fn parses_skeleton_fixture() {
    let f = NtuSkeletonFile::load(&fixture(SKELETON)).unwrap();
    let bodies: Vec<usize> = f.frames.iter().map(|fr| fr.bodies.len()).collect();
    assert_eq!(bodies, vec![1, 2, 0, 1]);
    let b = &f.frames[1].bodies[1];
    assert_eq!(b.body_id, 72057594037931102);
    assert_eq!(b.info[6], -0.1527903); // leanX
    assert_eq!(b.joints.len(), 25);
    let j = &b.joints[10];
    // x = 0.1 v + 0.01 t + m, y = -0.05 v + 0.2, z = 3.5 + 0.001 v
    assert!((j.xyz[0] - 2.01).abs() < 1e-6);
    assert!((j.xyz[1] + 0.3).abs() < 1e-6);
    assert!((j.xyz[2] - 3.51).abs() < 1e-6);
    assert_eq!(j.depth_xy, [260.5, 180.25]);
    assert_eq!(j.orientation_wxyz[0], -0.2612973);
    assert_eq!(j.tracking_state, 2);
    assert_eq!(b.joints[7].tracking_state, 1);

    // Writer round trip.
    let again = NtuSkeletonFile::parse(&f.to_text(), "roundtrip").unwrap();
    assert_eq!(again, f);
}

#[test]
fn skeleton_to_array_pads_and_selects_bodies() {
    let f = NtuSkeletonFile::load(&fixture(SKELETON)).unwrap();
    let a = f.to_array(6, 2);
    assert_eq!(a.shape(), &[3, 6, 25, 2]);
    assert!((a[[0, 1, 3, 1]] - 1.31).abs() < 1e-6); // frame 1, body 1, joint 3: x
    assert_eq!(a[[0, 0, 3, 1]], 0.0); // frame 0 has one body
    assert!(a
        .slice(ndarray::s![.., 2, .., ..])
        .iter()
        .all(|&v| v == 0.0)); // no body
    assert!(a
        .slice(ndarray::s![.., 4.., .., ..])
        .iter()
        .all(|&v| v == 0.0)); // padding
                              // Truncation to fewer frames / bodies.
    let b = f.to_array(2, 1);
    assert_eq!(b.shape(), &[3, 2, 25, 1]);
    assert_eq!(b[[2, 1, 4, 0]], a[[2, 1, 4, 0]]);
}

#[test]
fn skeleton_files_to_set_with_labels_from_names() {
    let p = fixture(SKELETON);
    let set = load_skeleton_files(&[p.as_path(), p.as_path()], 60, 8, 2).unwrap();
    assert_eq!(set.shape(), [2, 3, 8, 25, 2]);
    assert_eq!(set.labels, vec![4, 4]);
    assert_eq!(set.class_names[4], "A005");
    let n = NtuFileName::parse(SKELETON).unwrap();
    assert_eq!((n.camera, n.action), (2, 5));
    assert!(matches!(
        load_skeleton_files(&[p.as_path()], 3, 8, 2),
        Err(SkeletonError::OutOfRange { .. })
    ));
}

fn fixture_text() -> String {
    std::fs::read_to_string(fixture(SKELETON)).unwrap()
}

/// Replaces the content of 1-based line `n`.
fn replace_line(text: &str, n: usize, with: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == n {
                with.to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn skeleton_errors_name_the_line() {
    let text = fixture_text();
    // Line 1 frame count, 2 body count, 3 body info, 4 joint count, 5..29 joints of body 0.
    let bad = replace_line(&text, 17, "0.1 0.2 abc 1 2 3 4 5 6 7 8 2");
    match NtuSkeletonFile::parse(&bad, "bad.skeleton") {
        Err(e @ SkeletonError::InvalidNumber { .. }) => {
            let msg = e.to_string();
            assert!(msg.starts_with("bad.skeleton:17:"), "{msg}");
            assert!(msg.contains("abc"), "{msg}");
        }
        other => panic!("unexpected {other:?}"),
    }
    let bad = replace_line(&text, 20, "0.1 0.2 0.3 1 2 3 4 5 6 7 2");
    assert!(matches!(
        NtuSkeletonFile::parse(&bad, "bad.skeleton"),
        Err(SkeletonError::FieldCount {
            line: 20,
            expected: 12,
            found: 11,
            ..
        })
    ));
    let bad = replace_line(&text, 4, "24");
    assert!(matches!(
        NtuSkeletonFile::parse(&bad, "bad.skeleton"),
        Err(SkeletonError::OutOfRange { line: 4, .. })
    ));
    let bad = replace_line(&text, 2, "7");
    assert!(matches!(
        NtuSkeletonFile::parse(&bad, "bad.skeleton"),
        Err(SkeletonError::OutOfRange { line: 2, .. })
    ));
    // Announcing 5 frames when 4 are present: end of file after the last line.
    let bad = replace_line(&text, 1, "5");
    let lines = text.lines().count();
    match NtuSkeletonFile::parse(&bad, "bad.skeleton") {
        Err(SkeletonError::UnexpectedEof { line, .. }) => assert_eq!(line, lines + 1),
        other => panic!("unexpected {other:?}"),
    }
    // Trailing garbage.
    let bad = format!("{text}1 2 3\n");
    assert!(matches!(
        NtuSkeletonFile::parse(&bad, "bad.skeleton"),
        Err(SkeletonError::Malformed { .. })
    ));
}

#[test]
fn npy_fixture_arrays_and_labels() {
    let set = load_arrays(
        &fixture("ntu_small_data.npy"),
        &fixture("ntu_small_labels.npy"),
        25,
    )
    .unwrap();
    assert_eq!(set.shape(), [2, 3, 4, 25, 2]);
    assert_eq!(set.labels, vec![4, 0]);
    assert_eq!(set.num_classes(), 5);
    assert_eq!(
        set.data[[1, 2, 3, 24, 1]],
        10000.0 + 2000.0 + 300.0 + 48.0 + 1.0
    );
    assert_eq!(
        read_labels(&fixture("ntu_small_labels.csv")).unwrap(),
        vec![4, 0]
    );
    // Wrong joint count for the graph.
    assert!(matches!(
        load_arrays(
            &fixture("ntu_small_data.npy"),
            &fixture("ntu_small_labels.npy"),
            15
        ),
        Err(SkeletonError::Shape { .. })
    ));
    // Labels of the wrong length.
    let dir = tempfile::tempdir().unwrap();
    let l = dir.path().join("l.csv");
    std::fs::write(&l, "1\n2\n3\n").unwrap();
    assert!(matches!(
        load_arrays(&fixture("ntu_small_data.npy"), &l, 25),
        Err(SkeletonError::LabelCount { .. })
    ));
    std::fs::write(&l, "label\n1\nx\n").unwrap();
    assert!(matches!(
        read_labels(&l),
        Err(SkeletonError::InvalidNumber { line: 3, .. })
    ));
}

#[test]
fn arrays_round_trip_through_files() {
    let set = load_arrays(
        &fixture("ntu_small_data.npy"),
        &fixture("ntu_small_labels.csv"),
        25,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (d, l) = (dir.path().join("x.npy"), dir.path().join("y.npy"));
    save_arrays(&set, &d, &l).unwrap();
    // Byte-identical to the numpy-style fixture.
    assert_eq!(
        std::fs::read(&d).unwrap(),
        std::fs::read(fixture("ntu_small_data.npy")).unwrap()
    );
    assert_eq!(
        std::fs::read(&l).unwrap(),
        std::fs::read(fixture("ntu_small_labels.npy")).unwrap()
    );
    assert_eq!(load_arrays(&d, &l, 25).unwrap(), set);
}

#[test]
fn ntu_graph_partitions() {
    let g = Graph::ntu25();
    assert_eq!(g.center, NTU25_CENTER);
    let a = g.spatial_partitions();
    assert_eq!(a.shape(), &[3, 25, 25]);
    let col_sums = a.sum_axis(ndarray::Axis(0)).sum_axis(ndarray::Axis(0));
    assert!(col_sums.iter().all(|s| (s - 1.0).abs() < 1e-12));
    // Center joint (1-based 21) has neighbours 2, 3, 5, 9: all farther, so in A_1.
    for j in [1, 2, 4, 8] {
        assert!(a[[1, j, 20]] > 0.0 && a[[2, j, 20]] == 0.0);
        assert_eq!(a[[1, j, 20]], 0.2);
    }
}
