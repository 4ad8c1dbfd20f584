//! One gRPC channel per GoBGP speaker, shared by every object that configures it.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};

use super::GoBgp;
use crate::sdn::{BackendKind, SdnError, SdnTarget};

/// How long one GoBGP call may take unless configured otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What makes two targets share a channel: the URL and the TLS settings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ChannelKey {
    url: String,
    ca_pem: Option<String>,
    insecure_skip_verify: bool,
}

impl ChannelKey {
    fn of(target: &SdnTarget) -> Result<Self, SdnError> {
        if target.kind != BackendKind::GoBgp {
            return Err(SdnError::InvalidConfig(format!(
                "{} is a {:?} endpoint, not a GoBGP one",
                target.url, target.kind
            )));
        }
        Ok(Self {
            url: normalized_url(&target.url),
            ca_pem: target.ca_pem.clone(),
            insecure_skip_verify: target.insecure_skip_verify,
        })
    }
}

/// Hands out [`GoBgp`] clients that share one lazily connected [`Channel`] per endpoint.
///
/// Cloning the pool is cheap and shares the channels. Channels connect on first use and
/// reconnect by themselves after a failure, so a speaker that was down needs nothing special.
#[derive(Clone)]
pub struct GoBgpPool {
    channels: Arc<Mutex<HashMap<ChannelKey, Channel>>>,
    timeout: Duration,
}

impl Default for GoBgpPool {
    fn default() -> Self {
        Self::new(DEFAULT_TIMEOUT)
    }
}

impl GoBgpPool {
    /// A pool whose clients give every call `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            channels: Arc::default(),
            timeout,
        }
    }

    /// A client for `target` (a GoBGP one), reusing the channel of its URL and TLS settings.
    /// Does no I/O; must run inside a Tokio runtime.
    pub fn backend(&self, target: &SdnTarget) -> Result<GoBgp, SdnError> {
        let key = ChannelKey::of(target)?;
        let mut channels = self
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let channel = match channels.get(&key) {
            Some(channel) => channel.clone(),
            None => {
                let channel = new_channel(target, &key, self.timeout)?;
                channels.insert(key.clone(), channel.clone());
                channel
            }
        };
        Ok(GoBgp::from_channel(channel, key.url, self.timeout))
    }

    /// Drops the channel of a target nobody uses any more (clients still holding it keep it).
    pub fn forget(&self, target: &SdnTarget) {
        if let Ok(key) = ChannelKey::of(target) {
            self.channels
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .remove(&key);
        }
    }

    /// How many endpoints have a channel.
    pub fn len(&self) -> usize {
        self.channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }

    /// Whether no endpoint has a channel yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The error of a failed call on a channel: [`SdnError::TlsFailed`] when the TLS handshake
/// failed (the cause is in the status' source chain), otherwise the API's own mapping.
pub(super) fn status_to_error(endpoint: &str, operation: &'static str, status: &tonic::Status) -> SdnError {
    use std::error::Error as _;
    status
        .source()
        .and_then(|cause| SdnError::tls_failure(endpoint, cause))
        .unwrap_or_else(|| super::convert::status_to_error(endpoint, operation, status))
}

/// The URL as errors and logs show it.
pub(super) fn normalized_url(url: &str) -> String {
    url.trim().trim_end_matches('/').to_owned()
}

/// A lazily connecting channel for `target`; validates the URL and TLS settings.
pub(super) fn channel(target: &SdnTarget, timeout: Duration) -> Result<Channel, SdnError> {
    new_channel(target, &ChannelKey::of(target)?, timeout)
}

