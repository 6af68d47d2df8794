//! The owners' consents to joins held by one party (in memory: a restart forgets them and the
//! owners consent again). A consent is for one exact [`JoinSpec`]; a join runs once, when every
//! owner of its two datasets has consented at this party, and its entry is then removed, so a
//! repeated start or a replayed consent after the run finds nothing to run.
//!
//! Security model: the consenting client is the one authenticated on its own connection to
//! this party (certificate or token credential valid here only); a client that owns neither
//! dataset can neither consent nor start. Bounded: [`MAX_PENDING`] joins in all,
//! [`MAX_PER_CLIENT`] per client.

use crate::proto::{EntryId, JoinSpec};
use crate::server::{Result, ServerError};
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

/// Joins awaiting consents or a start at one party.
pub const MAX_PENDING: usize = 256;
/// Pending joins one client may have consented to.
pub const MAX_PER_CLIENT: usize = 16;

#[derive(Debug)]
struct Pending {
    spec: JoinSpec,
    by: BTreeSet<String>,
}

/// The consents a party holds.
#[derive(Debug, Default)]
pub struct Consents {
    pending: Mutex<HashMap<EntryId, Pending>>,
}

impl Consents {
    /// Records `client`'s consent to `spec`.
    ///
    /// # Errors
    /// `Forbidden` when `client` owns neither dataset; `BadRequest` for a bad spec or a join id
    /// already proposed with other terms; `Limit` beyond the bounds.
    pub fn consent(&self, client: &str, spec: JoinSpec) -> Result<()> {
        check_spec(&spec)?;
        if !spec.owners().contains(&client) {
            return Err(ServerError::Forbidden(format!(
                "join {}: you own neither {}/{} nor {}/{}",
                spec.join, spec.left.owner, spec.left.name, spec.right.owner, spec.right.name
            )));
        }
        let mut g = self.pending.lock().expect("consents lock");
        if let Some(p) = g.get_mut(&spec.join) {
            if p.spec != spec {
                return Err(ServerError::BadRequest(format!(
                    "join {} was proposed with other terms (datasets, name or owner): consent \
                     to the same terms or use a new join id",
                    spec.join
                )));
            }
            p.by.insert(client.into());
            return Ok(());
        }
        let mine = g.values().filter(|p| p.by.contains(client)).count();
        if g.len() >= MAX_PENDING || mine >= MAX_PER_CLIENT {
            return Err(ServerError::Limit(format!(
                "too many pending joins (at most {MAX_PENDING}, {MAX_PER_CLIENT} per client)"
            )));
        }
        let by = BTreeSet::from([client.to_string()]);
        g.insert(spec.join, Pending { spec, by });
        Ok(())
    }

    /// P0: the join `join` to run for `starter` (an owner of one of its datasets), removed if
    /// every owner consented; a missing consent is refused and the join stays pending.
    ///
    /// # Errors
    /// `NotFound` for an unknown join (or one that ran), `Forbidden` for another client,
    /// `BadRequest` naming the owner whose consent is missing.
    pub fn take(&self, join: &EntryId, starter: &str) -> Result<JoinSpec> {
        let mut g = self.pending.lock().expect("consents lock");
        let p = g.get(join).ok_or_else(|| {
            ServerError::NotFound(format!(
                "no pending join {join} (unknown, or it ran already)"
            ))
        })?;
        if !p.spec.owners().contains(&starter) {
            return Err(ServerError::Forbidden(format!(
                "join {join}: only the owners of its two datasets may start it"
            )));
        }
        missing(p)?;
        Ok(g.remove(join).expect("present").spec)
    }

    /// P1: removes the join `spec.join` if this party holds every owner's consent to exactly
    /// `spec` (it does not rely on P0's word).
    ///
    /// # Errors
    /// `Forbidden` naming what this party lacks.
    pub fn take_exact(&self, spec: &JoinSpec) -> Result<()> {
        let mut g = self.pending.lock().expect("consents lock");
        match g.get(&spec.join) {
            Some(p) if &p.spec == spec => {
                missing(p).map_err(|e| ServerError::Forbidden(e.message()))?;
                g.remove(&spec.join);
                Ok(())
            }
            _ => Err(ServerError::Forbidden(format!(
                "join {}: P1 holds no consent to these terms",
                spec.join
            ))),
        }
    }
}

/// Refuses a join some owner has not consented to, naming the owner.
fn missing(p: &Pending) -> Result<()> {
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

    #[test]
    fn a_join_runs_once_after_both_owners_consented() {
        let (c, s) = (Consents::default(), spec());
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
        let (c, s) = (Consents::default(), spec());
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
        let c = Consents::default();
        for _ in 0..MAX_PER_CLIENT {
            c.consent("bank", spec()).unwrap();
        }
        assert!(matches!(
            c.consent("bank", spec()),
            Err(ServerError::Limit(_))
        ));
        c.consent("insurer", spec()).unwrap();
    }
}
