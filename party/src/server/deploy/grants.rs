//! The owner's deploy authorizations at one party: each is bound to one spec (deployment id,
//! model entry, name, serving party, packing) and to the owner who gave it, and each of its
//! two uses — releasing this party's share to a serving peer, serving here — happens at most
//! once. Authorizations live in memory only and expire after a while.
//!
//! Security: semi-honest-but-curious peer. A peer request is honoured only when the owner gave
//! this party an authorization with exactly the spec the peer sends, naming the peer as a
//! serving party, not released before: a forged request (no authorization), a replayed one
//! (released already) or one for another name, model, packing or serving choice (spec differs)
//! is refused and releases nothing.

use crate::proto::{DeploySpec, EntryId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long an authorization waits for its uses.
pub(crate) const GRANT_TTL: Duration = Duration::from_secs(600);

/// One authorization and which of its uses are spent.
#[derive(Debug, Clone)]
struct Grant {
    spec: DeploySpec,
    owner: String,
    released: bool,
    started: bool,
    at: Instant,
}

impl Grant {
    /// Every use it allows at the party of `role` is spent.
    fn spent(&self, role: u8) -> bool {
        let peer_serves = self.spec.serve.serves(1 - role);
        let i_serve = self.spec.serve.serves(role);
        (self.released || !peer_serves) && (self.started || !i_serve)
    }
}

/// The authorizations at the party of `role`.
#[derive(Debug)]
pub(crate) struct Grants {
    role: u8,
    ttl: Duration,
    map: Mutex<HashMap<EntryId, Grant>>,
}

impl Grants {
    /// An empty table for the party of `role` (0 or 1).
    pub(crate) fn new(role: u8, ttl: Duration) -> Self {
        Self {
            role,
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<EntryId, Grant>> {
        let mut map = self.map.lock().expect("deploy grants lock");
        let (ttl, role) = (self.ttl, self.role);
        map.retain(|_, g| g.at.elapsed() < ttl && !g.spent(role));
        map
    }

    /// Records `owner`'s authorization of `spec`; a deployment id in use is refused.
    pub(crate) fn authorize(&self, owner: &str, spec: DeploySpec) -> Result<(), String> {
        let mut map = self.lock();
        if map.contains_key(&spec.deploy) {
            return Err(format!(
                "deployment {} is authorized already (use a fresh id)",
                spec.deploy
            ));
        }
        map.insert(
            spec.deploy,
            Grant {
                spec,
                owner: owner.into(),
                released: false,
                started: false,
                at: Instant::now(),
            },
        );
        Ok(())
    }

    /// Withdraws `owner`'s authorization `deploy` (whatever of it is unspent); whether there
    /// was one.
    pub(crate) fn cancel(&self, owner: &str, deploy: EntryId) -> bool {
        let mut map = self.lock();
        if map.get(&deploy).is_some_and(|g| g.owner == owner) {
            map.remove(&deploy);
            return true;
        }
        false
    }

    /// The peer asks for this party's share under `spec`: allowed once, when the owner
    /// authorized exactly `spec` here and it names the peer as a serving party. Returns the
    /// owner; the use is spent.
    pub(crate) fn take_release(&self, spec: &DeploySpec) -> Result<String, String> {
        let mut map = self.lock();
        let peer = 1 - self.role;
        let Some(g) = map.get_mut(&spec.deploy) else {
            return Err(format!(
                "no authorization of deployment {} by the model's owner at P{} (or it was used \
                 or expired)",
                spec.deploy, self.role
            ));
        };
        if g.spec != *spec {
            return Err(format!(
                "deployment {} was authorized as {:?}, the peer asked for {spec:?}",
                spec.deploy, g.spec
            ));
        }
        if !spec.serve.serves(peer) {
            return Err(format!(
                "deployment {} is served by {}: P{peer} gets no share",
                spec.deploy, spec.serve
            ));
        }
        if g.released {
            return Err(format!(
                "the share of deployment {} was released already",
                spec.deploy
            ));
        }
        g.released = true;
        Ok(g.owner.clone())
    }

    /// `owner` asks this party to serve `deploy`: allowed once, when `owner` authorized it here
    /// with this party as a serving party. Returns the spec; the use is spent.
    pub(crate) fn take_start(&self, owner: &str, deploy: EntryId) -> Result<DeploySpec, String> {
        let mut map = self.lock();
        let role = self.role;
        let g = match map.get_mut(&deploy) {
            Some(g) if g.owner == owner => g,
            _ => {
                return Err(format!(
                    "no authorization of deployment {deploy} by you at P{role} (or it was used \
                     or expired)"
                ))
            }
        };
        if !g.spec.serve.serves(role) {
            return Err(format!(
                "deployment {deploy} is served by {}, not by P{role}",
                g.spec.serve
            ));
        }
        if g.started {
            return Err(format!("deployment {deploy} was started already"));
        }
        g.started = true;
        Ok(g.spec.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::ServeAt;

    fn spec(serve: ServeAt) -> DeploySpec {
        DeploySpec {
            deploy: EntryId::random(),
            job: EntryId::random(),
            name: "net".into(),
            serve,
            packing: None,
        }
    }

    #[test]
    fn a_release_needs_the_exact_authorized_spec_and_happens_once() {
        let g = Grants::new(1, GRANT_TTL);
        let s = spec(ServeAt::P0);
        // Forged: nothing authorized.
        assert!(g.take_release(&s).unwrap_err().contains("no authorization"));
        g.authorize("alice", s.clone()).unwrap();
        assert!(g
            .authorize("alice", s.clone())
            .unwrap_err()
            .contains("authorized already"));
        // Another name, model, serving choice or packing under the same id.
        for other in [
            DeploySpec {
                name: "other".into(),
                ..s.clone()
            },
            DeploySpec {
                job: EntryId::random(),
                ..s.clone()
            },
            DeploySpec {
                serve: ServeAt::Both,
                ..s.clone()
            },
            DeploySpec {
                packing: Some("channel-major".into()),
                ..s.clone()
            },
        ] {
            assert!(g
                .take_release(&other)
                .unwrap_err()
                .contains("was authorized as"));
        }
        assert_eq!(g.take_release(&s).unwrap(), "alice");
        // Replayed: spent (and the spent grant is gone).
        assert!(g.take_release(&s).unwrap_err().contains("no authorization"));
    }

    #[test]
    fn only_the_owner_withdraws_an_authorization() {
        let g = Grants::new(0, GRANT_TTL);
        let s = spec(ServeAt::P1);
        g.authorize("alice", s.clone()).unwrap();
        assert!(!g.cancel("bob", s.deploy));
        assert!(g.cancel("alice", s.deploy));
        assert!(g.take_release(&s).unwrap_err().contains("no authorization"));
        assert!(!g.cancel("alice", s.deploy));
    }

    #[test]
    fn a_party_releases_only_to_a_serving_peer_and_serves_only_when_named() {
        let p1 = Grants::new(1, GRANT_TTL);
        let s = spec(ServeAt::P1);
        p1.authorize("alice", s.clone()).unwrap();
        assert!(p1
            .take_release(&s)
            .unwrap_err()
            .contains("P0 gets no share"));
        assert!(p1
            .take_start("bob", s.deploy)
            .unwrap_err()
            .contains("no authorization"));
        assert_eq!(p1.take_start("alice", s.deploy).unwrap(), s);
        assert!(p1.take_start("alice", s.deploy).is_err());
        let p0 = Grants::new(0, GRANT_TTL);
        p0.authorize("alice", s.clone()).unwrap();
        assert!(p0
            .take_start("alice", s.deploy)
            .unwrap_err()
            .contains("not by P0"));
        assert_eq!(p0.take_release(&s).unwrap(), "alice");
    }

    #[test]
    fn both_serving_allows_one_release_and_one_start() {
        let g = Grants::new(0, GRANT_TTL);
        let s = spec(ServeAt::Both);
        g.authorize("alice", s.clone()).unwrap();
        assert_eq!(g.take_start("alice", s.deploy).unwrap(), s);
        assert!(g
            .take_start("alice", s.deploy)
            .unwrap_err()
            .contains("started already"));
        assert_eq!(g.take_release(&s).unwrap(), "alice");
        assert!(g.take_release(&s).is_err());
    }

    #[test]
    fn authorizations_expire() {
        let g = Grants::new(1, Duration::ZERO);
        let s = spec(ServeAt::P0);
        g.authorize("alice", s.clone()).unwrap();
        assert!(g.take_release(&s).unwrap_err().contains("expired"));
    }
}
