//! Process-wide recycling of RNS limb buffers.
//!
//! Every [`crate::poly::RnsPoly`] (of any scheme: CKKS and the RLWE triple source share the pool)
//! hands its residue buffer back here when it is dropped, and new polynomials (results,
//! key-switching digits, scratch limbs) take their buffers from here. This is the same strategy as
//! Microsoft SEAL's global memory pool (`MemoryManager::GetPool`): a ciphertext at N = 2^14 is 2
//! MiB, and without recycling every operation result would be a fresh allocation that the system
//! allocator serves with newly mapped (zero-filled, page-faulting) memory once it has trimmed the
//! previous result's pages. With recycling, results are written once into memory that is already
//! mapped and usually cache-resident.
//!
//! The pool keeps at most [`MAX_BUFFERS`] buffers and [`MAX_BYTES`] bytes (the oldest buffers
//! are returned to the system allocator first). [`trim_buffer_pool`] releases everything. Buffers are not
//! cleared when recycled (like any allocator); owners of secret material (secret keys, the
//! encryption masks and errors) zeroize it before dropping, and every taker either overwrites
//! every element (`take_dirty`, `take_empty`) or asks for zeros (`take_zeroed`).

use std::sync::{Mutex, MutexGuard};

/// Largest number of buffers the pool retains.
pub const MAX_BUFFERS: usize = 64;
/// Largest number of bytes the pool retains (256 MiB).
pub const MAX_BYTES: usize = 256 << 20;
const MAX_WORDS: usize = MAX_BYTES / 8;

struct Pool {
    bufs: Vec<Vec<u64>>,
    words: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool {
    bufs: Vec::new(),
    words: 0,
});

fn lock() -> MutexGuard<'static, Pool> {
    // The pool holds no invariant that a panic elsewhere could break.
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// A buffer with capacity at least `len` (best fit from the pool, else freshly allocated) and
/// arbitrary initialized contents.
fn take(len: usize) -> Vec<u64> {
    if len == 0 {
        return Vec::new();
    }
    let found = {
        let mut pool = lock();
        let mut best: Option<(usize, usize)> = None;
        for (i, b) in pool.bufs.iter().enumerate() {
            let c = b.capacity();
            // Do not spend a much larger buffer on a small request.
            if c >= len && c <= 4 * len && best.is_none_or(|(_, bc)| c < bc) {
                best = Some((i, c));
                if c == len {
                    break;
                }
            }
        }
        best.map(|(i, c)| {
            pool.words -= c;
            pool.bufs.swap_remove(i)
        })
    };
    found.unwrap_or_else(|| Vec::with_capacity(len))
}

/// A buffer of length `len` whose contents are arbitrary (left over from an earlier use); the
/// caller must overwrite every element before the values can be observed.
pub fn take_dirty(len: usize) -> Vec<u64> {
    let mut v = take(len);
    if v.len() >= len {
        v.truncate(len);
    } else {
        v.resize(len, 0);
    }
    v
}

/// A zero-filled buffer of length `len`.
pub fn take_zeroed(len: usize) -> Vec<u64> {
    let mut v = take(len);
    v.clear();
    v.resize(len, 0);
    v
}

/// An empty buffer with capacity for `len` words (for write-once `extend`).
pub fn take_empty(len: usize) -> Vec<u64> {
    let mut v = take(len);
    v.clear();
    v
}

/// Returns a buffer to the pool (or to the system allocator when the pool is full).
pub fn give(v: Vec<u64>) {
    let c = v.capacity();
    if c == 0 {
        return;
    }
    if c > MAX_WORDS {
        return;
    }
    let evicted = {
        let mut pool = lock();
        // Keep the most recently returned buffers: evict the oldest until this one fits.
        let mut evicted = Vec::new();
        while pool.bufs.len() >= MAX_BUFFERS || pool.words + c > MAX_WORDS {
            let old = pool.bufs.remove(0);
            pool.words -= old.capacity();
            evicted.push(old);
        }
        pool.words += c;
        pool.bufs.push(v);
        evicted
    };
    // Freed outside the lock.
    drop(evicted);
}

/// A pooled scratch buffer that returns to the pool when dropped.
pub struct Scratch(pub Vec<u64>);

impl std::fmt::Debug for Scratch {
    // Scratch limbs may hold secret-derived values: print the length only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scratch({} words)", self.0.len())
    }
}

impl Scratch {
    /// Empty, with capacity for `len` words.
    pub fn empty(len: usize) -> Self {
        Self(take_empty(len))
    }
    /// Length `len`, arbitrary contents (overwrite before reading).
    pub fn dirty(len: usize) -> Self {
        Self(take_dirty(len))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

/// Releases every buffer the pool retains to the system allocator (e.g. after a large
/// computation, to lower the resident memory). Safe to call at any time.
pub fn trim_buffer_pool() {
    let bufs = {
        let mut pool = lock();
        pool.words = 0;
        std::mem::take(&mut pool.bufs)
    };
    drop(bufs);
}

/// Bytes currently retained by the pool.
pub fn buffer_pool_bytes() -> usize {
    lock().words * 8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taken_buffers_have_the_requested_shape() {
        // Other tests share the pool, so only properties of the returned buffers are checked.
        let mut a = take_dirty(1000);
        assert_eq!(a.len(), 1000);
        a.iter_mut().for_each(|x| *x = 7);
        give(a);
        let z = take_zeroed(900);
        assert_eq!(z.len(), 900);
        assert!(z.iter().all(|&x| x == 0));
        let e = take_empty(1000);
        assert!(e.is_empty() && e.capacity() >= 1000);
        give(z);
        give(e);
        assert!(take_dirty(0).is_empty());
    }

    #[test]
    fn pool_is_bounded() {
        for _ in 0..2 * MAX_BUFFERS {
            give(Vec::with_capacity(16));
        }
        assert!(buffer_pool_bytes() <= MAX_BYTES);
        assert!(lock().bufs.len() <= MAX_BUFFERS);
    }
}
