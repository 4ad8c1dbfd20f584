//! The cellnet API on a real kube-apiserver: the CRDs from `crds/` install, bad input is refused
//! with a message naming the field (server-side apply through kube-rs and `kubectl apply`), valid
//! edge cases and the examples are accepted, and kubectl's views (categories, printer columns,
//! label and field selectors, explain) work.
mod support;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cellnet::api::conditions::{ConditionType, set_condition};
use cellnet::api::{
    CellInterconnect, CellInterconnectStatus, InfraEndpoint, InfraEndpointStatus, SdnKind, SessionState,
    SideStatus,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::ControlPlane;

const MANAGER: &str = "cellnet-api-tests";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kubectl(cp: &ControlPlane, args: &[&str]) -> (bool, String, String) {
    let mut all = vec!["--request-timeout=30s"];
    all.extend_from_slice(args);
    cp.kubectl_run(&all)
}

/// kubectl with `input` on stdin.
fn kubectl_stdin(cp: &ControlPlane, args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = cp
        .kubectl()
        .arg("--request-timeout=30s")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn must(cp: &ControlPlane, args: &[&str]) -> String {
    let (ok, out, err) = kubectl(cp, args);
    assert!(ok, "kubectl {args:?} failed:\n{err}{out}");
    out
}

/// Retries a kubectl call until it succeeds (discovery and OpenAPI publishing lag behind
/// `Established` by a moment).
fn eventually(cp: &ControlPlane, args: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (ok, out, err) = kubectl(cp, args);
        if ok {
            return out;
        }
        assert!(
            Instant::now() < deadline,
            "kubectl {args:?} kept failing:\n{err}{out}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// The control plane with the CRDs from `crds/` installed (server-side apply), Established and
/// served by discovery.
fn cluster() -> &'static ControlPlane {
    static SERVED: OnceLock<()> = OnceLock::new();
    let cp = support::control_plane();
    cp.install_crds();
    // kubectl resolves kinds through discovery, which lags behind `Established` by a moment.
    SERVED.get_or_init(|| {
        eventually(cp, &["get", "cellnet", "-A"]);
    });
    cp
}

fn iep(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint", "metadata": {"name": name}, "spec": spec})
}

fn cic(name: &str, spec: Value) -> Value {
    json!({"apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect", "metadata": {"name": name}, "spec": spec})
}

fn base_iep() -> Value {
    json!({"cell": "cell1", "address": "10.0.0.1", "asn": 65001})
}

/// `spec.neutron` of [`base_iep`] with this `network`.
fn neutron(network: Value) -> Value {
    json!({"cloudSecretRef": {"name": "region1"}, "cloud": "region1", "network": network,
           "subnet": {"cidr": "10.0.0.0/24"}})
}

fn base_cic() -> Value {
    json!({"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"}})
}

/// `base` with the JSON value at `pointer` (e.g. `/bgp/holdTime`) set, creating parents.
fn with(mut base: Value, pointer: &str, value: Value) -> Value {
    let mut at = &mut base;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for part in &parts[..parts.len() - 1] {
        at = at
            .as_object_mut()
            .unwrap()
            .entry(part.to_string())
            .or_insert_with(|| json!({}));
    }
    at.as_object_mut()
        .unwrap()
        .insert(parts[parts.len() - 1].to_string(), value);
    base
}

/// Server-side apply through kube-rs; returns the API server's error message on refusal (422).
async fn ssa(client: &kube::Client, ns: &str, obj: &Value, params: &PatchParams) -> Result<Value, String> {
    ssa_raw(client, ns, obj, params).await.map_err(|s| {
        assert_eq!(s.code, 422, "expected 422 Unprocessable Entity: {s:?}");
        s.message
    })
}

/// Server-side apply through kube-rs; the API server's refusal as is.
async fn ssa_raw(
    client: &kube::Client,
    ns: &str,
    obj: &Value,
    params: &PatchParams,
) -> Result<Value, kube::core::Status> {
    let name = obj["metadata"]["name"].as_str().unwrap();
    let result = if obj["kind"] == "InfraEndpoint" {
        let api: Api<InfraEndpoint> = Api::namespaced(client.clone(), ns);
        api.patch(name, params, &Patch::Apply(obj))
            .await
            .map(|o| serde_json::to_value(o).unwrap())
    } else {
        let api: Api<CellInterconnect> = Api::namespaced(client.clone(), ns);
        api.patch(name, params, &Patch::Apply(obj))
            .await
            .map(|o| serde_json::to_value(o).unwrap())
    };
    result.map_err(|e| match e {
        kube::Error::Api(s) => *s,
        other => panic!("not an API refusal: {other}"),
    })
}

/// `kubectl apply` (client-side, default `--validate=strict`); returns stderr on refusal.
fn kubectl_apply(cp: &ControlPlane, ns: &str, obj: &Value, extra: &[&str]) -> Result<String, String> {
    let mut args = vec!["apply", "-n", ns, "-f", "-"];
    args.extend_from_slice(extra);
    let (ok, out, err) = kubectl_stdin(cp, &args, &obj.to_string());
    if ok { Ok(out) } else { Err(err) }
}

/// How a bad input is caught.
#[derive(Debug, Clone, Copy, PartialEq)]
enum By {
    /// OpenAPI schema: type, enum, bounds, pattern, required, list-type.
    Schema,
    /// A CEL rule (`x-kubernetes-validations`).
    Cel,
}

struct Bad {
    what: &'static str,
    obj: Value,
    /// Substrings the refusal must contain: the field path first.
    expect: &'static [&'static str],
    by: By,
    /// Server-side apply refuses some input while building its typed patch, before validation:
    /// a 500 with this text instead of a 422 with `expect`.
    ssa_500: Option<&'static [&'static str]>,
}

