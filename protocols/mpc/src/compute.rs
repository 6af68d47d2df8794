//! Where local computation runs: heavy work (matrix products, PRG expansion, OT extension) moves
//! off the async executor onto rayon, so that transports driven by the executor (QUIC keeps
//! timers and acknowledgements there) never stall behind a long product; small work stays on the
//! caller's thread.
//!
//! Why small work must stay: a task handed to rayon wakes a worker, which runs it and then spins
//! in `sched_yield` looking for more before it sleeps again; parallel loops do the same on every
//! split. Under a CPU quota (a container's cgroup) that spinning spends the quota the executor's
//! thread needs, and a job made of thousands of tiny steps (a logistic regression on 30 features)
//! crawls: one remote run took 712 s instead of about 5 s. So [`offload_sized`] runs work below
//! [`INLINE_WORK`] inline, and parallel loops split into pieces of at least [`INLINE_WORK`]
//! ([`min_len`]), so that small inputs never leave the calling thread and large ones pay the hop
//! once per a few hundred microseconds of work.
//!
//! No security content: this module only schedules computation.

/// Work (in word operations, about a nanosecond each) below which a task runs inline and a
/// parallel loop does not split: about 65 µs.
pub const INLINE_WORK: usize = 1 << 16;

/// Runs `f` on the rayon pool and awaits its result: for coarse work (an RLWE key generation, a
/// dealer's whole batch), whatever its size.
pub async fn offload<T, F>(f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = tokio::sync::oneshot::channel();
    rayon::spawn(move || {
        let _ = tx.send(f());
    });
    rx.await.expect("rayon task panicked")
}

/// Runs `f`, estimated at `work` word operations: inline below [`INLINE_WORK`], else on the
/// rayon pool ([`offload`]).
pub async fn offload_sized<T, F>(work: usize, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if work < INLINE_WORK {
        f()
    } else {
        offload(f).await
    }
}

/// The least number of items per piece of a parallel loop whose items cost `item_work` word
/// operations each: pieces of at least [`INLINE_WORK`], so a loop over less runs sequentially on
/// the calling thread (`with_min_len`).
pub fn min_len(item_work: usize) -> usize {
    INLINE_WORK.div_ceil(item_work.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn offload_returns_the_value() {
        assert_eq!(offload(|| 6 * 7).await, 42);
    }

    /// Small work runs on the caller's thread, large work on a rayon worker.
    #[tokio::test]
    async fn small_work_stays_on_the_calling_thread() {
        let here = std::thread::current().id();
        let small = offload_sized(INLINE_WORK - 1, || {
            (std::thread::current().id(), rayon::current_thread_index())
        })
        .await;
        assert_eq!(small, (here, None));
        let large = offload_sized(INLINE_WORK, rayon::current_thread_index).await;
        assert!(large.is_some(), "large work runs on a rayon worker");
    }

    /// A parallel loop over less than [`INLINE_WORK`] stays on the calling thread; a larger one
    /// may split.
    #[test]
    fn small_loops_do_not_split() {
        use rayon::prelude::*;
        let item = 1000;
        let n = min_len(item);
        assert_eq!(n, INLINE_WORK.div_ceil(item));
        assert_eq!(min_len(0), INLINE_WORK);
        assert_eq!(min_len(usize::MAX), 1);
        let workers: Vec<Option<usize>> = (0..n - 1)
            .into_par_iter()
            .with_min_len(n)
            .map(|_| rayon::current_thread_index())
            .collect();
        assert!(workers.iter().all(Option::is_none), "{workers:?}");
    }
}
