//! The relay's TLS identity: a key made on first start, a self-signed certificate, and
//! the pin clients check instead of a certificate authority.
//!
//! TLS 1.3 only, through aws-lc-rs, which offers the hybrid post-quantum key exchange
//! X25519MLKEM768 first. Session tickets are off: a resumed session would tell the relay
//! that two connections come from the same client.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use rcgen::{CertificateParams, KeyPair, PublicKeyData};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use sotto_proto::Pin;
use zeroize::Zeroizing;

use crate::error::RelayError;

/// The relay's private key, PKCS#8 PEM, readable only by its owner.
pub const KEY_FILE: &str = "relay-key.pem";
/// The relay's self-signed certificate, PEM.
pub const CERT_FILE: &str = "relay-cert.pem";

/// The ALPN the relay speaks: ordinary HTTP/1.1, upgraded to WebSocket.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The relay's key and certificate.
pub struct Identity {
    cert: CertificateDer<'static>,
    key_der: Zeroizing<Vec<u8>>,
    pin: Pin,
}

impl Identity {
    /// A fresh identity that lives only in memory (`--ephemeral`).
    pub fn generate(host: &str) -> Result<Self, RelayError> {
        let key = KeyPair::generate().map_err(id_err)?;
        Ok(Self::from_key(&key, host)?.0)
    }

    /// The identity stored in `dir`, made and stored there on first start.
    pub fn load_or_create(dir: &Path, host: &str) -> Result<Self, RelayError> {
        let (key_path, cert_path) = (dir.join(KEY_FILE), dir.join(CERT_FILE));
        if key_path.exists() {
            let key_pem = Zeroizing::new(fs::read_to_string(&key_path).map_err(|e| file_err(KEY_FILE, &e))?);
            let cert_pem = fs::read(&cert_path).map_err(|e| file_err(CERT_FILE, &e))?;
            let key = KeyPair::from_pem(&key_pem)
                .map_err(|_| RelayError::Identity(format!("{KEY_FILE} is not a valid key")))?;
            let cert = CertificateDer::from_pem_slice(&cert_pem)
                .map_err(|_| RelayError::Identity(format!("{CERT_FILE} is not a valid certificate")))?;
            let id = Self {
                cert,
                key_der: Zeroizing::new(key.serialize_der()),
                pin: Pin::from_spki_der(&key.subject_public_key_info()),
            };
            // Refuse a certificate that does not belong to the key, rather than serve a
            // pin that no connection will match.
            id.tls_config()?;
            return Ok(id);
        }
        create_private_dir(dir)?;
        let key = KeyPair::generate().map_err(id_err)?;
        let (id, cert_pem) = Self::from_key(&key, host)?;
        write_private(&key_path, Zeroizing::new(key.serialize_pem()).as_bytes())?;
        write_private(&cert_path, cert_pem.as_bytes())?;
        Ok(id)
    }

    /// An identity for `key` with a fresh self-signed certificate, and that certificate
    /// as PEM.
    fn from_key(key: &KeyPair, host: &str) -> Result<(Self, String), RelayError> {
        let params = CertificateParams::new(vec![host.to_string()]).map_err(id_err)?;
        let cert = params.self_signed(key).map_err(id_err)?;
        let id = Self {
            cert: cert.der().clone(),
            key_der: Zeroizing::new(key.serialize_der()),
            pin: Pin::from_spki_der(&key.subject_public_key_info()),
        };
        Ok((id, cert.pem()))
    }

    /// The pin clients check: SHA-256 of the certificate's SubjectPublicKeyInfo.
    pub fn pin(&self) -> Pin {
        self.pin
    }

    /// The rustls configuration for this identity: TLS 1.3 only, no resumption.
    pub fn tls_config(&self) -> Result<Arc<ServerConfig>, RelayError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.to_vec()));
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)?;
        config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
        config.send_tls13_tickets = 0;
        config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
        Ok(Arc::new(config))
    }
}

/// Writes a file readable only by its owner, atomically (temporary file, then rename).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), RelayError> {
    let tmp = path.with_extension("tmp");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    fs::rename(&tmp, path)?;
    Ok(())
}

/// Creates the data directory, readable only by its owner.
fn create_private_dir(dir: &Path) -> Result<(), RelayError> {
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn id_err(e: rcgen::Error) -> RelayError {
    RelayError::Identity(e.to_string())
}

fn file_err(name: &str, e: &std::io::Error) -> RelayError {
    RelayError::Identity(format!("cannot read {name}: {e}"))
}
