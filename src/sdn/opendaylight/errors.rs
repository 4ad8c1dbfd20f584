//! From HTTP failures to [`SdnError`]: transport errors, status codes and RFC 8040 error bodies.
//!
//! RFC 8040 section 7.1 ("Error Response Message") defines the body a RESTCONF server sends
//! with a 4xx/5xx status: `{"ietf-restconf:errors": {"error": [{"error-type", "error-tag",
//! "error-message"?, "error-path"?, "error-info"?}]}}`. OpenDaylight's RFC 8040 northbound
//! (`/rests`) sends it for every failure it produces itself; a proxy or the AAA filter in front
//! of it may send something else, so the body is optional here.
//!
//! Credentials are never part of a message: requests carry them only in the `Authorization`
//! header, which neither reqwest's errors nor the server's error bodies repeat.
use reqwest::StatusCode;
use serde::Deserialize;

use crate::body::{MAX_EXCERPT, excerpt};
use crate::sdn::SdnError;

#[derive(Debug, Deserialize)]
struct ErrorsDocument {
    #[serde(rename = "ietf-restconf:errors", alias = "errors")]
    errors: Errors,
}

#[derive(Debug, Deserialize)]
struct Errors {
    #[serde(default)]
    error: Vec<RestconfError>,
}

/// One `error` entry of an RFC 8040 `ietf-restconf:errors` body.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub struct RestconfError {
    #[serde(default)]
    pub error_type: String,
    #[serde(default)]
    pub error_tag: String,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub error_path: Option<String>,
}

/// The `error` entries of an RFC 8040 error body (empty if the body is something else).
pub fn parse_errors(body: &[u8]) -> Vec<RestconfError> {
    serde_json::from_slice::<ErrorsDocument>(body)
        .map(|d| d.errors.error)
        .unwrap_or_default()
}

/// How many entries of an RFC 8040 body are named; the rest are counted.
const MAX_ERRORS: usize = 5;
/// Longest description, in characters: the status line, at most [`MAX_EXCERPT`] characters of
/// the server's own text, and the count of the errors left out. It ends up in a status
/// condition and in Events, whatever a server (or whatever the URL points at) sends.
pub const MAX_DESCRIPTION: usize = MAX_EXCERPT + 80;

/// One RFC 8040 error as "<error-tag>: <error-message> (at <error-path>)".
fn one_error(e: &RestconfError) -> String {
    let mut text = e.error_tag.clone();
    if let Some(message) = e.error_message.as_deref().filter(|t| !t.is_empty()) {
        text.push_str(": ");
        text.push_str(message);
    }
    if let Some(path) = e.error_path.as_deref().filter(|p| !p.is_empty()) {
        text.push_str(&format!(" (at {path})"));
    }
    text
}

/// "HTTP 409 Conflict: data-exists: <error-message>" from the status and the RFC 8040 body (the
/// body itself when it is something else). What comes from the server is one sanitised excerpt
/// of at most [`MAX_EXCERPT`] characters: a body with many or long errors used to give a message
/// as long as the body (fuzz/regressions/restconf_errors; the fuzz harness checks the bound),
/// and any server's text ended up in status.
pub fn describe(status: StatusCode, body: &[u8]) -> String {
    let errors = parse_errors(body);
    let theirs = match errors.is_empty() {
        true => String::from_utf8_lossy(body).into_owned(),
        false => errors
            .iter()
            .take(MAX_ERRORS)
            .map(one_error)
            .collect::<Vec<_>>()
            .join("; "),
    };
    let mut message = format!("HTTP {status}");
    let text = excerpt(&theirs, MAX_EXCERPT);
    if !text.is_empty() {
        message.push_str(": ");
        message.push_str(&text);
    }
    if errors.len() > MAX_ERRORS {
        message.push_str(&format!(" (and {} more errors)", errors.len() - MAX_ERRORS));
    }
    message
}

