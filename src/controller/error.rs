//! Errors that end a reconcile: Kubernetes API failures, and a deletion that a speaker blocks
//! (kube's finalizer helper keeps the finalizer only when cleanup fails). Everything else an SDN
//! controller, Neutron or a missing reference causes is a `Problem` that status reports instead.
use thiserror::Error;

use super::problem::Problem;
use crate::api::Reason;

#[derive(Debug, Error)]
pub enum Error {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),

    #[error("finalizer handling failed: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),

    #[error("object has no {0}")]
    MissingField(&'static str),

    /// Deletion waits for a speaker; status already says why.
    #[error("deletion blocked: {0}")]
    CleanupBlocked(Problem),
}

impl Error {
    /// Short, stable category for metrics labels and event reasons.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Kube(_) => Reason::KubeApiError,
            Self::Finalizer(_) => Reason::FinalizerError,
            Self::MissingField(_) => Reason::InvalidObject,
            Self::CleanupBlocked(p) => p.reason,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
