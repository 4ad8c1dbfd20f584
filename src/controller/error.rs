//! Errors of the reconcilers. Each has a short reason used for conditions, events and metrics.
use thiserror::Error;

use crate::api::Reason;
use crate::sdn::SdnError;

#[derive(Debug, Error)]
pub enum Error {
    #[error("Kubernetes API call failed: {0}")]
    Kube(#[from] kube::Error),

    #[error("finalizer handling failed: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),

    /// An SDN call failed; `cell` names the cell whose speaker it was.
    #[error("cell {cell}: {source}")]
    Sdn {
        cell: String,
        #[source]
        source: SdnError,
    },

    #[error("object has no {0}")]
    MissingField(&'static str),
}

impl Error {
    /// Short, stable category for metrics labels and event reasons.
    pub fn reason(&self) -> Reason {
        match self {
            Self::Kube(_) => Reason::KubeApiError,
            Self::Finalizer(_) => Reason::FinalizerError,
            Self::Sdn { source, .. } => source.category(),
            Self::MissingField(_) => Reason::InvalidObject,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
