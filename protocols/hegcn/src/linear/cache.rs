//! The plaintext cache of the linear maps: encoded weight diagonals memoised by content,
//! level and scale under a memory bound, its statistics ([`PlaintextCacheStats`]) and the
//! working-memory bound of lockstep BSGS evaluation ([`DEFAULT_LOCKSTEP_BYTES`]).

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ckks::{Encoder, Plaintext};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// Statistics of the plaintext cache of a compiled model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaintextCacheStats {
    /// Memory bound in bytes (0: the cache is off).
    pub budget_bytes: usize,
    /// Bytes held (encoded plaintexts plus the slot values used to check a hit).
    pub bytes: usize,
    /// Plaintexts held.
    pub entries: usize,
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to encode (the plaintext was stored if it fitted the budget); with
    /// the cache off, every weight plaintext encoded.
    pub misses: u64,
    /// Thread-time (summed over threads) spent encoding weight plaintexts of the linear maps
    /// since the last reset, cache on or off, in nanoseconds.
    pub encode_ns: u64,
}

struct CacheEntry {
    values: Box<[u64]>,
    pt: Arc<Plaintext>,
}

/// Encoded weight plaintexts, memoised by content, level and scale under a memory bound.
///
/// A diagonal is looked up by `(level, scale, values)`: identical diagonals (the temporal
/// kernel of every node under AMA, the identity residual) share one entry across nodes and
/// stages. Entries are added until `budget` bytes are held, then lookups that miss encode
/// on the fly without storing (no eviction: the first forward pass decides what stays, and
/// the same diagonals recur in the same order on every sample). With a budget of 0 nothing is
/// memoised: each plaintext lives only for its product. A stage-major caller releases the
/// entries after each stage (`HeStgcn::release_plaintext_cache`: weights are encoded at the
/// stage's level, so no other stage hits them), which gives every stage the whole bound and
/// keeps the memory at one stage's worth. The bound covers the cache only;
/// besides it a linear map holds at most one diagonal being encoded per worker thread.
///
/// Vectors compiled once and read on every request (the dense layout's diagonals, biases and
/// activation coefficients) are looked up by identity instead ([`PlaintextId`],
/// [`Self::get_or_encode_keyed`]): no hash of `N/2` slot values per lookup and no copy of
/// them per entry.
#[derive(Default)]
pub(crate) struct PlaintextCache {
    budget: AtomicUsize,
    used: AtomicUsize,
    hits: AtomicU64,
    misses: AtomicU64,
    encode_ns: AtomicU64,
    /// Bound on the baby-step rotations held at once by a lockstep BSGS evaluation (bytes;
    /// 0: [`DEFAULT_LOCKSTEP_BYTES`]).
    lockstep_bytes: AtomicUsize,
    map: Mutex<HashMap<(usize, u64, u64), Vec<CacheEntry>>>,
    /// Plaintexts looked up by their owner's identity ([`Self::get_or_encode_keyed`]).
    keyed: Mutex<HashMap<KeyedSlot, Arc<Plaintext>>>,
}

/// A keyed entry: `(id, level, scale bits)`.
type KeyedSlot = (u64, usize, u64);

/// Source of [`PlaintextId`]s: unique within the process.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// The identity of a fixed vector of slot values (a compiled weight diagonal, bias or
/// activation coefficient) for [`PlaintextCache::get_or_encode_keyed`]: drawn once when the
/// vector is compiled, unique within the process, and shared by clones, which hold the same
/// values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PlaintextId(u64);

impl PlaintextId {
    /// A new identity.
    pub(crate) fn fresh() -> Self {
        Self(NEXT_ID.fetch_add(1, Ordering::Relaxed))
    }
}

/// Default bound on the baby-step rotations a BSGS map holds at once when it evaluates
/// isomorphic groups (AMA temporal convolution: nodes) in lockstep: 3 GiB. At the NTU shape
/// (N = 2^15, 4 input ciphertexts per node, 17 baby steps) one node's baby steps take
/// 0.2–0.3 GB, so 10–13 nodes share each encoded diagonal. Memory-bound runs pass less
/// (`cryptogcn-stgcn3-128.toml`: 1.5 GiB; at widths / 2, with the cache released per stage,
/// 20,295 encodings instead of 19,971 and no slower).
pub const DEFAULT_LOCKSTEP_BYTES: usize = 3 << 30;

impl std::fmt::Debug for PlaintextCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaintextCache")
            .field("stats", &self.stats())
            .finish()
    }
}

impl PlaintextCache {
    /// Sets the memory bound; `0` turns the cache off and frees it.
    pub(crate) fn set_budget(&self, bytes: usize) {
        self.budget.store(bytes, Ordering::Relaxed);
        if bytes == 0 {
            self.clear();
        }
    }

    /// Sets the bound on baby-step rotations held by lockstep evaluation (0: the default).
    pub(crate) fn set_lockstep_budget(&self, bytes: usize) {
        self.lockstep_bytes.store(bytes, Ordering::Relaxed);
    }

    pub(crate) fn lockstep_budget(&self) -> usize {
        match self.lockstep_bytes.load(Ordering::Relaxed) {
            0 => DEFAULT_LOCKSTEP_BYTES,
            b => b,
        }
    }

