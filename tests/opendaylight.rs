//! The OpenDaylight backend against the RESTCONF test server (no Kubernetes): what it sends,
//! when it writes, and how it maps what the server answers.
#[path = "support/odl_server.rs"]
mod odl_server;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use cellnet::sdn::opendaylight::{self, OpenDaylight};
use cellnet::sdn::{
    AddressFamily, OpenDaylightTarget, Password, PeerConfig, PeerOutcome, RemoveOutcome, ResetOutcome,
    SdnBackend, SdnError, SessionState, SpeakerConfig, SpeakerOutcome,
};
use odl_server::{OdlConfig, OdlServer, YANG_JSON};
use serde_json::json;

const LOCAL_AS: u32 = 65020;

fn server() -> OdlServer {
    OdlServer::start(OdlConfig::new(LOCAL_AS, "192.0.2.20"))
}

fn backend(server: &OdlServer) -> OpenDaylight {
    cellnet::tls::install_crypto_provider();
    OpenDaylight::connect(
        &opendaylight::target(server.url(), "admin", "admin"),
        Duration::from_secs(3),
    )
    .expect("client")
}

fn speaker() -> SpeakerConfig {
    SpeakerConfig {
        asn: LOCAL_AS,
        router_id: "192.0.2.20".parse().unwrap(),
        listen_address: "192.0.2.20".parse().unwrap(),
        listen_port: 1790,
    }
}

fn peer(neighbor: &str) -> PeerConfig {
    let local = "192.0.2.20".parse().unwrap();
    PeerConfig {
        remote_port: 1790,
        hold_time: 9,
        keepalive_interval: 3,
        password: Some(Password::new("md5-secret")),
        owned_record: true,
        ..PeerConfig::new(neighbor.parse().unwrap(), 65011, local, "cellnet:ns/a-b")
    }
}

fn writes(server: &OdlServer) -> Vec<String> {
    server
        .requests()
        .iter()
        .filter(|r| r.method != "GET")
        .map(|r| r.short())
        .collect()
}

#[tokio::test]
async fn creates_the_documented_neighbour_then_leaves_it_alone() {
    let server = server();
    let odl = backend(&server);
    assert_eq!(
        odl.ensure_speaker(&speaker()).await.unwrap(),
        SpeakerOutcome::Unchanged
    );
    let desired = peer("192.0.2.11");
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Created
    );

    let requests = server.requests();
    let post = requests.iter().find(|r| r.method == "POST").expect("a POST");
    assert_eq!(post.path, format!("{}/neighbors", server.bgp_root()));
    assert!(
        post.path.starts_with(
            "/rests/data/openconfig-network-instance:network-instances/network-instance=global-bgp\
             /openconfig-network-instance:protocols/protocol=openconfig-policy-types:BGP,bgp-example\
             /bgp-openconfig-extensions:bgp/"
        ),
        "{}",
        post.path
    );
    assert_eq!(post.content_type.as_deref(), Some(YANG_JSON));
    assert_eq!(post.accept.as_deref(), Some(YANG_JSON));
    assert_eq!(post.status, 201);
    assert_eq!(
        post.body.clone().unwrap(),
        json!({"neighbor": [{
            "neighbor-address": "192.0.2.11",
            "config": {"peer-type": "EXTERNAL", "peer-as": 65011, "auth-password": "md5-secret"},
            "timers": {"config": {"hold-time": 9}},
            "transport": {"config": {"remote-port": 1790, "passive-mode": false, "local-address": "192.0.2.20"}},
            "afi-safis": {"afi-safi": [{"afi-safi-name": "openconfig-bgp-types:IPV4-UNICAST"}]}
        }]})
    );
    assert!(
        requests
            .iter()
            .all(|r| r.authorized && r.path.starts_with("/rests/data/")),
        "basic auth on every request, RFC 8040 paths only"
    );
    let before = requests.len();

    // Nothing changed: reads only.
    for _ in 0..3 {
        assert_eq!(
            odl.ensure_peer(&desired).await.unwrap().outcome,
            PeerOutcome::Unchanged
        );
    }
    assert_eq!(writes(&server), ["POST /neighbors -> 201"]);
    assert_eq!(server.requests().len(), before + 3, "one GET per ensure_peer");

    let peers = odl.list_peers().await.unwrap();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0].neighbor, desired.neighbor);
    assert_eq!(peers[0].owner, None, "OpenDaylight cannot carry an owner");
    assert_eq!(peers[0].session, SessionState::Established);
}

