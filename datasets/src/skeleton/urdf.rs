//! A minimal URDF reader: just the `<joint>` elements (name, type, parent and child link, origin
//! `xyz`/`rpy`, axis) that forward kinematics of a kinematic tree needs (ROS URDF specification,
//! `joint` element). Links, inertials, geometry and limits are skipped.
//!
//! The reader understands the subset of XML that URDF files use: elements with quoted
//! attributes, comments, an XML declaration, and arbitrary whitespace around `=`. It is not a
//! general XML parser (no entities, CDATA or namespaces).

use std::path::Path;

use super::{read_to_string, Result, SkeletonError};

/// URDF joint types this reader knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JointKind {
    /// No degree of freedom.
    Fixed,
    /// Three rotational degrees of freedom (a quaternion in DeepMimic frames; a pybullet extension
    /// of URDF).
    Spherical,
    /// One rotation about `axis`.
    Revolute,
    /// One rotation about `axis` without limits.
    Continuous,
}

/// One `<joint>` element.
#[derive(Debug, Clone, PartialEq)]
pub struct UrdfJoint {
    /// Joint name.
    pub name: String,
    /// Joint type.
    pub kind: JointKind,
    /// Parent link name.
    pub parent: String,
    /// Child link name.
    pub child: String,
    /// `<origin xyz>` (zero when absent).
    pub origin_xyz: [f64; 3],
    /// `<origin rpy>` (zero when absent).
    pub origin_rpy: [f64; 3],
    /// `<axis xyz>` (the URDF default `(1, 0, 0)` when absent).
    pub axis: [f64; 3],
    /// 1-based line of the `<joint>` tag.
    pub line: usize,
}

/// The joints of a URDF robot, in file order.
#[derive(Debug, Clone, PartialEq)]
pub struct Urdf {
    /// `<robot name>`.
    pub robot_name: String,
    /// Joints in file order.
    pub joints: Vec<UrdfJoint>,
}

struct Tag<'a> {
    name: &'a str,
    closing: bool,
    attrs: Vec<(&'a str, &'a str)>,
    line: usize,
}

fn malformed(file: &str, line: usize, reason: &'static str, value: &str) -> SkeletonError {
    SkeletonError::Malformed {
        file: file.to_string(),
        line,
        reason,
        value: value.chars().take(80).collect(),
    }
}

/// Splits the text into tags (text between tags is ignored).
fn tags<'a>(text: &'a str, file: &str) -> Result<Vec<Tag<'a>>> {
    let mut out = Vec::new();
    let mut rest = text;
    let mut line = 1;
    while let Some(start) = rest.find('<') {
        line += rest[..start].matches('\n').count();
        rest = &rest[start..];
        if rest.starts_with("<!--") {
            let end = rest
                .find("-->")
                .ok_or_else(|| malformed(file, line, "unterminated comment", rest))?;
            line += rest[..end].matches('\n').count();
            rest = &rest[end + 3..];
            continue;
        }
        let end = rest
            .find('>')
            .ok_or_else(|| malformed(file, line, "unterminated tag", rest))?;
        let body = &rest[1..end];
        let tag_line = line;
        line += body.matches('\n').count();
        rest = &rest[end + 1..];
        if body.starts_with('?') || body.starts_with('!') {
            continue;
        }
        let closing = body.starts_with('/');
        let body = body.trim_start_matches('/').trim_end_matches('/');
        let name_end = body.find(|c: char| c.is_whitespace()).unwrap_or(body.len());
        let name = &body[..name_end];
        if name.is_empty() {
            return Err(malformed(file, tag_line, "empty tag name", body));
        }
        let mut attrs = Vec::new();
        let mut a = body[name_end..].trim_start();
        while !a.is_empty() {
            let eq = a
                .find('=')
                .ok_or_else(|| malformed(file, tag_line, "attribute without '='", a))?;
            let key = a[..eq].trim();
            let after = a[eq + 1..].trim_start();
            let quote = after
                .chars()
                .next()
                .filter(|&c| c == '"' || c == '\'')
                .ok_or_else(|| malformed(file, tag_line, "unquoted attribute value", after))?;
            let close = after[1..]
                .find(quote)
                .ok_or_else(|| malformed(file, tag_line, "unterminated attribute value", after))?;
            attrs.push((key, &after[1..1 + close]));
            a = after[close + 2..].trim_start();
        }
        out.push(Tag {
            name,
            closing,
            attrs,
            line: tag_line,
        });
    }
    Ok(out)
}

fn attr<'a>(tag: &Tag<'a>, key: &str) -> Option<&'a str> {
    tag.attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn vec3(value: &str, file: &str, line: usize, field: &'static str) -> Result<[f64; 3]> {
    let parts: Vec<&str> = value.split_whitespace().collect();
    if parts.len() != 3 {
        return Err(SkeletonError::FieldCount {
            file: file.to_string(),
            line,
            what: field,
            expected: 3,
            found: parts.len(),
        });
    }
    let mut v = [0.0; 3];
    for (o, p) in v.iter_mut().zip(parts) {
        *o = super::text::parse_f64(p, file, line, field)?;
    }
    Ok(v)
}