    /// Drops every held plaintext but keeps the bound and the statistics (a caller that
    /// knows no held entry will be looked up again, e.g. at the end of a stage whose level no
    /// later stage shares, frees the memory for the next stage).
    pub(crate) fn release(&self) {
        let mut map = self.map.lock().expect("no poisoned lock");
        map.clear();
        map.shrink_to_fit();
        let mut keyed = self.keyed.lock().expect("no poisoned lock");
        keyed.clear();
        keyed.shrink_to_fit();
        self.used.store(0, Ordering::Relaxed);
    }

    pub(crate) fn clear(&self) {
        self.map.lock().expect("no poisoned lock").clear();
        self.keyed.lock().expect("no poisoned lock").clear();
        self.used.store(0, Ordering::Relaxed);
        self.hits.store(0, Ordering::Relaxed);
        self.misses.store(0, Ordering::Relaxed);
        self.encode_ns.store(0, Ordering::Relaxed);
    }

    /// Encodes and adds the time to the encode counter.
    fn timed_encode(
        &self,
        encoder: &Encoder,
        values: &[f64],
        level: usize,
        scale: f64,
        extended: bool,
    ) -> Result<Plaintext> {
        let t0 = std::time::Instant::now();
        let pt = if extended {
            encoder.encode_ext(values, level, scale)?
        } else {
            encoder.encode(values, level, scale)?
        };
        self.encode_ns
            .fetch_add(t0.elapsed().as_nanos() as u64, Ordering::Relaxed);
        Ok(pt)
    }

    pub(crate) fn stats(&self) -> PlaintextCacheStats {
        let entries = self
            .map
            .lock()
            .map(|m| m.values().map(Vec::len).sum::<usize>())
            .unwrap_or(0)
            + self.keyed.lock().map(|m| m.len()).unwrap_or(0);
        PlaintextCacheStats {
            budget_bytes: self.budget.load(Ordering::Relaxed),
            bytes: self.used.load(Ordering::Relaxed),
            entries,
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            encode_ns: self.encode_ns.load(Ordering::Relaxed),
        }
    }

    /// The plaintext of `values` at `level` and `scale`, from the cache or freshly encoded.
    /// With `extended`, the plaintext also has residues modulo the special primes (for
    /// products over `Q·P`, `Encoder::encode_ext`); extended and plain encodings are cached
    /// apart.
    pub(crate) fn get_or_encode(
        &self,
        encoder: &Encoder,
        values: &[f64],
        level: usize,
        scale: f64,
        extended: bool,
    ) -> Result<Arc<Plaintext>> {
        let budget = self.budget.load(Ordering::Relaxed);
        if budget == 0 {
            self.misses.fetch_add(1, Ordering::Relaxed);
            let pt = self.timed_encode(encoder, values, level, scale, extended)?;
            return Ok(Arc::new(pt));
        }
        let bits: Vec<u64> = values.iter().map(|x| x.to_bits()).collect();
        let mut h = DefaultHasher::new();
        bits.hash(&mut h);
        extended.hash(&mut h);
        let key = (level, scale.to_bits(), h.finish());
        if let Some(bucket) = self.map.lock().expect("no poisoned lock").get(&key) {
            if let Some(e) = bucket
                .iter()
                .find(|e| *e.values == bits[..] && e.pt.is_extended() == extended)
            {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(e.pt.clone());
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let pt = Arc::new(self.timed_encode(encoder, values, level, scale, extended)?);
        // Residues of every limb (N = 2·slots coefficients) plus the values kept to check hits.
        let size = pt.poly().limbs() * 2 * encoder.slots() * 8 + bits.len() * 8;
        let mut map = self.map.lock().expect("no poisoned lock");
        let bucket = map.entry(key).or_default();
        if bucket
            .iter()
            .any(|e| *e.values == bits[..] && e.pt.is_extended() == extended)
        {
            // Another thread stored it meanwhile.
            return Ok(pt);
        }
        let used = self.used.load(Ordering::Relaxed);
        if used + size <= budget {
            self.used.store(used + size, Ordering::Relaxed);
            bucket.push(CacheEntry {
                values: bits.into_boxed_slice(),
                pt: pt.clone(),
            });
        }
        Ok(pt)
    }

    /// The plaintext of the fixed vector `id` at `level` and `scale`, from the cache or
    /// encoded from `values()` (called only on a miss). The lookup costs one hash of the key,
    /// not of the `N/2` slot values as [`Self::get_or_encode`]'s does, and an entry holds the
    /// plaintext alone: for vectors compiled once and read on every request (the dense
    /// layout's diagonals, biases and activation coefficients). Budget and statistics are
    /// shared with the content-keyed entries.
    pub(crate) fn get_or_encode_keyed(
        &self,
        encoder: &Encoder,
        id: PlaintextId,
        values: impl FnOnce() -> Vec<f64>,
        level: usize,
        scale: f64,
    ) -> Result<Arc<Plaintext>> {
        let budget = self.budget.load(Ordering::Relaxed);
        let key = (id.0, level, scale.to_bits());
        if budget > 0 {
            if let Some(pt) = self.keyed.lock().expect("no poisoned lock").get(&key) {
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Ok(pt.clone());
            }
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let pt = Arc::new(self.timed_encode(encoder, &values(), level, scale, false)?);
        if budget == 0 {
            return Ok(pt);
        }
        let size = pt.poly().limbs() * 2 * encoder.slots() * 8;
        let mut keyed = self.keyed.lock().expect("no poisoned lock");
        let used = self.used.load(Ordering::Relaxed);
        if !keyed.contains_key(&key) && used + size <= budget {
            self.used.store(used + size, Ordering::Relaxed);
            keyed.insert(key, pt.clone());
        }
        Ok(pt)
    }
}
