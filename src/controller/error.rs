//! Errors that abort a reconcile: only Kubernetes API failures. Everything an SDN controller,
//! Neutron or a missing reference causes is a `Problem` that status reports instead.
use thiserror::Error;

use crate::api::Reason;

#[derive(Debug, Error)]
pub enum Error {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),

    #[error("finalizer handling failed: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),

    #[error("object has no {0}")]
    MissingField(&'static str),
}

impl Error {
    /// Short, stable category for metrics labels and event reasons.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Kube(_) => Reason::KubeApiError,
            Self::Finalizer(_) => Reason::FinalizerError,
            Self::MissingField(_) => Reason::InvalidObject,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
