//! Unit tests of the pure parts: token renewal, URLs, error messages and answers.
use k8s_openapi::jiff::Timestamp;
use reqwest::StatusCode;

use super::NeutronError;
use super::http::{answer, enc, error_message, neutron_base};
use super::keystone::{keystone_tokens_url, needs_renewal};

#[test]
fn renewal_happens_before_expiry() {
    let now = Timestamp::from_second(1_000_000).unwrap();
    assert!(!needs_renewal(
        Timestamp::from_second(1_000_000 + 3600).unwrap(),
        now
    ));
    assert!(needs_renewal(
        Timestamp::from_second(1_000_000 + 299).unwrap(),
        now
    ));
    assert!(needs_renewal(Timestamp::from_second(999_000).unwrap(), now));
}

#[test]
fn urls_and_messages() {
    assert_eq!(neutron_base("http://n:9696/"), "http://n:9696/v2.0");
    assert_eq!(neutron_base("http://n:9696/v2.0"), "http://n:9696/v2.0");
    assert_eq!(
        keystone_tokens_url("http://k:5000/v3/"),
        "http://k:5000/v3/auth/tokens"
    );
    assert_eq!(
        keystone_tokens_url("http://k:5000"),
        "http://k:5000/v3/auth/tokens"
    );
    assert_eq!(
        error_message(r#"{"NeutronError": {"type": "X", "message": "in use", "detail": ""}}"#),
        "in use"
    );
    assert_eq!(
        error_message(r#"{"error": {"code": 401, "message": "nope"}}"#),
        "nope"
    );
    assert_eq!(enc("cellnet.io/cell=c1"), "cellnet.io%2Fcell%3Dc1");
}

/// Whatever the server sends, status gets at most a short excerpt of it, on one line.
#[test]
fn foreign_bodies_are_excerpted() {
    let page = format!("<html>\n{}</html>", "x".repeat(10_000));
    let message = error_message(&page);
    assert_eq!(message.chars().count(), crate::body::MAX_EXCERPT);
    assert!(
        message.starts_with("<html> xxx") && message.ends_with('…'),
        "{message}"
    );
    let long = format!(r#"{{"error": {{"message": "{}"}}}}"#, "y".repeat(5_000));
    assert_eq!(error_message(&long).chars().count(), crate::body::MAX_EXCERPT);
}

#[test]
fn answers() {
    let base = "http://n:9696/v2.0";
    let what = || "GET /networks/x".to_string();
    assert_eq!(answer(StatusCode::NOT_FOUND, "{}", base, what()), Ok(None));
    assert_eq!(answer(StatusCode::NO_CONTENT, "", base, what()), Ok(None));
    assert_eq!(answer(StatusCode::OK, "null", base, what()), Ok(None));
    assert_eq!(
        answer(StatusCode::OK, r#"{"network": {"id": "n1"}}"#, base, what()),
        Ok(Some(serde_json::json!({"network": {"id": "n1"}})))
    );
    assert!(matches!(
        answer(StatusCode::OK, "<html>", base, what()),
        Err(NeutronError::Protocol(_))
    ));
    assert!(matches!(
        answer(StatusCode::UNAUTHORIZED, "", base, what()),
        Err(NeutronError::Auth(_))
    ));
    assert!(matches!(
        answer(StatusCode::SERVICE_UNAVAILABLE, "", base, what()),
        Err(NeutronError::Unreachable(_))
    ));
    let conflict = r#"{"NeutronError": {"type": "X", "message": "in use", "detail": ""}}"#;
    assert_eq!(
        answer(StatusCode::CONFLICT, conflict, base, what()),
        Err(NeutronError::Api {
            status: 409,
            what: what(),
            message: "in use".into()
        })
    );
    // 500 is Neutron's own failure, not a proxy's: an API error (transient, see is_transient).
    let failed = answer(StatusCode::INTERNAL_SERVER_ERROR, "boom", base, what()).unwrap_err();
    assert!(matches!(failed, NeutronError::Api { status: 500, .. }) && failed.is_transient());
}
