//! Reports: `report.md` for people, `results.json` for machines (ARCHITECTURE.md, "Experiments
//! and reports": `{"config": …, "metrics": {"<run>.<quantity>_<unit>": number}, …}`).

use anyhow::{Context, Result};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// What a run produced.
#[derive(Debug, Default)]
pub struct Report {
    /// Config name.
    pub name: String,
    /// The config as run.
    pub config: serde_json::Value,
    /// Metrics by key.
    pub metrics: BTreeMap<String, f64>,
    /// Markdown sections, in order.
    pub sections: Vec<String>,
    /// Security and method notes.
    pub notes: Vec<String>,
    /// Files written beside the report (plots), relative names.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Report {
    /// Records a metric; keys follow `<run>.<quantity>_<unit>`.
    pub fn metric(&mut self, key: impl Into<String>, value: f64) {
        self.metrics.insert(key.into(), value);
    }

    /// Adds a markdown section.
    pub fn section(&mut self, title: &str, body: impl AsRef<str>) {
        self.sections
            .push(format!("## {title}\n\n{}\n", body.as_ref().trim_end()));
    }

    /// Adds a note (deduplicated).
    pub fn note(&mut self, n: impl Into<String>) {
        let n = n.into();
        if !self.notes.contains(&n) {
            self.notes.push(n);
        }
    }

    /// The markdown text.
    pub fn markdown(&self, started: &str) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# {}\n", self.name);
        if let Some(d) = self
            .config
            .pointer("/experiment/description")
            .and_then(|v| v.as_str())
        {
            if !d.is_empty() {
                let _ = writeln!(s, "{d}\n");
            }
        }
        let _ = writeln!(
            s,
            "Started {started} on {} ({} threads).\n",
            machine(),
            rayon::current_num_threads()
        );
        for sec in &self.sections {
            let _ = writeln!(s, "{sec}");
        }
        if !self.notes.is_empty() {
            let _ = writeln!(s, "## Security model and method notes\n");
            for n in &self.notes {
                let _ = writeln!(s, "- {n}");
            }
            s.push('\n');
        }
        let _ = writeln!(s, "## All metrics\n\n| key | value |\n|---|---|");
        for (k, v) in &self.metrics {
            let _ = writeln!(s, "| `{k}` | {} |", fmt_num(*v));
        }
        s
    }

    /// Writes `report.md`, `results.json` and extra files to `<root>/<name>/<timestamp>/`.
    /// Files are written to a temporary directory that is renamed into place at the end, so a
    /// failed run never leaves a half-written result directory.
    pub fn write(&self, root: &Path) -> Result<PathBuf> {
        let now = chrono::Utc::now();
        let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
        let parent = root.join(&self.name);
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        let mut dir = parent.join(&stamp);
        let mut k = 1;
        while dir.exists() {
            dir = parent.join(format!("{stamp}-{k}"));
            k += 1;
        }
        let tmp = parent.join(format!(".tmp-{stamp}-{}", std::process::id()));
        std::fs::create_dir_all(&tmp)?;
        let json = json!({
            "config": self.config,
            "metrics": self.metrics,
            "notes": self.notes,
            "started": now.to_rfc3339(),
            "machine": { "description": machine(), "threads": rayon::current_num_threads() },
        });
        std::fs::write(tmp.join("results.json"), serde_json::to_vec_pretty(&json)?)?;
        std::fs::write(tmp.join("report.md"), self.markdown(&now.to_rfc3339()))?;
        for (name, bytes) in &self.files {
            std::fs::write(tmp.join(name), bytes)?;
        }
        std::fs::rename(&tmp, &dir)
            .with_context(|| format!("cannot move results into {}", dir.display()))?;
        Ok(dir)
    }
}

/// A short description of this machine (CPU model and core count).
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores")
}

/// Formats a number for tables: integers plainly, others with four significant digits.
pub fn fmt_num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 1e-3 && v.abs() < 1e6 {
        format!("{v:.4}")
    } else {
        format!("{v:.4e}")
    }
}

/// Human-readable bytes.
pub fn fmt_bytes(b: f64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", U[i])
    } else {
        format!("{v:.2} {}", U[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_report_and_json_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Report {
            name: "t".into(),
            config: json!({"experiment": {"name": "t", "description": "d"}}),
            ..Default::default()
        };
        r.metric("secure.test_mse", 1.5);
        r.section("Results", "| a |\n|---|\n| 1 |");
        r.note("semi-honest");
        let out = r.write(dir.path()).unwrap();
        let j: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
        assert_eq!(j["metrics"]["secure.test_mse"], 1.5);
        assert_eq!(j["config"]["experiment"]["name"], "t");
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(
            md.contains("## Results")
                && md.contains("semi-honest")
                && md.contains("`secure.test_mse`")
        );
        // No temporary directory is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("t"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn number_formats() {
        assert_eq!(fmt_num(3.0), "3");
        assert_eq!(fmt_num(0.123456), "0.1235");
        assert_eq!(fmt_bytes(2048.0), "2.00 KiB");
    }
}