fn new_channel(target: &SdnTarget, endpoint: &ChannelKey, timeout: Duration) -> Result<Channel, SdnError> {
    let url = endpoint.url.clone();
    let invalid = |why: String| SdnError::InvalidConfig(format!("GoBGP endpoint {url}: {why}"));
    if target.credentials.is_some() {
        tracing::warn!(endpoint = %url, "the GoBGP API has no authentication; credentials are ignored");
    }
    let uri: tonic::codegen::http::Uri = url.parse().map_err(|e| invalid(format!("not a URL: {e}")))?;
    if uri.host().is_none() || uri.port().is_none() {
        return Err(invalid("expected http://host:port or https://host:port".into()));
    }
    let tls = match uri.scheme_str() {
        Some("http") => {
            if endpoint.ca_pem.is_some() || endpoint.insecure_skip_verify {
                return Err(invalid("TLS settings need an https:// URL".into()));
            }
            false
        }
        Some("https") => true,
        _ => return Err(invalid("the scheme must be http or https".into())),
    };

    let mut builder = Endpoint::from_shared(url.clone())
        .map_err(|e| invalid(e.to_string()))?
        .connect_timeout(timeout)
        .tcp_nodelay(true)
        // Notices a vanished host under a long-lived watch stream.
        .tcp_keepalive(Some(Duration::from_secs(60)))
        .tcp_keepalive_interval(Some(Duration::from_secs(15)))
        .tcp_keepalive_retries(Some(4))
        // gRPC-Go servers send GOAWAY to clients that ping more often than every 5 minutes.
        .http2_keep_alive_interval(Duration::from_secs(330))
        .keep_alive_timeout(Duration::from_secs(20));
    if tls {
        let config = ClientTlsConfig::new().timeout(timeout);
        builder = if endpoint.insecure_skip_verify {
            if endpoint.ca_pem.is_some() {
                return Err(invalid(
                    "give either a CA certificate or insecure_skip_verify, not both".into(),
                ));
            }
            tracing::warn!(endpoint = %url, "TLS certificate verification is disabled for this GoBGP API");
            builder.tls_config_with_verifier(config, Arc::new(SkipServerVerification::new()))
        } else if let Some(pem) = &endpoint.ca_pem {
            let count = CertificateDer::pem_slice_iter(pem.as_bytes())
                .try_fold(0, |n, cert| cert.map(|_| n + 1))
                .map_err(|e| invalid(format!("the CA certificate is not valid PEM: {e}")))?;
            if count == 0 {
                return Err(invalid("the CA PEM holds no certificate".into()));
            }
            builder.tls_config(config.ca_certificate(Certificate::from_pem(pem)))
        } else {
            builder.tls_config(config.with_native_roots())
        }
        .map_err(|e| invalid(format!("TLS set-up failed: {e}")))?;
    }
    Ok(builder.connect_lazy())
}

/// Accepts any server certificate but still checks the handshake signatures, so the session
/// is at least bound to the key the server presented.
#[derive(Debug)]
struct SkipServerVerification(Arc<CryptoProvider>);

impl SkipServerVerification {
    fn new() -> Self {
        let provider = CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
        Self(provider)
    }
}

impl ServerCertVerifier for SkipServerVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdn::gobgp::target;

    fn err(target: SdnTarget) -> SdnError {
        channel(&target, DEFAULT_TIMEOUT).expect_err("should be refused")
    }

    #[tokio::test]
    async fn urls_are_checked() {
        assert!(matches!(err(target("ftp://h:1")), SdnError::InvalidConfig(_)));
        assert!(matches!(err(target("http://h")), SdnError::InvalidConfig(_)));
        assert!(matches!(err(target("not a url")), SdnError::InvalidConfig(_)));
        let e = err(SdnTarget {
            ca_pem: Some("x".into()),
            ..target("http://h:1")
        });
        assert!(e.to_string().contains("http://h:1"), "{e}");
        let e = err(SdnTarget {
            ca_pem: Some("garbage".into()),
            ..target("https://h:1")
        });
        assert!(e.to_string().contains("no certificate"), "{e}");
        let e = err(SdnTarget {
            kind: BackendKind::OpenDaylight,
            ..target("http://h:1")
        });
        assert!(matches!(e, SdnError::InvalidConfig(_)), "{e}");
        assert!(channel(&target("http://127.0.0.1:50051/"), DEFAULT_TIMEOUT).is_ok());
        let skip = SdnTarget {
            insecure_skip_verify: true,
            ..target("https://h:1")
        };
        assert!(channel(&skip, DEFAULT_TIMEOUT).is_ok());
    }

    #[tokio::test]
    async fn one_channel_per_endpoint() {
        let pool = GoBgpPool::default();
        let a = target("http://127.0.0.1:1");
        let b = target("http://127.0.0.1:2/");
        for _ in 0..3 {
            pool.backend(&a).unwrap();
        }
        pool.backend(&b).unwrap();
        assert_eq!(pool.len(), 2);
        pool.forget(&a);
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.backend(&b).unwrap().endpoint(), "http://127.0.0.1:2");
        assert_eq!(pool.len(), 1);
    }
}
