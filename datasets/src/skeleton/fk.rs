//! Raw DeepMimic motion clips (`humanoid3d_*.txt`: per frame `[dt, root position, root
//! quaternion, joint quaternions / angles]`) and forward kinematics with `humanoid.urdf`
//! (Peng et al., *DeepMimic*, SIGGRAPH 2018; the pybullet `deep_mimic` kinematic model).
//!
//! Convention (bundled `mocap/README.txt`, "FK CONVENTION"): offsets are `0.25 ×` the URDF joint
//! origins (pybullet `globalScaling`), quaternions are stored `(w, x, y, z)` and are normalised,
//! `R_base = R(q_root)`, `p_base = root_pos`, and for each joint `i` with parent `k`
//! `p_i = p_k + R_k · offset_i`, `R_i = R_k · L_i` with `L_i` the joint's local rotation
//! (quaternion for spherical joints, a right-handed rotation by the stored angle about the URDF
//! axis for revolute joints, identity for fixed joints). World frame: +Y up, metres.

use std::path::Path;

use ndarray::Array3;

use super::urdf::{JointKind, Urdf};
use super::{bundled_mocap_dir, read_to_string, Result, SkeletonError};

/// `pybullet.loadURDF(..., globalScaling=0.25)` as used by the deep_mimic environment.
pub const DEEPMIMIC_SCALE: f64 = 0.25;

/// 3×3 rotation matrix, row-major.
pub type Mat3 = [[f64; 3]; 3];

const IDENTITY: Mat3 = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]];

/// Normalises a `(w, x, y, z)` quaternion. A zero quaternion maps to the identity.
pub fn quat_normalize(q: [f64; 4]) -> [f64; 4] {
    let n = q.iter().map(|v| v * v).sum::<f64>().sqrt();
    if n == 0.0 {
        [1.0, 0.0, 0.0, 0.0]
    } else {
        q.map(|v| v / n)
    }
}

/// Active rotation matrix of a `(w, x, y, z)` quaternion (Hamilton convention; normalised first).
pub fn quat_to_mat(q: [f64; 4]) -> Mat3 {
    let [w, x, y, z] = quat_normalize(q);
    [
        [
            1.0 - 2.0 * (y * y + z * z),
            2.0 * (x * y - z * w),
            2.0 * (x * z + y * w),
        ],
        [
            2.0 * (x * y + z * w),
            1.0 - 2.0 * (x * x + z * z),
            2.0 * (y * z - x * w),
        ],
        [
            2.0 * (x * z - y * w),
            2.0 * (y * z + x * w),
            1.0 - 2.0 * (x * x + y * y),
        ],
    ]
}

/// Right-handed rotation by `angle` radians about the unit `axis` (Rodrigues).
pub fn axis_angle(axis: [f64; 3], angle: f64) -> Mat3 {
    let n = axis.iter().map(|v| v * v).sum::<f64>().sqrt();
    let [x, y, z] = axis.map(|v| v / n);
    let (s, c) = angle.sin_cos();
    let t = 1.0 - c;
    [
        [t * x * x + c, t * x * y - s * z, t * x * z + s * y],
        [t * x * y + s * z, t * y * y + c, t * y * z - s * x],
        [t * x * z - s * y, t * y * z + s * x, t * z * z + c],
    ]
}

fn mat_mul(a: &Mat3, b: &Mat3) -> Mat3 {
    let mut m = [[0.0; 3]; 3];
    for (i, row) in m.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = (0..3).map(|k| a[i][k] * b[k][j]).sum();
        }
    }
    m
}

fn mat_vec(a: &Mat3, v: [f64; 3]) -> [f64; 3] {
    [0, 1, 2].map(|i| a[i][0] * v[0] + a[i][1] * v[1] + a[i][2] * v[2])
}

/// Spherical linear interpolation between unit quaternions along the shorter arc.
pub fn quat_slerp(a: [f64; 4], b: [f64; 4], f: f64) -> [f64; 4] {
    let a = quat_normalize(a);
    let mut b = quat_normalize(b);
    let mut dot: f64 = (0..4).map(|i| a[i] * b[i]).sum();
    if dot < 0.0 {
        b = b.map(|v| -v);
        dot = -dot;
    }
    if dot > 0.9995 {
        let q = [0, 1, 2, 3].map(|i| a[i] + f * (b[i] - a[i]));
        return quat_normalize(q);
    }
    let theta = dot.min(1.0).acos();
    let s = theta.sin();
    let wa = ((1.0 - f) * theta).sin() / s;
    let wb = (f * theta).sin() / s;
    [0, 1, 2, 3].map(|i| wa * a[i] + wb * b[i])
}

