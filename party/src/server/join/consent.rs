//! The owners' consents to joins held by one party, kept on disk so that a restart of the
//! party neither forgets nor revives one. A consent is for one exact [`JoinSpec`]; a join runs
//! once, when every owner of its two datasets has consented at this party, and its entry is then
//! removed (from disk first), so a repeated start or a replayed consent after the run, with or
//! without a restart in between, finds nothing to run. A join not run within the time to live
//! given at [`Consents::open`] ([`CONSENT_TTL`] for a party) from its first consent expires: it is
//! dropped when next met, and when the party starts.
//!
//! On disk: `data_dir/joins/<join id>.toml`, one [`Record`] per pending join (its terms, who
//! consented, when the first consent came), each written crash-safely as the store writes its
//! manifests (temporary file, fsync, rename, directory fsync) before the consent is
//! acknowledged; a removal is made durable (directory fsync) before the join is handed out to
//! run. [`Consents::open`] deletes temporary files and records that are expired or unreadable
//! (logged; the owners consent again).
//!
//! Security model: the consenting client is the one authenticated on its own connection to
//! this party (certificate or token credential valid here only); a client that owns neither
//! dataset can neither consent nor start. The records hold dataset names and client names the
//! party knows anyway, no key or share. Bounded: [`MAX_PENDING`] joins in all,
//! [`MAX_PER_CLIENT`] per client.

use crate::proto::{EntryId, JoinSpec};
use crate::server::{Result, ServerError};
use crate::store::{self, io, sync_dir, write_atomic};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// Joins awaiting consents or a start at one party.
pub const MAX_PENDING: usize = 256;
/// Pending joins one client may have consented to.
pub const MAX_PER_CLIENT: usize = 16;
/// How long a join may wait for its consents and its start, from its first consent.
pub const CONSENT_TTL: Duration = Duration::from_secs(24 * 3600);

/// A pending join as stored: the terms, the owners who consented, the first consent's time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    spec: JoinSpec,
    by: BTreeSet<String>,
    /// Seconds since the Unix epoch.
    created: u64,
}

/// The consents a party holds.
#[derive(Debug)]
pub struct Consents {
    pending: Mutex<HashMap<EntryId, Record>>,
    dir: PathBuf,
    ttl: Duration,
}

impl Consents {
    /// The consents stored under `data_dir/joins` (created), less expired and unreadable ones;
    /// a join expires `ttl` after its first consent.
    ///
    /// # Errors
    /// File errors naming the path.
    pub fn open(data_dir: &Path, ttl: Duration) -> Result<Self> {
        let dir = data_dir.join("joins");
        std::fs::create_dir_all(&dir).map_err(io("create directory", &dir))?;
        let c = Self {
            pending: Mutex::default(),
            dir,
            ttl,
        };
        let mut g = c.pending.lock().expect("consents lock");
        for e in std::fs::read_dir(&c.dir).map_err(io("read directory", &c.dir))? {
            let p = e.map_err(io("read directory", &c.dir))?.path();
            match load(&p) {
                Some(r) if !c.expired(&r) && c.path(&r.spec.join) == p => {
                    g.insert(r.spec.join, r);
                }
                _ => {
                    tracing::info!(
                        "joins: dropping {} (expired, unreadable or partial)",
                        p.display()
                    );
                    std::fs::remove_file(&p).map_err(io("remove", &p))?;
                }
            }
        }
        tracing::info!("joins: {} pending from an earlier run", g.len());
        drop(g);
        sync_dir(&c.dir)?;
        Ok(c)
    }

    /// Records `client`'s consent to `spec` (durably, before it returns).
    ///
    /// # Errors
    /// `Forbidden` when `client` owns neither dataset; `BadRequest` for a bad spec or a join id
    /// already proposed with other terms; `Limit` beyond the bounds; file errors.
    pub fn consent(&self, client: &str, spec: JoinSpec) -> Result<()> {
        check_spec(&spec)?;
        if !spec.owners().contains(&client) {
            return Err(ServerError::Forbidden(format!(
                "join {}: you own neither {}/{} nor {}/{}",
                spec.join, spec.left.owner, spec.left.name, spec.right.owner, spec.right.name
            )));
        }
        let mut g = self.pending.lock().expect("consents lock");
        self.drop_expired(&mut g)?;
        let mut r = match g.get(&spec.join) {
            Some(p) if p.spec != spec => {
                return Err(ServerError::BadRequest(format!(
                    "join {} was proposed with other terms (datasets, name or owner): consent \
                     to the same terms or use a new join id",
                    spec.join
                )))
            }
            Some(p) => p.clone(),
            None => {
                let mine = g.values().filter(|p| p.by.contains(client)).count();
                if g.len() >= MAX_PENDING || mine >= MAX_PER_CLIENT {
                    return Err(ServerError::Limit(format!(
                        "too many pending joins (at most {MAX_PENDING}, {MAX_PER_CLIENT} per client)"
                    )));
                }
                Record {
                    spec,
                    by: BTreeSet::new(),
                    created: store::now(),
                }
            }
        };
        r.by.insert(client.into());
        self.save(&r)?;
        g.insert(r.spec.join, r);
        Ok(())
    }