#[tokio::test]
async fn updates_only_what_changed_with_one_put() {
    let server = server();
    let odl = backend(&server);
    odl.ensure_speaker(&speaker()).await.unwrap();
    let mut desired = peer("192.0.2.12");
    odl.ensure_peer(&desired).await.unwrap();
    server.clear_requests();

    desired.hold_time = 90;
    desired.families = vec![AddressFamily::Ipv4Unicast, AddressFamily::Ipv6Unicast];
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Updated {
            fields: vec!["hold_time", "families"]
        }
    );
    let requests = server.requests();
    let put = requests.iter().find(|r| r.method == "PUT").expect("a PUT");
    assert_eq!(
        put.path,
        format!("{}/neighbors/neighbor=192.0.2.12", server.bgp_root())
    );
    assert_eq!(put.status, 204);
    assert_eq!(put.content_type.as_deref(), Some(YANG_JSON));
    let stored = server.neighbor("192.0.2.12").unwrap();
    assert_eq!(stored["timers"]["config"]["hold-time"], 90);
    assert_eq!(
        stored["afi-safis"]["afi-safi"][1]["afi-safi-name"],
        "openconfig-bgp-types:IPV6-UNICAST"
    );

    // A new password is a change too; the value never shows in the outcome.
    desired.password = Some(Password::new("rotated"));
    let outcome = odl.ensure_peer(&desired).await.unwrap().outcome;
    assert_eq!(
        outcome,
        PeerOutcome::Updated {
            fields: vec!["password"]
        }
    );
    assert!(!format!("{outcome:?}").contains("rotated"));
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Unchanged
    );
    assert_eq!(
        writes(&server),
        [
            "PUT /neighbors/neighbor=192.0.2.12 -> 204",
            "PUT /neighbors/neighbor=192.0.2.12 -> 204"
        ]
    );
}

/// bgpcep docs/bgp, bgp-user-guide-bgp-peering.rst "BGP Peering": the neighbour's
/// `transport/config/passive-mode` ("true" to only accept the peer's connection).
#[tokio::test]
async fn passive_mode_is_stored_compared_and_changed_with_one_put() {
    let server = server();
    let odl = backend(&server);
    odl.ensure_speaker(&speaker()).await.unwrap();
    let mut desired = peer("192.0.2.16");
    desired.passive = true;
    odl.ensure_peer(&desired).await.unwrap();
    let stored = server.neighbor("192.0.2.16").unwrap();
    assert_eq!(stored["transport"]["config"]["passive-mode"], true);
    server.clear_requests();
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Unchanged
    );
    desired.passive = false;
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Updated {
            fields: vec!["passive_mode"]
        }
    );
    let stored = server.neighbor("192.0.2.16").unwrap();
    assert_eq!(stored["transport"]["config"]["passive-mode"], false);
    assert_eq!(writes(&server), ["PUT /neighbors/neighbor=192.0.2.16 -> 204"]);
}

/// bgpcep docs/bgp, bgp-user-guide-graceful-restart-capability.rst: the neighbour's
/// `graceful-restart/config/restart-time` and each family's `graceful-restart/config/enable`;
/// the families' operational `graceful-restart/state` (operational-state guide) tells whether
/// it was negotiated.
#[tokio::test]
async fn graceful_restart_is_stored_compared_changed_and_reported() {
    let server = server();
    let odl = backend(&server);
    odl.ensure_speaker(&speaker()).await.unwrap();
    let mut desired = peer("192.0.2.17");
    desired.graceful_restart = Some(120);
    odl.ensure_peer(&desired).await.unwrap();
    let stored = server.neighbor("192.0.2.17").unwrap();
    assert_eq!(
        stored["graceful-restart"],
        json!({"config": {"restart-time": 120}})
    );
    assert_eq!(
        stored["afi-safis"]["afi-safi"][0]["graceful-restart"],
        json!({"config": {"enable": true}})
    );
    // Negotiated: the test server's peer sent the capability too (by default).
    let seen = odl
        .observe_peer("192.0.2.17".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.graceful_restart, Some(true));
    server.set_peer_graceful_restart("192.0.2.17", false);
    let seen = odl
        .observe_peer("192.0.2.17".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.graceful_restart, Some(false));

    server.clear_requests();
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Unchanged
    );
    desired.graceful_restart = Some(300);
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Updated {
            fields: vec!["graceful_restart"]
        }
    );
    desired.graceful_restart = None;
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Updated {
            fields: vec!["graceful_restart"]
        }
    );
    let stored = server.neighbor("192.0.2.17").unwrap();
    assert!(stored.get("graceful-restart").is_none(), "{stored}");
    assert_eq!(
        writes(&server),
        [
            "PUT /neighbors/neighbor=192.0.2.17 -> 204",
            "PUT /neighbors/neighbor=192.0.2.17 -> 204"
        ]
    );
}

