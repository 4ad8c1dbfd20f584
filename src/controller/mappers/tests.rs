use serde_json::{Value, json};

use super::*;

/// An endpoint in `ns`; `sdn` is its `spec.sdn` (null: external), `neutron` its `spec.neutron`.
fn endpoint(ns: &str, name: &str, address: &str, sdn: Value, neutron: Value) -> Arc<InfraEndpoint> {
    let mut spec = json!({"cell": name, "address": address, "asn": 65000});
    if !sdn.is_null() {
        spec["sdn"] = sdn;
    }
    if !neutron.is_null() {
        spec["neutron"] = neutron;
    }
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
        }))
        .unwrap(),
    )
}

/// A GoBGP-managed endpoint whose speaker is at `url`.
fn managed(ns: &str, name: &str, address: &str, url: &str) -> Arc<InfraEndpoint> {
    endpoint(
        ns,
        name,
        address,
        json!({"type": "GoBGP", "url": url}),
        Value::Null,
    )
}

/// An interconnect `local-remote` in `ns`; `bgp` is its `spec.bgp`.
fn interconnect(ns: &str, local: &str, remote: &str, bgp: Value) -> Arc<CellInterconnect> {
    Arc::new(
        serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
            "metadata": {"name": format!("{local}-{remote}"), "namespace": ns},
            "spec": {"localEndpoint": {"name": local}, "remoteEndpoint": {"name": remote}, "bgp": bgp},
        }))
        .unwrap(),
    )
}

/// Finds an endpoint among `eps`, as the endpoint cache does.
fn lookup(
    eps: &[Arc<InfraEndpoint>],
) -> impl Fn(&ObjectRef<InfraEndpoint>) -> Option<Arc<InfraEndpoint>> + '_ {
    |r| {
        eps.iter()
            .find(|e| ObjectRef::from_obj(e.as_ref()) == *r)
            .cloned()
    }
}

fn names<K: kube::Resource>(refs: Vec<ObjectRef<K>>) -> Vec<String>
where
    K::DynamicType: Clone,
{
    refs.into_iter()
        .map(|r| format!("{}/{}", r.namespace.unwrap_or_default(), r.name))
        .collect()
}

fn change(key: &str, neighbor: Option<&str>) -> SpeakerChange {
    SpeakerChange {
        key: key.into(),
        neighbor: neighbor.map(|n| n.parse().unwrap()),
    }
}

/// The speaker key of a managed endpoint.
fn key(ep: &InfraEndpoint) -> SpeakerKey {
    target::endpoint_speaker_key(ep).unwrap()
}

#[test]
fn an_endpoint_requeues_the_interconnects_of_its_namespace_that_name_it() {
    let cics = [
        interconnect("ns", "a", "b", json!({})),
        interconnect("ns", "c", "a", json!({})),
        interconnect("ns", "b", "c", json!({})),
        interconnect("other", "a", "b", json!({})),
    ];
    assert_eq!(
        names(interconnects_referring_to(&cics, "ns", "a")),
        ["ns/a-b", "ns/c-a"]
    );
}

#[test]
fn a_password_secret_requeues_the_interconnects_that_use_it_in_its_namespace() {
    let password = json!({"passwordSecretRef": {"name": "pw", "key": "password"}});
    let eps = [managed("ns", "a", "192.0.2.1", "http://a:50051")];
    let cics = [
        interconnect("ns", "a", "b", password.clone()),
        interconnect("ns", "a", "c", json!({})),
        interconnect("other", "a", "b", password),
    ];
    assert_eq!(
        names(interconnects_using_secret(&cics, lookup(&eps), "ns", "pw")),
        ["ns/a-b"]
    );
}

#[test]
fn an_endpoint_ca_or_credentials_secret_requeues_the_interconnects_on_that_endpoint() {
    let sdn = json!({"type": "GoBGP", "url": "https://a:50051",
                     "credentialsSecretRef": {"name": "creds"},
                     "tls": {"caSecretRef": {"name": "ca"}}});
    let eps = [
        endpoint("ns", "a", "192.0.2.1", sdn.clone(), Value::Null),
        managed("ns", "b", "192.0.2.2", "http://b:50051"),
        // Same Secret names, other namespace: not the Secret that changed.
        endpoint("other", "c", "192.0.2.3", sdn, Value::Null),
    ];
    let cics = [
        interconnect("ns", "b", "a", json!({})),
        interconnect("ns", "b", "x", json!({})),
        interconnect("other", "c", "b", json!({})),
    ];
    for secret in ["ca", "creds"] {
        assert_eq!(
            names(interconnects_using_secret(&cics, lookup(&eps), "ns", secret)),
            ["ns/b-a"],
            "{secret}"
        );
    }
    // The interconnects' password Secret is not the endpoint's CA: nothing else is requeued.
    assert!(interconnects_using_secret(&cics, lookup(&eps), "ns", "pw").is_empty());
}

