//! End to end: the real controller and control plane with a real Neutron (Debian's Neutron 21 +
//! neutron-dynamic-routing) and Keystone 22. Every check of Neutron's state goes through its API
//! with a plain HTTP client (tests/support/neutron.rs), independently of cellnet's client.
//!
//! One control plane, one controller (`--sdn-resync-interval 2s`) and one Neutron serve the
//! tests; each test has its own namespace, cell and physical network, so they run in parallel.
//! The stop/recover test has a Neutron of its own.
mod support;

use std::net::Ipv4Addr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cellnet::api::{CellInterconnect, InfraEndpoint};
use kube::ResourceExt as _;
use serde_json::{Value, json};
use support::gobgp::Gobgpd;
use support::manifests;
use support::netns::{self, CellPair};
use support::neutron::{ADMIN_PASSWORD, Keystone, Neutron};
use support::{
    ControlPlane, ControllerProcess, EndpointStatusExt as _, Kind as _, condition, namespace, wait_condition,
    wait_condition_json, wait_for, wait_ready,
};

const TIMEOUT: Duration = Duration::from_secs(90);

fn env() -> (
    &'static ControlPlane,
    &'static ControllerProcess,
    &'static Neutron,
) {
    static CONTROLLER: OnceLock<ControllerProcess> = OnceLock::new();
    static NEUTRON: OnceLock<Neutron> = OnceLock::new();
    let neutron = NEUTRON.get_or_init(Neutron::start);
    let cp = support::control_plane();
    cp.install_crds();
    let controller =
        CONTROLLER.get_or_init(|| ControllerProcess::start(cp, &["--sdn-resync-interval", "2s"]));
    (cp, controller, neutron)
}

fn noauth_secret(name: &str, neutron: &Neutron) -> String {
    let clouds = format!(
        "clouds:\n  region1:\n    auth_type: none\n    endpoint_override: {}\n",
        neutron.url()
    );
    manifests::secret(name, &[("clouds.yaml", &clouds)])
}

fn keystone_secret(name: &str, ks: &Keystone, password: &str) -> String {
    let clouds = format!(
        "clouds:\n  region1:\n    auth:\n      auth_url: {}\n      username: admin\n      password: {password}\n      \
         project_name: admin\n      user_domain_name: Default\n      project_domain_name: Default\n    \
         region_name: RegionOne\n    interface: public\n",
        ks.url()
    );
    manifests::secret(name, &[("clouds.yaml", &clouds)])
}

/// An external endpoint (no SDN) of `cell` at 10.<net>.0.10 with `spec.neutron` on `physnet`,
/// and `spec.neutron.bgp` if given.
fn endpoint(name: &str, cell: &str, net: u8, physnet: &str, secret: &str, bgp: Option<Value>) -> String {
    let mut neutron = json!({
        "cloudSecretRef": {"name": secret},
        "cloud": "region1",
        "network": {"physicalNetwork": physnet},
        "subnet": {"cidr": format!("10.{net}.0.0/24"), "gatewayIP": format!("10.{net}.0.1")},
    });
    if let Some(bgp) = bgp {
        neutron["bgp"] = bgp;
    }
    manifests::endpoint(name)
        .cell(cell)
        .address(format!("10.{net}.0.10"))
        .asn(65000 + u32::from(net))
        .neutron(neutron)
        .yaml()
}

/// [`endpoint`] with its network named `network` (two namespaces' endpoints of one name would
/// otherwise ask for the same network name).
fn endpoint_on(name: &str, cell: &str, net: u8, physnet: &str, network: &str, bgp: Value) -> String {
    let yaml = endpoint(name, cell, net, physnet, "region1", Some(bgp));
    let mut doc: Value = serde_yaml::from_str(&yaml).unwrap();
    doc["spec"]["neutron"]["network"]["name"] = json!(network);
    serde_yaml::to_string(&doc).unwrap()
}

/// Creates a neutron-dynamic-routing object by hand (as an operator would): its id.
fn make_by_hand(n: &Neutron, collection: &str, body: Value) -> String {
    let (code, made) = n.api("POST", &format!("/{collection}"), Some(&body));
    assert_eq!(code, 201, "{made}");
    let key = collection.trim_end_matches('s').replace('-', "_");
    made[key]["id"].as_str().unwrap().to_string()
}

/// Writes `status.neutron.<field>` = `id` as someone with status rights (or a bad restore) would.
fn forge_status(cp: &ControlPlane, ns: &str, name: &str, ids: Value) {
    let patch = json!({"status": {"neutron": ids}}).to_string();
    let (ok, _, err) = cp.kubectl_run(&[
        "patch",
        "-n",
        ns,
        &format!("iep/{name}"),
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ]);
    assert!(ok, "{err}");
}