/// One joint of the kinematic tree.
#[derive(Debug, Clone, PartialEq)]
pub struct FkJoint {
    /// Joint (= child link) name.
    pub name: String,
    /// Parent joint index; `None` when the parent link is the base.
    pub parent: Option<usize>,
    /// Offset from the parent joint, in the parent frame (already scaled).
    pub offset: [f64; 3],
    /// Joint type.
    pub kind: JointKind,
    /// Rotation axis (revolute joints).
    pub axis: [f64; 3],
    /// First column of this joint's DOFs in a frame (`None` for fixed joints).
    pub frame_col: Option<usize>,
}

/// Forward kinematics of a DeepMimic humanoid: maps a 44-float frame to joint positions.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardKinematics {
    /// Joints in URDF order (parents before children).
    pub joints: Vec<FkJoint>,
    /// Number of floats per frame (`1 + 3 + 4 + DOF columns`; 44 for the humanoid).
    pub frame_len: usize,
}

/// Column of the root position in a frame (after the `dt` field).
const ROOT_POS_COL: usize = 1;
/// Column of the root quaternion.
const ROOT_ROT_COL: usize = 4;
/// First joint DOF column.
const FIRST_DOF_COL: usize = 8;

impl ForwardKinematics {
    /// Builds the tree from URDF joints scaled by `scale`. The joint whose parent link is not the
    /// child of any joint is attached to the base (the clip's root pose). DOF columns are assigned
    /// in joint order: 4 floats per spherical joint, 1 per revolute joint, starting at column 8.
    pub fn from_urdf(urdf: &Urdf, scale: f64, file: &str) -> Result<Self> {
        let mut joints: Vec<FkJoint> = Vec::with_capacity(urdf.joints.len());
        let mut col = FIRST_DOF_COL;
        for j in &urdf.joints {
            if j.origin_rpy != [0.0; 3] {
                return Err(SkeletonError::Malformed {
                    file: file.to_string(),
                    line: j.line,
                    reason: "joint origin with a rotation (rpy) is not supported",
                    value: j.name.clone(),
                });
            }
            let parent = urdf.joints.iter().position(|p| p.child == j.parent);
            if let Some(p) = parent {
                if p >= joints.len() {
                    return Err(SkeletonError::Malformed {
                        file: file.to_string(),
                        line: j.line,
                        reason: "joint listed before its parent joint",
                        value: j.name.clone(),
                    });
                }
            }
            let frame_col = match j.kind {
                JointKind::Fixed => None,
                JointKind::Spherical => {
                    col += 4;
                    Some(col - 4)
                }
                JointKind::Revolute | JointKind::Continuous => {
                    col += 1;
                    Some(col - 1)
                }
            };
            joints.push(FkJoint {
                name: j.name.clone(),
                parent,
                offset: j.origin_xyz.map(|v| v * scale),
                kind: j.kind,
                axis: j.axis,
                frame_col,
            });
        }
        Ok(ForwardKinematics {
            joints,
            frame_len: col,
        })
    }

    /// The bundled `humanoid.urdf` with the deep_mimic scale 0.25.
    pub fn bundled() -> Result<Self> {
        let path = bundled_mocap_dir().join("humanoid.urdf");
        let urdf = Urdf::load(&path)?;
        Self::from_urdf(&urdf, DEEPMIMIC_SCALE, &path.display().to_string())
    }

    /// Number of joints.
    pub fn num_joints(&self) -> usize {
        self.joints.len()
    }