    /// P0: the join `join` to run for `starter` (an owner of one of its datasets), removed if
    /// every owner consented; a missing consent is refused and the join stays pending.
    ///
    /// # Errors
    /// `NotFound` for an unknown join (or one that ran or expired), `Forbidden` for another
    /// client, `BadRequest` naming the owner whose consent is missing; file errors.
    pub fn take(&self, join: &EntryId, starter: &str) -> Result<JoinSpec> {
        let mut g = self.pending.lock().expect("consents lock");
        self.drop_expired(&mut g)?;
        let p = g.get(join).ok_or_else(|| {
            ServerError::NotFound(format!(
                "no pending join {join} (unknown, expired, or it ran already)"
            ))
        })?;
        if !p.spec.owners().contains(&starter) {
            return Err(ServerError::Forbidden(format!(
                "join {join}: only the owners of its two datasets may start it"
            )));
        }
        missing(p)?;
        self.forget(join)?;
        Ok(g.remove(join).expect("present").spec)
    }

    /// P1: removes the join `spec.join` if this party holds every owner's consent to exactly
    /// `spec` (it does not rely on P0's word).
    ///
    /// # Errors
    /// `Forbidden` naming what this party lacks; file errors.
    pub fn take_exact(&self, spec: &JoinSpec) -> Result<()> {
        let mut g = self.pending.lock().expect("consents lock");
        self.drop_expired(&mut g)?;
        match g.get(&spec.join) {
            Some(p) if &p.spec == spec => {
                missing(p).map_err(|e| ServerError::Forbidden(e.message()))?;
                self.forget(&spec.join)?;
                g.remove(&spec.join);
                Ok(())
            }
            _ => Err(ServerError::Forbidden(format!(
                "join {}: P1 holds no consent to these terms",
                spec.join
            ))),
        }
    }

    fn path(&self, join: &EntryId) -> PathBuf {
        self.dir.join(format!("{join}.toml"))
    }

    fn expired(&self, r: &Record) -> bool {
        store::now() >= r.created.saturating_add(self.ttl.as_secs())
    }

    fn save(&self, r: &Record) -> Result<()> {
        let text = toml::to_string(r)
            .map_err(|e| ServerError::Internal(format!("join {}: record: {e}", r.spec.join)))?;
        Ok(write_atomic(&self.path(&r.spec.join), text.as_bytes())?)
    }

    /// Removes a join's record durably.
    fn forget(&self, join: &EntryId) -> Result<()> {
        let p = self.path(join);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io("remove", &p)(e).into()),
        }
        Ok(sync_dir(&self.dir)?)
    }

    fn drop_expired(&self, g: &mut HashMap<EntryId, Record>) -> Result<()> {
        let old: Vec<EntryId> = g
            .values()
            .filter(|r| self.expired(r))
            .map(|r| r.spec.join)
            .collect();
        for j in old {
            tracing::info!("join {j}: consents expired");
            self.forget(&j)?;
            g.remove(&j);
        }
        Ok(())
    }
}

fn load(p: &Path) -> Option<Record> {
    if p.extension().is_none_or(|x| x != "toml") {
        return None;
    }
    let text = std::fs::read_to_string(p).ok()?;
    toml::from_str(&text).ok()
}

/// Refuses a join some owner has not consented to, naming the owner.
fn missing(p: &Record) -> Result<()> {
    match p.spec.owners().into_iter().find(|o| !p.by.contains(*o)) {
        None => Ok(()),
        Some(o) => Err(ServerError::BadRequest(format!(
            "join {}: {o} has not consented at this party (party join-confirm)",
            p.spec.join
        ))),
    }
}