fn bad_inputs() -> Vec<Bad> {
    let iep_with = |p: &str, v: Value| iep("bad", with(base_iep(), p, v));
    let cic_with = |p: &str, v: Value| cic("bad", with(base_cic(), p, v));
    let cel_addr: &[&str] = &["spec.address", "must be an IPv4 or IPv6 address"];
    let iep_neutron = |network: Value, segments: Option<Value>| {
        let mut spec = with(base_iep(), "/neutron", neutron(network));
        if let Some(segments) = segments {
            spec = with(spec, "/l2Segments", segments);
        }
        iep("bad", spec)
    };
    vec![
        Bad {
            what: "address 10.0.0",
            obj: iep_with("/address", json!("10.0.0")),
            expect: cel_addr,
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "address with zone",
            obj: iep_with("/address", json!("fe80::1%eth0")),
            expect: cel_addr,
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "address hostname",
            obj: iep_with("/address", json!("bgp.cell1.example")),
            expect: cel_addr,
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "address CIDR",
            obj: iep_with("/address", json!("10.0.0.1/32")),
            expect: cel_addr,
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "address empty",
            obj: iep_with("/address", json!("")),
            expect: &["spec.address", "at least 1 chars long"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "address missing",
            obj: iep("bad", json!({"cell": "cell1", "asn": 1})),
            expect: &["spec.address", "Required value"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "asn 0",
            obj: iep_with("/asn", json!(0)),
            expect: &["spec.asn", "greater than or equal to 1"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "asn 4294967296",
            obj: iep_with("/asn", json!(4294967296u64)),
            expect: &["spec.asn", "less than or equal to 4294967295"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "port 0",
            obj: iep_with("/port", json!(0)),
            expect: &["spec.port", "greater than or equal to 1"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "port 65536",
            obj: iep_with("/port", json!(65536)),
            expect: &["spec.port", "less than or equal to 65535"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "cell Cell_1",
            obj: iep_with("/cell", json!("Cell_1")),
            expect: &["spec.cell", "should match"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "cell 64 chars",
            obj: iep_with("/cell", json!("c".repeat(64))),
            expect: &["spec.cell", "may not be more than 63"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "unknown sdn.type",
            obj: iep_with("/sdn", json!({"type": "FRR", "url": "http://10.0.0.5:50051"})),
            expect: &["spec.sdn.type", "Unsupported value: \"FRR\""],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "sdn.url ftp",
            obj: iep_with("/sdn", json!({"type": "GoBGP", "url": "ftp://10.0.0.5"})),
            expect: &["spec.sdn.url", "must be an http or https URL"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "sdn.url not a URL",
            obj: iep_with("/sdn", json!({"type": "GoBGP", "url": "10.0.0.5:50051"})),
            expect: &["spec.sdn.url", "must be an http or https URL"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "sdn.url with user and password",
            obj: iep_with(
                "/sdn",
                json!({"type": "OpenDaylight", "url": "https://admin:admin@odl.example:8181/rests"}),
            ),
            expect: &["spec.sdn.url", "must not contain user information"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "sdn.url with a user",
            obj: iep_with(
                "/sdn",
                json!({"type": "GoBGP", "url": "http://me@10.0.0.5:50051"}),
            ),
            expect: &["spec.sdn.url", "must not contain user information"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "sdn.url ending in ?",
            obj: iep_with(
                "/sdn",
                json!({"type": "OpenDaylight", "url": "http://203.0.113.9/steal?"}),
            ),
            expect: &["spec.sdn.url", "must not have a query"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "sdn.url ending in #",
            obj: iep_with(
                "/sdn",
                json!({"type": "OpenDaylight", "url": "http://203.0.113.9/steal#"}),
            ),
            expect: &["spec.sdn.url", "must not have a fragment"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "openDaylight on GoBGP",
            obj: iep_with(
                "/sdn",
                json!({"type": "GoBGP", "url": "http://x:1", "openDaylight": {}}),
            ),
            expect: &[
                "spec.sdn.openDaylight",
                "only allowed when spec.sdn.type is OpenDaylight",
            ],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "openDaylight.applicationPeer IPv6",
            obj: iep_with(
                "/sdn",
                json!({"type": "OpenDaylight", "url": "http://x:1", "openDaylight": {"applicationPeer": "2001:db8::9"}}),
            ),
            expect: &["spec.sdn.openDaylight.applicationPeer", "must be an IPv4 address"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "routerId IPv6",
            obj: iep_with("/routerId", json!("2001:db8::1")),
            expect: &["spec.routerId", "must be an IPv4 address"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "routerId not an IP",
            obj: iep_with("/routerId", json!("router-1")),
            expect: &["spec.routerId", "must be an IPv4 address"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "IPv6 address without routerId",
            obj: iep_with("/address", json!("2001:db8::10")),
            expect: &["spec.routerId", "required when spec.address is an IPv6 address"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "same local and remote",
            obj: cic_with("/remoteEndpoint", json!({"name": "a"})),
            expect: &["spec.remoteEndpoint.name", "must name another InfraEndpoint"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "holdTime 1",
            obj: cic_with("/bgp", json!({"holdTime": 1, "keepaliveInterval": 0})),
            expect: &["spec.bgp.holdTime", "must be 0 or between 3 and 65535"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "holdTime 2",
            obj: cic_with("/bgp", json!({"holdTime": 2, "keepaliveInterval": 1})),
            expect: &["spec.bgp.holdTime", "must be 0 or between 3 and 65535"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "gracefulRestart restartTime 0",
            obj: cic_with(
                "/bgp",
                json!({"gracefulRestart": {"enabled": true, "restartTime": 0}}),
            ),
            expect: &[
                "spec.bgp.gracefulRestart.restartTime",
                "greater than or equal to 1",
            ],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "gracefulRestart restartTime 4096",
            obj: cic_with(
                "/bgp",
                json!({"gracefulRestart": {"enabled": true, "restartTime": 4096}}),
            ),
            expect: &[
                "spec.bgp.gracefulRestart.restartTime",
                "less than or equal to 4095",
            ],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "gracefulRestart without enabled",
            obj: cic_with("/bgp", json!({"gracefulRestart": {"restartTime": 60}})),
            expect: &["spec.bgp.gracefulRestart.enabled", "Required value"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "holdTime 65536",
            obj: cic_with("/bgp", json!({"holdTime": 65536})),
            expect: &["spec.bgp.holdTime", "less than or equal to 65535"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "keepalive == holdTime",
            obj: cic_with("/bgp", json!({"holdTime": 30, "keepaliveInterval": 30})),
            expect: &["spec.bgp.keepaliveInterval", "less than spec.bgp.holdTime"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "keepalive > default holdTime",
            obj: cic_with("/bgp", json!({"keepaliveInterval": 91})),
            expect: &["spec.bgp.keepaliveInterval", "less than spec.bgp.holdTime"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "ebgpMultihop 0",
            obj: cic_with("/bgp", json!({"ebgpMultihop": 0})),
            expect: &["spec.bgp.ebgpMultihop", "greater than or equal to 1"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "unknown address family",
            obj: cic_with("/bgp", json!({"addressFamilies": ["ipv4-multicast"]})),
            expect: &[
                "spec.bgp.addressFamilies[0]",
                "Unsupported value: \"ipv4-multicast\"",
            ],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "duplicate address family",
            obj: cic_with(
                "/bgp",
                json!({"addressFamilies": ["ipv4-unicast", "ipv4-unicast"]}),
            ),
            expect: &["spec.bgp.addressFamilies[1]", "Duplicate value"],
            by: By::Schema,
            ssa_500: Some(&[
                ".spec.bgp.addressFamilies",
                "duplicate entries for key [=\"ipv4-unicast\"]",
            ]),
        },
        Bad {
            what: "no address family",
            obj: cic_with("/bgp", json!({"addressFamilies": []})),
            expect: &["spec.bgp.addressFamilies", "at least 1 items"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "passwordSecretRef without key",
            obj: cic_with("/bgp", json!({"passwordSecretRef": {"name": "bgp-password"}})),
            expect: &["spec.bgp.passwordSecretRef.key", "Required value"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "unknown adminState",
            obj: cic_with("/adminState", json!("Down")),
            expect: &["spec.adminState", "Unsupported value: \"Down\""],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "adminMessage of 200 two-octet characters",
            obj: cic_with("/adminMessage", json!("é".repeat(200))),
            expect: &["spec.adminMessage", "at most 255 octets"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "65 properties",
            obj: iep_with(
                "/properties",
                Value::Object((0..65).map(|i| (format!("k{i}"), json!("v"))).collect()),
            ),
            expect: &["spec.properties", "must have at most 64 items"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "property value of 1025 characters",
            obj: iep_with("/properties", json!({"site": "x".repeat(1025)})),
            expect: &["spec.properties.site", "may not be more than 1024"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "CA and insecureSkipVerify together",
            obj: iep_with(
                "/sdn",
                json!({"type": "OpenDaylight", "url": "https://odl:8181",
                       "tls": {"caSecretRef": {"name": "ca"}, "insecureSkipVerify": true}}),
            ),
            expect: &["spec.sdn.tls.insecureSkipVerify", "exclude each other"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "network with host bits",
            obj: iep_with("/networks", json!([{"cidr": "192.0.2.1/25"}])),
            expect: &["spec.networks[0].cidr", "has host bits set", "write 192.0.2.0/25"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "network not a prefix",
            obj: iep_with("/networks", json!([{"cidr": "192.0.2.0"}])),
            expect: &["spec.networks[0].cidr", "must be an IPv4 or IPv6 prefix"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "IPv6 network not canonical",
            obj: iep_with("/networks", json!([{"cidr": "2001:DB8::/32"}])),
            expect: &[
                "spec.networks[0].cidr",
                "has host bits set",
                "write 2001:db8::/32",
            ],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "network twice",
            obj: iep_with(
                "/networks",
                json!([{"cidr": "192.0.2.0/25"}, {"cidr": "192.0.2.0/25"}]),
            ),
            expect: &["spec.networks[1]", "Duplicate value"],
            by: By::Schema,
            ssa_500: Some(&["duplicate entries for key", "192.0.2.0/25"]),
        },
        Bad {
            what: "network name not a label",
            obj: iep_with(
                "/networks",
                json!([{"cidr": "192.0.2.0/25", "name": "Storage_Net"}]),
            ),
            expect: &["spec.networks[0].name", "should match"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "65 networks",
            obj: iep_with(
                "/networks",
                Value::Array(
                    (0..65)
                        .map(|i| json!({"cidr": format!("10.{i}.0.0/16")}))
                        .collect(),
                ),
            ),
            expect: &["spec.networks", "must have at most 64 items"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "maxPrefixes 0",
            obj: cic_with("/routes", json!({"maxPrefixes": 0})),
            expect: &["spec.routes.maxPrefixes", "greater than or equal to 1"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "maxPrefixes 100001",
            obj: cic_with("/routes", json!({"maxPrefixes": 100001})),
            expect: &["spec.routes.maxPrefixes", "less than or equal to 100000"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "import All",
            obj: cic_with("/routes", json!({"import": "All"})),
            expect: &["spec.routes.import", "Unsupported value"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "VNI 0",
            obj: iep_with("/l2Segments", json!([{"name": "vip", "vni": 0}])),
            expect: &["spec.l2Segments[0].vni", "greater than or equal to 1"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "VNI beyond 24 bits",
            obj: iep_with("/l2Segments", json!([{"name": "vip", "vni": 16777216}])),
            expect: &["spec.l2Segments[0].vni", "less than or equal to 16777215"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "segment VNI twice",
            obj: iep_with(
                "/l2Segments",
                json!([{"name": "a", "vni": 100}, {"name": "b", "vni": 100}]),
            ),
            expect: &["spec.l2Segments", "each vni may appear only once"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "segment name twice",
            obj: iep_with(
                "/l2Segments",
                json!([{"name": "a", "vni": 100}, {"name": "a", "vni": 101}]),
            ),
            expect: &["spec.l2Segments[1]", "Duplicate value"],
            by: By::Schema,
            ssa_500: Some(&["duplicate entries for key", "a"]),
        },
        Bad {
            what: "vxlan network without a segment",
            obj: iep_neutron(json!({"networkType": "vxlan"}), None),
            expect: &[
                "spec.neutron.network.segment",
                "segment is required when networkType is vxlan",
            ],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "vxlan network with a physical network",
            obj: iep_neutron(
                json!({"networkType": "vxlan", "segment": "vip", "physicalNetwork": "p"}),
                Some(json!([{"name": "vip", "vni": 10100}])),
            ),
            expect: &[
                "spec.neutron.network.physicalNetwork",
                "physicalNetwork is not allowed when networkType is vxlan",
            ],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "vxlan network with a VLAN ID",
            obj: iep_neutron(
                json!({"networkType": "vxlan", "segment": "vip", "segmentationId": 100}),
                Some(json!([{"name": "vip", "vni": 10100}])),
            ),
            expect: &[
                "spec.neutron.network.segmentationId",
                "segmentationId is allowed only when networkType is vlan",
            ],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "flat network without a physical network",
            obj: iep_neutron(json!({}), None),
            expect: &[
                "spec.neutron.network.physicalNetwork",
                "physicalNetwork is required when networkType is flat or vlan",
            ],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "flat network naming a segment",
            obj: iep_neutron(
                json!({"physicalNetwork": "p", "segment": "vip"}),
                Some(json!([{"name": "vip", "vni": 10100}])),
            ),
            expect: &[
                "spec.neutron.network.segment",
                "segment is allowed only when networkType is vxlan",
            ],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "vxlan network naming an undeclared segment",
            obj: iep_neutron(
                json!({"networkType": "vxlan", "segment": "vip"}),
                Some(json!([{"name": "other", "vni": 10100}])),
            ),
            expect: &[
                "spec.neutron.network.segment",
                "must name a segment of spec.l2Segments",
            ],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "vxlan network naming a segment without any declared",
            obj: iep_neutron(json!({"networkType": "vxlan", "segment": "vip"}), None),
            expect: &[
                "spec.neutron.network.segment",
                "must name a segment of spec.l2Segments",
            ],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "segment not a DNS label",
            obj: iep_neutron(
                json!({"networkType": "vxlan", "segment": "VIP_net"}),
                Some(json!([{"name": "vip", "vni": 10100}])),
            ),
            expect: &["spec.neutron.network.segment", "should match"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "vtep not an address",
            obj: iep_with("/vtep", json!("vtep.cell1")),
            expect: &["spec.vtep", "must be an IPv4 or IPv6 address"],
            by: By::Cel,
            ssa_500: None,
        },
        Bad {
            what: "route target without a number",
            obj: cic_with("/l2", json!({"routeTargets": {"import": ["65001"]}})),
            expect: &["spec.l2.routeTargets.import[0]", "should match"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            // Removing the last name must not silently widen to every common segment.
            what: "an empty list of segments",
            obj: cic_with("/l2", json!({"segments": []})),
            expect: &["spec.l2.segments", "should have at least 1 items"],
            by: By::Schema,
            ssa_500: None,
        },
        Bad {
            what: "adminMessage too long",
            obj: cic_with("/adminMessage", json!("x".repeat(256))),
            expect: &["spec.adminMessage", "may not be more than 255"],
            by: By::Schema,
            ssa_500: None,
        },
    ]
}

/// The messages of every CEL rule in the generated CRDs.
fn cel_messages() -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                if let Some(rules) = map.get("x-kubernetes-validations").and_then(Value::as_array) {
                    out.extend(rules.iter().filter_map(|r| {
                        r["message"]
                            .as_str()
                            .or(r["messageExpression"].as_str())
                            .map(String::from)
                    }));
                }
                map.values().for_each(|c| walk(c, out));
            }
            Value::Array(items) => items.iter().for_each(|c| walk(c, out)),
            _ => {}
        }
    }
    let mut out = vec![];
    for crd in cellnet::api::all_crds() {
        walk(&serde_json::to_value(crd).unwrap(), &mut out);
    }
    out
}

fn check_refusal(what: &str, how: &str, message: &str, expect: &[&str]) {
    for needle in expect {
        assert!(
            message.contains(needle),
            "{what} via {how}: refusal lacks {needle:?}:\n{message}"
        );
    }
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let cp = cluster();
    let ns = "api-bad";
    assert!(support::namespace(cp, ns).await, "namespace {ns} is new");
    let client = cp.client().await;
    let params = PatchParams::apply(MANAGER);
    let cases = bad_inputs();
    let cel_messages = cel_messages();
    for case in &cases {
        let refusal = ssa_raw(&client, ns, &case.obj, &params)
            .await
            .map(|o| panic!("{}: accepted by server-side apply: {o}", case.what))
            .unwrap_err();
        let (code, expect) = case.ssa_500.map_or((422, case.expect), |e| (500, e));
        assert_eq!(refusal.code, code, "{}: {refusal:?}", case.what);
        check_refusal(case.what, "server-side apply", &refusal.message, expect);
        // A CEL refusal carries one of our rule messages; a schema one never does.
        let by_cel = cel_messages.iter().any(|m| m.contains(case.expect[1]));
        assert_eq!(
            by_cel,
            case.by == By::Cel,
            "{}: expected {:?}",
            case.what,
            case.by
        );

        let err = kubectl_apply(cp, ns, &case.obj, &[])
            .map(|o| panic!("{}: accepted by kubectl apply: {o}", case.what))
            .unwrap_err();
        check_refusal(case.what, "kubectl apply", &err, case.expect);
    }
    // Nothing slipped through.
    let (_, out, _) = kubectl(cp, &["get", "cellnet", "-n", ns, "-o", "name"]);
    assert_eq!(out.trim(), "", "objects were created: {out}");
    support::report(&format!(
        "{} bad inputs refused, each by SSA and kubectl apply",
        cases.len()
    ));
}

#[tokio::test]
async fn cell_is_immutable() {
    let cp = cluster();
    let ns = "api-immutable";
    assert!(support::namespace(cp, ns).await, "namespace {ns} is new");
    let client = cp.client().await;
    let params = PatchParams::apply(MANAGER);
    let obj = iep("moving", base_iep());
    ssa(&client, ns, &obj, &params).await.expect("create");
    let moved = iep("moving", with(base_iep(), "/cell", json!("cell2")));
    let message = ssa(&client, ns, &moved, &params)
        .await
        .expect_err("cell change accepted");
    check_refusal(
        "cell change",
        "server-side apply",
        &message,
        &["spec.cell", "spec.cell is immutable"],
    );
    let err =
        kubectl_apply(cp, ns, &moved, &["--server-side", "--field-manager", MANAGER]).expect_err("accepted");
    check_refusal(
        "cell change",
        "kubectl apply --server-side",
        &err,
        &["spec.cell", "immutable"],
    );
    // Other fields stay mutable.
    let renumbered = iep("moving", with(base_iep(), "/asn", json!(65099)));
    let got = ssa(&client, ns, &renumbered, &params).await.expect("asn change");
    assert_eq!(got["spec"]["asn"], 65099);
    assert_eq!(got["spec"]["cell"], "cell1");
}

/// What holds cellnet's objects on a speaker cannot be re-pointed: the speaker an endpoint names
/// (its peers and paths are there), the endpoints an interconnect joins, on either side.
#[tokio::test]
async fn speakers_and_endpoint_references_cannot_be_repointed() {
    let cp = cluster();
    let ns = "api-repoint";
    assert!(support::namespace(cp, ns).await, "namespace {ns} is new");
    let client = cp.client().await;
    let params = PatchParams::apply(MANAGER);
    let sdn = |url: &str| json!({"type": "GoBGP", "url": url});
    let managed = with(base_iep(), "/sdn", sdn("http://speaker-a:50051"));
    ssa(&client, ns, &iep("ep", managed.clone()), &params)
        .await
        .expect("create");
    let refused = [
        (
            "another speaker",
            with(base_iep(), "/sdn", sdn("http://speaker-b:50051")),
        ),
        ("made external", base_iep()),
    ];
    for (what, spec) in refused {
        let message = ssa(&client, ns, &iep("ep", spec), &params).await.expect_err(what);
        check_refusal(
            what,
            "server-side apply",
            &message,
            &["spec.sdn.url", "cannot change"],
        );
    }
    // An external endpoint may become managed; the address may change (peers follow it).
    ssa(&client, ns, &iep("ext", base_iep()), &params)
        .await
        .expect("create external");
    ssa(&client, ns, &iep("ext", managed.clone()), &params)
        .await
        .expect("external -> managed");
    let readdressed = with(managed, "/address", json!("10.0.0.9"));
    ssa(&client, ns, &iep("ep", readdressed), &params)
        .await
        .expect("address change");

    ssa(&client, ns, &cic("link", base_cic()), &params)
        .await
        .expect("create link");
    for (side, pointer) in [
        ("spec.localEndpoint", "/localEndpoint/name"),
        ("spec.remoteEndpoint", "/remoteEndpoint/name"),
    ] {
        let moved = cic("link", with(base_cic(), pointer, json!("c")));
        let message = ssa(&client, ns, &moved, &params).await.expect_err(side);
        check_refusal(side, "server-side apply", &message, &[side, "is immutable"]);
    }
}

#[tokio::test]
async fn valid_edge_cases_are_accepted_with_defaults() {
    let cp = cluster();
    let ns = "api-edges";
    assert!(support::namespace(cp, ns).await, "namespace {ns} is new");
    let client = cp.client().await;
    let params = PatchParams::apply(MANAGER);
    let good = [
        iep(
            "v6",
            json!({"cell": "cell1", "address": "2001:db8::10", "routerId": "192.0.2.1", "asn": 4294967295u64}),
        ),
        iep(
            "v6-full",
            json!({"cell": "c", "address": "2001:0db8:0000:0000:0000:ff00:0042:8329", "routerId": "10.0.0.1", "asn": 1}),
        ),
        iep(
            "port-max",
            json!({"cell": "a", "address": "192.0.2.1", "asn": 65001, "port": 65535}),
        ),
        iep(
            "cell-63",
            json!({"cell": "c".repeat(63), "address": "192.0.2.2", "asn": 65001}),
        ),
        iep(
            "odl",
            json!({"cell": "cell3", "address": "192.0.2.3", "asn": 65003,
                   "sdn": {"type": "OpenDaylight", "url": "https://odl.cell3.example:8181/restconf",
                           "credentialsSecretRef": {"name": "odl-admin"},
                           "tls": {"caSecretRef": {"name": "odl-ca"}},
                           "openDaylight": {"applicationPeer": "192.0.2.250"}}}),
        ),
        cic("hold-0", with(base_cic(), "/bgp", json!({"holdTime": 0}))),
        cic(
            "hold-3",
            with(base_cic(), "/bgp", json!({"holdTime": 3, "keepaliveInterval": 1})),
        ),
        cic(
            "all-families",
            with(
                base_cic(),
                "/bgp",
                json!({"addressFamilies": ["ipv4-unicast", "ipv6-unicast", "l2vpn-evpn"], "ebgpMultihop": 255,
                       "passwordSecretRef": {"name": "bgp", "key": "password"}}),
            ),
        ),
        iep(
            "l2",
            json!({"cell": "cell4", "address": "192.0.2.4", "asn": 65004, "vtep": "2001:db8::4",
                   "l2Segments": [{"name": "vip", "vni": 1}, {"name": "vm-moves", "vni": 16777215}]}),
        ),
        iep(
            "neutron-vxlan",
            json!({"cell": "cell5", "address": "10.0.0.5", "asn": 65005,
                   "l2Segments": [{"name": "vip", "vni": 10100}],
                   "neutron": neutron(json!({"networkType": "vxlan", "segment": "vip"}))}),
        ),
        cic("l2-all", with(base_cic(), "/l2", json!({}))),
        cic(
            "l2-named",
            with(
                base_cic(),
                "/l2",
                json!({"segments": ["vip"], "routeTargets": {"import": ["65001:100", "192.0.2.1:7"], "export": ["4294967295:16777215"]}}),
            ),
        ),
        cic(
            "graceful",
            with(base_cic(), "/bgp", json!({"gracefulRestart": {"enabled": true}})),
        ),
        cic(
            "disabled",
            json!({"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"},
                               "adminState": "Disabled", "adminMessage": "maintenance", "suspend": true}),
        ),
    ];
    for obj in &good {
        let name = obj["metadata"]["name"].as_str().unwrap();
        ssa(&client, ns, obj, &params)
            .await
            .unwrap_or_else(|m| panic!("{name} refused by SSA: {m}"));
        // Again with kubectl, as another object.
        let mut copy = obj.clone();
        copy["metadata"]["name"] = json!(format!("{name}-kubectl"));
        kubectl_apply(cp, ns, &copy, &[]).unwrap_or_else(|e| panic!("{name} refused by kubectl apply: {e}"));
    }

    // Server-side defaults, read back through the typed API.
    let ieps: Api<InfraEndpoint> = Api::namespaced(client.clone(), ns);
    let odl = ieps.get("odl").await.unwrap();
    assert_eq!(odl.spec.port, 179);
    let sdn = odl.spec.sdn.as_ref().unwrap();
    let odl_settings = sdn.open_daylight.as_ref().unwrap();
    assert_eq!(
        (
            odl_settings.rib_id.as_str(),
            odl_settings.network_instance.as_str()
        ),
        ("bgp-example", "global-bgp")
    );
    assert_eq!(odl_settings.application_peer.as_deref(), Some("192.0.2.250"));
    assert!(!sdn.tls.as_ref().unwrap().insecure_skip_verify);
    assert_eq!(ieps.get("v6").await.unwrap().spec.asn, u32::MAX);

    let cics: Api<CellInterconnect> = Api::namespaced(client.clone(), ns);
    // The defaults as stored, not as serde would fill them in.
    let raw: Value = serde_json::to_value(cics.get("disabled").await.unwrap()).unwrap();
    assert_eq!(
        raw["spec"]["bgp"],
        json!({"holdTime": 90, "keepaliveInterval": 30, "addressFamilies": ["ipv4-unicast"],
               "passiveSide": "Remote"})
    );
    let graceful: Value = serde_json::to_value(cics.get("graceful").await.unwrap()).unwrap();
    assert_eq!(
        graceful["spec"]["bgp"]["gracefulRestart"],
        json!({"enabled": true, "restartTime": 120})
    );
    let hold0 = cics.get("hold-0").await.unwrap();
    assert_eq!(
        (hold0.spec.bgp.hold_time, hold0.spec.bgp.keepalive_interval),
        (0, 30)
    );
}

#[tokio::test]
async fn unknown_fields_are_refused_by_apply_and_pruned_by_lax_create() {
    let cp = cluster();
    let ns = "api-unknown";
    assert!(support::namespace(cp, ns).await, "namespace {ns} is new");
    let client = cp.client().await;
    let obj = iep(
        "extra",
        with(
            with(base_iep(), "/bogus", json!(1)),
            "/sdn",
            json!({"type": "GoBGP", "url": "http://x:1", "tlss": {}}),
        ),
    );

    // Client-side `kubectl apply` (strict field validation by default): refused with a 422.
    let err = kubectl_apply(cp, ns, &obj, &[]).expect_err("accepted by kubectl apply");
    check_refusal(
        "unknown field",
        "kubectl apply",
        &err,
        &["unknown field \"spec.bogus\"", "unknown field \"spec.sdn.tlss\""],
    );
    let err =
        kubectl_apply(cp, ns, &obj, &["--server-side", "--field-manager", MANAGER]).expect_err("accepted");
    check_refusal(
        "unknown field",
        "kubectl apply --server-side",
        &err,
        &[".spec.bogus: field not declared in schema"],
    );

    // Server-side apply needs every field in the schema to build its typed patch, so it refuses
    // unknown fields whatever the field validation mode, with a 500 naming the field.
    let params = PatchParams::apply(MANAGER);
    for mode in [
        params.clone(),
        params.clone().validation_strict(),
        params.clone().validation_ignore(),
    ] {
        let status = ssa_raw(&client, ns, &obj, &mode)
            .await
            .expect_err("SSA accepted an unknown field");
        assert_eq!(status.code, 500, "{status:?}");
        assert!(
            status
                .message
                .contains(".spec.bogus: field not declared in schema"),
            "{status:?}"
        );
    }

    // Create/update (POST/PUT, and client-side `kubectl apply --validate=false`) without Strict:
    // accepted with a warning, and the unknown fields are pruned.
    let resource = ApiResource::erase::<InfraEndpoint>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let body: DynamicObject =
        serde_json::from_value(iep("posted", with(base_iep(), "/bogus", json!(1)))).unwrap();
    let created = api
        .create(&PostParams::default(), &body)
        .await
        .expect("POST with an unknown field");
    assert!(
        created.data["spec"].get("bogus").is_none(),
        "not pruned: {:?}",
        created.data
    );
    let out = kubectl_apply(
        cp,
        ns,
        &iep("extra2", with(base_iep(), "/bogus", json!(1))),
        &["--validate=false"],
    )
    .expect("kubectl apply --validate=false");
    assert!(out.contains("created"), "{out}");
    let raw = must(cp, &["get", "iep", "extra2", "-n", ns, "-o", "json"]);
    let raw: Value = serde_json::from_str(&raw).unwrap();
    assert!(raw["spec"].get("bogus").is_none(), "not pruned: {raw}");
    assert_eq!(raw["spec"]["cell"], "cell1");
}

/// What the server stores must be what we generate: it silently drops what it does not know
/// (unknown `format`s, for one), which would turn a check into a no-op.
#[tokio::test]
async fn the_server_keeps_the_schema_as_generated() {
    let cp = cluster();
    let client = cp.client().await;
    let api: Api<CustomResourceDefinition> = Api::all(client);
    for want in cellnet::api::all_crds() {
        let name = want.metadata.name.clone().unwrap();
        let have = api.get(&name).await.unwrap();
        let schema = |crd: &CustomResourceDefinition| {
            serde_json::to_value(&crd.spec.versions[0].schema.as_ref().unwrap().open_api_v3_schema).unwrap()
        };
        assert_eq!(
            schema(&have),
            schema(&want),
            "{name}: the server changed the schema"
        );
        assert_eq!(
            have.spec.versions[0].additional_printer_columns,
            want.spec.versions[0].additional_printer_columns
        );
        assert_eq!(
            have.spec.versions[0].selectable_fields,
            want.spec.versions[0].selectable_fields
        );
        assert_eq!(have.spec.names.categories, want.spec.names.categories);
    }
}

#[tokio::test]
async fn status_round_trips_through_the_subresource() {
    let cp = cluster();
    let ns = "api-status";
    assert!(support::namespace(cp, ns).await, "namespace {ns} is new");
    let client = cp.client().await;
    let params = PatchParams::apply(MANAGER);
    ssa(
        &client,
        ns,
        &iep(
            "cell1-gobgp",
            with(
                base_iep(),
                "/sdn",
                json!({"type": "GoBGP", "url": "http://127.0.0.1:50061"}),
            ),
        ),
        &params,
    )
    .await
    .unwrap();
    ssa(
        &client,
        ns,
        &iep("dc1", json!({"cell": "dc1", "address": "10.9.0.1", "asn": 65013})),
        &params,
    )
    .await
    .unwrap();
    ssa(
        &client,
        ns,
        &cic(
            "cell1-dc1",
            json!({"localEndpoint": {"name": "cell1-gobgp"}, "remoteEndpoint": {"name": "dc1"}}),
        ),
        &params,
    )
    .await
    .unwrap();

    // The server stores times with second precision.
    let now = Time(
        k8s_openapi::jiff::Timestamp::from_second(k8s_openapi::jiff::Timestamp::now().as_second()).unwrap(),
    );
    let mut conditions = vec![];
    set_condition(
        &mut conditions,
        ConditionType::Ready,
        true,
        "SessionEstablished",
        "up",
        Some(1),
        &now,
    );
    set_condition(
        &mut conditions,
        ConditionType::SessionEstablished,
        true,
        "Established",
        "",
        Some(1),
        &now,
    );
    set_condition(
        &mut conditions,
        ConditionType::RoutesExchanged,
        true,
        "RoutesExchanged",
        "",
        Some(1),
        &now,
    );
    let status = CellInterconnectStatus {
        observed_generation: Some(1),
        conditions: conditions.clone(),
        local_cell: Some("cell1".into()),
        remote_cell: Some("dc1".into()),
        local: Some(SideStatus {
            sdn: Some(SdnKind::GoBgp),
            peer_address: Some("10.9.0.1".into()),
            session_state: SessionState::Established,
            last_transition_time: Some(now.clone()),
            established_since: Some(now.clone()),
            configured: true,
            flaps: 2,
            ..Default::default()
        }),
        remote: Some(SideStatus {
            sdn: Some(SdnKind::External),
            ..Default::default()
        }),
        applied_password_secret_version: None,
        last_handled_reconcile_at: Some("2026-11-25T18:00:00Z".into()),
        owned_peers: vec![cellnet::api::OwnedPeer {
            speaker: "OpenDaylight|https://odl:8443".into(),
            neighbor: "10.9.0.2".into(),
        }],
    };
    let cics: Api<CellInterconnect> = Api::namespaced(client.clone(), ns);
    let patch = json!({"apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect", "status": status});
    let got = cics
        .patch_status(
            "cell1-dc1",
            &PatchParams::apply("cellnet-controller").force(),
            &Patch::Apply(&patch),
        )
        .await
        .expect("status patch");
    assert_eq!(got.status.as_ref(), Some(&status));

    let ieps: Api<InfraEndpoint> = Api::namespaced(client.clone(), ns);
    let mut iep_conditions = vec![];
    set_condition(
        &mut iep_conditions,
        ConditionType::Ready,
        true,
        "SpeakerConfigured",
        "",
        Some(1),
        &now,
    );
    for (name, kind) in [("cell1-gobgp", SdnKind::GoBgp), ("dc1", SdnKind::External)] {
        let status = InfraEndpointStatus {
            observed_generation: Some(1),
            conditions: iep_conditions.clone(),
            sdn: Some(kind),
            sdn_reachable: (kind != SdnKind::External).then_some(true),
            interconnects: 1,
            networks: Vec::new(),
            neutron: None,
        };
        let patch = json!({"apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint", "status": status});
        let got = ieps
            .patch_status(
                name,
                &PatchParams::apply("cellnet-controller").force(),
                &Patch::Apply(&patch),
            )
            .await
            .expect("status patch");
        assert_eq!(got.status.as_ref(), Some(&status));
    }

    // Bad status values are refused too.
    let bad = json!({"apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
                     "status": {"local": {"sessionState": "Up"}}});
    let err = cics
        .patch_status(
            "cell1-dc1",
            &PatchParams::apply("cellnet-controller").force(),
            &Patch::Apply(&bad),
        )
        .await
        .expect_err("bad sessionState accepted");
    assert!(err.to_string().contains("status.local.sessionState"), "{err}");

    // Printer columns show the status.
    let out = must(cp, &["get", "cic", "-n", ns, "-o", "wide"]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "LOCAL-CELL",
            "REMOTE-CELL",
            "SESSION",
            "ROUTES",
            "READY",
            "AGE",
            "LOCAL",
            "REMOTE"
        ],
        "{out}"
    );
    let row: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(
        &row[..6],
        [
            "cell1-dc1",
            "cell1",
            "dc1",
            "Established",
            "RoutesExchanged",
            "True"
        ],
        "{out}"
    );
    assert_eq!(&row[7..], ["cell1-gobgp", "dc1"], "{out}");

    let out = must(cp, &["get", "iep", "-n", ns]);
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        ["NAME", "CELL", "ADDRESS", "ASN", "SDN", "READY", "AGE"],
        "{out}"
    );
    assert!(
        out.lines().any(|l| l
            .split_whitespace()
            .take(6)
            .eq(["dc1", "dc1", "10.9.0.1", "65013", "External", "True"])),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.split_whitespace().take(5).eq([
            "cell1-gobgp",
            "cell1",
            "10.0.0.1",
            "65001",
            "GoBGP"
        ])),
        "{out}"
    );
}

#[tokio::test]
async fn examples_apply_unchanged_and_kubectl_views_work() {
    let cp = cluster();
    let ns = "api-examples";
    assert!(support::namespace(cp, ns).await, "namespace {ns} is new");
    let examples = repo().join("examples");
    let out = must(cp, &["apply", "-n", ns, "-f", examples.to_str().unwrap()]);
    for name in [
        "secret/cellnet-bgp-password",
        "infraendpoint.cellnet.io/cell1-gobgp",
        "infraendpoint.cellnet.io/cell2-gobgp",
        "infraendpoint.cellnet.io/dc1-router",
        "cellinterconnect.cellnet.io/cell1-cell2",
        "cellinterconnect.cellnet.io/cell1-dc1",
    ] {
        assert!(
            out.contains(&format!("{name} created")),
            "{name} not created:\n{out}"
        );
    }
    // Server-side apply of the same files works too (GitOps tools use it).
    must(
        cp,
        &[
            "apply",
            "--server-side",
            "--field-manager",
            "gitops",
            "-n",
            ns,
            "-f",
            examples.to_str().unwrap(),
        ],
    );

    // `kubectl get cellnet` lists both kinds.
    let out = must(cp, &["get", "cellnet", "-n", ns, "-o", "name"]);
    let mut names: Vec<&str> = out.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "cellinterconnect.cellnet.io/cell1-cell2",
            "cellinterconnect.cellnet.io/cell1-dc1",
            "infraendpoint.cellnet.io/cell1-gobgp",
            "infraendpoint.cellnet.io/cell2-gobgp",
            "infraendpoint.cellnet.io/dc1-router",
        ]
    );
    // Label and field selectors.
    let out = must(
        cp,
        &[
            "get",
            "iep",
            "-n",
            ns,
            "-l",
            "cellnet.io/cell=cell1",
            "-o",
            "name",
        ],
    );
    assert_eq!(out.trim(), "infraendpoint.cellnet.io/cell1-gobgp");
    let out = must(
        cp,
        &[
            "get",
            "iep",
            "-n",
            ns,
            "--field-selector",
            "spec.cell=cell2",
            "-o",
            "name",
        ],
    );
    assert_eq!(out.trim(), "infraendpoint.cellnet.io/cell2-gobgp");
    // Short names and printer columns before any status exists.
    let out = must(cp, &["get", "iep", "-n", ns]);
    assert!(
        out.lines().any(|l| l
            .split_whitespace()
            .take(4)
            .eq(["cell1-gobgp", "cell1", "127.0.0.11", "65011"])),
        "{out}"
    );
    let out = must(cp, &["get", "cic", "-n", ns, "-o", "wide"]);
    assert!(out.contains("cell1-gobgp") && out.contains("dc1-router"), "{out}");

    // What the examples ask for, as the typed API reads it back.
    let client = cp.client().await;
    let cics: Api<CellInterconnect> = Api::namespaced(client.clone(), ns);
    let c12 = cics.get("cell1-cell2").await.unwrap();
    assert_eq!((c12.spec.bgp.hold_time, c12.spec.bgp.keepalive_interval), (9, 3));
    assert_eq!(c12.spec.bgp.password_secret_ref.as_ref().unwrap().key, "password");
    assert_eq!(
        c12.spec.l2.as_ref().map(|l2| l2.segments.clone()),
        Some(vec!["vip".to_string()])
    );
    let ieps: Api<InfraEndpoint> = Api::namespaced(client, ns);
    let cell2 = ieps.get("cell2-gobgp").await.unwrap();
    assert_eq!(
        (cell2.spec.address.as_str(), cell2.spec.port, cell2.spec.asn),
        ("127.0.0.12", 1790, 65012)
    );
    assert_eq!(cell2.spec.sdn.as_ref().unwrap().url, "http://127.0.0.1:50062");
    assert_eq!(
        (
            cell2.spec.effective_vtep(),
            cell2.spec.l2_segments[0].name.as_str(),
            cell2.spec.l2_segments[0].vni
        ),
        ("198.51.100.12", "vip", 100)
    );
    assert!(!ieps.get("dc1-router").await.unwrap().spec.is_managed());
}

#[test]
fn kubectl_explain_shows_the_descriptions() {
    let cp = cluster();
    let out = eventually(cp, &["explain", "infraendpoint.spec.address"]);
    assert!(out.contains("IPv4 or IPv6 address of the BGP speaker"), "{out}");
    let out = eventually(cp, &["explain", "cellinterconnect.spec.bgp.holdTime"]);
    assert!(out.contains("Hold time in seconds"), "{out}");
    let out = eventually(cp, &["explain", "iep.spec.sdn.type"]);
    assert!(out.contains("GoBGP") && out.contains("OpenDaylight"), "{out}");
    // Every Secret reference says which label lets cellnet use the Secret.
    for field in [
        "cic.spec.bgp.passwordSecretRef",
        "iep.spec.sdn.credentialsSecretRef",
        "iep.spec.sdn.tls.caSecretRef",
        "iep.spec.neutron.cloudSecretRef",
        "iep.spec.neutron.bgp.passwordSecretRef",
    ] {
        let out = eventually(cp, &["explain", field]);
        assert!(out.contains("cellnet.io/credentials"), "{field}: {out}");
    }
    let out = eventually(cp, &["explain", "iep.spec.neutron.network.segment"]);
    assert!(out.contains("spec.l2Segments") && out.contains("vxlan"), "{out}");
    let out = eventually(cp, &["explain", "cic.status.local.sessionState"]);
    assert!(out.contains("Established"), "{out}");
    let out = eventually(cp, &["explain", "infraendpoint"]);
    assert!(
        out.contains("one BGP speaker on the infrastructure network"),
        "{out}"
    );
}
