//! The 15 labelled DeepMimic mocap clips as 3-D joint positions (bundled `mocap/<action>.csv`,
//! computed by forward kinematics with pybullet; see the bundled `README.txt`) and the 15-joint
//! humanoid skeleton (`skeleton.csv`). World frame: +Y up, metres; in the rest pose the character
//! faces +X and its right side is +Z.

use std::path::Path;

use ndarray::Array3;

use super::graph::{Graph, MOCAP15_CENTER};
use super::text::{csv_fields, parse_f64, parse_usize};
use super::{bundled_mocap_dir, read_to_string, Result, SkeletonError};

/// The 15 action classes, in class-index order (alphabetical).
pub const MOCAP_ACTIONS: [&str; 15] = [
    "backflip",
    "cartwheel",
    "crawl",
    "dance_a",
    "dance_b",
    "getup_facedown",
    "getup_faceup",
    "jump",
    "kick",
    "punch",
    "roll",
    "run",
    "spin",
    "spinkick",
    "walk",
];

/// Number of joints of the humanoid.
pub const MOCAP_JOINTS: usize = 15;

/// Right/left joint pairs of the humanoid (hip, knee, ankle, shoulder, elbow, wrist).
pub const MOCAP_LEFT_RIGHT: [(usize, usize); 6] =
    [(3, 9), (4, 10), (5, 11), (6, 12), (7, 13), (8, 14)];

/// One joint of `skeleton.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct MocapJoint {
    /// Joint name (`root`, `chest`, …).
    pub name: String,
    /// Parent joint (`None` for the root).
    pub parent: Option<usize>,
    /// Offset from the parent in the parent frame, metres (0.25 × URDF origin).
    pub offset: [f64; 3],
    /// `fixed`, `spherical` or `revolute`.
    pub joint_type: String,
}

/// The humanoid skeleton of `skeleton.csv`.
#[derive(Debug, Clone, PartialEq)]
pub struct MocapSkeleton {
    /// Joints in index order.
    pub joints: Vec<MocapJoint>,
}

impl MocapSkeleton {
    /// Parses `skeleton.csv` text.
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        let mut joints = Vec::new();
        for (i, line) in text.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let ln = i + 1;
            let f = csv_fields(line, file, ln, "skeleton.csv row", 16)?;
            let index = parse_usize(f[0], file, ln, "index")?;
            if index != joints.len() {
                return Err(SkeletonError::Malformed {
                    file: file.to_string(),
                    line: ln,
                    reason: "joint indices must be 0, 1, 2, … in order",
                    value: f[0].to_string(),
                });
            }
            let parent = match f[2].trim() {
                "-1" => None,
                p => {
                    let p = parse_usize(p, file, ln, "parent_index")?;
                    if p >= index {
                        return Err(SkeletonError::OutOfRange {
                            file: file.to_string(),
                            line: ln,
                            what: "parent_index",
                            value: p as f64,
                            min: -1.0,
                            max: index as f64 - 1.0,
                        });
                    }
                    Some(p)
                }
            };
            joints.push(MocapJoint {
                name: f[1].to_string(),
                parent,
                offset: [
                    parse_f64(f[4], file, ln, "offset_x")?,
                    parse_f64(f[5], file, ln, "offset_y")?,
                    parse_f64(f[6], file, ln, "offset_z")?,
                ],
                joint_type: f[10].to_string(),
            });
        }
        Ok(MocapSkeleton { joints })
    }

    /// Reads the bundled `skeleton.csv`.
    pub fn load_bundled() -> Result<Self> {
        let path = bundled_mocap_dir().join("skeleton.csv");
        Self::parse(&read_to_string(&path)?, &path.display().to_string())
    }

    /// Parent of each joint.
    pub fn parents(&self) -> Vec<Option<usize>> {
        self.joints.iter().map(|j| j.parent).collect()
    }

    /// The skeleton graph (bones child–parent), centered on the chest.
    pub fn graph(&self) -> Result<Graph> {
        Graph::from_parents(&self.parents(), MOCAP15_CENTER)
    }
}

/// One clip as joint positions per keyframe.
#[derive(Debug, Clone, PartialEq)]
pub struct MocapClip {
    /// Action name.
    pub name: String,
    /// `true` for cyclic clips (`Loop = wrap`).
    pub looping: bool,
    /// Start time of each keyframe, seconds.
    pub times: Vec<f64>,
    /// `(frames, 15, 3)` world positions, metres.
    pub positions: Array3<f64>,
}