#[test]
fn a_secret_requeues_the_endpoints_of_its_namespace_that_use_it() {
    let neutron = json!({
        "cloudSecretRef": {"name": "clouds"}, "cloud": "c",
        "network": {"physicalNetwork": "phys"}, "subnet": {"cidr": "192.0.2.0/24"},
        "bgp": {"localAs": 65100, "passwordSecretRef": {"name": "neutron-pw", "key": "p"}},
    });
    let sdn = json!({"type": "GoBGP", "url": "https://a:50051", "tls": {"caSecretRef": {"name": "ca"}}});
    let eps = [
        endpoint("ns", "a", "192.0.2.1", sdn.clone(), Value::Null),
        endpoint("ns", "b", "192.0.2.2", Value::Null, neutron.clone()),
        endpoint("other", "c", "192.0.2.3", sdn, neutron),
    ];
    assert_eq!(names(endpoints_using_secret(&eps, "ns", "ca")), ["ns/a"]);
    assert_eq!(names(endpoints_using_secret(&eps, "ns", "clouds")), ["ns/b"]);
    assert_eq!(names(endpoints_using_secret(&eps, "ns", "neutron-pw")), ["ns/b"]);
    assert!(endpoints_using_secret(&eps, "ns", "unused").is_empty());
    assert!(uses_secret(&eps[0], "ca") && !neutron_uses_secret(&eps[0], "ca"));
    assert!(neutron_uses_secret(&eps[1], "clouds") && !uses_secret(&eps[1], "clouds"));
}

#[test]
fn an_interconnect_requeues_its_two_endpoints_in_its_namespace() {
    let cic = interconnect("ns", "a", "b", json!({}));
    assert_eq!(names(endpoints_of(&cic)), ["ns/a", "ns/b"]);
}

/// Speakers s1 (endpoint a, 192.0.2.1) and s2 (b, 192.0.2.2, and c, 192.0.2.3, on one speaker);
/// e is external (no speaker).
fn speaker_fixture() -> (Vec<Arc<InfraEndpoint>>, Vec<Arc<CellInterconnect>>) {
    let eps = vec![
        managed("ns", "a", "192.0.2.1", "http://s1:50051"),
        managed("ns", "b", "192.0.2.2", "http://s2:50051"),
        managed("ns", "c", "192.0.2.3", "http://s2:50051"),
        endpoint("ns", "e", "192.0.2.5", Value::Null, Value::Null),
    ];
    let cics = vec![
        interconnect("ns", "a", "b", json!({})),
        interconnect("ns", "a", "c", json!({})),
        interconnect("ns", "b", "e", json!({})),
    ];
    (eps, cics)
}

#[test]
fn a_peer_change_requeues_only_the_interconnects_whose_other_endpoint_is_that_neighbour() {
    let (eps, cics) = speaker_fixture();
    let (s1, s2) = (key(&eps[0]), key(&eps[1]));
    // On s1, the peer 192.0.2.3 (endpoint c) changed: a-c only, not a-b.
    let on = |c: &[SpeakerChange]| names(interconnects_on(lookup(&eps), &cics, c));
    assert_eq!(on(&[change(&s1, Some("192.0.2.3"))]), ["ns/a-c"]);
    // On s2, the peer 192.0.2.1 (endpoint a) changed: b-a and c-a live on s2, b-e does not.
    assert_eq!(on(&[change(&s2, Some("192.0.2.1"))]), ["ns/a-b", "ns/a-c"]);
    // A neighbour no interconnect has, or a speaker nobody uses: nothing.
    assert!(on(&[change(&s1, Some("198.51.100.9"))]).is_empty());
    assert!(on(&[change("GoBgp|http://nobody:50051", None)]).is_empty());
}

#[test]
fn a_whole_speaker_change_requeues_every_interconnect_and_endpoint_on_it() {
    let (eps, cics) = speaker_fixture();
    let s2 = key(&eps[1]);
    let whole = [change(&s2, None)];
    assert_eq!(
        names(interconnects_on(lookup(&eps), &cics, &whole)),
        ["ns/a-b", "ns/a-c", "ns/b-e"]
    );
    assert_eq!(names(endpoints_on(&eps, &whole)), ["ns/b", "ns/c"]);
    // A peer change is not a change of the speaker as a whole: no endpoint is requeued.
    assert!(endpoints_on(&eps, &[change(&s2, Some("192.0.2.1"))]).is_empty());
    assert_eq!(
        whole_speakers(&[change(&s2, None), change("x", Some("192.0.2.1"))]).len(),
        1
    );
}

#[test]
fn both_ends_of_a_session_in_one_window_requeue_the_interconnect_once() {
    // Speaker a reports neighbour b, speaker b reports neighbour a: the same interconnect.
    let objects_on = |changes: &[SpeakerChange]| {
        assert_eq!(changes.len(), 3, "the repeated change is passed on once");
        changes
            .iter()
            .map(|c| match c.key.as_str() {
                "a" | "b" => ObjectRef::<CellInterconnect>::new("ab").within("ns"),
                _ => ObjectRef::new("cd").within("ns"),
            })
            .collect()
    };
    let changes = [
        change("a", Some("192.0.2.2")),
        change("b", Some("192.0.2.1")),
        change("c", None),
        change("a", Some("192.0.2.2")),
    ];
    let names: Vec<String> = coalesce(&changes, &objects_on)
        .into_iter()
        .map(|o| o.name)
        .collect();
    assert_eq!(names, ["ab", "cd"]);
}

#[test]
fn both_ends_of_a_real_session_in_one_window_requeue_the_interconnect_once() {
    let (eps, cics) = speaker_fixture();
    let (s1, s2) = (key(&eps[0]), key(&eps[1]));
    // s1 sees b, s2 sees a (for a-b, and for a-c as c shares s2), then s1 sees b once more.
    let changes = [
        change(&s1, Some("192.0.2.2")),
        change(&s2, Some("192.0.2.1")),
        change(&s1, Some("192.0.2.2")),
    ];
    let objects_on = |c: &[SpeakerChange]| interconnects_on(lookup(&eps), &cics, c);
    assert_eq!(names(coalesce(&changes, &objects_on)), ["ns/a-b", "ns/a-c"]);
}