    /// Joint positions (world frame) of one frame of `frame_len` floats.
    ///
    /// # Panics
    /// If `frame.len() < self.frame_len` (clips are validated when they are parsed).
    pub fn positions(&self, frame: &[f64]) -> Vec<[f64; 3]> {
        assert!(frame.len() >= self.frame_len, "frame too short");
        let root_p = [
            frame[ROOT_POS_COL],
            frame[ROOT_POS_COL + 1],
            frame[ROOT_POS_COL + 2],
        ];
        let root_r = quat_to_mat(quat_at(frame, ROOT_ROT_COL));
        let mut pos: Vec<[f64; 3]> = Vec::with_capacity(self.joints.len());
        let mut rot: Vec<Mat3> = Vec::with_capacity(self.joints.len());
        for j in &self.joints {
            let (pk, rk) = match j.parent {
                None => (root_p, root_r),
                Some(k) => (pos[k], rot[k]),
            };
            let o = mat_vec(&rk, j.offset);
            pos.push([pk[0] + o[0], pk[1] + o[1], pk[2] + o[2]]);
            let local = match (j.kind, j.frame_col) {
                (JointKind::Spherical, Some(c)) => quat_to_mat(quat_at(frame, c)),
                (JointKind::Revolute | JointKind::Continuous, Some(c)) => {
                    axis_angle(j.axis, frame[c])
                }
                _ => IDENTITY,
            };
            rot.push(mat_mul(&rk, &local));
        }
        pos
    }

    /// Interpolates two frames: root position and revolute angles linearly, quaternions by slerp
    /// (normalised). The `dt` field is taken from `a`.
    pub fn interpolate(&self, a: &[f64], b: &[f64], f: f64) -> Vec<f64> {
        let mut out = a[..self.frame_len].to_vec();
        for c in ROOT_POS_COL..ROOT_POS_COL + 3 {
            out[c] = a[c] + f * (b[c] - a[c]);
        }
        let set_quat = |out: &mut [f64], c: usize| {
            let q = quat_slerp(quat_at(a, c), quat_at(b, c), f);
            out[c..c + 4].copy_from_slice(&q);
        };
        set_quat(&mut out, ROOT_ROT_COL);
        for j in &self.joints {
            match (j.kind, j.frame_col) {
                (JointKind::Spherical, Some(c)) => set_quat(&mut out, c),
                (JointKind::Revolute | JointKind::Continuous, Some(c)) => {
                    out[c] = a[c] + f * (b[c] - a[c]);
                }
                _ => {}
            }
        }
        out
    }

    /// Positions of every frame of a clip, `(frames, joints, 3)`.
    pub fn clip_positions(&self, clip: &RawClip) -> Array3<f64> {
        let mut out = Array3::zeros((clip.frames.len(), self.num_joints(), 3));
        for (f, frame) in clip.frames.iter().enumerate() {
            for (j, p) in self.positions(frame).into_iter().enumerate() {
                for c in 0..3 {
                    out[[f, j, c]] = p[c];
                }
            }
        }
        out
    }
}

fn quat_at(frame: &[f64], c: usize) -> [f64; 4] {
    [frame[c], frame[c + 1], frame[c + 2], frame[c + 3]]
}

/// A raw DeepMimic clip: `{"Loop": "wrap"|"none", "Frames": [[dt, ...], ...]}`.
#[derive(Debug, Clone, PartialEq)]
pub struct RawClip {
    /// Action name (file name without `humanoid3d_` and `.txt`).
    pub name: String,
    /// `true` for `"Loop": "wrap"` (cyclic clips).
    pub looping: bool,
    /// Frames, each of the same length (44 for the humanoid).
    pub frames: Vec<Vec<f64>>,
}

