//! [`Problem`]: why one step could not do its part, as status will say it. Failures of SDN,
//! Neutron and Secret reads become a `Problem` and end up in a condition; only Kubernetes API
//! errors abort a reconcile (`super::error::Error`).
use crate::api::Reason;
use crate::neutron::NeutronError;
use crate::sdn::SdnError;

/// A reason, the message for people, and whether only a change can clear it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub reason: Reason,
    pub message: String,
    /// `Stalled=True` (wait for a change) rather than `Reconciling=True` (retry with backoff).
    pub stalled: bool,
}

impl Problem {
    /// A problem whose stalling follows its reason ([`Reason::stalls`]).
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
            stalled: reason.stalls(),
        }
    }

    /// The same problem, its message prefixed with `context: ` (a cell, a field).
    pub fn within(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl From<SdnError> for Problem {
    fn from(e: SdnError) -> Self {
        Self {
            reason: e.category(),
            message: e.to_string(),
            stalled: !e.is_transient(),
        }
    }
}

impl From<NeutronError> for Problem {
    fn from(e: NeutronError) -> Self {
        Self {
            reason: e.reason(),
            message: e.to_string(),
            stalled: !e.is_transient(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdn_errors_keep_their_reason_and_whether_a_retry_helps() {
        let p = Problem::from(SdnError::Unreachable {
            endpoint: "http://127.0.0.1:1".into(),
            message: "refused".into(),
        });
        assert_eq!((p.reason, p.stalled), (Reason::SdnUnreachable, false));
        let p = Problem::from(SdnError::InvalidConfig("bad".into())).within("cell a");
        assert_eq!((p.reason, p.stalled), (Reason::InvalidSdnConfig, true));
        assert_eq!(p.message, "cell a: invalid SDN configuration: bad");
    }

    #[test]
    fn stalling_follows_the_reason_by_default() {
        assert!(Problem::new(Reason::PeerConflict, "x").stalled);
        assert!(!Problem::new(Reason::SessionNotEstablished, "x").stalled);
    }
}
