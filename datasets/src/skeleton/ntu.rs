//! NTU RGB+D formats (Shahroudy et al., CVPR 2016; Liu et al., TPAMI 2019): the per-sequence
//! `.skeleton` text files written by the Kinect v2 SDK tools, the `SsssCcccPpppRrrrAaaa` file
//! names, and the `(N, C, T, V, M)` `.npy` arrays used by ST-GCN / 2s-AGCN (with labels as an
//! integer `.npy` or a text/CSV file).
//!
//! `.skeleton` layout (whitespace-separated numbers, one record per line):
//! ```text
//! frameCount
//! per frame:   bodyCount
//!   per body:  bodyID clippedEdges handLeftConfidence handLeftState handRightConfidence
//!              handRightState isRestricted leanX leanY trackingState      (10 values)
//!              jointCount                                                  (25)
//!              per joint: x y z depthX depthY colorX colorY
//!                         orientationW orientationX orientationY orientationZ trackingState (12)
//! ```
//! Conversion to an array follows ST-GCN's `ntu_gendata`: channels `(x, y, z)` (camera space,
//! metres), the first `max_bodies` bodies of each frame in file order, frames beyond
//! `max_frames` dropped and missing frames/bodies left zero.

use std::path::Path;

use ndarray::{Array4, Array5, Axis};

use super::text::{parse_f64, parse_usize};
use super::{read_to_string, Result, SkeletonError, SkeletonSet};
use crate::npy::{read_npy, write_npy};

/// Joints per body in NTU RGB+D.
pub const NTU_JOINTS: usize = 25;
/// Largest body count accepted per frame (the Kinect v2 tracks at most 6 bodies).
pub const MAX_BODIES_PER_FRAME: usize = 6;
/// Largest frame count accepted in one file (NTU's longest sequences have ~300–600 frames).
pub const MAX_FRAMES: usize = 100_000;

/// One joint record (12 values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NtuJoint {
    /// Camera-space position, metres.
    pub xyz: [f64; 3],
    /// Depth-image coordinates.
    pub depth_xy: [f64; 2],
    /// Colour-image coordinates.
    pub color_xy: [f64; 2],
    /// Orientation quaternion `(w, x, y, z)`.
    pub orientation_wxyz: [f64; 4],
    /// 0 = not tracked, 1 = inferred, 2 = tracked.
    pub tracking_state: u8,
}

/// One body record: its 10 info values and 25 joints.
#[derive(Debug, Clone, PartialEq)]
pub struct NtuBody {
    /// Tracking ID (a 64-bit integer in the files).
    pub body_id: u64,
    /// The 9 further info values: clippedEdges, handLeftConfidence, handLeftState,
    /// handRightConfidence, handRightState, isRestricted, leanX, leanY, trackingState.
    pub info: [f64; 9],
    /// The joints.
    pub joints: Vec<NtuJoint>,
}

/// One frame: the bodies seen in it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NtuFrame {
    /// Bodies in file order.
    pub bodies: Vec<NtuBody>,
}

/// A parsed `.skeleton` file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NtuSkeletonFile {
    /// Frames in order.
    pub frames: Vec<NtuFrame>,
}

/// Fields of an NTU file name `SsssCcccPpppRrrrAaaa` (all 1-based as in the name).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtuFileName {
    /// Setup number.
    pub setup: u32,
    /// Camera (1–3; the cross-view protocol trains on cameras 2, 3 and tests on camera 1).
    pub camera: u32,
    /// Performer (subject).
    pub performer: u32,
    /// Replication.
    pub replication: u32,
    /// Action class, 1-based (`A001` …).
    pub action: u32,
}

/// Performers (subjects) of the NTU RGB+D 60 cross-subject training split (Shahroudy et al.
/// 2016, §4); the other subjects form the test split.
pub const NTU60_CROSS_SUBJECT_TRAIN: [u32; 20] = [
    1, 2, 4, 5, 8, 9, 13, 14, 15, 16, 17, 18, 19, 25, 27, 28, 31, 34, 35, 38,
];

impl NtuFileName {
    /// Cross-view protocol: cameras 2 and 3 train, camera 1 tests.
    pub fn is_cross_view_train(&self) -> bool {
        self.camera != 1
    }

