//! Party identities: an ECDSA P-256 key pair with a self-signed X.509 certificate (RFC 5280, made
//! by rcgen), PEM files (RFC 7468) and SHA-256 certificate fingerprints.
//!
//! Dyad does not use certificate authorities: each operator generates an identity once
//! (`Identity::generate("dyad-p0")`, saved with [`Identity::save`]) and hands the certificate —
//! never the key — to the operators it talks to, who pin it ([`PeerCert`]). Validity periods and
//! names are therefore not checked; the pinned DER bytes are the whole trust decision.
//!
//! The key pair is drawn by `ring` from the operating system's CSPRNG (rcgen's key generation does
//! not take a caller RNG). The private key is held in a zeroize-on-drop buffer, never printed by
//! `Debug`, and written with mode 0600 on Unix; on Unix a key file that the group or others may
//! read is refused when an identity is loaded ([`TransportError::KeyFileMode`]), since anyone who
//! read it could pass as this party.

use super::error::{Result, TransportError};
pub use super::fingerprint::Fingerprint;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// File name of the certificate inside an identity directory.
pub const CERT_FILE: &str = "cert.pem";
/// File name of the private key inside an identity directory.
pub const KEY_FILE: &str = "key.pem";

/// A peer's certificate, pinned: the only certificate accepted for that peer.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerCert {
    der: CertificateDer<'static>,
    fingerprint: Fingerprint,
}

impl fmt::Debug for PeerCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerCert({})", self.fingerprint)
    }
}

impl PeerCert {
    /// Wraps DER bytes (not parsed here; the handshake parses them to check signatures).
    pub fn from_der(der: Vec<u8>) -> Self {
        let fingerprint = Fingerprint::of(&der);
        Self {
            der: CertificateDer::from(der),
            fingerprint,
        }
    }

    /// Parses the first `CERTIFICATE` block of a PEM text.
    pub fn from_pem(pem: &str) -> Result<Self> {
        Self::parse_pem(pem.as_bytes(), Path::new("<memory>"))
    }

    fn parse_pem(bytes: &[u8], path: &Path) -> Result<Self> {
        let der =
            CertificateDer::from_pem_slice(bytes).map_err(|e| TransportError::InvalidPem {
                path: path.to_path_buf(),
                expected: "CERTIFICATE",
                reason: e.to_string(),
            })?;
        Ok(Self::from_der(der.to_vec()))
    }

    /// Reads a PEM certificate file.
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|source| TransportError::File {
            op: "read",
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse_pem(&bytes, path)
    }

    /// The certificate as PEM text.
    pub fn to_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.der)
    }

    /// The DER bytes.
    pub fn der(&self) -> &CertificateDer<'static> {
        &self.der
    }

    /// SHA-256 of the DER bytes.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }
}

/// This party's key pair and self-signed certificate.
pub struct Identity {
    name: String,
    cert: PeerCert,
    key_pkcs8: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("name", &self.name)
            .field("fingerprint", &self.cert.fingerprint)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl Identity {
    /// Generates a fresh ECDSA P-256 key pair and a self-signed certificate whose subject common
    /// name and DNS subject-alternative name are `name` (e.g. `"dyad-p0"`).
    pub fn generate(name: &str) -> Result<Self> {
        let gen_err = |source| TransportError::CertificateGeneration {
            name: name.to_string(),
            source,
        };
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(gen_err)?;
        let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).map_err(gen_err)?;
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        let cert = params.self_signed(&key).map_err(gen_err)?;
        Ok(Self {
            name: name.to_string(),
            cert: PeerCert::from_der(cert.der().to_vec()),
            key_pkcs8: Zeroizing::new(key.serialize_der()),
        })
    }

    /// The name given at generation (or `"loaded"` for an identity read from files).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The certificate to hand to peers.
    pub fn certificate(&self) -> &PeerCert {
        &self.cert
    }

    /// SHA-256 fingerprint of the certificate.
    pub fn fingerprint(&self) -> Fingerprint {
        self.cert.fingerprint
    }

