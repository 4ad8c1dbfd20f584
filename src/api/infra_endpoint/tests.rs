//! Unit tests of the InfraEndpoint types: defaults and the JSON shape.
use super::*;
use serde_json::json;

#[test]
fn defaults_fill_in_on_deserialize() {
    let spec: InfraEndpointSpec =
        serde_json::from_value(json!({"cell": "cell1", "address": "10.0.0.1", "asn": 65001})).unwrap();
    assert_eq!(spec.port, 179);
    assert_eq!(spec.router_id, None);
    assert!(!spec.is_managed());
    assert_eq!(spec.effective_router_id(), Some("10.0.0.1".parse().unwrap()));
    assert_eq!(SdnKind::from(spec.sdn.as_ref()), SdnKind::External);
}

#[test]
fn ipv6_address_has_no_router_id_fallback() {
    let spec: InfraEndpointSpec =
        serde_json::from_value(json!({"cell": "c", "address": "2001:db8::1", "asn": 1})).unwrap();
    assert_eq!(spec.effective_router_id(), None);
}

#[test]
fn sdn_round_trips_with_camel_case() {
    let value = json!({
        "cell": "cell1", "address": "10.0.0.1", "asn": 65001, "port": 1790,
        "sdn": {
            "type": "OpenDaylight", "url": "https://odl:8181",
            "credentialsSecretRef": {"name": "odl"},
            "tls": {"caSecretRef": {"name": "ca"}, "insecureSkipVerify": true},
            "openDaylight": {"ribId": "r", "networkInstance": "n"}
        },
        "properties": {"site": "par1"}
    });
    let spec: InfraEndpointSpec = serde_json::from_value(value.clone()).unwrap();
    assert_eq!(spec.sdn.as_ref().unwrap().type_, SdnType::OpenDaylight);
    assert_eq!(serde_json::to_value(&spec).unwrap(), value);
    let gobgp: SdnType = serde_json::from_value(json!("GoBGP")).unwrap();
    assert_eq!(gobgp, SdnType::GoBgp);
}

#[test]
fn open_daylight_defaults() {
    let odl: OpenDaylightSpec = serde_json::from_value(json!({})).unwrap();
    assert_eq!(odl, OpenDaylightSpec::default());
    assert_eq!(odl.rib_id, "bgp-example");
    assert_eq!(odl.network_instance, "global-bgp");
}
