//! The BodyPose data set (pose-classification-kit 1.1.5, MIT): 10,681 real 2-D OpenPose BODY_25
//! skeletons in 20 static pose classes, as `(N, C = 2, T = 1, V = 25, M = 1)` tensors for the
//! BODY_25 graph ([`super::Graph::body25`]).
//!
//! The CSV (`label, accuracy, x0, y0, …, x24, y24`) is already normalised by the package: per
//! sample, the keypoints are centred on the centre of the bounding box of the detected keypoints
//! and scaled (all values lie in ±0.72; y points up, the neck is above the mid-hip). Keypoints
//! OpenPose did not detect are stored as exactly `(0, 0)` (about 5 % of all keypoints).
//! [`BodyPoseNormalization::AsProvided`] keeps these values; [`BodyPoseNormalization::MidHipTorso`]
//! re-centres each sample on the mid-hip (joint 8) and divides by the neck–mid-hip distance
//! (torso length), keeping missing keypoints at `(0, 0)`; the 3 samples without a mid-hip keep
//! the package's normalisation. Class indices follow the alphabetical order of the class names.

use std::io::{BufRead, BufReader};
use std::path::Path;

use ndarray::Array5;

use super::text::{csv_fields, parse_f64};
use super::{bundled_data_dir, Result, SkeletonError, SkeletonSet};

/// Joints of BODY_25.
pub const BODY25_JOINTS: usize = 25;
/// BODY_25 neck.
pub const BODY25_NECK: usize = 1;
/// BODY_25 mid-hip.
pub const BODY25_MID_HIP: usize = 8;

/// How the keypoints are normalised (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyPoseNormalization {
    /// The package's normalisation (bounding-box centre, scaled).
    #[default]
    AsProvided,
    /// Centre on the mid-hip and divide by the torso (neck–mid-hip) length.
    MidHipTorso,
}

/// The BodyPose set with the OpenPose confidence sum of each sample.
#[derive(Debug, Clone, PartialEq)]
pub struct BodyPoseSet {
    /// `(N, 2, 1, 25, 1)` keypoints, labels and the 20 class names.
    pub set: SkeletonSet,
    /// The CSV's `accuracy` column (sum of OpenPose keypoint confidences).
    pub confidence: Vec<f32>,
}