fn check_spec(s: &JoinSpec) -> Result<()> {
    let names = [
        &s.name,
        &s.owner,
        &s.left.owner,
        &s.left.name,
        &s.right.owner,
        &s.right.name,
    ];
    if names.iter().any(|n| n.is_empty() || n.len() > 128) {
        return Err(ServerError::BadRequest(
            "join: names of 1 to 128 bytes".into(),
        ));
    }
    if s.left == s.right {
        return Err(ServerError::BadRequest(
            "join: the two datasets must differ".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::DatasetRef;

    fn spec() -> JoinSpec {
        let r = |o: &str, n: &str| DatasetRef {
            owner: o.into(),
            name: n.into(),
        };
        JoinSpec {
            join: EntryId::random(),
            left: r("bank", "accounts"),
            right: r("insurer", "policies"),
            name: "joined".into(),
            owner: "bank".into(),
        }
    }

    fn open(dir: &tempfile::TempDir) -> Consents {
        Consents::open(dir.path(), CONSENT_TTL).unwrap()
    }

    #[test]
    fn a_join_runs_once_after_both_owners_consented() {
        let dir = tempfile::tempdir().unwrap();
        let (c, s) = (open(&dir), spec());
        c.consent("bank", s.clone()).unwrap();
        let e = c.take(&s.join, "bank").unwrap_err().message();
        assert!(e.contains("insurer has not consented"), "{e}");
        assert!(c.take_exact(&s).is_err(), "P1 refuses too");
        c.consent("insurer", s.clone()).unwrap();
        assert_eq!(c.take(&s.join, "insurer").unwrap(), s);
        // One use: the start and the consent cannot be replayed into a second run.
        assert!(matches!(
            c.take(&s.join, "bank"),
            Err(ServerError::NotFound(_))
        ));
        c.consent("insurer", s.clone()).unwrap();
        assert!(
            c.take(&s.join, "insurer").is_err(),
            "the bank's consent was spent"
        );
    }

    #[test]
    fn third_clients_and_other_terms_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (c, s) = (open(&dir), spec());
        assert!(matches!(
            c.consent("mallory", s.clone()),
            Err(ServerError::Forbidden(_))
        ));
        c.consent("bank", s.clone()).unwrap();
        c.consent("insurer", s.clone()).unwrap();
        assert!(matches!(
            c.take(&s.join, "mallory"),
            Err(ServerError::Forbidden(_))
        ));
        let mut other = s.clone();
        other.owner = "insurer".into();
        assert!(c.consent("insurer", other.clone()).is_err());
        assert!(c.take_exact(&other).is_err(), "P1 checks the exact terms");
        c.take_exact(&s).unwrap();
        assert!(c.take_exact(&s).is_err(), "once");
    }

    #[test]
    fn pending_joins_are_bounded_per_client() {
        let dir = tempfile::tempdir().unwrap();
        let c = open(&dir);
        for _ in 0..MAX_PER_CLIENT {
            c.consent("bank", spec()).unwrap();
        }
        assert!(matches!(
            c.consent("bank", spec()),
            Err(ServerError::Limit(_))
        ));
        c.consent("insurer", spec()).unwrap();
    }

    #[test]
    fn consents_survive_a_restart_and_a_spent_one_stays_spent() {
        let dir = tempfile::tempdir().unwrap();
        let (s, other) = (spec(), spec());
        {
            let c = open(&dir);
            c.consent("bank", s.clone()).unwrap();
            c.consent("bank", other.clone()).unwrap();
            c.consent("insurer", other.clone()).unwrap();
        }
        // A partial write left by a crash is deleted, not read.
        std::fs::write(dir.path().join("joins/junk.tmp"), b"spec = ").unwrap();
        let c = open(&dir);
        c.consent("insurer", s.clone()).unwrap();
        assert_eq!(c.take(&s.join, "bank").unwrap(), s);
        c.take_exact(&other).unwrap();
        drop(c);
        let c = open(&dir);
        assert!(matches!(
            c.take(&s.join, "bank"),
            Err(ServerError::NotFound(_))
        ));
        assert!(c.take_exact(&other).is_err(), "spent before the restart");
        let left: Vec<_> = std::fs::read_dir(dir.path().join("joins"))
            .unwrap()
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn expired_consents_are_dropped_at_use_and_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let s = spec();
        let c = Consents::open(dir.path(), Duration::ZERO).unwrap();
        c.consent("bank", s.clone()).unwrap();
        c.consent("insurer", s.clone()).unwrap();
        let e = c.take(&s.join, "bank").unwrap_err().message();
        assert!(e.contains("expired"), "{e}");
        c.consent("bank", s.clone()).unwrap();
        drop(c);
        assert_eq!(
            std::fs::read_dir(dir.path().join("joins")).unwrap().count(),
            1
        );
        let c = Consents::open(dir.path(), Duration::ZERO).unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("joins")).unwrap().count(),
            0
        );
        assert!(c.take_exact(&s).is_err());
    }
}
