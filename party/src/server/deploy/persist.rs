//! Deployed models on disk at the serving party, so that they are served again after a
//! restart: `data_dir/deployed/<name>.json` + `<name>.safetensors` (the model file format
//! `[inference]` loads) and `<name>.toml` (the [`Record`]: which entry, owner, deployment and
//! packing), each written crash-safely (temporary file, fsync, rename, directory fsync), the
//! record last, so a deployment exists on disk exactly when its record does.
//!
//! Security: the serving party knows the deployed weights in the clear (that is what serving a
//! plaintext model under CKKS means); keeping them in its data directory stores nothing it does
//! not know already, at the same protection as the model files of `[inference]`. The other
//! party stores nothing. Names are checked ([`check_name`]) before they become file names.

use crate::proto::EntryId;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use stgcn::StGcn;

/// Longest served name of a deployed model.
pub(crate) const MAX_NAME_LEN: usize = 64;

/// What the serving party records of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The served name.
    pub(crate) name: String,
    /// The model entry (the job that trained it).
    pub(crate) job: EntryId,
    /// The model's owner.
    pub(crate) owner: String,
    /// The deployment that published it.
    pub(crate) deploy: EntryId,
    /// The packing it is served with.
    pub(crate) packing: String,
    /// Seconds since the Unix epoch.
    pub(crate) created: u64,
}

/// `Ok` for a name of 1 to [`MAX_NAME_LEN`] ASCII letters, digits, `-`, `_` or `.` not
/// starting with `.`; the refusal names the name and the rule.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=MAX_NAME_LEN).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "model name {name:?}: 1 to {MAX_NAME_LEN} ASCII letters, digits, '-', '_' or '.', \
             not starting with '.'"
        ))
    }
}

fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("deployed")
}

fn io_err(op: &str, path: &Path, e: std::io::Error) -> String {
    format!("{op} {}: {e}", path.display())
}

/// Writes `bytes` to `path` through a temporary file (fsync, rename).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| io_err("create", &tmp, e))?;
    f.write_all(bytes).map_err(|e| io_err("write", &tmp, e))?;
    f.sync_all().map_err(|e| io_err("fsync", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| io_err("rename", &tmp, e))
}

fn sync_dir(d: &Path) -> Result<(), String> {
    File::open(d)
        .and_then(|f| f.sync_all())
        .map_err(|e| io_err("fsync directory", d, e))
}

/// Saves a deployed model and its record under `data_dir`.
pub(crate) fn save(data_dir: &Path, rec: &Record, model: &StGcn) -> Result<(), String> {
    check_name(&rec.name)?;
    let d = dir(data_dir);
    fs::create_dir_all(&d).map_err(|e| io_err("create directory", &d, e))?;
    let json = model.config_json().map_err(|e| e.to_string())?;
    let weights = model.to_safetensors_bytes().map_err(|e| e.to_string())?;
    write_atomic(&d.join(format!("{}.json", rec.name)), json.as_bytes())?;
    write_atomic(&d.join(format!("{}.safetensors", rec.name)), &weights)?;
    let text = toml::to_string_pretty(rec).map_err(|e| e.to_string())?;
    write_atomic(&d.join(format!("{}.toml", rec.name)), text.as_bytes())?;
    sync_dir(&d)
}

/// Removes a deployed model (record first).
pub(crate) fn remove(data_dir: &Path, name: &str) -> Result<(), String> {
    check_name(name)?;
    let d = dir(data_dir);
    for ext in ["toml", "json", "safetensors"] {
        let p = d.join(format!("{name}.{ext}"));
        match fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &p, e)),
        }
    }
    Ok(())
}

/// Every deployed model with a record under `data_dir`, sorted by name; a deployment that
/// cannot be read is left out with its error (naming the file).
pub(crate) fn load_all(data_dir: &Path) -> Vec<Result<(Record, StGcn), String>> {
    let d = dir(data_dir);
    let Ok(entries) = fs::read_dir(&d) else {
        return Vec::new();
    };
    let mut records: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    records.sort();
    records.iter().map(|p| load_one(p)).collect()
}

fn load_one(record: &Path) -> Result<(Record, StGcn), String> {
    let text = fs::read_to_string(record).map_err(|e| io_err("read", record, e))?;
    let rec: Record =
        toml::from_str(&text).map_err(|e| format!("parsing {}: {e}", record.display()))?;
    check_name(&rec.name).map_err(|e| format!("{}: {e}", record.display()))?;
    let model =
        crate::model_file::read_files(&record.with_extension("")).map_err(|e| e.to_string())?;
    Ok((rec, model))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_plain_file_names_are_refused() {
        for ok in ["tiny", "mocap15-v2.1", "A_b"] {
            check_name(ok).unwrap();
        }
        let long = "x".repeat(MAX_NAME_LEN + 1);
        for bad in ["", ".hidden", "../etc", "a/b", "a b", "é", long.as_str()] {
            let e = check_name(bad).unwrap_err();
            assert!(e.contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn deployments_round_trip_and_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let (c, t, v) = (3, 4, 5);
        let edges: Vec<(usize, usize)> = (0..v - 1).map(|i| (i, i + 1)).collect();
        let a = stgcn::spatial_partition(v, &edges, 1).unwrap();
        let mut cfg = stgcn::StGcnConfig::new(stgcn::Architecture::Stgcn3x128, 64, c, t, &a, 3);
        cfg.architecture = None;
        cfg.blocks.truncate(1);
        cfg.activation_mask.truncate(1);
        let m = StGcn::new(cfg, 7).unwrap();
        let rec = Record {
            name: "net".into(),
            job: EntryId::random(),
            owner: "alice".into(),
            deploy: EntryId::random(),
            packing: "ama".into(),
            created: 1,
        };
        assert!(load_all(dir.path()).is_empty());
        save(dir.path(), &rec, &m).unwrap();
        let all = load_all(dir.path());
        assert_eq!(all.len(), 1);
        let (r, back) = all.into_iter().next().unwrap().unwrap();
        assert_eq!(r, rec);
        assert_eq!(
            crate::model_file::stgcn_column(&back),
            crate::model_file::stgcn_column(&m)
        );
        // A record whose model files are gone is reported, naming the file.
        fs::remove_file(dir.path().join("deployed/net.safetensors")).unwrap();
        let e = load_all(dir.path()).remove(0).unwrap_err();
        assert!(e.contains("net.safetensors"), "{e}");
        remove(dir.path(), "net").unwrap();
        assert!(load_all(dir.path()).is_empty());
    }
}