impl Urdf {
    /// Parses URDF text; `file` names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        let mut robot_name = String::new();
        let mut joints = Vec::new();
        let mut current: Option<UrdfJoint> = None;
        for tag in tags(text, file)? {
            match (tag.name, tag.closing, current.as_mut()) {
                ("robot", false, _) => robot_name = attr(&tag, "name").unwrap_or("").to_string(),
                ("joint", false, None) => {
                    let name = attr(&tag, "name")
                        .ok_or_else(|| malformed(file, tag.line, "joint without name", ""))?;
                    let kind = match attr(&tag, "type").unwrap_or("") {
                        "fixed" => JointKind::Fixed,
                        "spherical" => JointKind::Spherical,
                        "revolute" => JointKind::Revolute,
                        "continuous" => JointKind::Continuous,
                        other => {
                            return Err(malformed(file, tag.line, "unsupported joint type", other))
                        }
                    };
                    current = Some(UrdfJoint {
                        name: name.to_string(),
                        kind,
                        parent: String::new(),
                        child: String::new(),
                        origin_xyz: [0.0; 3],
                        origin_rpy: [0.0; 3],
                        axis: [1.0, 0.0, 0.0],
                        line: tag.line,
                    });
                }
                ("joint", false, Some(_)) => {
                    return Err(malformed(file, tag.line, "nested <joint>", tag.name))
                }
                ("joint", true, Some(_)) => {
                    let j = current.take().expect("matched Some");
                    if j.parent.is_empty() || j.child.is_empty() {
                        return Err(malformed(
                            file,
                            j.line,
                            "joint without parent or child",
                            &j.name,
                        ));
                    }
                    joints.push(j);
                }
                ("parent", false, Some(j)) => {
                    j.parent = attr(&tag, "link")
                        .ok_or_else(|| malformed(file, tag.line, "<parent> without link", ""))?
                        .to_string();
                }
                ("child", false, Some(j)) => {
                    j.child = attr(&tag, "link")
                        .ok_or_else(|| malformed(file, tag.line, "<child> without link", ""))?
                        .to_string();
                }
                ("origin", false, Some(j)) => {
                    if let Some(v) = attr(&tag, "xyz") {
                        j.origin_xyz = vec3(v, file, tag.line, "origin xyz")?;
                    }
                    if let Some(v) = attr(&tag, "rpy") {
                        j.origin_rpy = vec3(v, file, tag.line, "origin rpy")?;
                    }
                }
                ("axis", false, Some(j)) => {
                    if let Some(v) = attr(&tag, "xyz") {
                        j.axis = vec3(v, file, tag.line, "axis xyz")?;
                    }
                }
                _ => {}
            }
        }
        if let Some(j) = current {
            return Err(malformed(file, j.line, "unterminated <joint>", &j.name));
        }
        Ok(Urdf { robot_name, joints })
    }

    /// Reads and parses a URDF file.
    pub fn load(path: &Path) -> Result<Self> {
        Self::parse(&read_to_string(path)?, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bundled_humanoid() {
        let u = Urdf::load(&super::super::bundled_mocap_dir().join("humanoid.urdf")).unwrap();
        assert_eq!(u.robot_name, "dumpUrdf");
        assert_eq!(u.joints.len(), 15);
        let knee = &u.joints[4];
        assert_eq!(knee.name, "right_knee");
        assert_eq!(knee.kind, JointKind::Revolute);
        assert_eq!(knee.parent, "right_hip");
        assert_eq!(knee.origin_xyz, [0.0, -1.686184, 0.0]);
        assert_eq!(knee.axis, [0.0, 0.0, 1.0]);
        assert_eq!(u.joints[0].parent, "base");
        assert_eq!(u.joints[6].origin_xyz, [-0.0962, 0.974, 0.73244]);
        assert!(u.joints.iter().all(|j| j.origin_rpy == [0.0; 3]));
    }

    #[test]
    fn errors_name_the_line() {
        let text = "<robot name=\"r\">\n<joint name=\"a\" type=\"fixed\">\n<parent link=\"x\"/>\n\
                    <child link=\"y\"/>\n<origin xyz=\"0 1\"/>\n</joint>\n</robot>";
        match Urdf::parse(text, "t.urdf") {
            Err(SkeletonError::FieldCount { line, found, .. }) => {
                assert_eq!((line, found), (5, 2));
            }
            other => panic!("unexpected {other:?}"),
        }
        let text = "<robot>\n\n<joint name=\"a\" type=\"prismatic\">";
        match Urdf::parse(text, "t.urdf") {
            Err(SkeletonError::Malformed { line, value, .. }) => {
                assert_eq!((line, value.as_str()), (3, "prismatic"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
