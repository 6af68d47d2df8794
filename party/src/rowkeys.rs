//! Row keys of vertical partitioning, on the data owner's side: the secret the owners of a
//! join share ([`KeySecret`]) and the per-row tags sent to the parties instead of the keys
//! ([`tag`], [`tags`]).
//!
//! Security model: the owners of the two datasets agree out of band on the rows (the same
//! individuals in the same order) and on a fresh random secret of at least 32 bytes that the
//! parties never see. A tag is `HMAC-SHA256(secret, "dyad-row-key/1" ‖ 0x00 ‖ key)`: a party
//! holding tags learns whether two rows carry the same key and nothing else about the key; it
//! cannot test a guessed key (even from a small key space) without the secret. A fresh secret
//! per join keeps the tags of one join unlinkable to another's.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// Domain separation of row key tags.
const DOMAIN: &[u8] = b"dyad-row-key/1\0";
/// Fewest secret bytes accepted.
pub const MIN_SECRET_BYTES: usize = 32;

/// Errors of loading a key secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeySecretError {
    /// The file could not be read.
    #[error("key secret {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file does not hold hex digits.
    #[error(
        "key secret {file}: not hexadecimal ({reason}); write one with `openssl rand -hex 32`"
    )]
    NotHex {
        /// The file.
        file: String,
        /// The decoder's message.
        reason: String,
    },
    /// The secret is too short.
    #[error("key secret {file}: {bytes} bytes, at least {min} needed (`openssl rand -hex 32`)")]
    TooShort {
        /// The file.
        file: String,
        /// Bytes found.
        bytes: usize,
        /// The minimum.
        min: usize,
    },
}

/// The secret two owners share to tag their row keys (wiped when dropped).
pub struct KeySecret(zeroize::Zeroizing<Vec<u8>>);

impl std::fmt::Debug for KeySecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeySecret(<redacted>)")
    }
}

impl KeySecret {
    /// The secret from its bytes (at least [`MIN_SECRET_BYTES`]).
    ///
    /// # Errors
    /// [`KeySecretError::TooShort`] (named `what`).
    pub fn from_bytes(bytes: Vec<u8>, what: &str) -> Result<Self, KeySecretError> {
        let b = zeroize::Zeroizing::new(bytes);
        if b.len() < MIN_SECRET_BYTES {
            return Err(KeySecretError::TooShort {
                file: what.into(),
                bytes: b.len(),
                min: MIN_SECRET_BYTES,
            });
        }
        Ok(Self(b))
    }

    /// Reads a file holding the secret in hex (whitespace around it ignored).
    ///
    /// # Errors
    /// [`KeySecretError`] naming the file.
    pub fn load(path: &Path) -> Result<Self, KeySecretError> {
        let file = path.display().to_string();
        let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            KeySecretError::Read {
                file: file.clone(),
                source,
            }
        })?);
        let bytes = hex::decode(text.trim()).map_err(|e| KeySecretError::NotHex {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        Self::from_bytes(bytes, &file)
    }
}

/// The tag of one row key.
pub fn tag(secret: &KeySecret, key: &str) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&secret.0).expect("HMAC takes any key");
    mac.update(DOMAIN);
    mac.update(key.as_bytes());
    mac.finalize().into_bytes().into()
}

/// The tags of `keys`, concatenated in order (what an upload sends after its share).
pub fn tags(secret: &KeySecret, keys: &[String]) -> Vec<u8> {
    keys.iter().flat_map(|k| tag(secret, k)).collect()
}

/// The first row (0-based) at which two tag lists of equal length differ, if any.
pub fn first_mismatch(a: &[u8], b: &[u8]) -> Option<usize> {
    a.chunks_exact(crate::proto::KEY_TAG_BYTES)
        .zip(b.chunks_exact(crate::proto::KEY_TAG_BYTES))
        .position(|(x, y)| x != y)
}

/// The first row (0-based) whose tag repeats an earlier row's, if any.
pub fn first_repeat(t: &[u8]) -> Option<usize> {
    let mut seen = std::collections::HashSet::new();
    t.chunks_exact(crate::proto::KEY_TAG_BYTES)
        .position(|x| !seen.insert(x))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(b: u8) -> KeySecret {
        KeySecret::from_bytes(vec![b; 32], "test").unwrap()
    }

    #[test]
    fn tags_depend_on_key_and_secret_and_are_deterministic() {
        let (s, t) = (secret(1), secret(2));
        assert_eq!(tag(&s, "C-17"), tag(&s, "C-17"));
        assert_ne!(tag(&s, "C-17"), tag(&s, "C-18"));
        assert_ne!(tag(&s, "C-17"), tag(&t, "C-17"));
        // Not the bare hash of the key: a party cannot recompute it from a guess.
        assert_ne!(tag(&s, "C-17"), crate::store::sha256(b"C-17"));
    }

    #[test]
    fn mismatch_and_repeat_name_the_first_row() {
        let s = secret(3);
        let keys = |v: &[&str]| tags(&s, &v.iter().map(|k| k.to_string()).collect::<Vec<_>>());
        let a = keys(&["a", "b", "c", "d"]);
        assert_eq!(first_mismatch(&a, &a), None);
        assert_eq!(first_mismatch(&a, &keys(&["a", "b", "d", "c"])), Some(2));
        assert_eq!(first_repeat(&a), None);
        assert_eq!(first_repeat(&keys(&["a", "b", "a"])), Some(2));
    }

    #[test]
    fn short_or_bad_secrets_are_refused_naming_the_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("k");
        std::fs::write(&p, "abcd\n").unwrap();
        let e = KeySecret::load(&p).unwrap_err().to_string();
        assert!(
            e.contains("2 bytes, at least 32") && e.contains("/k"),
            "{e}"
        );
        std::fs::write(&p, "zz").unwrap();
        assert!(KeySecret::load(&p)
            .unwrap_err()
            .to_string()
            .contains("not hexadecimal"));
        std::fs::write(&p, format!("{}\n", "ab".repeat(32))).unwrap();
        assert!(KeySecret::load(&p).is_ok());
    }
}