/// `spec.neutron.bgp` with `localAs` and the MD5 password from key `password` of a Secret.
fn bgp(local_as: u32, password_secret: Option<&str>) -> Value {
    let mut bgp = json!({"localAs": local_as});
    if let Some(p) = password_secret {
        bgp["passwordSecretRef"] = json!({"name": p, "key": "password"});
    }
    bgp
}

fn networks_named(n: &Neutron, name: &str) -> Vec<Value> {
    n.get(&format!("/networks?name={name}"))["networks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The neutron-dynamic-routing objects of `collection` (`bgp-speakers`, `bgp-peers`) named `name`
/// (these lists take no `name` filter).
fn dr_named(n: &Neutron, collection: &str, name: &str) -> Vec<Value> {
    n.get(&format!("/{collection}"))[collection.replace('-', "_")]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["name"] == name)
        .cloned()
        .collect()
}

fn speakers_named(n: &Neutron, name: &str) -> Vec<Value> {
    dr_named(n, "bgp-speakers", name)
}

fn peers_named(n: &Neutron, name: &str) -> Vec<Value> {
    dr_named(n, "bgp-peers", name)
}

fn wait_configured(cp: &ControlPlane, ns: &str, name: &str) -> InfraEndpoint {
    wait_condition(cp, ns, name, "NeutronConfigured", "True", None, TIMEOUT).0
}

#[tokio::test]
async fn endpoint_creates_network_subnet_speaker_and_peer_repairs_drift_and_cleans_up() {
    let (cp, controller, n) = env();
    let ns = "neutron-create";
    namespace(cp, ns).await;
    cp.apply(ns, &noauth_secret("region1", n));
    cp.apply(
        ns,
        &manifests::secret("bgp-md5", &[("password", "md5-very-secret")]),
    );
    cp.apply(
        ns,
        &endpoint(
            "ep1",
            "cella",
            31,
            "physnet-a",
            "region1",
            Some(bgp(64601, Some("bgp-md5"))),
        ),
    );
    let obj = wait_configured(cp, ns, "ep1");
    let ready = obj.condition("Ready").unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "External")
    );
    let st = obj.neutron().expect("status.neutron");
    let uid = obj.metadata.uid.as_deref().unwrap();
    assert!(obj.finalizers().iter().any(|f| f == "cellnet.io/neutron-cleanup"));

    // Neutron, through its own API.
    let nets = networks_named(n, "cellnet-cella-ep1");
    assert_eq!(nets.len(), 1, "{nets:?}");
    let net = &nets[0];
    assert_eq!(net["id"].as_str(), st.network_id.as_deref());
    assert_eq!(net["provider:network_type"], "flat");
    assert_eq!(net["provider:physical_network"], "physnet-a");
    assert_eq!(net["router:external"], true);
    let tags: Vec<&str> = net["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(tags.contains(&"cellnet.io/cell=cella"), "{tags:?}");
    assert!(
        tags.contains(&format!("cellnet.io/owner={uid}").as_str()),
        "{tags:?}"
    );
    let subnet = n.get(&format!("/subnets/{}", st.subnet_id.as_deref().unwrap()))["subnet"].clone();
    assert_eq!(subnet["cidr"], "10.31.0.0/24");
    assert_eq!(subnet["gateway_ip"], "10.31.0.1");
    assert_eq!(subnet["network_id"], net["id"]);
    let speakers = speakers_named(n, "cellnet-cella");
    assert_eq!(speakers.len(), 1);
    let speaker = &speakers[0];
    assert_eq!(speaker["id"].as_str(), st.bgp_speaker_id.as_deref());
    assert_eq!(speaker["local_as"], 64601);
    assert_eq!(speaker["advertise_tenant_networks"], true);
    assert_eq!(speaker["networks"], json!([net["id"]]));
    let peer = n.get(&format!("/bgp-peers/{}", st.bgp_peer_id.as_deref().unwrap()))["bgp_peer"].clone();
    assert_eq!(peer["peer_ip"], "10.31.0.10");
    assert_eq!(peer["remote_as"], 65031);
    assert_eq!(peer["auth_type"], "md5");
    assert_eq!(speaker["peers"], json!([peer["id"]]));
    // What docs/neutron.md shows (real output).
    let show = |v: &Value, keys: &[&str]| {
        keys.iter()
            .map(|k| format!("  {k}: {}", v[*k]))
            .collect::<Vec<_>>()
            .join("\n")
    };
    support::report(&format!(
        "docs/neutron.md:\n$ kubectl get iep ep1 -o jsonpath='{{.status.neutron}}'\n{}\n\
         GET /v2.0/networks?name=cellnet-cella-ep1\n{}\nGET /v2.0/bgp-speakers/{}\n{}\nGET /v2.0/bgp-peers/{}\n{}",
        serde_json::to_value(st).unwrap(),
        show(
            net,
            &[
                "id",
                "name",
                "provider:network_type",
                "provider:physical_network",
                "router:external",
                "subnets",
                "tags"
            ]
        ),
        speaker["id"].as_str().unwrap(),
        show(speaker, &["name", "local_as", "ip_version", "peers", "networks"]),
        peer["id"].as_str().unwrap(),
        show(&peer, &["name", "peer_ip", "remote_as", "auth_type"]),
    ));

    // Stable: several resyncs (2 s) later the same peer is there, once (a reconcile that read an
    // older status from its cache used to replace it).
    let pid = peer["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_secs(5));
    let later = cp.get::<InfraEndpoint>(ns, "ep1").unwrap();
    assert_eq!(
        later.neutron().and_then(|n| n.bgp_peer_id.as_deref()),
        Some(pid.as_str()),
        "peer replaced"
    );
    // The peer's name carries the endpoint's uid: cellnet's owner mark on an untaggable object.
    let peer_name = format!("cellnet-cella-ep1-{}", later.uid().unwrap());
    let named = peers_named(n, &peer_name);
    assert_eq!(named.len(), 1, "{named:?}");
    assert_eq!(named[0]["id"], pid.as_str());

    // Drift 1: the peer taken off the speaker in Neutron is put back (the same peer).
    let sid = speaker["id"].as_str().unwrap().to_string();
    let (code, body) = n.api(
        "PUT",
        &format!("/bgp-speakers/{sid}/remove_bgp_peer"),
        Some(&json!({"bgp_peer_id": pid})),
    );
    assert_eq!(code, 200, "{body}");
    let (_, took) = wait_for("peer back on the speaker", TIMEOUT, || {
        let s = n.get(&format!("/bgp-speakers/{sid}"))["bgp_speaker"].clone();
        ((s["peers"] == json!([pid])).then_some(()), s.to_string())
    });
    support::report(&format!(
        "peer removed in Neutron put back in {:.1} s",
        took.as_secs_f64()
    ));

    // Drift 2: the network deleted in Neutron is created again, with subnet, tags, on the speaker.
    let old = net["id"].as_str().unwrap().to_string();
    n.api(
        "PUT",
        &format!("/bgp-speakers/{sid}/remove_gateway_network"),
        Some(&json!({"network_id": old})),
    );
    let (code, body) = n.api("DELETE", &format!("/networks/{old}"), None);
    assert_eq!(code, 204, "{body}");
    let (new_net, took) = wait_for("network recreated", TIMEOUT, || {
        let nets = networks_named(n, "cellnet-cella-ep1");
        let s = n.get(&format!("/bgp-speakers/{sid}"))["bgp_speaker"].clone();
        let found = nets
            .first()
            .filter(|x| x["id"] != old.as_str() && !x["subnets"].as_array().unwrap().is_empty())
            .filter(|x| s["networks"] == json!([x["id"]]))
            .cloned();
        (found, format!("{nets:?} {s}"))
    });
    support::report(&format!(
        "network deleted in Neutron recreated in {:.1} s",
        took.as_secs_f64()
    ));
    assert!(
        new_net["tags"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("cellnet.io/owner={uid}")))
    );
    let obj = wait_for("status shows the new network", TIMEOUT, || {
        let o = cp.get_json(ns, "iep/ep1").unwrap();
        let hit = o["status"]["neutron"]["networkId"] == new_net["id"];
        (hit.then(|| o.clone()), o["status"]["neutron"].to_string())
    })
    .0;

    // Never a secret in status, events or logs (the raw object: every byte of it).
    let events = cp.kubectl_run(&["get", "events", "-n", ns, "-o", "json"]).1;
    for text in [obj.to_string(), events, controller.log()] {
        assert!(!text.contains("md5-very-secret"), "password leaked");
    }

    // Delete: everything cellnet created is gone, then the object.
    let peer_id = obj["status"]["neutron"]["bgpPeerId"]
        .as_str()
        .unwrap()
        .to_string();
    let subnet_id = obj["status"]["neutron"]["subnetId"].as_str().unwrap().to_string();
    cp.kubectl_run(&["delete", "-n", ns, "iep/ep1", "--wait=false"]);
    wait_for("endpoint gone", TIMEOUT, || {
        let o = cp.get::<InfraEndpoint>(ns, "ep1");
        (o.is_none().then_some(()), format!("{:?}", o.map(|o| o.status)))
    });
    assert!(networks_named(n, "cellnet-cella-ep1").is_empty());
    assert_eq!(n.api("GET", &format!("/subnets/{subnet_id}"), None).0, 404);
    assert_eq!(n.api("GET", &format!("/bgp-peers/{peer_id}"), None).0, 404);
    assert!(speakers_named(n, "cellnet-cella").is_empty());
    assert!(peers_named(n, &peer_name).is_empty());
}