#[tokio::test]
async fn deletes_with_204_and_a_missing_neighbour_is_absent() {
    let server = server();
    let odl = backend(&server);
    odl.ensure_speaker(&speaker()).await.unwrap();
    let desired = peer("192.0.2.13");
    odl.ensure_peer(&desired).await.unwrap();
    assert_eq!(
        odl.remove_peer(desired.neighbor, &desired.owner).await.unwrap(),
        RemoveOutcome::Removed
    );
    assert!(server.neighbor("192.0.2.13").is_none());
    assert_eq!(
        odl.remove_peer(desired.neighbor, &desired.owner).await.unwrap(),
        RemoveOutcome::Absent
    );
    assert_eq!(
        writes(&server),
        [
            "POST /neighbors -> 201",
            "DELETE /neighbors/neighbor=192.0.2.13 -> 204",
            "DELETE /neighbors/neighbor=192.0.2.13 -> 404"
        ]
    );
    assert_eq!(session(&odl, desired.neighbor).await, SessionState::Unknown);
    assert!(
        odl.list_peers().await.unwrap().is_empty(),
        "404 on the list is an empty list"
    );
}

#[tokio::test]
async fn a_neighbour_cellnet_did_not_record_is_never_touched() {
    let server = server();
    let odl = backend(&server);
    odl.ensure_speaker(&speaker()).await.unwrap();
    server.add_neighbor_by_hand("192.0.2.14", 64999);
    let before = server.neighbor("192.0.2.14").unwrap();
    let mut desired = peer("192.0.2.14");
    desired.owned_record = false;
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Conflict { owner: None }
    );
    assert_eq!(server.neighbor("192.0.2.14").unwrap(), before);
    assert!(writes(&server).is_empty(), "{:?}", writes(&server));
    let peers = odl.list_peers().await.unwrap();
    assert_eq!(peers[0].owner, None);
}

#[tokio::test]
async fn a_recorded_neighbour_removed_on_the_server_is_created_again() {
    let server = server();
    let odl = backend(&server);
    odl.ensure_speaker(&speaker()).await.unwrap();
    let desired = peer("192.0.2.15");
    odl.ensure_peer(&desired).await.unwrap();
    let original = server.neighbor("192.0.2.15").unwrap();
    assert!(server.remove_neighbor_by_hand("192.0.2.15"));
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Created
    );
    assert_eq!(server.neighbor("192.0.2.15").unwrap(), original);
}

#[tokio::test]
async fn ipv6_neighbours_are_percent_encoded_keys() {
    let server = server();
    let odl = backend(&server);
    odl.ensure_speaker(&speaker()).await.unwrap();
    let mut desired = peer("2001:db8::11");
    desired.local_address = "2001:db8::20".parse().unwrap();
    desired.families = vec![AddressFamily::Ipv6Unicast];
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Created
    );
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Unchanged
    );
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r.path.ends_with("/neighbor=2001%3Adb8%3A%3A11")),
        "{:?}",
        server.requests().iter().map(|r| r.short()).collect::<Vec<_>>()
    );
    assert!(server.neighbor("2001:db8::11").is_some());
}

#[tokio::test]
async fn session_state_comes_with_the_neighbour_resource() {
    let server = server();
    let odl = backend(&server);
    odl.ensure_speaker(&speaker()).await.unwrap();
    let desired = peer("192.0.2.16");
    odl.ensure_peer(&desired).await.unwrap();
    assert_eq!(session(&odl, desired.neighbor).await, SessionState::Established);
    server.set_session_state("192.0.2.16", "ACTIVE");
    assert_eq!(session(&odl, desired.neighbor).await, SessionState::Active);
    assert_eq!(odl.list_peers().await.unwrap()[0].session, SessionState::Active);
    let last = server.requests().into_iter().rev().nth(1).unwrap();
    assert_eq!(
        (last.path.as_str(), last.query.as_deref()),
        (
            format!("{}/neighbors/neighbor=192.0.2.16", server.bgp_root()).as_str(),
            None
        ),
        "one neighbour read alone: RFC 8040's default content=all carries its operational state"
    );
}

