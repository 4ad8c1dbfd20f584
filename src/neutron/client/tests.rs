//! Unit tests of the pure parts: token renewal, URLs, error messages and answers.
use k8s_openapi::jiff::Timestamp;
use reqwest::StatusCode;

use super::NeutronError;
use super::http::{answer, enc, error_message, neutron_base};
use super::keystone::{keystone_tokens_url, needs_renewal};

#[test]
fn renewal_happens_before_expiry() {
    let at = |s: i64| Timestamp::from_second(1_000_000 + s).unwrap();
    let issued = at(-3600);
    assert!(!needs_renewal(issued, at(3600), at(0)));
    assert!(needs_renewal(issued, at(299), at(0)));
    assert!(needs_renewal(issued, at(-1000), at(0)), "expired");
}

#[test]
fn a_short_lived_token_is_used_for_half_its_lifetime() {
    let at = |s: i64| Timestamp::from_second(1_000_000 + s).unwrap();
    // A 240 s token: kept until 120 s are left, not renewed before every call.
    assert!(!needs_renewal(at(0), at(240), at(100)));
    assert!(needs_renewal(at(0), at(240), at(121)));
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

/// Keystone and Neutron on loopback: Neutron answers every call with a redirect to a third
/// server, which records what reaches it.
#[tokio::test]
async fn a_redirect_never_carries_the_token_elsewhere() {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::http::{HeaderMap, StatusCode as Code, header};
    use axum::routing::{any, post};

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let elsewhere = serve(Router::new().fallback(any({
        let seen = seen.clone();
        move |headers: HeaderMap| async move {
            let token = headers
                .get("x-auth-token")
                .map(|v| v.to_str().unwrap_or("").to_string());
            seen.lock().unwrap().push(token.unwrap_or_default());
            "{}"
        }
    })))
    .await;
    let neutron = serve(Router::new().fallback(any(move || {
        let to = format!("{elsewhere}/v2.0/networks/x");
        async move { (Code::TEMPORARY_REDIRECT, [(header::LOCATION, to)], "") }
    })))
    .await;
    let keystone = serve(Router::new().route(
        "/v3/auth/tokens",
        post(|| async {
            let body = r#"{"token": {"expires_at": "2099-01-01T00:00:00Z"}}"#;
            (Code::CREATED, [("X-Subject-Token", "secret-token")], body)
        }),
    ))
    .await;
    let cloud = crate::neutron::clouds::Cloud {
        name: "test".into(),
        auth: crate::neutron::clouds::Auth::Password {
            auth_url: format!("{keystone}/v3"),
            user: crate::neutron::clouds::NameOrId::Id("u".into()),
            password: crate::neutron::Sensitive::new("p"),
            project: None,
        },
        region: None,
        interface: "public".into(),
        endpoint_override: Some(neutron),
    };
    let client = super::NeutronClient::new(cloud, std::time::Duration::from_secs(5)).unwrap();
    let answer = client.network("x").await;
    assert!(
        answer.is_err(),
        "a redirect is an error, not followed: {answer:?}"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "the redirect target was called: {:?}",
        seen.lock().unwrap()
    );
}
