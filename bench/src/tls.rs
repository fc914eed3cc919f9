//! TLS for the bench's clients: the same rustls settings as Sotto's own client (TLS 1.3
//! only, aws-lc-rs with the post-quantum hybrid preferred, no resumption), trusting one
//! pinned key. The same configuration reaches the relay, the echo server and mosquitto,
//! so the three runs pay the same client-side TLS costs.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, SignatureScheme};
use sotto_proto::Pin;
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

/// The ALPN the relay requires (an ordinary WebSocket upgrade over HTTP/1.1).
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// Accepts exactly the certificate whose SubjectPublicKeyInfo hashes to the pin.
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
        let spki = Certificate::from_der(end_entity.as_ref())
            .ok()
            .and_then(|c| c.tbs_certificate.subject_public_key_info.to_der().ok())
            .ok_or(rustls::Error::InvalidCertificate(CertificateError::BadEncoding))?;
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
        // Only TLS 1.3 is offered.
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

/// A client configuration trusting only `pin`, offering `alpn` (empty: none).
pub fn pinned_client(pin: Pin, alpn: &[&[u8]]) -> Result<Arc<ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedVerifier { pin, algorithms }))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|a| a.to_vec()).collect();
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}