#[tokio::test]
async fn speaker_conflicts_are_reported_not_fixed() {
    let server = server();
    let odl = backend(&server);
    let mut other = speaker();
    other.asn = 65099;
    let SpeakerOutcome::Conflict { reason } = odl.ensure_speaker(&other).await.unwrap() else {
        panic!("AS mismatch must conflict")
    };
    assert!(reason.contains("65020") && reason.contains("65099"), "{reason}");

    server.set_global(None);
    let SpeakerOutcome::Conflict { reason } = odl.ensure_speaker(&speaker()).await.unwrap() else {
        panic!("a missing instance must conflict")
    };
    assert!(reason.contains("configure it in OpenDaylight first"), "{reason}");
    assert!(
        writes(&server).is_empty(),
        "cellnet never creates the BGP instance"
    );
}

#[tokio::test]
async fn wrong_credentials_are_an_auth_failure_without_the_password() {
    let server = server();
    let odl = OpenDaylight::connect(
        &opendaylight::target(server.url(), "admin", "wrong-password-xyz"),
        Duration::from_secs(3),
    )
    .unwrap();
    let err = odl.list_peers().await.unwrap_err();
    assert!(matches!(err, SdnError::AuthFailed { .. }), "{err:?}");
    assert_eq!(err.category(), "SdnAuthFailed");
    assert!(!err.is_transient());
    let text = format!("{err} {err:?}");
    assert!(text.contains(&server.url()), "{text}");
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains("wrong-password-xyz"), "{text}");
    assert!(!format!("{odl:?}").contains("wrong-password-xyz"));
    let r = &server.requests()[0];
    assert!(r.had_credentials && !r.authorized && r.status == 401);
}

#[tokio::test]
async fn admin_down_and_multihop_are_refused_as_unsupported() {
    let server = server();
    let odl = backend(&server);
    let mut desired = peer("192.0.2.17");
    desired.admin_down = true;
    let err = odl.ensure_peer(&desired).await.unwrap_err();
    assert!(
        err.to_string().contains("no documented administrative shutdown"),
        "{err}"
    );
    desired.admin_down = false;
    desired.ebgp_multihop = Some(2);
    assert!(matches!(
        odl.ensure_peer(&desired).await.unwrap_err(),
        SdnError::Unsupported(_)
    ));
    assert!(server.requests().is_empty(), "refused before any request");
}

#[tokio::test]
async fn server_down_is_unreachable_and_recovers() {
    let mut server = server();
    let odl = backend(&server);
    odl.ensure_speaker(&speaker()).await.unwrap();
    server.stop();
    let err = odl.list_peers().await.unwrap_err();
    assert!(matches!(err, SdnError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.category(), "SdnUnreachable");
    assert!(err.is_transient());
    assert!(err.to_string().contains(&server.url()), "{err}");
    println!("server down: {err}");
    server.restart();
    assert!(odl.list_peers().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_silent_server_times_out_after_the_configured_timeout() {
    // Accepts connections and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let held = std::thread::spawn(move || {
        let conns: Vec<_> = listener.incoming().take(1).collect();
        std::thread::sleep(Duration::from_secs(3));
        drop(conns);
    });
    cellnet::tls::install_crypto_provider();
    let odl = OpenDaylight::connect(
        &opendaylight::target(&url, "admin", "admin"),
        Duration::from_millis(700),
    )
    .unwrap();
    let began = Instant::now();
    let err = odl.list_peers().await.unwrap_err();
    let took = began.elapsed();
    assert!(matches!(err, SdnError::Timeout { seconds: 1, .. }), "{err:?}");
    assert!(err.to_string().contains(&url), "{err}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    held.join().unwrap();
}

#[tokio::test]
async fn other_rib_and_instance_names_are_used_in_every_path() {
    let mut config = OdlConfig::new(LOCAL_AS, "192.0.2.20");
    config.rib_id = "cell-rib".into();
    config.network_instance = "cells".into();
    let server = OdlServer::start(config);
    let mut target = opendaylight::target(server.url(), "admin", "admin");
    target.open_daylight = Some(OpenDaylightTarget {
        rib_id: "cell-rib".into(),
        network_instance: "cells".into(),
        application_peer: None,
    });
    cellnet::tls::install_crypto_provider();
    let odl = OpenDaylight::connect(&target, Duration::from_secs(3)).unwrap();
    assert_eq!(
        odl.ensure_speaker(&speaker()).await.unwrap(),
        SpeakerOutcome::Unchanged
    );
    assert_eq!(
        odl.ensure_peer(&peer("192.0.2.18")).await.unwrap().outcome,
        PeerOutcome::Created
    );
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.path.contains("network-instance=cells/") && r.path.contains("BGP,cell-rib/"))
    );
    let _: IpAddr = "192.0.2.18".parse().unwrap();
}

