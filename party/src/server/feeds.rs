//! P1's per-job buffers of per-epoch statistics shares, read by the job's owner with
//! `ClientRequest::Watch`. P0 sends its shares to the owner in the submit stream; P1 has no
//! connection to the owner while a job runs, so it keeps its shares here until the owner
//! watches, and sends them on that connection only — never through P0, which could add them to
//! its own and learn the statistics.
//!
//! What each party learns: nothing. The shares a party holds and sends are its own, uniform to
//! it (the products that made them were masked by single-use triples); only the owner, holding
//! both, reconstructs. A watch is admitted only for the job's owner (its configured name, as
//! authenticated by this party); each item is sent once and then dropped, so a second watch
//! receives only later epochs.
//!
//! Bounds: a feed holds at most [`MAX_FEED_BYTES`] of shares (the oldest epochs are dropped
//! beyond, and logged); a feed whose job ended is dropped once read to its end or
//! [`FEED_GRACE`] after the end, whichever comes first; the number of feeds is bounded by the
//! jobs P0 starts.

use crate::proto::EntryId;
use mpc::Share;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Most bytes of shares a feed buffers (the oldest epochs are dropped beyond).
pub const MAX_FEED_BYTES: usize = 64 << 20;
/// How long a feed outlives its job when its owner does not read it.
pub const FEED_GRACE: Duration = Duration::from_secs(600);

/// One epoch's shares, as buffered.
#[derive(Debug, Clone)]
pub struct EpochShares {
    /// The epoch (1-based).
    pub epoch: u64,
    /// All epochs.
    pub epochs: u64,
    /// This party's shares of the per-sample probabilities of the true class.
    pub p_true: Share,
    /// Their fixed-point fractional bits.
    pub frac_bits: mpc::FracBits,
}

/// What a watcher reads next.
#[derive(Debug)]
pub enum FeedItem {
    /// An epoch's shares.
    Epoch(EpochShares),
    /// The job ended on this party: `Ok` with its model stored, or the failure's message.
    End(Result<(), String>),
}

#[derive(Debug)]
struct Feed {
    owner: String,
    queue: VecDeque<EpochShares>,
    bytes: usize,
    end: Option<(Result<(), String>, Instant)>,
    watched: bool,
    notify: Arc<Notify>,
}

/// Why a watch was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchRefusal {
    /// No job with this id at this party (never, or ended and read, or past the grace period).
    Unknown,
    /// The job belongs to another client.
    NotOwner,
    /// Another connection of the owner is watching it.
    Busy,
}

/// The feeds of one party.
#[derive(Debug, Default)]
pub struct Feeds {
    inner: Mutex<HashMap<EntryId, Feed>>,
}

impl Feeds {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<EntryId, Feed>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens the feed of `job` for `owner` (when P1 accepts the job), dropping expired feeds.
    pub fn open(&self, job: EntryId, owner: &str) {
        let mut g = self.lock();
        g.retain(|_, f| {
            f.end
                .as_ref()
                .is_none_or(|(_, at)| at.elapsed() < FEED_GRACE)
        });
        g.insert(
            job,
            Feed {
                owner: owner.into(),
                queue: VecDeque::new(),
                bytes: 0,
                end: None,
                watched: false,
                notify: Arc::new(Notify::new()),
            },
        );
    }

    /// Buffers one epoch's shares of `job` (dropping the oldest beyond [`MAX_FEED_BYTES`]).
    pub fn push(&self, job: EntryId, e: EpochShares) {
        let mut g = self.lock();
        let Some(f) = g.get_mut(&job) else { return };
        f.bytes += e.p_true.dim().0 * e.p_true.dim().1 * 8;
        f.queue.push_back(e);
        while f.bytes > MAX_FEED_BYTES {
            let Some(old) = f.queue.pop_front() else {
                break;
            };
            f.bytes -= old.p_true.dim().0 * old.p_true.dim().1 * 8;
            tracing::warn!(
                "job {job}: epoch {} statistics dropped unread (feed over {MAX_FEED_BYTES} bytes)",
                old.epoch
            );
        }
        f.notify.notify_one();
    }

    /// Records the end of `job` on this party.
    pub fn end(&self, job: EntryId, r: Result<(), String>) {
        let mut g = self.lock();
        if let Some(f) = g.get_mut(&job) {
            f.end = Some((r, Instant::now()));
            f.notify.notify_one();
        }
    }