/// The endpoint `ep1` of cell `cellv` declaring segment `vip` with `vni`, its Neutron network a
/// vxlan network on that segment.
fn vxlan_endpoint(vni: u32) -> String {
    manifests::endpoint("ep1")
        .cell("cellv")
        .address("203.0.113.36")
        .asn(65036)
        .l2_segments(&[("vip", vni)])
        .neutron(json!({
            "cloudSecretRef": {"name": "region1"},
            "cloud": "region1",
            "network": {"networkType": "vxlan", "segment": "vip"},
            "subnet": {"cidr": "203.0.113.0/24"},
        }))
        .yaml()
}

#[tokio::test]
async fn a_vxlan_network_takes_the_vni_of_the_endpoints_segment_and_follows_it() {
    let (cp, _, n) = env();
    let ns = "neutron-vxlan";
    namespace(cp, ns).await;
    cp.apply(ns, &noauth_secret("region1", n));
    let began = Instant::now();
    cp.apply(ns, &vxlan_endpoint(10100));
    let obj = wait_configured(cp, ns, "ep1");
    let st = obj.neutron().expect("status.neutron");

    // Neutron's network, read back from its API.
    let nets = networks_named(n, "cellnet-cellv-ep1");
    assert_eq!(nets.len(), 1, "{nets:?}");
    let net = &nets[0];
    assert_eq!(net["id"].as_str(), st.network_id.as_deref());
    assert_eq!(net["provider:network_type"], "vxlan");
    assert_eq!(net["provider:segmentation_id"], 10100);
    assert_eq!(net["provider:physical_network"], Value::Null);
    support::report(&format!(
        "vxlan network on segment vip (VNI 10100) configured {:.1} s after apply:\n  \
         provider:network_type {} provider:segmentation_id {} provider:physical_network {}",
        began.elapsed().as_secs_f64(),
        net["provider:network_type"],
        net["provider:segmentation_id"],
        net["provider:physical_network"]
    ));

    // The segment's VNI changes: the network is replaced with the new VNI, as for a VLAN ID.
    let old = net["id"].as_str().unwrap().to_string();
    cp.apply(ns, &vxlan_endpoint(10101));
    let (moved, took) = wait_for("network on VNI 10101", TIMEOUT, || {
        let nets = networks_named(n, "cellnet-cellv-ep1");
        let found = nets
            .first()
            .filter(|x| x["provider:segmentation_id"] == 10101 && nets.len() == 1)
            .cloned();
        (found, format!("{nets:?}"))
    });
    assert_ne!(moved["id"], old.as_str(), "the network is replaced");
    assert_eq!(n.api("GET", &format!("/networks/{old}"), None).0, 404);
    support::report(&format!(
        "segment VNI 10100 -> 10101: Neutron network replaced in {:.1} s",
        took.as_secs_f64()
    ));

    cp.kubectl_run(&["delete", "-n", ns, "iep/ep1", "--wait=false"]);
    wait_for("endpoint gone", TIMEOUT, || {
        let o = cp.get::<InfraEndpoint>(ns, "ep1");
        (o.is_none().then_some(()), format!("{:?}", o.map(|o| o.status)))
    });
    assert!(networks_named(n, "cellnet-cellv-ep1").is_empty());
}