    /// The private key for rustls (a copy; rustls keeps its own).
    pub(crate) fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_pkcs8.to_vec()))
    }

    /// Writes `cert.pem` and `key.pem` (mode 0600 on Unix) into `dir`, creating it if needed.
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|source| TransportError::File {
            op: "create directory",
            path: dir.to_path_buf(),
            source,
        })?;
        self.save_pem(&dir.join(CERT_FILE), &dir.join(KEY_FILE))
    }

    /// Writes the certificate and the key to the two given PEM files.
    pub fn save_pem(&self, cert_path: &Path, key_path: &Path) -> Result<()> {
        write_file(cert_path, self.cert.to_pem().as_bytes(), false)?;
        let key_pem = Zeroizing::new(pem_encode("PRIVATE KEY", &self.key_pkcs8));
        write_file(key_path, key_pem.as_bytes(), true)
    }

    /// Reads `cert.pem` and `key.pem` from `dir`.
    pub fn load(dir: &Path) -> Result<Self> {
        Self::load_pem(&dir.join(CERT_FILE), &dir.join(KEY_FILE))
    }

    /// Reads an identity from a PEM certificate and a PEM PKCS#8 private key, checking that the
    /// key belongs to the certificate.
    pub fn load_pem(cert_path: &Path, key_path: &Path) -> Result<Self> {
        let cert = PeerCert::load(cert_path)?;
        check_key_mode(key_path)?;
        let key_bytes =
            Zeroizing::new(
                std::fs::read(key_path).map_err(|source| TransportError::File {
                    op: "read",
                    path: key_path.to_path_buf(),
                    source,
                })?,
            );
        let key = PrivatePkcs8KeyDer::from_pem_slice(&key_bytes).map_err(|e| {
            TransportError::InvalidPem {
                path: key_path.to_path_buf(),
                expected: "PRIVATE KEY (PKCS#8)",
                reason: e.to_string(),
            }
        })?;
        let id = Self {
            name: "loaded".to_string(),
            cert,
            key_pkcs8: Zeroizing::new(key.secret_pkcs8_der().to_vec()),
        };
        let provider = super::provider::provider();
        rustls::sign::CertifiedKey::from_der(
            vec![id.cert.der().clone()],
            id.private_key(),
            &provider,
        )
        .and_then(|ck| ck.keys_match())
        .map_err(|e| TransportError::InvalidPem {
            path: key_path.to_path_buf(),
            expected: "PRIVATE KEY matching the certificate",
            reason: format!("{e} (certificate {})", cert_path.display()),
        })?;
        Ok(id)
    }
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    // RFC 7468: base64 lines of 64 characters.
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::with_capacity(der.len().div_ceil(3) * 4);
    for chunk in der.chunks(3) {
        let n = (chunk[0] as u32) << 16
            | (*chunk.get(1).unwrap_or(&0) as u32) << 8
            | *chunk.get(2).unwrap_or(&0) as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("ascii"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    // The base64 copy of a key must not linger either.
    drop(Zeroizing::new(b64));
    out
}

/// Refuses a private key file whose mode lets the group or others read or write it (Unix).
fn check_key_mode(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| TransportError::File {
            op: "read",
            path: path.to_path_buf(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(TransportError::KeyFileMode {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    use std::io::Write;
    let err = |source| TransportError::File {
        op: "write",
        path: PathBuf::from(path),
        source,
    };
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts.open(path).map_err(err)?;
    // `mode` applies only when the file is created: an existing key file is narrowed too.
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(err)?;
    }
    f.write_all(bytes).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_through_pem_files() {
        let dir = tempfile::tempdir().unwrap();
        let id = Identity::generate("dyad-p0").unwrap();
        id.save(dir.path()).unwrap();
        let back = Identity::load(dir.path()).unwrap();
        assert_eq!(back.fingerprint(), id.fingerprint());
        assert_eq!(*back.key_pkcs8, *id.key_pkcs8);
        let cert = PeerCert::load(&dir.path().join(CERT_FILE)).unwrap();
        assert_eq!(cert, *id.certificate());
        assert_eq!(PeerCert::from_pem(&cert.to_pem()).unwrap(), cert);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn debug_does_not_print_the_key() {
        let id = Identity::generate("dyad-p1").unwrap();
        let dbg = format!("{id:?}");
        assert!(dbg.contains("redacted") && dbg.contains(&id.fingerprint().to_string()));
        let key_pem = pem_encode("PRIVATE KEY", &id.key_pkcs8);
        let body: String = key_pem.lines().nth(1).unwrap().chars().take(20).collect();
        assert!(!dbg.contains(&body));
    }

    #[test]
    fn a_key_from_another_identity_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = Identity::generate("a").unwrap();
        let b = Identity::generate("b").unwrap();
        a.save_pem(&dir.path().join("a.pem"), &dir.path().join("a.key"))
            .unwrap();
        b.save_pem(&dir.path().join("b.pem"), &dir.path().join("b.key"))
            .unwrap();
        let r = Identity::load_pem(&dir.path().join("a.pem"), &dir.path().join("b.key"));
        assert!(matches!(r, Err(TransportError::InvalidPem { .. })), "{r:?}");
        let r = PeerCert::load(&dir.path().join("a.key"));
        assert!(matches!(r, Err(TransportError::InvalidPem { .. })), "{r:?}");
        let r = PeerCert::load(&dir.path().join("missing.pem"));
        assert!(matches!(r, Err(TransportError::File { .. })), "{r:?}");
    }

    #[cfg(unix)]
    #[test]
    fn key_files_readable_by_others_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        Identity::generate("dyad-p0")
            .unwrap()
            .save(dir.path())
            .unwrap();
        let key = dir.path().join(KEY_FILE);
        let chmod =
            |mode| std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).unwrap();
        for mode in [0o644, 0o640, 0o604, 0o660] {
            chmod(mode);
            let e = Identity::load(dir.path()).unwrap_err();
            assert!(matches!(e, TransportError::KeyFileMode { mode: m, .. } if m == mode));
            let msg = e.to_string();
            assert!(
                msg.contains(&key.display().to_string())
                    && msg.contains(&format!("{mode:04o}"))
                    && msg.contains(&format!("chmod 600 {}", key.display())),
                "{msg}"
            );
        }
        for mode in [0o600, 0o400] {
            chmod(mode);
            Identity::load(dir.path()).unwrap();
        }
        // Saving over a key file that is too open narrows it again.
        chmod(0o644);
        Identity::generate("dyad-p0")
            .unwrap()
            .save(dir.path())
            .unwrap();
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        Identity::load(dir.path()).unwrap();
    }

    #[test]
    fn fingerprints_are_sha256_hex() {
        let f = Fingerprint::of(b"abc");
        assert_eq!(
            f.to_string(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
