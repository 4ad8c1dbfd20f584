//! What can go wrong talking to Neutron or Keystone.

/// What went wrong talking to Neutron or Keystone; no secret in any message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NeutronError {
    /// Connection refused, timeout, 5xx from a proxy...: retry with backoff.
    #[error("{0}")]
    Unreachable(String),
    /// 401/403 from Keystone or Neutron.
    #[error("{0}")]
    Auth(String),
    /// Neutron refused the call (400, 409...); `message` is Neutron's own.
    #[error("Neutron answered {status} to {what}: {message}")]
    Api {
        status: u16,
        what: String,
        message: String,
    },
    /// An answer that could not be understood.
    #[error("{0}")]
    Protocol(String),
}

impl NeutronError {
    /// Condition reason.
    pub fn reason(&self) -> crate::api::Reason {
        use crate::api::Reason;
        match self {
            Self::Unreachable(_) => Reason::NeutronUnreachable,
            Self::Auth(_) => Reason::NeutronAuthFailed,
            Self::Api { .. } => Reason::NeutronRejected,
            Self::Protocol(_) => Reason::NeutronError,
        }
    }

    /// Whether retrying without a change can help.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable(_) | Self::Auth(_) | Self::Protocol(_) => true,
            Self::Api { status, .. } => *status >= 500,
        }
    }
}