#[tokio::test]
async fn crd_refuses_bad_neutron_input() {
    let cp = support::control_plane();
    cp.install_crds();
    let ns = "neutron-refused";
    namespace(cp, ns).await;
    let base = |network: Value, cidr: &str| {
        manifests::endpoint("bad")
            .cell("c1")
            .address("10.1.0.10")
            .asn(65001)
            .neutron(json!({
                "cloudSecretRef": {"name": "s"},
                "cloud": "c",
                "network": network,
                "subnet": {"cidr": cidr},
            }))
            .yaml()
    };
    let cases = [
        (
            base(json!({"physicalNetwork": "p"}), "10.2.0.0/24"),
            "spec.neutron.subnet.cidr must contain spec.address",
        ),
        (
            base(
                json!({"physicalNetwork": "p", "networkType": "vlan"}),
                "10.1.0.0/24",
            ),
            "segmentationId is required when networkType is vlan",
        ),
        (
            base(
                json!({"physicalNetwork": "p", "segmentationId": 100}),
                "10.1.0.0/24",
            ),
            "segmentationId is allowed only when networkType is vlan",
        ),
        (
            base(
                json!({"physicalNetwork": "p", "networkType": "vlan", "segmentationId": 5000}),
                "10.1.0.0/24",
            ),
            "should be less than or equal to 4094",
        ),
        (
            base(json!({"networkType": "vxlan", "segment": "vip"}), "10.1.0.0/24"),
            "spec.neutron.network.segment must name a segment of spec.l2Segments",
        ),
    ];
    for (yaml, want) in cases {
        let (ok, _, err) = cp.apply_result(ns, &yaml);
        assert!(!ok, "accepted:\n{yaml}");
        assert!(err.contains(want), "{err}");
    }
    let good = base(
        json!({"physicalNetwork": "p", "networkType": "vlan", "segmentationId": 100}),
        "10.1.0.0/24",
    );
    let (ok, _, err) = cp.apply_result(ns, &good);
    assert!(ok, "{err}");
    // The example is accepted as written.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/neutron/40-neutron.yaml");
    let (ok, out, err) = cp.kubectl_run(&["apply", "--dry-run=server", "-n", ns, "-f", example]);
    assert!(
        ok && out.contains("infraendpoint.cellnet.io/cell3-infra created"),
        "{out}{err}"
    );
}