/// A CA and a server certificate for 127.0.0.1 signed by it: (CA PEM, cert PEM, key PEM).
fn pki() -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params
        .subject_alt_names
        .push(SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = params.signed_by(&key, &issuer).unwrap();
    (ca_cert.pem(), cert.pem(), key.serialize_pem())
}

#[tokio::test]
async fn https_with_the_endpoints_ca_or_insecure_skip_verify() {
    cellnet::tls::install_crypto_provider();
    let (ca, cert, key) = pki();
    let server = OdlServer::start_tls(OdlConfig::new(LOCAL_AS, "192.0.2.20"), &cert, &key);
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let timeout = Duration::from_secs(3);

    // The CA from spec.sdn.tls.caSecretRef: verified, works.
    let mut target = opendaylight::target(server.url(), "admin", "admin");
    target.ca_pem = Some(ca.clone());
    let odl = OpenDaylight::connect(&target, timeout).unwrap();
    assert_eq!(
        odl.ensure_speaker(&speaker()).await.unwrap(),
        SpeakerOutcome::Unchanged
    );
    assert_eq!(
        odl.ensure_peer(&peer("192.0.2.19")).await.unwrap().outcome,
        PeerOutcome::Created
    );

    // Without it (system roots only) the certificate is not trusted: a TLS failure that says why.
    let untrusted =
        OpenDaylight::connect(&opendaylight::target(server.url(), "admin", "admin"), timeout).unwrap();
    let err = untrusted.list_peers().await.unwrap_err();
    assert!(matches!(err, SdnError::TlsFailed { .. }), "{err:?}");
    assert!(err.to_string().contains("not signed by a trusted CA"), "{err}");

    // Another CA: not trusted either.
    let (other_ca, _, _) = pki();
    let mut wrong = opendaylight::target(server.url(), "admin", "admin");
    wrong.ca_pem = Some(other_ca);
    let err = OpenDaylight::connect(&wrong, timeout)
        .unwrap()
        .list_peers()
        .await
        .unwrap_err();
    assert!(matches!(err, SdnError::TlsFailed { .. }), "{err:?}");
    assert_eq!(err.category(), "SdnTlsFailed");

    // insecureSkipVerify: accepted without verification.
    let mut insecure = opendaylight::target(server.url(), "admin", "admin");
    insecure.insecure_skip_verify = true;
    let peers = OpenDaylight::connect(&insecure, timeout)
        .unwrap()
        .list_peers()
        .await
        .unwrap();
    assert_eq!(peers.len(), 1);

    // A CA Secret without a certificate is a configuration error, found before any request.
    let mut broken = opendaylight::target(server.url(), "admin", "admin");
    broken.ca_pem = Some("not a PEM".into());
    assert!(matches!(
        OpenDaylight::connect(&broken, timeout).unwrap_err(),
        SdnError::InvalidConfig(_)
    ));
}

#[tokio::test]
async fn a_neighbour_created_by_someone_else_during_our_create_is_a_conflict() {
    let server = server();
    let odl = backend(&server);
    odl.ensure_speaker(&speaker()).await.unwrap();
    server.race_next_create("192.0.2.21", 64999);
    assert_eq!(
        odl.ensure_peer(&peer("192.0.2.21")).await.unwrap().outcome,
        PeerOutcome::Conflict { owner: None },
        "409 data-exists on the POST"
    );
    assert_eq!(server.neighbor("192.0.2.21").unwrap()["config"]["peer-as"], 64999);
    assert_eq!(writes(&server), ["POST /neighbors -> 409"]);
    let post = server.requests().pop().unwrap();
    assert_eq!(post.status, 409);

    // The controller's record claims it (recorded before the create): still never touched.
    let desired = peer("192.0.2.21");
    assert!(desired.owned_record);
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Conflict { owner: None }
    );
    assert_eq!(
        odl.remove_peer(desired.neighbor, &desired.owner).await.unwrap(),
        RemoveOutcome::NotOwned
    );
    assert_eq!(writes(&server), ["POST /neighbors -> 409"]);
    // Once it is gone, cellnet may create its own.
    server.remove_neighbor_by_hand("192.0.2.21");
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Created
    );
    assert_eq!(
        odl.ensure_peer(&desired).await.unwrap().outcome,
        PeerOutcome::Unchanged
    );
}