    /// Cross-subject protocol (NTU 60): the performer is in [`NTU60_CROSS_SUBJECT_TRAIN`].
    pub fn is_cross_subject_train(&self) -> bool {
        NTU60_CROSS_SUBJECT_TRAIN.contains(&self.performer)
    }

    /// Parses a file name such as `S001C002P003R001A005.skeleton` (directories and extension
    /// are ignored). Returns `None` when the stem does not have that form.
    pub fn parse(name: &str) -> Option<Self> {
        let stem = Path::new(name).file_stem()?.to_str()?;
        let b = stem.as_bytes();
        if b.len() != 20 {
            return None;
        }
        let field = |i: usize, tag: u8| -> Option<u32> {
            if b[i] != tag {
                return None;
            }
            stem[i + 1..i + 4].parse().ok()
        };
        Some(NtuFileName {
            setup: field(0, b'S')?,
            camera: field(4, b'C')?,
            performer: field(8, b'P')?,
            replication: field(12, b'R')?,
            action: field(16, b'A')?,
        })
    }
}

/// Line cursor with error context.
struct Lines<'a> {
    lines: std::iter::Enumerate<std::str::Lines<'a>>,
    file: &'a str,
    last: usize,
}

impl<'a> Lines<'a> {
    /// Next non-empty line as (1-based line number, tokens).
    fn next(&mut self, expected: &'static str) -> Result<(usize, Vec<&'a str>)> {
        for (i, l) in self.lines.by_ref() {
            self.last = i + 1;
            let toks: Vec<&str> = l.split_whitespace().collect();
            if !toks.is_empty() {
                return Ok((i + 1, toks));
            }
        }
        Err(SkeletonError::UnexpectedEof {
            file: self.file.to_string(),
            line: self.last + 1,
            expected,
        })
    }

    fn count(&mut self, what: &'static str, max: usize) -> Result<usize> {
        let (ln, toks) = self.next(what)?;
        if toks.len() != 1 {
            return Err(SkeletonError::FieldCount {
                file: self.file.to_string(),
                line: ln,
                what,
                expected: 1,
                found: toks.len(),
            });
        }
        let n = parse_usize(toks[0], self.file, ln, what)?;
        if n > max {
            return Err(SkeletonError::OutOfRange {
                file: self.file.to_string(),
                line: ln,
                what,
                value: n as f64,
                min: 0.0,
                max: max as f64,
            });
        }
        Ok(n)
    }

    fn values(&mut self, what: &'static str, n: usize) -> Result<(usize, Vec<&'a str>)> {
        let (ln, toks) = self.next(what)?;
        if toks.len() != n {
            return Err(SkeletonError::FieldCount {
                file: self.file.to_string(),
                line: ln,
                what,
                expected: n,
                found: toks.len(),
            });
        }
        Ok((ln, toks))
    }
}

