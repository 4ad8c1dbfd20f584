//! gRPC failures as [`SdnError`]s.
use std::error::Error as _;

use tonic::{Code, Status};

use crate::sdn::SdnError;

/// A gRPC failure as an [`SdnError`] naming the endpoint.
///
/// A status with a source error comes from our side of the connection (connect, TLS, a broken
/// HTTP/2 stream): the speaker is unreachable. A status without one is the speaker's answer.
pub fn status_to_error(endpoint: &str, operation: &'static str, status: &Status) -> SdnError {
    let endpoint = endpoint.to_owned();
    match status.code() {
        Code::Unauthenticated | Code::PermissionDenied => SdnError::AuthFailed {
            endpoint,
            message: theirs(status),
        },
        Code::Unavailable => SdnError::Unreachable {
            endpoint,
            message: describe(status),
        },
        _ if status.source().is_some() => SdnError::Unreachable {
            endpoint,
            message: describe(status),
        },
        _ => SdnError::Rejected {
            endpoint,
            operation,
            message: theirs(status),
        },
    }
}

/// The server's status message as a sanitised excerpt: it goes into status, and the server is
/// whatever `spec.sdn.url` points at.
fn theirs(status: &Status) -> String {
    crate::body::excerpt(status.message(), crate::body::MAX_EXCERPT)
}

/// The status message followed by its chain of causes ("tcp connect error: Connection refused").
fn describe(status: &Status) -> String {
    let mut message = theirs(status);
    let mut source = status.source();
    while let Some(err) = source {
        let text = err.to_string();
        // tonic's own wrapper says nothing the rest of the chain does not.
        if text != "transport error" && !message.contains(&text) {
            message = if message.is_empty() {
                text
            } else {
                format!("{message}: {text}")
            };
        }
        source = err.source();
    }
    if message.is_empty() {
        format!("{:?}", status.code())
    } else {
        message
    }
}