/// The error for a response with a failure status.
pub fn from_status(endpoint: &str, operation: &'static str, status: StatusCode, body: &[u8]) -> SdnError {
    let message = describe(status, body);
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => SdnError::AuthFailed {
            endpoint: endpoint.to_owned(),
            message,
        },
        // A proxy in front of the controller without a controller behind it.
        StatusCode::BAD_GATEWAY | StatusCode::SERVICE_UNAVAILABLE => SdnError::Unreachable {
            endpoint: endpoint.to_owned(),
            message,
        },
        StatusCode::GATEWAY_TIMEOUT => SdnError::Timeout {
            endpoint: endpoint.to_owned(),
            seconds: 0,
        },
        _ => SdnError::Rejected {
            endpoint: endpoint.to_owned(),
            operation,
            message,
        },
    }
}

/// The error for a request that got no response (connect, TLS, timeout, broken connection).
pub fn from_transport(endpoint: &str, timeout: std::time::Duration, err: &reqwest::Error) -> SdnError {
    if err.is_timeout() {
        return SdnError::Timeout {
            endpoint: endpoint.to_owned(),
            seconds: timeout.as_secs_f64().ceil() as u64,
        };
    }
    SdnError::Unreachable {
        endpoint: endpoint.to_owned(),
        message: chain(err),
    }
}

/// The error's causes, outermost first, without repeats ("client error (Connect): tcp connect
/// error: Connection refused (os error 111)").
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = err.source();
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    if parts.is_empty() {
        parts.push(err.to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc8040_error_body_becomes_the_message() {
        let body = br#"{"ietf-restconf:errors":{"error":[{"error-type":"protocol","error-tag":"data-exists",
            "error-message":"Data already exists","error-path":"/neighbor"}]}}"#;
        let err = from_status("https://odl:8443", "create neighbor", StatusCode::CONFLICT, body);
        let text = err.to_string();
        assert!(matches!(err, SdnError::Rejected { .. }), "{err:?}");
        assert!(text.contains("https://odl:8443"), "{text}");
        assert!(text.contains("data-exists: Data already exists"), "{text}");
    }

    #[test]
    fn auth_statuses_are_auth_failures() {
        for status in [StatusCode::UNAUTHORIZED, StatusCode::FORBIDDEN] {
            let err = from_status("http://odl", "read", status, b"");
            assert_eq!(err.category(), crate::api::Reason::SdnAuthFailed);
            assert!(!err.is_transient());
        }
    }

    #[test]
    fn other_bodies_are_excerpted() {
        let msg = describe(StatusCode::INTERNAL_SERVER_ERROR, b"<html>oops</html>");
        assert_eq!(msg, "HTTP 500 Internal Server Error: <html>oops</html>");
    }

    #[test]
    fn descriptions_are_bounded() {
        let long = "x".repeat(10_000);
        let one = format!(
            r#"{{"errors":{{"error":[{{"error-tag":"{long}","error-message":"{long}","error-path":"{long}"}}]}}}}"#
        );
        let msg = describe(StatusCode::CONFLICT, one.as_bytes());
        assert_eq!(
            msg.chars().count(),
            "HTTP 409 Conflict: ".len() + MAX_EXCERPT,
            "{msg}"
        );
        assert!(msg.starts_with("HTTP 409 Conflict: xxx"), "{msg}");
        let entry = r#"{"error-tag":"operation-failed","error-message":"no"}"#;
        let many = format!(r#"{{"errors":{{"error":[{}]}}}}"#, vec![entry; 1000].join(","));
        let msg = describe(StatusCode::CONFLICT, many.as_bytes());
        assert!(msg.ends_with("(and 995 more errors)"), "{msg}");
        assert!(msg.chars().count() <= MAX_DESCRIPTION, "{msg}");
        let msg = describe(StatusCode::BAD_GATEWAY, format!("{long}\n").as_bytes());
        assert_eq!(msg.chars().count(), "HTTP 502 Bad Gateway: ".len() + MAX_EXCERPT);
        assert!(msg.ends_with('…'));
        let msg = describe(StatusCode::BAD_GATEWAY, b"line one\nline two");
        assert_eq!(msg, "HTTP 502 Bad Gateway: line one line two");
    }
}