impl NtuSkeletonFile {
    /// Parses `.skeleton` text; `file` names the source in errors (which give the 1-based line).
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        let mut lines = Lines {
            lines: text.lines().enumerate(),
            file,
            last: 0,
        };
        let num_frames = lines.count("frame count", MAX_FRAMES)?;
        let mut frames = Vec::with_capacity(num_frames);
        for _ in 0..num_frames {
            let num_bodies = lines.count("body count", MAX_BODIES_PER_FRAME)?;
            let mut bodies = Vec::with_capacity(num_bodies);
            for _ in 0..num_bodies {
                let (ln, info) = lines.values("body info (10 values)", 10)?;
                let body_id = info[0]
                    .parse::<u64>()
                    .map_err(|_| SkeletonError::InvalidNumber {
                        file: file.to_string(),
                        line: ln,
                        field: "bodyID",
                        value: info[0].to_string(),
                    })?;
                let mut rest = [0.0; 9];
                for (o, t) in rest.iter_mut().zip(&info[1..]) {
                    *o = parse_f64(t, file, ln, "body info value")?;
                }
                let (ln, toks) = lines.values("joint count", 1)?;
                let nj = parse_usize(toks[0], file, ln, "joint count")?;
                if nj != NTU_JOINTS {
                    return Err(SkeletonError::OutOfRange {
                        file: file.to_string(),
                        line: ln,
                        what: "joint count",
                        value: nj as f64,
                        min: NTU_JOINTS as f64,
                        max: NTU_JOINTS as f64,
                    });
                }
                let mut joints = Vec::with_capacity(NTU_JOINTS);
                for _ in 0..NTU_JOINTS {
                    let (ln, t) = lines.values("joint (12 values)", 12)?;
                    let mut v = [0.0; 11];
                    for (o, tok) in v.iter_mut().zip(&t) {
                        *o = parse_f64(tok, file, ln, "joint value")?;
                    }
                    let ts = parse_usize(t[11], file, ln, "joint trackingState")?;
                    if ts > 2 {
                        return Err(SkeletonError::OutOfRange {
                            file: file.to_string(),
                            line: ln,
                            what: "joint trackingState",
                            value: ts as f64,
                            min: 0.0,
                            max: 2.0,
                        });
                    }
                    joints.push(NtuJoint {
                        xyz: [v[0], v[1], v[2]],
                        depth_xy: [v[3], v[4]],
                        color_xy: [v[5], v[6]],
                        orientation_wxyz: [v[7], v[8], v[9], v[10]],
                        tracking_state: ts as u8,
                    });
                }
                bodies.push(NtuBody {
                    body_id,
                    info: rest,
                    joints,
                });
            }
            frames.push(NtuFrame { bodies });
        }
        if let Ok((ln, toks)) = lines.next("end of file") {
            return Err(SkeletonError::Malformed {
                file: file.to_string(),
                line: ln,
                reason: "trailing data after the last frame",
                value: toks.join(" "),
            });
        }
        Ok(NtuSkeletonFile { frames })
    }

    /// Reads a `.skeleton` file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::parse(&read_to_string(path)?, &path.display().to_string())
    }

    /// Writes the file in the `.skeleton` text format (numbers with Rust's shortest round-trip
    /// formatting, so `parse(to_text(f)) == f`).
    pub fn to_text(&self) -> String {
        let mut s = format!("{}\n", self.frames.len());
        for f in &self.frames {
            s.push_str(&format!("{}\n", f.bodies.len()));
            for b in &f.bodies {
                s.push_str(&b.body_id.to_string());
                for v in b.info {
                    s.push_str(&format!(" {v}"));
                }
                s.push('\n');
                s.push_str(&format!("{}\n", b.joints.len()));
                for j in &b.joints {
                    let vals = j
                        .xyz
                        .iter()
                        .chain(&j.depth_xy)
                        .chain(&j.color_xy)
                        .chain(&j.orientation_wxyz)
                        .map(|v| v.to_string())
                        .collect::<Vec<_>>()
                        .join(" ");
                    s.push_str(&format!("{vals} {}\n", j.tracking_state));
                }
            }
        }
        s
    }

    /// Joint positions as `(C = 3, T = max_frames, V = 25, M = max_bodies)` (see the module
    /// documentation for body selection and padding).
    pub fn to_array(&self, max_frames: usize, max_bodies: usize) -> Array4<f32> {
        let mut a = Array4::zeros((3, max_frames, NTU_JOINTS, max_bodies));
        for (t, f) in self.frames.iter().take(max_frames).enumerate() {
            for (m, b) in f.bodies.iter().take(max_bodies).enumerate() {
                for (v, j) in b.joints.iter().enumerate() {
                    for c in 0..3 {
                        a[[c, t, v, m]] = j.xyz[c] as f32;
                    }
                }
            }
        }
        a
    }
}

/// Loads `.skeleton` files into one set; the label of each file is its action number − 1 (from
/// the `SsssCcccPpppRrrrAaaa` name) and the class names are `A001` … `A{num_classes}`.
pub fn load_skeleton_files(
    paths: &[&Path],
    num_classes: usize,
    max_frames: usize,
    max_bodies: usize,
) -> Result<SkeletonSet> {
    let mut data = Array5::zeros((paths.len(), 3, max_frames, NTU_JOINTS, max_bodies));
    let mut labels = Vec::with_capacity(paths.len());
    for (n, p) in paths.iter().enumerate() {
        let name = p.display().to_string();
        let info = NtuFileName::parse(&name).ok_or_else(|| SkeletonError::Malformed {
            file: name.clone(),
            line: 0,
            reason: "file name is not of the form SsssCcccPpppRrrrAaaa",
            value: name.clone(),
        })?;
        if info.action == 0 || info.action as usize > num_classes {
            return Err(SkeletonError::OutOfRange {
                file: name,
                line: 0,
                what: "action number in the file name",
                value: f64::from(info.action),
                min: 1.0,
                max: num_classes as f64,
            });
        }
        let f = NtuSkeletonFile::load(p)?;
        data.index_axis_mut(Axis(0), n)
            .assign(&f.to_array(max_frames, max_bodies));
        labels.push(info.action as usize - 1);
    }
    Ok(SkeletonSet {
        data,
        labels,
        class_names: (1..=num_classes).map(|a| format!("A{a:03}")).collect(),
    })
}