#[tokio::test]
async fn a_same_named_network_cellnet_does_not_own_is_left_alone() {
    let (cp, _, n) = env();
    let ns = "neutron-conflict";
    namespace(cp, ns).await;
    let (code, theirs) = n.api(
        "POST",
        "/networks",
        Some(
            &json!({"network": {"name": "cellnet-cellc-ep1", "provider:network_type": "flat",
            "provider:physical_network": "physnet-theirs"}}),
        ),
    );
    assert_eq!(code, 201, "{theirs}");
    let theirs = theirs["network"].clone();
    cp.apply(ns, &noauth_secret("region1", n));
    cp.apply(ns, &endpoint("ep1", "cellc", 33, "physnet-c", "region1", None));
    let (obj, _) = wait_condition::<InfraEndpoint>(
        cp,
        ns,
        "ep1",
        "NeutronConfigured",
        "False",
        Some("NeutronConflict"),
        TIMEOUT,
    );
    let msg = &obj.condition("NeutronConfigured").unwrap().message;
    assert!(msg.contains(theirs["id"].as_str().unwrap()), "{msg}");
    assert_eq!(obj.condition("Ready").unwrap().reason, "NeutronConflict");
    let now = n.get(&format!("/networks/{}", theirs["id"].as_str().unwrap()))["network"].clone();
    assert_eq!(now["revision_number"], theirs["revision_number"], "untouched");
    assert_eq!(now["tags"], json!([]));
    // Deleting the endpoint leaves their network.
    cp.kubectl_run(&["delete", "-n", ns, "iep/ep1", "--timeout=60s"]);
    assert_eq!(networks_named(n, "cellnet-cellc-ep1").len(), 1);
}

#[tokio::test]
async fn neutron_stopped_is_unreachable_then_recovers() {
    let (cp, _, _) = env();
    let mut own = Neutron::start();
    let ns = "neutron-down";
    namespace(cp, ns).await;
    cp.apply(ns, &noauth_secret("region1", &own));
    cp.apply(
        ns,
        &endpoint("ep1", "celld", 34, "physnet-d", "region1", Some(bgp(64604, None))),
    );
    wait_configured(cp, ns, "ep1");
    own.stop();
    let (obj, took) = wait_condition::<InfraEndpoint>(
        cp,
        ns,
        "ep1",
        "Ready",
        "False",
        Some("NeutronUnreachable"),
        TIMEOUT,
    );
    support::report(&format!(
        "Neutron stopped: NeutronUnreachable after {:.1} s",
        took.as_secs_f64()
    ));
    assert_eq!(obj.neutron().and_then(|n| n.reachable), Some(false));
    own.restart();
    let (_, took) = wait_ready::<InfraEndpoint>(cp, ns, "ep1", TIMEOUT);
    support::report(&format!("Neutron back: Ready after {:.1} s", took.as_secs_f64()));
    assert_eq!(networks_named(&own, "cellnet-celld-ep1").len(), 1);
    cp.kubectl_run(&["delete", "-n", ns, "iep/ep1", "--timeout=60s"]);
    assert!(networks_named(&own, "cellnet-celld-ep1").is_empty());
}

