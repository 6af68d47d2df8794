//! Forward kinematics of the raw DeepMimic clips against pybullet: the test vectors of
//! `fk_check.txt` (printed at 1e-9 m) and every frame of the positions CSVs (1e-6 m decimals).

use datasets::skeleton::fk::{ForwardKinematics, RawClip};
use datasets::skeleton::mocap::{MocapClip, MOCAP_ACTIONS};
use datasets::skeleton::{bundled_mocap_dir, SkeletonError};

struct CheckFrame {
    clip: String,
    index: usize,
    input: Vec<f64>,
    expected: Vec<[f64; 3]>,
}

/// Parses the "DETAILED FRAMES" section of fk_check.txt.
fn fk_check_frames() -> Vec<CheckFrame> {
    let text = std::fs::read_to_string(bundled_mocap_dir().join("fk_check.txt")).unwrap();
    let mut out: Vec<CheckFrame> = Vec::new();
    let mut clip = String::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = line.strip_prefix("clip ") {
            clip = rest.split_whitespace().next().unwrap().to_string();
        } else if t.starts_with("frame ") && t.contains("input: [") {
            let index = t.split_whitespace().nth(1).unwrap().parse().unwrap();
            let list = &t[t.find('[').unwrap() + 1..t.rfind(']').unwrap()];
            let input = list.split(',').map(|v| v.trim().parse().unwrap()).collect();
            out.push(CheckFrame {
                clip: clip.clone(),
                index,
                input,
                expected: Vec::new(),
            });
        } else if t.contains(" pb ") && t.contains(" np ") {
            let toks: Vec<&str> = t.split_whitespace().collect();
            // index name pb x y z np x y z |d|=...
            let j: usize = toks[0].parse().unwrap();
            let cur = out.last_mut().unwrap();
            assert_eq!(j, cur.expected.len());
            cur.expected.push([
                toks[3].parse().unwrap(),
                toks[4].parse().unwrap(),
                toks[5].parse().unwrap(),
            ]);
        }
    }
    out
}

#[test]
fn fk_matches_fk_check_vectors() {
    let fk = ForwardKinematics::bundled().unwrap();
    assert_eq!(fk.num_joints(), 15);
    assert_eq!(fk.frame_len, 44);
    let frames = fk_check_frames();
    assert_eq!(frames.len(), 12, "walk, backflip, kick x 4 frames");
    let mut worst: f64 = 0.0;
    for f in &frames {
        assert_eq!(f.expected.len(), 15);
        // The printed input is the stored frame.
        let clip = RawClip::load_bundled(&f.clip).unwrap();
        assert_eq!(
            clip.frames[f.index], f.input,
            "{} frame {}",
            f.clip, f.index
        );
        for (j, p) in fk.positions(&f.input).iter().enumerate() {
            for (a, b) in p.iter().zip(&f.expected[j]) {
                let d = (a - b).abs();
                worst = worst.max(d);
                assert!(d < 1e-6, "{} frame {} joint {j}: {d}", f.clip, f.index);
            }
        }
    }
    // The vectors are printed with 9 decimals.
    assert!(worst < 1e-8, "worst {worst}");
}

#[test]
fn fk_matches_all_position_csvs() {
    let fk = ForwardKinematics::bundled().unwrap();
    let mut total_frames = 0;
    for name in MOCAP_ACTIONS {
        let raw = RawClip::load_bundled(name).unwrap();
        let csv = MocapClip::load_bundled(name).unwrap();
        assert_eq!(raw.frames.len(), csv.num_frames(), "{name}");
        assert_eq!(raw.looping, csv.looping, "{name}");
        let fk_pos = fk.clip_positions(&raw);
        let max = (&fk_pos - &csv.positions)
            .iter()
            .fold(0.0f64, |m, d| m.max(d.abs()));
        // CSV values have 6 decimals (rounding error <= 5e-7).
        assert!(max < 1e-6, "{name}: max |FK - csv| = {max}");
        for (a, b) in raw.times().iter().zip(&csv.times) {
            assert!((a - b).abs() < 1e-6, "{name}: frame times {a} vs {b}");
        }
        total_frames += raw.frames.len();
    }
    assert_eq!(total_frames, 1620);
}

#[test]
fn known_mistakes_are_detected() {
    // The FK check must be sensitive: reading the knee angle negated moves the ankle far.
    let fk = ForwardKinematics::bundled().unwrap();
    let frames = fk_check_frames();
    let f = &frames[0];
    let mut bad = f.input.clone();
    bad[20] = -bad[20];
    let p = fk.positions(&bad);
    let d = (0..3)
        .map(|c| (p[5][c] - f.expected[5][c]).abs())
        .fold(0.0, f64::max);
    assert!(d > 1e-3, "negated knee moved the ankle by only {d}");
}

#[test]
fn missing_clip_is_an_io_error() {
    assert!(matches!(
        RawClip::load_bundled("no_such_clip"),
        Err(SkeletonError::Io { .. })
    ));
}
