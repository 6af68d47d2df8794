//! Resource bounds of the client endpoint, checked before the party commits memory to a
//! request: the size of an upload's share (whatever form is sent), and counters of concurrent
//! connections and key uploads, total and per client, that refuse instead of queueing.
//!
//! Security model: clients are authenticated but may be hostile to availability (they can send
//! any header, open many connections, stall mid-upload). Every bound is taken before the
//! resource is used and released by a guard when the request ends in any way (refusal, error,
//! disconnect), so a client cannot grow the server's memory past the configured limits nor leak
//! a slot. A refusal names the limit and the count it reached; it reveals how busy the server
//! is, nothing about other clients' identities or data.

use crate::proto::ErrorCode;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A refusal with the reply's code and message.
pub type Refused = (ErrorCode, String);

/// The bytes of the `rows × cols` share matrix an upload stores (`rows·cols·8`), whatever form
/// is sent (a 32-byte seed expands to the whole matrix), refused with [`ErrorCode::Limit`] when
/// it exceeds `limit` or does not fit 64 bits. Checked before any share byte is received or
/// expanded, so a short seed cannot make a party allocate more than `max_upload_bytes`.
///
/// # Errors
/// The refusal, naming rows, columns, the byte count and the limit.
pub fn upload_size(rows: u64, cols: u64, limit: u64) -> Result<u64, Refused> {
    match rows.checked_mul(cols).and_then(|w| w.checked_mul(8)) {
        Some(b) if b <= limit => Ok(b),
        Some(b) => Err((
            ErrorCode::Limit,
            format!(
                "a share of {rows} rows x {cols} columns is {b} bytes, max_upload_bytes = {limit}"
            ),
        )),
        None => Err((
            ErrorCode::Limit,
            format!(
                "a share of {rows} rows x {cols} columns is 2^64 bytes or more \
                 (rows x cols x 8 overflows), max_upload_bytes = {limit}"
            ),
        )),
    }
}

/// Takes one of the permits of `sem` (`limit` in all) without waiting.
///
/// # Errors
/// `Limit` naming `what` and the setting `knob` when all are taken.
pub fn try_total(
    sem: &Arc<Semaphore>,
    what: &str,
    knob: &str,
    limit: usize,
) -> Result<OwnedSemaphorePermit, Refused> {
    sem.clone().try_acquire_owned().map_err(|_| {
        (
            ErrorCode::Limit,
            format!("{limit} {what} in progress, {knob} = {limit}; try again later"),
        )
    })
}

/// Counts something each client holds at once (connections, key uploads) against a limit.
#[derive(Debug, Clone)]
pub struct PerClient {
    what: &'static str,
    knob: &'static str,
    limit: usize,
    counts: Arc<Mutex<HashMap<String, usize>>>,
}

/// One unit counted for a client; dropping it gives it back.
#[derive(Debug)]
pub struct PerClientGuard {
    counts: Arc<Mutex<HashMap<String, usize>>>,
    client: String,
}

impl PerClient {
    /// A counter of `what` limited to `limit` per client by the setting `knob`.
    pub fn new(what: &'static str, knob: &'static str, limit: usize) -> Self {
        Self {
            what,
            knob,
            limit,
            counts: Arc::default(),
        }
    }

    /// Counts one more for `client`, checking and counting under one lock.
    ///
    /// # Errors
    /// `Limit` naming the count and the setting when `client` holds `limit` already.
    pub fn try_acquire(&self, client: &str) -> Result<PerClientGuard, Refused> {
        let mut g = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = g.entry(client.to_string()).or_insert(0);
        if *n >= self.limit {
            return Err((
                ErrorCode::Limit,
                format!(
                    "{client} has {n} {} in progress, {} = {}",
                    self.what, self.knob, self.limit
                ),
            ));
        }
        *n += 1;
        Ok(PerClientGuard {
            counts: self.counts.clone(),
            client: client.to_string(),
        })
    }

    /// What `client` holds now.
    pub fn count(&self, client: &str) -> usize {
        let g = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        g.get(client).copied().unwrap_or(0)
    }
}

impl Drop for PerClientGuard {
    fn drop(&mut self) {
        let mut g = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = g.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                g.remove(&self.client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn share_sizes_are_bounded_with_checked_arithmetic() {
        assert_eq!(upload_size(10, 3, 240), Ok(240));
        let (code, msg) = upload_size(1 << 33, 2, 1 << 30).unwrap_err();
        assert_eq!(code, ErrorCode::Limit);
        assert!(
            msg.contains("8589934592 rows x 2 columns is 137438953472 bytes")
                && msg.contains("max_upload_bytes = 1073741824"),
            "{msg}"
        );
        let (code, msg) = upload_size(1 << 62, 4, u64::MAX).unwrap_err();
        assert_eq!(code, ErrorCode::Limit);
        assert!(msg.contains("overflows"), "{msg}");
        // 2^63 bytes fit; rows·cols = 2^61 fits but ·8 does not; rows·cols itself overflows.
        assert_eq!(upload_size(1 << 30, 1 << 30, u64::MAX), Ok(1 << 63));
        assert!(upload_size(1 << 31, 1 << 30, u64::MAX)
            .unwrap_err()
            .1
            .contains("overflows"));
        assert!(upload_size(1 << 33, 1 << 31, u64::MAX)
            .unwrap_err()
            .1
            .contains("overflows"));
    }

    #[test]
    fn per_client_counts_are_bounded_and_given_back() {
        let c = PerClient::new("key uploads", "max_key_uploads_per_client", 2);
        let a1 = c.try_acquire("alice").unwrap();
        let _a2 = c.try_acquire("alice").unwrap();
        let (code, msg) = c.try_acquire("alice").unwrap_err();
        assert_eq!(code, ErrorCode::Limit);
        assert!(
            msg.contains("alice has 2 key uploads")
                && msg.contains("max_key_uploads_per_client = 2"),
            "{msg}"
        );
        let _b = c.try_acquire("bob").unwrap();
        drop(a1);
        assert_eq!(c.count("alice"), 1);
        assert!(c.try_acquire("alice").is_ok());
        let sem = Arc::new(Semaphore::new(1));
        let p = try_total(&sem, "key uploads", "max_key_uploads", 1).unwrap();
        let (code, msg) = try_total(&sem, "key uploads", "max_key_uploads", 1).unwrap_err();
        assert_eq!(code, ErrorCode::Limit);
        assert!(msg.contains("max_key_uploads = 1"), "{msg}");
        drop(p);
        assert!(try_total(&sem, "key uploads", "max_key_uploads", 1).is_ok());
    }
}