#[tokio::test]
async fn keystone_credentials_wrong_then_right() {
    let (cp, controller, n) = env();
    let ks = Keystone::start(&n.url());
    let ns = "neutron-keystone";
    namespace(cp, ns).await;
    cp.apply(ns, &keystone_secret("region1", &ks, "wrong-password-123"));
    cp.apply(ns, &endpoint("ep1", "celle", 35, "physnet-e", "region1", None));
    // The raw object: the leak check below must see every byte of it.
    let (obj, _) = wait_condition_json(
        cp,
        ns,
        "iep/ep1",
        "Ready",
        "False",
        Some("NeutronAuthFailed"),
        TIMEOUT,
    );
    let (_, _, msg) = condition(&obj, "NeutronConfigured").unwrap();
    assert!(msg.contains("401"), "{msg}");
    assert!(!obj.to_string().contains("wrong-password-123"));
    assert!(!controller.log().contains("wrong-password-123"));
    // Refused: no login again before --auth-failure-backoff (2m here). Without it the endpoint's
    // reconcile backoff (1, 2, 4, 8 s ...) logged in again 1-2 times in these 15 s.
    let before = ks.token_requests();
    std::thread::sleep(Duration::from_secs(15));
    let logins = ks.token_requests() - before;
    support::report(&format!("wrong Keystone password: {logins} logins in 15 s"));
    assert_eq!(logins, 0, "logins in 15 s after the refusal");
    // The right password: the Secret change alone requeues the endpoint (no touch of the object).
    cp.apply(ns, &keystone_secret("region1", &ks, ADMIN_PASSWORD));
    wait_configured(cp, ns, "ep1");
    // Keystone over plain http: it works, and the endpoint says what that costs.
    let ep = cp.get::<InfraEndpoint>(ns, "ep1").unwrap();
    let insecure = ep.condition("InsecureTransport").map(|c| c.message.clone());
    assert!(
        insecure
            .as_deref()
            .is_some_and(|m| m.contains("auth.auth_url") && m.contains("plain http")),
        "{insecure:?}"
    );
    assert_eq!(networks_named(n, "cellnet-celle-ep1").len(), 1);
    assert!(!controller.log().contains(ADMIN_PASSWORD));
    cp.kubectl_run(&["delete", "-n", ns, "iep/ep1", "--timeout=60s"]);
    assert!(networks_named(n, "cellnet-celle-ep1").is_empty());
}

#[tokio::test]
async fn two_endpoints_of_one_cell_with_different_local_as_do_not_fight_over_the_speaker() {
    let (cp, _controller, n) = env();
    let ns = "neutron-one-speaker";
    namespace(cp, ns).await;
    cp.apply(ns, &noauth_secret("region1", n));
    cp.apply(
        ns,
        &endpoint(
            "ep1",
            "cellf",
            36,
            "physnet-f1",
            "region1",
            Some(bgp(64606, None)),
        ),
    );
    let first = wait_configured(cp, ns, "ep1");
    let speaker_id = first.neutron().and_then(|n| n.bgp_speaker_id.clone());
    // A second endpoint of the same cell asks for another AS: refused, the speaker stays.
    cp.apply(
        ns,
        &endpoint(
            "ep2",
            "cellf",
            37,
            "physnet-f2",
            "region1",
            Some(bgp(64607, None)),
        ),
    );
    let (obj, _) = wait_condition::<InfraEndpoint>(
        cp,
        ns,
        "ep2",
        "NeutronConfigured",
        "False",
        Some("NeutronConflict"),
        TIMEOUT,
    );
    let msg = &obj.condition("NeutronConfigured").unwrap().message;
    assert!(msg.contains("cell cellf") && msg.contains("64606"), "{msg}");
    std::thread::sleep(Duration::from_secs(5));
    let speakers = speakers_named(n, "cellnet-cellf");
    assert_eq!(speakers.len(), 1, "{speakers:?}");
    assert_eq!(speakers[0]["id"].as_str(), speaker_id.as_deref());
    assert_eq!(speakers[0]["local_as"], 64606);
    let ep1 = cp.get::<InfraEndpoint>(ns, "ep1").unwrap();
    assert_eq!(ep1.condition("NeutronConfigured").unwrap().status, "True");
    // The same AS: both peers on the one speaker.
    cp.apply(
        ns,
        &endpoint(
            "ep2",
            "cellf",
            37,
            "physnet-f2",
            "region1",
            Some(bgp(64606, None)),
        ),
    );
    wait_configured(cp, ns, "ep2");
    let s = &speakers_named(n, "cellnet-cellf")[0];
    assert_eq!(s["peers"].as_array().unwrap().len(), 2, "{s}");
    cp.kubectl_run(&["delete", "-n", ns, "iep/ep1", "iep/ep2", "--timeout=60s"]);
    assert!(speakers_named(n, "cellnet-cellf").is_empty());
}

