//! cellnet's Neutron client against a real neutron-server (Debian's Neutron 21 with
//! neutron-dynamic-routing) and a real Keystone (Debian's Keystone 22), both started by the test
//! (`tests/support/neutron.rs`). Neutron's state is checked with a plain HTTP client, not with cellnet's client.
mod support;

use std::sync::OnceLock;
use std::time::Duration;

use cellnet::neutron::{NeutronClient, NeutronError, clouds};
use serde_json::json;
use support::neutron::{ADMIN_PASSWORD, Keystone, Neutron};

/// One Neutron and one Keystone (its catalog pointing at that Neutron) per test binary.
fn servers() -> &'static (Neutron, Keystone) {
    static S: OnceLock<(Neutron, Keystone)> = OnceLock::new();
    S.get_or_init(|| {
        cellnet::tls::install_crypto_provider();
        let n = Neutron::start();
        let k = Keystone::start(&n.url());
        (n, k)
    })
}

fn client(yaml: &str, cloud: &str) -> NeutronClient {
    NeutronClient::new(clouds::parse(yaml, cloud).unwrap(), Duration::from_secs(10)).unwrap()
}

fn password_yaml(ks: &Keystone, password: &str) -> String {
    format!(
        "clouds:\n  region1:\n    auth:\n      auth_url: {}\n      username: admin\n      password: {password}\n      \
         project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    \
         region_name: RegionOne\n    interface: public\n",
        ks.url()
    )
}

#[tokio::test]
async fn noauth_client_creates_network_tags_and_bgp_objects() {
    let (n, _) = servers();
    let c = client(
        &format!(
            "clouds:\n  bare:\n    auth_type: none\n    endpoint_override: {}\n",
            n.url()
        ),
        "bare",
    );
    let net = c
        .create_network(json!({"name": "client-net", "provider:network_type": "flat",
            "provider:physical_network": "physnet-client", "router:external": true}))
        .await
        .unwrap();
    c.set_tags("networks", &net.id, &["cellnet.io/cell=c9".to_string()])
        .await
        .unwrap();
    // Independently: Neutron has the network with the tag and the provider fields.
    let seen = n.get(&format!("/networks/{}", net.id));
    assert_eq!(seen["network"]["tags"], json!(["cellnet.io/cell=c9"]));
    assert_eq!(seen["network"]["provider:physical_network"], "physnet-client");
    assert_eq!(c.networks_tagged("cellnet.io/cell=c9").await.unwrap().len(), 1);
    // Neutron's own 409 comes back with its message: a second flat network on the physnet.
    let err = c
        .create_network(json!({"name": "client-net-2", "provider:network_type": "flat",
            "provider:physical_network": "physnet-client"}))
        .await
        .unwrap_err();
    match &err {
        NeutronError::Api { status, message, .. } => {
            assert_eq!(*status, 409, "{err}");
            assert!(message.contains("physnet-client"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let speaker = c
        .create_bgp_speaker(json!({"name": "client-speaker", "local_as": 64512, "ip_version": 4}))
        .await
        .unwrap();
    let peer = c
        .create_bgp_peer(
            json!({"name": "client-peer", "peer_ip": "192.0.2.7", "remote_as": 65007,
            "auth_type": "md5", "password": "md5-secret"}),
        )
        .await
        .unwrap();
    c.speaker_action(&speaker.id, "add_bgp_peer", "bgp_peer_id", &peer.id)
        .await
        .unwrap();
    c.speaker_action(&speaker.id, "add_gateway_network", "network_id", &net.id)
        .await
        .unwrap();
    let seen = n.get(&format!("/bgp-speakers/{}", speaker.id));
    assert_eq!(seen["bgp_speaker"]["peers"], json!([peer.id]));
    assert_eq!(seen["bgp_speaker"]["networks"], json!([net.id]));
    // remove_bgp_peer answers 200 with `null`: no error.
    c.speaker_action(&speaker.id, "remove_bgp_peer", "bgp_peer_id", &peer.id)
        .await
        .unwrap();
    c.delete(&format!("/bgp-peers/{}", peer.id)).await.unwrap();
    // 404 counts as done.
    c.delete(&format!("/bgp-peers/{}", peer.id)).await.unwrap();
    assert!(c.bgp_peer(&peer.id).await.unwrap().is_none());
}

#[tokio::test]
async fn keystone_password_and_application_credential_reach_neutron_through_the_catalog() {
    let (n, ks) = servers();
    let c = client(&password_yaml(ks, ADMIN_PASSWORD), "region1");
    let before = ks.token_requests();
    for _ in 0..3 {
        c.networks_named("nothing-with-this-name").await.unwrap();
    }
    // One token for three calls: cached per client.
    assert_eq!(ks.token_requests() - before, 1, "token cached");
    let net = c
        .create_network(json!({"name": "via-keystone", "provider:network_type": "flat",
            "provider:physical_network": "physnet-ks"}))
        .await
        .unwrap();
    assert_eq!(
        n.get(&format!("/networks/{}", net.id))["network"]["name"],
        "via-keystone"
    );

    let (id, secret) = ks.application_credential("cellnet-test");
    let yaml = format!(
        "clouds:\n  ac:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: {}\n      \
         application_credential_id: {id}\n      application_credential_secret: {secret}\n    region_name: RegionOne\n",
        ks.url()
    );
    let c = client(&yaml, "ac");
    assert!(c.network(&net.id).await.unwrap().is_some());
}

#[tokio::test]
async fn wrong_credentials_are_an_auth_failure_without_the_secret() {
    let (_, ks) = servers();
    let c = client(&password_yaml(ks, "not-the-password"), "region1");
    let err = c.networks_named("x").await.unwrap_err();
    assert!(matches!(err, NeutronError::Auth(_)), "{err:?}");
    assert_eq!(err.reason(), "NeutronAuthFailed");
    assert!(!err.to_string().contains("not-the-password"), "{err}");
    assert!(err.to_string().contains("401"), "{err}");
}

#[tokio::test]
async fn unreachable_neutron_and_keystone() {
    let port = support::free_port();
    let c = client(
        &format!("clouds:\n  gone:\n    auth_type: none\n    endpoint_override: http://127.0.0.1:{port}\n"),
        "gone",
    );
    let err = c.networks_named("x").await.unwrap_err();
    assert_eq!(err.reason(), "NeutronUnreachable", "{err}");
    let yaml = format!(
        "clouds:\n  gone:\n    auth:\n      auth_url: http://127.0.0.1:{port}/v3\n      username: u\n      password: p\n"
    );
    let err = client(&yaml, "gone").networks_named("x").await.unwrap_err();
    assert_eq!(err.reason(), "NeutronUnreachable", "{err}");
    assert!(err.to_string().contains("Keystone"), "{err}");
}
