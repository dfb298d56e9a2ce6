//! HTTPS with the user's own certificate (`server.tls_cert`, `server.tls_key`: PEM files)
//! through rustls (with the `ring` provider), and the command line's client for it, which
//! trusts exactly that certificate (it reads the same files as the server).

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::{Error, Result};

/// The *ring* provider: TLS 1.2 and 1.3 with the usual suites. rustls 0.23.48 marks it
/// deprecated for lacking post-quantum key exchange; the alternative (aws-lc-rs) adds a
/// large C build to every fresh machine, which an office server's HTTPS does not need.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(cert: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<std::result::Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::Config(format!(
                "server.tls_cert {}: not a PEM certificate file ({e})",
                cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "server.tls_cert {} holds no certificate",
            cert.display()
        )));
    }
    Ok(certs)
}

/// The rustls configuration of a server with the certificate chain in `cert` and the
/// private key in `key`.
pub fn server_config(cert: &Path, key: &Path) -> Result<rustls::ServerConfig> {
    let certs = certificates(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        Error::Config(format!(
            "server.tls_key {}: not a PEM private key ({e})",
            key.display()
        ))
    })?;
    rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Config(format!("server.tls_cert and server.tls_key: {e}")))
}

/// A client that accepts exactly the server certificate in `cert` (whatever name it was
/// made for: the command line reaches the server at a loopback address).
pub fn pinned_client(cert: &Path) -> Result<rustls::ClientConfig> {
    let expected = certificates(cert)?.swap_remove(0);
    let verifier = Arc::new(Pinned {
        expected,
        provider: provider(),
    });
    Ok(rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

#[derive(Debug)]
struct Pinned {
    expected: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.expected.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "the server's certificate is not server.tls_cert".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
