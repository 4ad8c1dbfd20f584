//! Errors from SDN backends, with a short category for metrics, events and condition reasons.
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SdnError {
    /// Connection refused, reset, DNS failure, TLS handshake failure...
    #[error("cannot reach the SDN API at {endpoint}: {message}")]
    Unreachable { endpoint: String, message: String },
    #[error("the SDN API at {endpoint} did not answer within {seconds} s")]
    Timeout { endpoint: String, seconds: u64 },
    #[error("the SDN API at {endpoint} refused our credentials: {message}")]
    AuthFailed { endpoint: String, message: String },
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
    pub fn category(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } | Self::Timeout { .. } => "SdnUnreachable",
            Self::AuthFailed { .. } => "SdnAuthFailed",
            Self::Rejected { .. } => "SdnRejected",
            Self::InvalidConfig(_) => "InvalidSdnConfig",
            Self::Unsupported(_) => "Unsupported",
        }
    }

    /// Whether retrying later can help (an unreachable or slow API) or only a spec change can.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Timeout { .. } | Self::Rejected { .. }
        )
    }
}
