//! The bundled BodyPose set (10,681 real BODY_25 poses, 20 classes) and its stratified split.

use datasets::skeleton::graph::Graph;
use datasets::skeleton::{BodyPoseNormalization, BodyPoseSet};

/// Class counts from the CSV, alphabetical class order.
const COUNTS: [(&str, usize); 20] = [
    ("MilitarySalute", 524),
    ("Plank", 535),
    ("PushUp_Low", 508),
    ("Seated", 606),
    ("Squat", 552),
    ("Stand", 521),
    ("Stand_LeftArmRaised", 534),
    ("Stand_RightArmRaised", 503),
    ("T", 503),
    ("Traffic_AllStop", 571),
    ("Traffic_BackFrontStop", 516),
    ("Traffic_BackStop", 560),
    ("Traffic_FrontStop", 528),
    ("Traffic_LeftTurn", 555),
    ("Traffic_RightTurn", 521),
    ("Yoga_Tree_left", 580),
    ("Yoga_Tree_right", 502),
    ("Yoga_UpwardSalute", 526),
    ("Yoga_Warrior2_left", 521),
    ("Yoga_Warrior2_right", 515),
];

#[test]
fn bundled_bodypose_shapes_and_counts() {
    let p = BodyPoseSet::load_bundled(BodyPoseNormalization::AsProvided).unwrap();
    assert_eq!(p.set.shape(), [10_681, 2, 1, 25, 1]);
    assert_eq!(p.confidence.len(), 10_681);
    let names: Vec<&str> = COUNTS.iter().map(|c| c.0).collect();
    assert_eq!(p.set.class_names, names);
    let counts: Vec<usize> = COUNTS.iter().map(|c| c.1).collect();
    assert_eq!(p.set.class_counts(), counts);
    // Package normalisation: centred bounding box, values within +-0.72; first row's nose.
    assert!(p.set.data.iter().all(|v| v.abs() <= 0.72));
    assert_eq!(p.set.data[[0, 0, 0, 0, 0]], -0.060_776_36_f32);
    assert_eq!(p.set.labels[0], 3); // Seated
    assert_eq!(Graph::body25().num_nodes, p.set.shape()[3]);
}

#[test]
fn mid_hip_torso_normalization() {
    let raw = BodyPoseSet::load_bundled(BodyPoseNormalization::AsProvided).unwrap();
    let p = BodyPoseSet::load_bundled(BodyPoseNormalization::MidHipTorso).unwrap();
    let mut normalized = 0;
    for n in 0..p.set.len() {
        let at = |s: &BodyPoseSet, j| (s.set.data[[n, 0, 0, j, 0]], s.set.data[[n, 1, 0, j, 0]]);
        if at(&raw, 8) == (0.0, 0.0) {
            // Mid-hip not detected: the package's normalisation is kept.
            assert_eq!(at(&p, 1), at(&raw, 1));
            continue;
        }
        assert_eq!(at(&p, 8), (0.0, 0.0));
        let neck = at(&p, 1);
        let torso = neck.0.hypot(neck.1);
        assert!((torso - 1.0).abs() < 1e-5, "sample {n}: torso {torso}");
        // Undetected keypoints stay (0, 0).
        for j in 0..25 {
            assert_eq!(at(&raw, j) == (0.0, 0.0), at(&p, j) == (0.0, 0.0) && j != 8);
        }
        normalized += 1;
    }
    // All but the 3 samples without a detected mid-hip.
    assert_eq!(normalized, 10_681 - 3);
}

#[test]
fn stratified_split_is_seeded_and_stratified() {
    let p = BodyPoseSet::load_bundled(BodyPoseNormalization::AsProvided).unwrap();
    let (train, test) = p.set.split_stratified(0.2, 42).unwrap();
    assert_eq!(train.len() + test.len(), 10_681);
    for (c, (_, n)) in COUNTS.iter().enumerate() {
        let t = (0.2 * *n as f64).round() as usize;
        assert_eq!(test.class_counts()[c], t);
        assert_eq!(train.class_counts()[c], n - t);
    }
    let (train2, test2) = p.set.split_stratified(0.2, 42).unwrap();
    assert_eq!((&train, &test), (&train2, &test2));
    let (_, test3) = p.set.split_stratified(0.2, 43).unwrap();
    assert_ne!(test.data, test3.data);
    assert!(p.set.split_stratified(1.5, 1).is_err());
}
