//! Errors from SDN backends, with a short category for metrics, events and condition reasons.
use rustls::CertificateError;
use thiserror::Error;

use crate::api::Reason;

#[derive(Clone, Debug, Error)]
pub enum SdnError {
    /// Connection refused, reset, DNS failure...
    #[error("cannot reach the SDN API at {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    #[error("the SDN API at {endpoint} did not answer within {seconds} s")]
    Timeout { endpoint: String, seconds: u64 },
    #[error("the SDN API at {endpoint} refused our credentials: {message}")]
    AuthFailed { endpoint: String, message: String },
    /// The TLS handshake failed: the server's certificate is not trusted (unknown CA, another
    /// host name, expired...) or the server does not speak TLS. Only a change helps (the CA in
    /// `spec.sdn.tls.caSecretRef`, the URL, or the server's certificate), so it is not retried fast.
    #[error("TLS with the SDN API at {endpoint} failed: {message}")]
    TlsFailed { endpoint: String, message: String },
    #[error("the SDN API at {endpoint} rejected {operation}: {message}")]
    Rejected {
        endpoint: String,
        operation: &'static str,
        message: String,
    },
    #[error("invalid SDN configuration: {0}")]
    InvalidConfig(String),
    #[error("not supported by this SDN backend: {0}")]
    Unsupported(String),
}

impl SdnError {
    /// A short, stable label for metrics and reasons.
    pub fn category(&self) -> Reason {
        match self {
            Self::Unreachable { .. } | Self::Timeout { .. } => Reason::SdnUnreachable,
            Self::AuthFailed { .. } => Reason::SdnAuthFailed,
            Self::TlsFailed { .. } => Reason::SdnTlsFailed,
            Self::Rejected { .. } => Reason::SdnRejected,
            Self::InvalidConfig(_) => Reason::InvalidSdnConfig,
            Self::Unsupported(_) => Reason::Unsupported,
        }
    }

    /// Whether retrying later can help (an unreachable or slow API) or only a spec change can.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Timeout { .. } | Self::Rejected { .. }
        )
    }

    /// [`SdnError::TlsFailed`] when `err` (a transport error of any client: tonic, reqwest,
    /// hyper) was caused by the TLS handshake; `None` otherwise.
    pub fn tls_failure(endpoint: &str, err: &(dyn std::error::Error + 'static)) -> Option<Self> {
        find_rustls_error(err).map(|tls| Self::TlsFailed {
            endpoint: endpoint.to_owned(),
            message: describe_tls(tls),
        })
    }
}

/// The rustls error somewhere in `err`'s chain of causes. `std::io::Error` hides the error it
/// wraps from `source()` (it returns that error's own source), so it is opened by hand.
fn find_rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(inner) = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref())
            && let Some(tls) = find_rustls_error(inner)
        {
            return Some(tls);
        }
        next = e.source();
    }
    None
}

/// What failed, in words an operator can act on, followed by rustls' own text.
fn describe_tls(err: &rustls::Error) -> String {
    let (what, detail) = match err {
        rustls::Error::InvalidCertificate(cert) => {
            let what = match cert {
                CertificateError::UnknownIssuer => {
                    "the server's certificate is not signed by a trusted CA (spec.sdn.tls.caSecretRef, \
                     or the system roots without it)"
                }
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    "the server's certificate is not valid for the host name of spec.sdn.url"
                }
                CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                    "the server's certificate has expired"
                }
                CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                    "the server's certificate is not valid yet"
                }
                CertificateError::BadSignature => {
                    "the server's certificate is not signed by a trusted CA (its signature does not \
                     verify with the trusted CA of that name)"
                }
                CertificateError::Revoked => "the server's certificate is revoked",
                _ => "the server's certificate was refused",
            };
            (what, cert.to_string())
        }
        rustls::Error::AlertReceived(alert) => {
            ("the server ended the TLS handshake", format!("alert {alert:?}"))
        }
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => (
            "the TLS handshake failed (does the server speak TLS on this port?)",
            err.to_string(),
        ),
        other => ("the TLS handshake failed", other.to_string()),
    };
    format!("{what}: {detail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrapped(tls: rustls::Error) -> Box<dyn std::error::Error + Send + Sync> {
        // How hyper and tokio-rustls hand it on: an io::Error inside the client's own errors.
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        #[derive(Debug, Error)]
        #[error("client error (Connect)")]
        struct Outer(#[source] std::io::Error);
        Box::new(Outer(io))
    }

    #[test]
    fn tls_failures_say_what_failed_and_are_not_transient() {
        let cases = [
            (CertificateError::UnknownIssuer, "not signed by a trusted CA"),
            (CertificateError::NotValidForName, "not valid for the host name"),
            (CertificateError::Expired, "has expired"),
        ];
        for (cert, says) in cases {
            let err = wrapped(rustls::Error::InvalidCertificate(cert));
            let e = SdnError::tls_failure("https://h:1", err.as_ref()).expect("a TLS failure");
            assert_eq!(e.category(), Reason::SdnTlsFailed);
            assert!(!e.is_transient());
            let text = e.to_string();
            assert!(text.contains("https://h:1") && text.contains(says), "{text}");
        }
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(SdnError::tls_failure("https://h:1", &refused).is_none());
    }
}