impl RawClip {
    /// Parses the JSON-like clip text. `frame_len` is the number of floats each frame must have.
    /// Errors name `file` and the 1-based line of the offending frame or value.
    pub fn parse(text: &str, name: &str, file: &str, frame_len: usize) -> Result<Self> {
        let malformed = |line, reason, value: &str| SkeletonError::Malformed {
            file: file.to_string(),
            line,
            reason,
            value: value.chars().take(60).collect(),
        };
        let line_of = |pos: usize| text[..pos].matches('\n').count() + 1;
        let loop_pos = text
            .find("\"Loop\"")
            .ok_or_else(|| malformed(1, "missing \"Loop\" key", ""))?;
        let after = text[loop_pos + 6..].trim_start().trim_start_matches(':');
        let after = after.trim_start();
        let looping = if after.starts_with("\"wrap\"") {
            true
        } else if after.starts_with("\"none\"") {
            false
        } else {
            return Err(malformed(
                line_of(loop_pos),
                "Loop must be \"wrap\" or \"none\"",
                after,
            ));
        };
        let frames_pos = text
            .find("\"Frames\"")
            .ok_or_else(|| malformed(1, "missing \"Frames\" key", ""))?;
        let open = text[frames_pos..]
            .find('[')
            .map(|p| p + frames_pos)
            .ok_or_else(|| malformed(line_of(frames_pos), "\"Frames\" without a list", ""))?;
        let mut frames = Vec::new();
        let mut pos = open + 1;
        loop {
            let rest = &text[pos..];
            let skip = rest.len()
                - rest
                    .trim_start_matches(|c: char| c.is_whitespace() || c == ',')
                    .len();
            pos += skip;
            match text[pos..].chars().next() {
                Some(']') => break,
                Some('[') => {
                    let close = text[pos..].find(']').map(|p| p + pos).ok_or_else(|| {
                        malformed(line_of(pos), "unterminated frame", &text[pos..])
                    })?;
                    let line = line_of(pos);
                    let values = text[pos + 1..close]
                        .split(',')
                        .map(|v| super::text::parse_f64(v, file, line, "frame value"))
                        .collect::<Result<Vec<f64>>>()?;
                    if values.len() != frame_len {
                        return Err(SkeletonError::FieldCount {
                            file: file.to_string(),
                            line,
                            what: "clip frame",
                            expected: frame_len,
                            found: values.len(),
                        });
                    }
                    frames.push(values);
                    pos = close + 1;
                }
                _ => {
                    return Err(malformed(
                        line_of(pos),
                        "expected '[' or ']' in the frame list",
                        &text[pos..],
                    ))
                }
            }
        }
        if frames.is_empty() {
            return Err(malformed(line_of(open), "clip without frames", ""));
        }
        Ok(RawClip {
            name: name.to_string(),
            looping,
            frames,
        })
    }

    /// Reads a clip file.
    pub fn load(path: &Path, name: &str, frame_len: usize) -> Result<Self> {
        Self::parse(
            &read_to_string(path)?,
            name,
            &path.display().to_string(),
            frame_len,
        )
    }

    /// Reads a bundled clip `humanoid3d_<name>.txt` (44 floats per frame).
    pub fn load_bundled(name: &str) -> Result<Self> {
        let path = bundled_mocap_dir().join(format!("humanoid3d_{name}.txt"));
        Self::load(&path, name, 44)
    }

    /// Start time of each frame: the sum of the `dt` fields of all previous frames.
    pub fn times(&self) -> Vec<f64> {
        let mut t = 0.0;
        self.frames
            .iter()
            .map(|f| {
                let now = t;
                t += f[0];
                now
            })
            .collect()
    }

    /// Duration: the start time of the last frame.
    pub fn duration(&self) -> f64 {
        *self.times().last().expect("clips have frames")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_helpers_agree() {
        // A quaternion for 0.7 rad about z equals the axis-angle matrix.
        let a: f64 = 0.7;
        let q = [(a / 2.0).cos(), 0.0, 0.0, (a / 2.0).sin()];
        let m1 = quat_to_mat(q);
        let m2 = axis_angle([0.0, 0.0, 1.0], a);
        for i in 0..3 {
            for j in 0..3 {
                assert!((m1[i][j] - m2[i][j]).abs() < 1e-15);
            }
        }
        // Slerp halfway between identity and q is the half rotation.
        let h = quat_slerp([1.0, 0.0, 0.0, 0.0], q, 0.5);
        assert!((h[0] - (a / 4.0).cos()).abs() < 1e-12);
        assert!((h[3] - (a / 4.0).sin()).abs() < 1e-12);
    }

    #[test]
    fn clip_parse_errors_name_the_line() {
        let text = "{\n\"Loop\": \"wrap\",\n\"Frames\":\n[\n[0.1, 1, 2],\n[0.1, x, 2]\n]\n}";
        match RawClip::parse(text, "t", "t.txt", 3) {
            Err(SkeletonError::InvalidNumber { line, value, .. }) => {
                assert_eq!(line, 6);
                assert_eq!(value.trim(), "x");
            }
            other => panic!("unexpected {other:?}"),
        }
        let text = "{\"Loop\": \"none\", \"Frames\": [[0.1, 1, 2],\n[0.1, 2]]}";
        assert!(matches!(
            RawClip::parse(text, "t", "t.txt", 3),
            Err(SkeletonError::FieldCount {
                line: 2,
                found: 2,
                ..
            })
        ));
        let ok = RawClip::parse(
            "{\"Loop\": \"none\", \"Frames\": [[0.5, 1, 2], [0, 2, 3]]}",
            "t",
            "t.txt",
            3,
        )
        .unwrap();
        assert!(!ok.looping);
        assert_eq!(ok.times(), vec![0.0, 0.5]);
    }
}