/// The peer's session state as the backend reports it (`Unknown` when there is no such peer).
async fn session(backend: &impl cellnet::sdn::SdnBackend, neighbor: std::net::IpAddr) -> SessionState {
    backend
        .observe_peer(neighbor)
        .await
        .unwrap()
        .map(|p| p.session)
        .unwrap_or_default()
}

#[tokio::test]
async fn reset_session_rpc_releases_only_recorded_neighbours_with_a_session() {
    let server = server();
    let odl = backend(&server);
    odl.ensure_speaker(&speaker()).await.unwrap();
    let desired = peer("192.0.2.14");
    odl.ensure_peer(&desired).await.unwrap();
    server.clear_requests();
    // Not in cellnet's ledger: never reset, nothing sent.
    assert_eq!(
        odl.reset_peer(desired.neighbor, &desired.owner, false)
            .await
            .unwrap(),
        ResetOutcome::NotOwned
    );
    assert!(server.requests().is_empty());
    assert_eq!(
        odl.reset_peer(desired.neighbor, &desired.owner, true)
            .await
            .unwrap(),
        ResetOutcome::Reset
    );
    assert_eq!(server.resets(), ["192.0.2.14"]);
    let sent = server.requests();
    assert_eq!(sent[0].path, "/rests/operations/bgp-peer-rpc:reset-session");
    assert_eq!(sent[0].content_type.as_deref(), Some(YANG_JSON));
    // The guide's input, peer-ref into the RIB keyed bgp://{address}.
    let peer_ref = r#"/rib:bgp-rib/rib:rib[rib:id="bgp-example"]/rib:peer[rib:peer-id="bgp://192.0.2.14"]"#;
    assert_eq!(
        sent[0].body,
        Some(json!({"bgp-peer-rpc:input": {"peer-ref": peer_ref}}))
    );
    // A neighbour without a session is no peer of the RIB: the RPC has nothing to release.
    server.set_session_state("192.0.2.14", "ACTIVE");
    assert_eq!(
        odl.reset_peer(desired.neighbor, &desired.owner, true)
            .await
            .unwrap(),
        ResetOutcome::Absent
    );
    assert_eq!(server.resets().len(), 1);
}

/// OpenDaylight behind something that answers 302 to another server on loopback: the redirect is
/// an error, and the other server, which records every request, never sees the basic-auth
/// credentials (or any request at all). reqwest follows redirects by default.
#[tokio::test]
async fn a_redirect_never_carries_the_credentials_elsewhere() {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::routing::any;

    async fn serve(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        url
    }
    let seen: Arc<Mutex<Vec<Option<String>>>> = Arc::default();
    let elsewhere = serve(Router::new().fallback(any({
        let seen = seen.clone();
        move |headers: HeaderMap| async move {
            let auth = headers.get(header::AUTHORIZATION);
            seen.lock()
                .unwrap()
                .push(auth.map(|v| v.to_str().unwrap_or("?").to_string()));
            "{}"
        }
    })))
    .await;
    let redirecting = serve(Router::new().fallback(any(move || {
        let to = format!("{elsewhere}/rests/data");
        async move { (StatusCode::FOUND, [(header::LOCATION, to)], "") }
    })))
    .await;
    let odl = OpenDaylight::connect(
        &opendaylight::target(redirecting, "admin", "secret-4711"),
        Duration::from_secs(3),
    )
    .unwrap();
    let listed = odl.list_peers().await;
    let created = odl.ensure_peer(&peer("192.0.2.31")).await;
    assert!(
        listed.is_err(),
        "a redirect is an error, not followed: {listed:?}"
    );
    assert!(created.is_err(), "{created:?}");
    assert!(
        seen.lock().unwrap().is_empty(),
        "the redirect target was called: {:?}",
        seen.lock().unwrap()
    );
}
