//! TLS for relay links: TLS 1.3 only, post-quantum hybrid key exchange preferred, no
//! session resumption (a ticket would link this client's connections), and, when the
//! address has a pin, trust in that key alone.
//!
//! Certificate authorities are not consulted for a pinned relay: a state that makes a
//! domestic CA mis-issue cannot stand in for it. Names and dates are not checked either;
//! the pin says which key, and the handshake proves possession of it.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sotto_proto::Pin;
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

use super::LinkError;

/// The ALPN offered: ordinary HTTP/1.1, as a browser opening a WebSocket would.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Checks that the relay's certificate carries the pinned key.
#[derive(Debug)]
struct PinnedVerifier {
    pin: Pin,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let spki = spki_der(end_entity).ok_or(rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
        if Pin::from_spki_der(&spki) != self.pin {
            return Err(rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Only TLS 1.3 is offered, so a TLS 1.2 signature is never legitimate.
        Err(rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls13RequiredForQuic))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The DER SubjectPublicKeyInfo of a certificate.
fn spki_der(cert: &CertificateDer<'_>) -> Option<Vec<u8>> {
    let cert = Certificate::from_der(cert.as_ref()).ok()?;
    cert.tbs_certificate.subject_public_key_info.to_der().ok()
}

/// A configuration trusting only `pin`, offering `alpn` (empty: none), with the same
/// settings as a relay link otherwise (the load generator reaches other servers with it,
/// so every run pays the same client-side TLS costs).
pub fn pinned_config(pin: Pin, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let algorithms = algorithms(&provider);
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedVerifier { pin, algorithms }))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// The client configuration for a relay with this pin, or WebPKI roots without one.
pub fn client_config(pin: Option<Pin>) -> Result<Arc<ClientConfig>, LinkError> {
    if let Some(pin) = pin {
        return pinned_config(pin, &[ALPN_HTTP1]).map_err(|e| LinkError::Tls(e.to_string()));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| LinkError::Tls(e.to_string()))?;
    let roots = RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    let mut config = builder.with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = vec![ALPN_HTTP1.to_vec()];
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

fn algorithms(provider: &CryptoProvider) -> WebPkiSupportedAlgorithms {
    provider.signature_verification_algorithms
}
