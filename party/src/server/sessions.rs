//! The inference endpoint's session table: open sessions bound to their client, idle expiry,
//! and the session limits (`max_sessions_per_client`, `max_sessions`).
//!
//! A slot is reserved atomically — one lock both counts the open and reserved sessions and takes
//! the slot — before the party reads a single key byte, and the reservation is a guard: a
//! refused or failed upload, or a client that disconnects mid-upload, drops it and frees the
//! slot. So concurrent `OpenSession` requests can never install more sessions than the limits
//! (the check and the insertion are not separated by the upload), and no slot outlives its
//! connection unless it became a session. Security model as in [`super::infer`]: authenticated,
//! semi-honest clients that may try to exhaust the server; a client learns only how many slots
//! are in use (from a refusal), never whose.

use crate::proto::{EntryId, ErrorCode};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Entry<S> {
    owner: String,
    value: S,
    last_used: Instant,
}

#[derive(Debug)]
struct Inner<S> {
    open: HashMap<EntryId, Entry<S>>,
    /// Slots reserved by uploads in progress, per client.
    reserved: HashMap<String, usize>,
}

/// Open sessions holding a `S` each (the session's keys), with their limits.
#[derive(Debug)]
pub struct SessionTable<S> {
    max_total: usize,
    max_per_client: usize,
    ttl: Duration,
    inner: Mutex<Inner<S>>,
}

/// A session slot taken by an upload in progress: [`Reservation::install`] turns it into a
/// session; dropping it frees the slot.
#[derive(Debug)]
pub struct Reservation<'a, S> {
    table: &'a SessionTable<S>,
    owner: String,
    taken: bool,
}

/// A refusal with the reply's code and message.
pub type Refused = (ErrorCode, String);

impl<S> Inner<S> {
    fn unreserve(&mut self, owner: &str) {
        if let Some(n) = self.reserved.get_mut(owner) {
            *n -= 1;
            if *n == 0 {
                self.reserved.remove(owner);
            }
        }
    }
}

impl<S> SessionTable<S> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<S>> {
        // Every update is one step under the lock: a panic elsewhere leaves the counts consistent.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<S: Clone> SessionTable<S> {
    /// An empty table: at most `max_total` sessions, `max_per_client` per client (open and
    /// reserved ones count alike), dropped after `ttl` idle.
    pub fn new(max_total: usize, max_per_client: usize, ttl: Duration) -> Self {
        Self {
            max_total,
            max_per_client,
            ttl,
            inner: Mutex::new(Inner {
                open: HashMap::new(),
                reserved: HashMap::new(),
            }),
        }
    }

    fn purge(&self, g: &mut Inner<S>) {
        let ttl = self.ttl;
        g.open.retain(|id, s| {
            let keep = s.last_used.elapsed() <= ttl;
            if !keep {
                tracing::info!("session {id} of {} expired", s.owner);
            }
            keep
        });
    }

    /// Open (unexpired) sessions and reserved slots.
    pub fn counts(&self) -> (usize, usize) {
        let mut g = self.lock();
        self.purge(&mut g);
        (g.open.len(), g.reserved.values().sum())
    }

    /// Reserves a slot for `owner`, or refuses (`Limit`, naming the limit) when the client or
    /// the server holds as many open and reserved sessions as allowed.
    pub fn reserve(&self, owner: &str) -> Result<Reservation<'_, S>, Refused> {
        let mut g = self.lock();
        self.purge(&mut g);
        let open = g.open.values().filter(|x| x.owner == owner).count();
        let pending = g.reserved.get(owner).copied().unwrap_or(0);
        if open + pending >= self.max_per_client {
            return Err((
                ErrorCode::Limit,
                format!(
                    "you hold {open} sessions and open {pending} more, max_sessions_per_client = {}; \
                     close one first",
                    self.max_per_client
                ),
            ));
        }
        let total = g.open.len() + g.reserved.values().sum::<usize>();
        if total >= self.max_total {
            return Err((
                ErrorCode::Limit,
                format!(
                    "{total} sessions open or opening, max_sessions = {}",
                    self.max_total
                ),
            ));
        }
        *g.reserved.entry(owner.to_string()).or_insert(0) += 1;
        Ok(Reservation {
            table: self,
            owner: owner.to_string(),
            taken: true,
        })
    }

    /// The session `id` if `owner` opened it (`NotFound` when closed or expired, `Forbidden`
    /// for another client's).
    pub fn get(&self, owner: &str, id: EntryId) -> Result<S, Refused> {
        let mut g = self.lock();
        self.purge(&mut g);
        match g.open.get(&id) {
            None => Err((
                ErrorCode::NotFound,
                format!("no session {id} (closed or expired)"),
            )),
            Some(x) if x.owner != owner => Err((
                ErrorCode::Forbidden,
                format!("session {id} belongs to another client"),
            )),
            Some(x) => Ok(x.value.clone()),
        }
    }

    /// Marks `id` as used now.
    pub fn touch(&self, id: EntryId) {
        if let Some(s) = self.lock().open.get_mut(&id) {
            s.last_used = Instant::now();
        }
    }

    /// Closes `owner`'s session `id`.
    pub fn close(&self, owner: &str, id: EntryId) -> Result<(), Refused> {
        self.get(owner, id)?;
        self.lock().open.remove(&id);
        Ok(())
    }
}

impl<S: Clone> Reservation<'_, S> {
    /// Installs the session in the reserved slot (one step under the lock) and returns its id.
    pub fn install(mut self, value: S) -> EntryId {
        let id = EntryId::random();
        let mut g = self.table.lock();
        g.unreserve(&self.owner);
        g.open.insert(
            id,
            Entry {
                owner: std::mem::take(&mut self.owner),
                value,
                last_used: Instant::now(),
            },
        );
        self.taken = false;
        id
    }
}

impl<S> Drop for Reservation<'_, S> {
    fn drop(&mut self) {
        if self.taken {
            self.table.lock().unreserve(&self.owner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reservations count like sessions against both limits; a dropped one frees its slot, an
    /// installed one becomes the session.
    #[test]
    fn reservations_count_against_the_limits_and_free_on_drop() {
        let t = SessionTable::<u32>::new(2, 1, Duration::from_secs(60));
        let a = t.reserve("alice").unwrap();
        let (code, msg) = t.reserve("alice").unwrap_err();
        assert_eq!(code, ErrorCode::Limit);
        assert!(msg.contains("max_sessions_per_client = 1"), "{msg}");
        let b = t.reserve("bob").unwrap();
        let (code, msg) = t.reserve("carol").unwrap_err();
        assert_eq!(code, ErrorCode::Limit);
        assert!(msg.contains("max_sessions = 2"), "{msg}");
        assert_eq!(t.counts(), (0, 2));
        drop(b);
        assert_eq!(t.counts(), (0, 1));
        let id = a.install(7);
        assert_eq!(t.counts(), (1, 0));
        assert_eq!(t.get("alice", id), Ok(7));
        assert_eq!(t.get("bob", id).unwrap_err().0, ErrorCode::Forbidden);
        assert!(
            t.reserve("alice").is_err(),
            "the session holds alice's slot"
        );
        let c = t.reserve("carol").unwrap();
        drop(c);
        t.close("alice", id).unwrap();
        assert_eq!(t.counts(), (0, 0));
        assert_eq!(t.get("alice", id).unwrap_err().0, ErrorCode::NotFound);
    }
}