/// The prefixes in the IPv4 Loc-RIB of `speaker` (`gobgp global rib -j`: prefix -> paths).
fn rib_prefixes(speaker: &Gobgpd) -> Vec<String> {
    let out = speaker.cli(&["global", "rib", "-j"]).unwrap_or_default();
    let rib: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
    rib.as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// A managed endpoint with `spec.neutron.subnet` counts the subnet among its networks: its speaker
/// announces it and it arrives on the other cell's speaker (read with the gobgp CLI there), until
/// `announceSubnet: false` withdraws it. Two cells in network namespaces, so that the paths'
/// next hops are real underlay addresses (GoBGP refuses next hops in 127/8).
#[tokio::test(flavor = "multi_thread")]
async fn the_neutron_subnet_reaches_the_other_cell_unless_announce_subnet_is_false() {
    if let Some(why) = netns::unavailable() {
        println!("SKIPPED the_neutron_subnet_reaches_the_other_cell: no network namespaces here: {why}");
        return;
    }
    let (cp, _controller, n) = env();
    let ns = "neutron-routes";
    namespace(cp, ns).await;
    cp.apply(ns, &noauth_secret("region1", n));
    // Declared before the speakers: dropped (namespaces removed) after they are stopped.
    let cells = CellPair::create();
    let start = |name: &str, cell: &netns::NetCell| {
        Gobgpd::start_in_netns(name, &cell.netns, cell.api_host, cell.underlay)
    };
    let (a, b) = (start("nroutes-a", &cells.a), start("nroutes-b", &cells.b));
    // The underlay /30 is cell a's Neutron subnet: it holds the endpoint's address.
    let subnet = format!("{}/30", Ipv4Addr::from(u32::from(a.address) & !3));
    let neutron = json!({
        "cloudSecretRef": {"name": "region1"},
        "cloud": "region1",
        "network": {"physicalNetwork": "physnet-routes"},
        "subnet": {"cidr": subnet},
    });
    let endpoint = |name: &str, g: &Gobgpd, asn: u32| {
        manifests::endpoint(name)
            .cell(name)
            .address(g.address)
            .asn(asn)
            .port(manifests::BGP_PORT)
            .gobgp(&g.api_url())
    };
    let applied = Instant::now();
    cp.apply(
        ns,
        &[
            endpoint("nra", &a, 65201).neutron(neutron).yaml(),
            endpoint("nrb", &b, 65202).yaml(),
            manifests::interconnect("nra-nrb", "nra", "nrb").yaml(),
        ]
        .join("---\n"),
    );
    let (_, took) = wait_for(&format!("{subnet} on cell nrb's speaker"), TIMEOUT, || {
        let prefixes = rib_prefixes(&b);
        (prefixes.contains(&subnet).then_some(()), format!("{prefixes:?}"))
    });
    support::report(&format!(
        "neutron subnet {subnet} on the other cell's speaker {:.1} s after apply (wait {:.1} s)",
        applied.elapsed().as_secs_f64(),
        took.as_secs_f64()
    ));
    let (cic, _) = wait_ready::<CellInterconnect>(cp, ns, "nra-nrb", TIMEOUT);
    let accepted = cic
        .status
        .as_ref()
        .and_then(|s| s.remote.as_ref())
        .and_then(|s| s.routes.as_ref())
        .map(|r| r.accepted);
    assert_eq!(
        accepted,
        Some(1),
        "cell nrb accepted the subnet: {:?}",
        cic.status
    );
    let ep = wait_condition::<InfraEndpoint>(cp, ns, "nra", "NetworksAnnounced", "True", None, TIMEOUT).0;
    let networks = ep.status.map(|s| s.networks).unwrap_or_default();
    assert_eq!(networks.len(), 1, "{networks:?}");
    assert_eq!(networks[0].cidr, subnet);
    assert_eq!(networks[0].name.as_deref(), Some("neutron-subnet"));
    assert!(networks[0].announced, "{networks:?}");

    let patch = r#"{"spec":{"neutron":{"subnet":{"announceSubnet":false}}}}"#;
    let (ok, _, err) = cp.kubectl_run(&["patch", "-n", ns, "iep/nra", "--type", "merge", "-p", patch]);
    assert!(ok, "{err}");
    let (_, took) = wait_for(&format!("{subnet} withdrawn from cell nrb"), TIMEOUT, || {
        let prefixes = rib_prefixes(&b);
        (
            (!prefixes.contains(&subnet)).then_some(()),
            format!("{prefixes:?}"),
        )
    });
    support::report(&format!(
        "announceSubnet: false withdrew {subnet} from the other cell in {:.1} s",
        took.as_secs_f64()
    ));
    assert!(
        !rib_prefixes(&a).contains(&subnet),
        "cell nra's speaker no longer originates it"
    );

    for what in ["cic/nra-nrb", "iep/nra", "iep/nrb"] {
        cp.kubectl_run(&["delete", "-n", ns, what, "--wait=false"]);
    }
    wait_for("objects gone", TIMEOUT, || {
        let (_, out, _) = cp.kubectl_run(&["get", "-n", ns, "cic,iep", "-o", "name"]);
        (out.trim().is_empty().then_some(()), out)
    });
    drop((a, b));
}

/// Two namespaces, one project, the same cell and endpoint name: the second endpoint must make
/// a peer of its own (the peer's name carries the endpoint's uid), never take or replace the
/// first's, and its deletion leaves the first's peer and the shared speaker.
#[tokio::test]
async fn same_cell_and_endpoint_name_in_two_namespaces_never_touch_each_others_peer() {
    let (cp, _, n) = env();
    let (ns1, ns2) = ("neutron-twin-a", "neutron-twin-b");
    for (ns, net, physnet) in [(ns1, 38, "physnet-g1"), (ns2, 39, "physnet-g2")] {
        namespace(cp, ns).await;
        cp.apply(ns, &noauth_secret("region1", n));
        let network = format!("infra-{ns}");
        cp.apply(
            ns,
            &endpoint_on("ep1", "cellg", net, physnet, &network, bgp(64610, None)),
        );
    }
    let (a, b) = (wait_configured(cp, ns1, "ep1"), wait_configured(cp, ns2, "ep1"));
    let peer_of = |ep: &InfraEndpoint| ep.neutron().and_then(|n| n.bgp_peer_id.clone()).unwrap();
    let (peer_a, peer_b) = (peer_of(&a), peer_of(&b));
    assert_ne!(peer_a, peer_b, "each endpoint has a peer of its own");
    let got = n.get(&format!("/bgp-peers/{peer_a}"))["bgp_peer"].clone();
    assert_eq!(got["peer_ip"], "10.38.0.10", "{got}");
    assert_eq!(got["name"], format!("cellnet-cellg-ep1-{}", a.uid().unwrap()));
    let speakers = speakers_named(n, "cellnet-cellg");
    assert_eq!(speakers.len(), 1, "{speakers:?}");
    let sid = speakers[0]["id"].as_str().unwrap().to_string();
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(
        n.api("GET", &format!("/bgp-peers/{peer_a}"), None).0,
        200,
        "not replaced"
    );

    cp.kubectl_run(&["delete", "-n", ns2, "iep/ep1", "--timeout=60s"]);
    assert_eq!(n.api("GET", &format!("/bgp-peers/{peer_b}"), None).0, 404);
    assert_eq!(
        n.api("GET", &format!("/bgp-peers/{peer_a}"), None).0,
        200,
        "the twin's peer stays"
    );
    let s = n.get(&format!("/bgp-speakers/{sid}"))["bgp_speaker"].clone();
    assert_eq!(s["peers"], json!([peer_a]), "{s}");
    let a = cp.get::<InfraEndpoint>(ns1, "ep1").unwrap();
    assert_eq!(a.condition("NeutronConfigured").unwrap().status, "True");
    cp.kubectl_run(&["delete", "-n", ns1, "iep/ep1", "--timeout=60s"]);
    assert!(speakers_named(n, "cellnet-cellg").is_empty());
}

/// Ids in `status.neutron` that name objects cellnet did not create (written by someone with
/// status rights, or a bad restore) are never replaced nor deleted: not by a reconcile, not by
/// the endpoint's deletion.
#[tokio::test]
async fn forged_neutron_ids_in_status_never_delete_someone_elses_objects() {
    let (cp, _, n) = env();
    let ns = "neutron-forged";
    namespace(cp, ns).await;
    let their_speaker = make_by_hand(
        n,
        "bgp-speakers",
        json!({"bgp_speaker": {"name": "operator-speaker", "local_as": 64620, "ip_version": 4}}),
    );
    let their_peer = make_by_hand(
        n,
        "bgp-peers",
        json!({"bgp_peer": {"name": "operator-peer", "peer_ip": "10.40.0.99", "remote_as": 65099, "auth_type": "none"}}),
    );
    cp.apply(ns, &noauth_secret("region1", n));
    cp.apply(
        ns,
        &endpoint("ep1", "cellh", 40, "physnet-h", "region1", Some(bgp(64621, None))),
    );
    let ours = wait_configured(cp, ns, "ep1");
    let our_peer = ours.neutron().and_then(|n| n.bgp_peer_id.clone()).unwrap();
    let forged = json!({"bgpSpeakerId": their_speaker, "bgpPeerId": their_peer});

    // A reconcile with forged ids: finds its own objects again, leaves theirs.
    forge_status(cp, ns, "ep1", forged.clone());
    cp.kubectl_run(&["annotate", "-n", ns, "iep/ep1", "poke=1"]);
    wait_for("status back to cellnet's own peer", TIMEOUT, || {
        let ep = cp.get::<InfraEndpoint>(ns, "ep1").unwrap();
        let peer = ep.neutron().and_then(|n| n.bgp_peer_id.clone());
        (
            (peer.as_deref() == Some(our_peer.as_str())).then_some(()),
            format!("{peer:?}"),
        )
    });
    assert_eq!(n.api("GET", &format!("/bgp-peers/{their_peer}"), None).0, 200);
    assert_eq!(
        n.api("GET", &format!("/bgp-speakers/{their_speaker}"), None).0,
        200
    );

    // Deletion with forged ids: theirs stay.
    forge_status(cp, ns, "ep1", forged);
    cp.kubectl_run(&["delete", "-n", ns, "iep/ep1", "--timeout=60s"]);
    let peer = n.get(&format!("/bgp-peers/{their_peer}"))["bgp_peer"].clone();
    assert_eq!(peer["name"], "operator-peer", "{peer}");
    let speaker = n.get(&format!("/bgp-speakers/{their_speaker}"))["bgp_speaker"].clone();
    assert_eq!(speaker["name"], "operator-speaker", "{speaker}");
}
