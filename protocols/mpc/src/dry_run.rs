//! Dry runs: the preprocessing a protocol consumes, found by running the protocol itself.
//!
//! [`planned!`] runs a protocol as P0 on zero shares of the planned shapes, against a
//! [`Loopback`] channel (every frame sent comes back as the peer's) and a recording
//! [`Preprocessing`] (every triple asked for is logged and handed out as zeros). The protocols
//! are oblivious — what they consume depends on shapes and parameters, never on values or on the
//! peer's messages — so the log is exactly what a real run of the same call consumes, in order:
//! the `*_requests` planners of [`crate::nonlinear`] and [`crate::trunc`] are these logs, and a
//! planner cannot disagree with its protocol. A protocol that fails (a bad parameter) fails at
//! the same point in both runs, after consuming the same prefix.
//!
//! Planners are called once per layer and step of a training plan, with a handful of distinct
//! shapes: [`cached`] keeps each log by its key.

use crate::error::{MpcError, Result};
use crate::fixed::FixedPoint;
use crate::net::Channel;
use crate::session::Session;
use crate::share::Role;
use crate::triples::{Preprocessing, TripleRequest};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, Wake, Waker};

/// Distinct planner calls kept before the cache starts over.
const CACHE_ENTRIES: usize = 4096;

/// A channel whose peer echoes: each frame received is the oldest frame sent and not yet
/// received. Both parties of every protocol here send before they receive, equal sizes.
#[derive(Debug, Default)]
pub(crate) struct Loopback {
    frames: VecDeque<Vec<u8>>,
}

impl Channel for Loopback {
    async fn send_frame(&mut self, frame: Vec<u8>) -> Result<()> {
        self.frames.push_back(frame);
        Ok(())
    }

    async fn recv_frame(&mut self, max_len: usize) -> Result<Vec<u8>> {
        match self.frames.pop_front() {
            Some(f) if f.len() <= max_len => Ok(f),
            other => Err(MpcError::Malformed {
                reason: format!(
                    "dry run: received {:?} bytes, at most {max_len} allowed",
                    other.map(|f| f.len())
                ),
            }),
        }
    }
}

/// The channel and recording pool of one dry run.
#[derive(Debug)]
pub(crate) struct DryRun {
    ch: Loopback,
    pre: Preprocessing,
}

impl DryRun {
    pub(crate) fn new() -> Self {
        Self {
            ch: Loopback::default(),
            pre: Preprocessing::recorder(),
        }
    }

    /// The session the planned protocol runs with (P0, the default encoding).
    pub(crate) fn session(&mut self) -> Session<'_, Loopback> {
        Session::new(&mut self.ch, Role::P0, FixedPoint::default(), &mut self.pre)
    }

    /// The requests the run consumed, in order.
    pub(crate) fn into_requests(mut self) -> Vec<TripleRequest> {
        self.pre.take_recorded()
    }
}

struct ThreadWaker(std::thread::Thread);

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives a future to completion on this thread (a dry run never waits on anything, so this is
/// a single poll in practice).
pub(crate) fn block_on<F: Future>(f: F) -> F::Output {
    let waker = Waker::from(Arc::new(ThreadWaker(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let Poll::Ready(out) = f.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}

/// The log made by `plan` for `key`, computed once per key.
pub(crate) fn cached(key: String, plan: impl FnOnce() -> Vec<TripleRequest>) -> Vec<TripleRequest> {
    static CACHE: OnceLock<Mutex<HashMap<String, Vec<TripleRequest>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(r) = cache.lock().expect("cache lock").get(&key) {
        return r.clone();
    }
    let r = plan();
    let mut c = cache.lock().expect("cache lock");
    if c.len() >= CACHE_ENTRIES {
        c.clear();
    }
    c.insert(key, r.clone());
    r
}

/// The requests a protocol call consumes: `planned!(key, |cx| call(cx, ...))` dry-runs the call
/// with `cx: &mut Session<'_, Loopback>` (see the module docs); `key` names the call and every
/// shape and parameter it depends on.
macro_rules! planned {
    ($key:expr, |$cx:ident| $call:expr) => {
        $crate::dry_run::cached($key, || {
            let mut dry = $crate::dry_run::DryRun::new();
            {
                let $cx = &mut dry.session();
                // The outcome is the protocol's business; the log is what it consumed.
                let _ = $crate::dry_run::block_on(async { $call.await });
            }
            dry.into_requests()
        })
    };
}
pub(crate) use planned;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_echoes_in_order_and_refuses_long_or_missing_frames() {
        let mut ch = Loopback::default();
        block_on(async {
            ch.send_frame(vec![1, 2]).await.unwrap();
            ch.send_frame(vec![3]).await.unwrap();
            assert_eq!(ch.recv_frame(2).await.unwrap(), vec![1, 2]);
            assert!(ch.recv_frame(0).await.is_err());
            assert!(ch.recv_frame(8).await.is_err());
        });
    }

    #[test]
    fn a_dry_run_logs_what_the_protocol_takes() {
        let reqs = planned!("test: two takes".into(), |cx| async {
            cx.pre.next_elementwise((2, 3))?;
            cx.pre.next_and(4).map(drop)
        });
        assert_eq!(
            reqs,
            vec![
                TripleRequest::Elementwise { rows: 2, cols: 3 },
                TripleRequest::And { words: 4 }
            ]
        );
    }
}
