//! Who may make cellnet act (issue 18): a Secret is used only with the label
//! `cellnet.io/credentials: "true"`, and a clouds.yaml URL with user information is refused before
//! any connection. The in-memory speakers record what would have been sent.
use cellnet::api::InfraEndpoint;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Patch, PatchParams};

use super::*;

/// The (status, reason, message) of condition `type_` of object `name` of kind `K`.
async fn condition_of<K>(
    client: &kube::Client,
    ns: &str,
    name: &str,
    type_: &str,
) -> Option<(String, String, String)>
where
    K: kube::Resource<Scope = kube::core::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + serde::Serialize,
{
    let obj = Api::<K>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .ok()??;
    let status = serde_json::to_value(&obj).ok()?["status"]["conditions"].clone();
    let c = status.as_array()?.iter().find(|c| c["type"] == type_)?.clone();
    let text = |f: &str| c[f].as_str().unwrap_or_default().to_string();
    Some((text("status"), text("reason"), text("message")))
}

fn has_reason(reason: Reason) -> impl Fn(&Option<(String, String, String)>) -> bool {
    move |c| c.as_ref().is_some_and(|(_, r, _)| r == reason.as_str())
}

fn secret(name: &str, data: serde_json::Value, labelled: bool) -> Secret {
    let mut metadata = json!({"name": name});
    if labelled {
        metadata["labels"] = json!({"cellnet.io/credentials": "true"});
    }
    serde_json::from_value(json!({"metadata": metadata, "stringData": data})).unwrap()
}

async fn label(client: &kube::Client, ns: &str, name: &str) {
    let patch = json!({"metadata": {"labels": {"cellnet.io/credentials": "true"}}});
    Api::<Secret>::namespaced(client.clone(), ns)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("label the Secret");
}

/// Unlabelled, a BGP password and OpenDaylight credentials stay where they are: the status says
/// which Secret and how to fix it, no peer reaches a speaker, no credential reaches an API.
/// Labelled, both are used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_without_the_credentials_label_is_never_sent() {
    let (cp, fakes) = env();
    let client = cp.client().await;
    let ns = "pipeline-label";
    assert!(support::namespace(cp, ns).await, "namespace {ns} is new");
    let (odl_url, gobgp_url) = ("http://fake-odl-label:8181", "http://fake-label:50051");
    let odl = fakes.speaker(BackendKind::OpenDaylight, odl_url);
    odl.set_new_session(SessionState::Established);
    let gobgp = gobgp(&fakes, gobgp_url);
    create(
        &client,
        ns,
        &secret("odl", json!({"username": "admin", "password": "odl-pw"}), false),
    )
    .await;
    create(&client, ns, &secret("md5", json!({"password": "md5-pw"}), false)).await;
    let odl_ep = endpoint("lo", "192.0.2.21", 65021).opendaylight(odl_url, "odl");
    create(&client, ns, &odl_ep.typed()).await;
    create(
        &client,
        ns,
        &endpoint("lg", "192.0.2.22", 65022).gobgp(gobgp_url).typed(),
    )
    .await;
    let cic = interconnect("lg-lo", "lg", "lo").password("md5", "password");
    create(&client, ns, &cic.typed()).await;

    let (_, _, message) = wait_until(
        "interconnect SecretNotPermitted",
        async || condition_of::<CellInterconnect>(&client, ns, "lg-lo", "Ready").await,
        has_reason(Reason::SecretNotPermitted),
    )
    .await
    .unwrap();
    assert!(
        message.contains("pipeline-label/md5")
            && message.contains("kubectl label secret -n pipeline-label md5"),
        "names the Secret and the fix: {message}"
    );
    wait_until(
        "endpoint SecretNotPermitted",
        async || condition_of::<InfraEndpoint>(&client, ns, "lo", "Ready").await,
        has_reason(Reason::SecretNotPermitted),
    )
    .await;
    assert!(
        gobgp.peers().is_empty(),
        "no peer (and no MD5 password) on the speaker"
    );
    assert_eq!(
        fakes.credentials_sent(odl_url),
        vec![],
        "no connection with the credentials"
    );
    assert!(odl.global().is_none() && odl.writes() == 0);

    label(&client, ns, "md5").await;
    label(&client, ns, "odl").await;
    wait_until(
        "Ready once labelled",
        async || ready(&client, ns, "lg-lo").await,
        |r| r.as_ref().is_some_and(|(s, _)| s == "True"),
    )
    .await;
    let peer = &gobgp.peers()[&ip("192.0.2.21")];
    assert_eq!(peer.config.password.as_ref().map(|p| p.expose()), Some("md5-pw"));
    assert!(
        fakes
            .credentials_sent(odl_url)
            .contains(&Some(("admin".into(), "odl-pw".into()))),
        "the labelled credentials are used"
    );
}

/// Neutron's URLs come from a Secret (clouds.yaml), out of the API server's reach: the
/// controller refuses user information, a query or a fragment there, without quoting the URL
/// (it may hold a password), and an unlabelled clouds.yaml is not read at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clouds_yaml_url_with_user_information_is_refused() {
    let (cp, _) = env();
    let client = cp.client().await;
    let ns = "pipeline-cloud-url";
    assert!(support::namespace(cp, ns).await, "namespace {ns} is new");
    // Nothing listens on port 1: a connection attempt would be NeutronUnreachable instead.
    let clouds = "clouds:\n  c:\n    auth:\n      auth_url: http://admin:hunter2@127.0.0.1:1/v3\n      \
                  username: admin\n      password: x\n      project_name: admin\n";
    create(
        &client,
        ns,
        &secret("clouds", json!({"clouds.yaml": clouds}), true),
    )
    .await;
    create(
        &client,
        ns,
        &secret("unlabelled", json!({"clouds.yaml": clouds}), false),
    )
    .await;
    // Subnets of their own: other tests' networks never overlap them (no NetworkConflict).
    for (name, secret, net) in [("userinfo", "clouds", 32), ("unlabelled", "unlabelled", 48)] {
        let neutron = json!({"cloudSecretRef": {"name": secret}, "cloud": "c",
            "network": {"physicalNetwork": "p"},
            "subnet": {"cidr": format!("198.51.100.{net}/28"), "gatewayIP": format!("198.51.100.{}", net + 1)}});
        let ep = endpoint(name, &format!("198.51.100.{}", net + 2), 65030).neutron(neutron);
        create(&client, ns, &ep.typed()).await;
    }
    let (_, _, message) = wait_until(
        "InvalidCloud",
        async || condition_of::<InfraEndpoint>(&client, ns, "userinfo", "NeutronConfigured").await,
        has_reason(Reason::InvalidCloud),
    )
    .await
    .unwrap();
    assert!(
        message.contains("auth.auth_url") && message.contains("user information"),
        "{message}"
    );
    assert!(
        !message.contains("hunter2"),
        "the URL's password is never shown: {message}"
    );
    wait_until(
        "SecretNotPermitted",
        async || condition_of::<InfraEndpoint>(&client, ns, "unlabelled", "NeutronConfigured").await,
        has_reason(Reason::SecretNotPermitted),
    )
    .await;
}