/// Reads labels from an integer `.npy` (shape `(N,)`) or from a text file with one label per
/// line, the label being the last comma-separated field (`label` or `name,label`); a first line
/// that is not a number is taken as a header.
pub fn read_labels(path: &Path) -> Result<Vec<usize>> {
    let file = path.display().to_string();
    if path.extension().is_some_and(|e| e == "npy") {
        let a = read_npy(path)?;
        let shape = a.shape().to_vec();
        let ints = a.into_i64().ok_or_else(|| SkeletonError::Npy {
            file: file.clone(),
            offset: 0,
            reason: "labels must be an integer array (<i4, <i8 or |u1)",
            found: format!("{shape:?}"),
        })?;
        if shape.len() != 1 {
            return Err(SkeletonError::Shape {
                what: "labels",
                expected: "(N,)",
                found: shape,
            });
        }
        return ints
            .iter()
            .enumerate()
            .map(|(i, &l)| {
                usize::try_from(l).map_err(|_| SkeletonError::Npy {
                    file: file.clone(),
                    offset: i,
                    reason: "negative label at this element index",
                    found: l.to_string(),
                })
            })
            .collect();
    }
    let text = read_to_string(path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let last = line.rsplit(',').next().unwrap_or("").trim();
        match last.parse::<usize>() {
            Ok(l) => out.push(l),
            Err(_) if i == 0 => continue,
            Err(_) => {
                return Err(SkeletonError::InvalidNumber {
                    file,
                    line: i + 1,
                    field: "label",
                    value: last.to_string(),
                })
            }
        }
    }
    Ok(out)
}

/// Loads an `(N, C, T, V, M)` `.npy` array (`<f4` or `<f8`, converted to `f32`) and its labels
/// ([`read_labels`]). `V` must be `num_joints`; class names are `class_0` … up to the largest
/// label.
pub fn load_arrays(data_path: &Path, labels_path: &Path, num_joints: usize) -> Result<SkeletonSet> {
    let arr = read_npy(data_path)?;
    let shape = arr.shape().to_vec();
    if shape.len() != 5 || shape[3] != num_joints {
        return Err(SkeletonError::Shape {
            what: "skeleton array",
            expected: "(N, C, T, V, M) with V = the graph's joints",
            found: shape,
        });
    }
    let data = arr
        .into_f32()
        .into_dimensionality::<ndarray::Ix5>()
        .expect("5-D checked");
    let labels = read_labels(labels_path)?;
    if labels.len() != shape[0] {
        return Err(SkeletonError::LabelCount {
            what: labels_path.display().to_string(),
            samples: shape[0],
            labels: labels.len(),
        });
    }
    let num_classes = labels.iter().max().map_or(0, |m| m + 1);
    Ok(SkeletonSet {
        data,
        labels,
        class_names: (0..num_classes).map(|c| format!("class_{c}")).collect(),
    })
}

/// Writes a set as `<f4` data `.npy` and `<i8` labels `.npy`.
pub fn save_arrays(set: &SkeletonSet, data_path: &Path, labels_path: &Path) -> Result<()> {
    write_npy(data_path, &set.data.view().into_dyn())?;
    let labels: Vec<i64> = set.labels.iter().map(|&l| l as i64).collect();
    write_npy(labels_path, &ndarray::ArrayView1::from(&labels))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        let n = NtuFileName::parse("/x/S017C003P020R002A060.skeleton").unwrap();
        assert_eq!(
            n,
            NtuFileName {
                setup: 17,
                camera: 3,
                performer: 20,
                replication: 2,
                action: 60
            }
        );
        assert!(n.is_cross_view_train());
        assert!(!n.is_cross_subject_train());
        let m = NtuFileName::parse("S001C001P001R001A001.skeleton").unwrap();
        assert!(!m.is_cross_view_train() && m.is_cross_subject_train());
        assert!(NtuFileName::parse("S017C003P020R002X060.skeleton").is_none());
        assert!(NtuFileName::parse("foo.skeleton").is_none());
    }
}