    /// Starts `client`'s watch of `job`.
    ///
    /// # Errors
    /// [`WatchRefusal`]: unknown job, another client's job, or watched already.
    pub fn watch(self: &Arc<Self>, job: EntryId, client: &str) -> Result<Watcher, WatchRefusal> {
        let mut g = self.lock();
        let f = g.get_mut(&job).ok_or(WatchRefusal::Unknown)?;
        if f.owner != client {
            return Err(WatchRefusal::NotOwner);
        }
        if f.watched {
            return Err(WatchRefusal::Busy);
        }
        f.watched = true;
        Ok(Watcher {
            feeds: self.clone(),
            job,
            notify: f.notify.clone(),
        })
    }

    /// The next item of `job`'s feed, if one is there (the end only once the epochs are read;
    /// reading the end drops the feed).
    fn take(&self, job: EntryId) -> Option<FeedItem> {
        let mut g = self.lock();
        let f = g.get_mut(&job)?;
        if let Some(e) = f.queue.pop_front() {
            f.bytes -= e.p_true.dim().0 * e.p_true.dim().1 * 8;
            return Some(FeedItem::Epoch(e));
        }
        if f.end.is_some() {
            let f = g.remove(&job)?;
            return f.end.map(|(r, _)| FeedItem::End(r));
        }
        None
    }
}

/// An owner's watch of one job's feed.
#[derive(Debug)]
pub struct Watcher {
    feeds: Arc<Feeds>,
    job: EntryId,
    notify: Arc<Notify>,
}

impl Watcher {
    /// The next item, waiting for it; `None` if the feed disappeared.
    pub async fn next(&mut self) -> Option<FeedItem> {
        loop {
            let notified = self.notify.notified();
            if let Some(item) = self.feeds.take(self.job) {
                return Some(item);
            }
            if !self.feeds.lock().contains_key(&self.job) {
                return None;
            }
            notified.await;
        }
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        if let Some(f) = self.feeds.lock().get_mut(&self.job) {
            f.watched = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(epoch: u64, n: usize) -> EpochShares {
        EpochShares {
            epoch,
            epochs: 3,
            p_true: Share::zeros(n, 1),
            frac_bits: mpc::FracBits::new(16).unwrap(),
        }
    }

    #[tokio::test]
    async fn the_owner_reads_each_epoch_once_then_the_end() {
        let feeds = Arc::new(Feeds::default());
        let job = EntryId([5; 16]);
        feeds.open(job, "alice");
        feeds.push(job, shares(1, 4));
        assert_eq!(feeds.watch(job, "bob").unwrap_err(), WatchRefusal::NotOwner);
        assert_eq!(
            feeds.watch(EntryId([6; 16]), "alice").unwrap_err(),
            WatchRefusal::Unknown
        );
        let mut w = feeds.watch(job, "alice").unwrap();
        assert_eq!(feeds.watch(job, "alice").unwrap_err(), WatchRefusal::Busy);
        assert!(matches!(w.next().await, Some(FeedItem::Epoch(e)) if e.epoch == 1));
        let f2 = feeds.clone();
        let later = tokio::spawn(async move {
            f2.push(job, shares(2, 4));
            f2.end(job, Ok(()));
        });
        assert!(matches!(w.next().await, Some(FeedItem::Epoch(e)) if e.epoch == 2));
        later.await.unwrap();
        assert!(matches!(w.next().await, Some(FeedItem::End(Ok(())))));
        assert!(w.next().await.is_none());
        drop(w);
        assert_eq!(
            feeds.watch(job, "alice").unwrap_err(),
            WatchRefusal::Unknown
        );
    }

    #[tokio::test]
    async fn a_dropped_watch_can_resume_and_feeds_are_bounded() {
        let feeds = Arc::new(Feeds::default());
        let job = EntryId([7; 16]);
        feeds.open(job, "alice");
        let per = MAX_FEED_BYTES / 8 / 2;
        for e in 1..=3 {
            feeds.push(job, shares(e, per));
        }
        let w = feeds.watch(job, "alice").unwrap();
        drop(w);
        let mut w = feeds.watch(job, "alice").unwrap();
        // Three half-limit epochs do not fit: the first was dropped.
        assert!(matches!(w.next().await, Some(FeedItem::Epoch(e)) if e.epoch == 2));
        feeds.end(job, Err("peer failed".into()));
        assert!(matches!(w.next().await, Some(FeedItem::Epoch(e)) if e.epoch == 3));
        assert!(matches!(w.next().await, Some(FeedItem::End(Err(m))) if m == "peer failed"));
    }
}