impl BodyPoseSet {
    /// Parses the CSV from a reader; `file` names the source in errors.
    pub fn parse<R: BufRead>(reader: R, file: &str, norm: BodyPoseNormalization) -> Result<Self> {
        let ncols = 2 + 2 * BODY25_JOINTS;
        let mut rows: Vec<(String, f32, [f64; 2 * BODY25_JOINTS])> = Vec::new();
        for (i, line) in reader.lines().enumerate() {
            let ln = i + 1;
            let line = line.map_err(|source| SkeletonError::Io {
                path: file.into(),
                source,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let f = csv_fields(&line, file, ln, "BodyPose row", ncols)?;
            if ln == 1 {
                if f[0] != "label" || f[2] != "x0" || f[ncols - 1] != "y24" {
                    return Err(SkeletonError::Malformed {
                        file: file.to_string(),
                        line: 1,
                        reason: "unexpected BodyPose header",
                        value: line.clone(),
                    });
                }
                continue;
            }
            let conf = parse_f64(f[1], file, ln, "accuracy")? as f32;
            let mut xy = [0.0; 2 * BODY25_JOINTS];
            for (o, v) in xy.iter_mut().zip(&f[2..]) {
                *o = parse_f64(v, file, ln, "keypoint coordinate")?;
            }
            rows.push((f[0].to_string(), conf, xy));
        }
        let mut class_names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        class_names.sort();
        class_names.dedup();
        let n = rows.len();
        let mut data = Array5::zeros((n, 2, 1, BODY25_JOINTS, 1));
        let mut labels = Vec::with_capacity(n);
        let mut confidence = Vec::with_capacity(n);
        for (s, (label, conf, mut xy)) in rows.into_iter().enumerate() {
            if norm == BodyPoseNormalization::MidHipTorso {
                normalize_mid_hip_torso(&mut xy);
            }
            for v in 0..BODY25_JOINTS {
                data[[s, 0, 0, v, 0]] = xy[2 * v] as f32;
                data[[s, 1, 0, v, 0]] = xy[2 * v + 1] as f32;
            }
            labels.push(
                class_names
                    .binary_search(&label)
                    .expect("class names hold every label"),
            );
            confidence.push(conf);
        }
        Ok(BodyPoseSet {
            set: SkeletonSet {
                data,
                labels,
                class_names,
            },
            confidence,
        })
    }

    /// Reads a (optionally gzip-compressed, by the `.gz` extension) BodyPose CSV.
    pub fn load(path: &Path, norm: BodyPoseNormalization) -> Result<Self> {
        let f = std::fs::File::open(path).map_err(|source| SkeletonError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let file = path.display().to_string();
        if path.extension().is_some_and(|e| e == "gz") {
            Self::parse(BufReader::new(flate2::read::GzDecoder::new(f)), &file, norm)
        } else {
            Self::parse(BufReader::new(f), &file, norm)
        }
    }

    /// Reads the bundled `data/poses/BodyPose_Dataset.csv.gz`.
    pub fn load_bundled(norm: BodyPoseNormalization) -> Result<Self> {
        Self::load(
            &bundled_data_dir().join("poses/BodyPose_Dataset.csv.gz"),
            norm,
        )
    }
}

fn is_missing(xy: &[f64], j: usize) -> bool {
    xy[2 * j] == 0.0 && xy[2 * j + 1] == 0.0
}

fn normalize_mid_hip_torso(xy: &mut [f64; 2 * BODY25_JOINTS]) {
    if is_missing(xy, BODY25_MID_HIP) || is_missing(xy, BODY25_NECK) {
        return;
    }
    let (cx, cy) = (xy[2 * BODY25_MID_HIP], xy[2 * BODY25_MID_HIP + 1]);
    let torso = (xy[2 * BODY25_NECK] - cx).hypot(xy[2 * BODY25_NECK + 1] - cy);
    if torso <= 1e-9 {
        return;
    }
    for j in 0..BODY25_JOINTS {
        if !is_missing(xy, j) {
            xy[2 * j] = (xy[2 * j] - cx) / torso;
            xy[2 * j + 1] = (xy[2 * j + 1] - cy) / torso;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csv(rows: &[&str]) -> String {
        let mut h = String::from("label,accuracy");
        for j in 0..BODY25_JOINTS {
            h.push_str(&format!(",x{j},y{j}"));
        }
        let mut s = h + "\n";
        for r in rows {
            s.push_str(r);
            s.push('\n');
        }
        s
    }

    fn row(label: &str, k: f64) -> String {
        let mut r = format!("{label},1.5");
        for j in 0..BODY25_JOINTS {
            // Neck at (0, k), mid-hip at (0, 0) would be "missing", so shift by 0.1.
            let (x, y) = match j {
                1 => (0.1, 0.1 + k),
                8 => (0.1, 0.1),
                3 => (0.0, 0.0),
                _ => (0.1 + 0.01 * j as f64, 0.2),
            };
            r.push_str(&format!(",{x},{y}"));
        }
        r
    }

    #[test]
    fn parses_and_normalizes() {
        let text = csv(&[&row("b", 0.5), &row("a", 0.25)]);
        let p = BodyPoseSet::parse(text.as_bytes(), "t.csv", BodyPoseNormalization::AsProvided)
            .unwrap();
        assert_eq!(p.set.class_names, vec!["a", "b"]);
        assert_eq!(p.set.labels, vec![1, 0]);
        assert_eq!(p.set.shape(), [2, 2, 1, 25, 1]);
        assert_eq!(p.set.data[[0, 1, 0, 1, 0]], 0.6);
        let q = BodyPoseSet::parse(text.as_bytes(), "t.csv", BodyPoseNormalization::MidHipTorso)
            .unwrap();
        // Mid-hip at the origin, neck at distance 1, missing joint 3 stays (0, 0).
        assert_eq!(q.set.data[[0, 0, 0, 8, 0]], 0.0);
        assert!((q.set.data[[1, 1, 0, 1, 0]] - 1.0).abs() < 1e-6);
        assert_eq!(q.set.data[[1, 0, 0, 3, 0]], 0.0);
        assert!((q.set.data[[1, 1, 0, 5, 0]] - 0.4).abs() < 1e-6);
    }

    #[test]
    fn bad_value_names_line() {
        let bad = row("a", 0.5).replace(",0.2,", ",zz,");
        let text = csv(&[&row("a", 0.5), &bad]);
        match BodyPoseSet::parse(text.as_bytes(), "t.csv", BodyPoseNormalization::AsProvided) {
            Err(SkeletonError::InvalidNumber { line: 3, value, .. }) => assert_eq!(value, "zz"),
            other => panic!("unexpected {other:?}"),
        }
    }
}