impl MocapClip {
    /// Parses a positions CSV (`frame,t_seconds,dt,j0_x,…,j14_z`).
    pub fn parse(text: &str, name: &str, looping: bool, file: &str) -> Result<Self> {
        let ncols = 3 + 3 * MOCAP_JOINTS;
        let mut lines = text.lines().enumerate();
        let header = lines.next().map(|(_, l)| l).unwrap_or("");
        let h = csv_fields(header, file, 1, "positions header", ncols)?;
        if h[0] != "frame" || h[1] != "t_seconds" || h[3] != "j0_x" {
            return Err(SkeletonError::Malformed {
                file: file.to_string(),
                line: 1,
                reason: "unexpected positions header",
                value: header.to_string(),
            });
        }
        let mut times = Vec::new();
        let mut values = Vec::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let ln = i + 1;
            let f = csv_fields(line, file, ln, "positions row", ncols)?;
            times.push(parse_f64(f[1], file, ln, "t_seconds")?);
            for v in &f[3..] {
                values.push(parse_f64(v, file, ln, "joint coordinate")?);
            }
        }
        if times.is_empty() {
            return Err(SkeletonError::UnexpectedEof {
                file: file.to_string(),
                line: 2,
                expected: "at least one frame",
            });
        }
        let positions = Array3::from_shape_vec((times.len(), MOCAP_JOINTS, 3), values)
            .expect("row lengths checked");
        Ok(MocapClip {
            name: name.to_string(),
            looping,
            times,
            positions,
        })
    }

    /// Reads a positions CSV file.
    pub fn load(path: &Path, name: &str, looping: bool) -> Result<Self> {
        Self::parse(
            &read_to_string(path)?,
            name,
            looping,
            &path.display().to_string(),
        )
    }

    /// Reads the bundled positions of one action (loop flag from `clips.csv`).
    pub fn load_bundled(name: &str) -> Result<Self> {
        let looping = bundled_loop_flags()?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, l)| l)
            .ok_or_else(|| SkeletonError::Malformed {
                file: "clips.csv".to_string(),
                line: 0,
                reason: "unknown mocap action",
                value: name.to_string(),
            })?;
        Self::load(
            &bundled_mocap_dir().join(format!("{name}.csv")),
            name,
            looping,
        )
    }

    /// Reads all 15 bundled clips in [`MOCAP_ACTIONS`] order.
    pub fn load_all_bundled() -> Result<Vec<Self>> {
        MOCAP_ACTIONS
            .iter()
            .map(|a| Self::load_bundled(a))
            .collect()
    }

    /// Number of keyframes.
    pub fn num_frames(&self) -> usize {
        self.times.len()
    }
}

/// `(action, looping)` for every row of the bundled `clips.csv`.
pub fn bundled_loop_flags() -> Result<Vec<(String, bool)>> {
    let path = bundled_mocap_dir().join("clips.csv");
    let file = path.display().to_string();
    let text = read_to_string(&path)?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f = csv_fields(line, &file, i + 1, "clips.csv row", 7)?;
        let looping = match f[2] {
            "wrap" => true,
            "none" => false,
            other => {
                return Err(SkeletonError::Malformed {
                    file,
                    line: i + 1,
                    reason: "loop must be wrap or none",
                    value: other.to_string(),
                })
            }
        };
        out.push((f[0].to_string(), looping));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::skeleton::graph::MOCAP15_PARENTS;

    #[test]
    fn skeleton_csv_matches_graph_constant() {
        let s = MocapSkeleton::load_bundled().unwrap();
        assert_eq!(s.joints.len(), MOCAP_JOINTS);
        assert_eq!(s.parents(), MOCAP15_PARENTS.to_vec());
        assert_eq!(s.graph().unwrap(), Graph::mocap15());
        // Left/right pairs are mirror images: same parent pattern, z offsets negated.
        for (r, l) in MOCAP_LEFT_RIGHT {
            assert!(s.joints[r].name.starts_with("right_"));
            assert_eq!(
                s.joints[l].name,
                s.joints[r].name.replace("right_", "left_")
            );
            assert_eq!(s.joints[r].offset[2], -s.joints[l].offset[2]);
        }
    }

    #[test]
    fn all_clips_load_with_readme_frame_counts() {
        let clips = MocapClip::load_all_bundled().unwrap();
        let frames: Vec<usize> = clips.iter().map(|c| c.num_frames()).collect();
        assert_eq!(
            frames,
            vec![29, 164, 177, 98, 153, 183, 227, 107, 47, 65, 121, 25, 107, 78, 39]
        );
        let walk = &clips[14];
        assert!(walk.looping);
        assert_eq!(walk.positions[[0, 0, 1]], 0.847532);
        assert!(!clips[8].looping); // kick
    }

    #[test]
    fn bad_row_names_the_line() {
        let mut text = String::from("frame,t_seconds,dt");
        for j in 0..MOCAP_JOINTS {
            text.push_str(&format!(",j{j}_x,j{j}_y,j{j}_z"));
        }
        text.push('\n');
        let row: Vec<String> = (0..48).map(|v| v.to_string()).collect();
        text.push_str(&row.join(","));
        text.push('\n');
        text.push_str(&row[..47].join(","));
        match MocapClip::parse(&text, "x", false, "x.csv") {
            Err(SkeletonError::FieldCount {
                line: 3, found: 47, ..
            }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
}
