use k8s_openapi::ByteString;
use serde_json::{Value, json};

use super::super::super::status::ready_of;
use super::*;

/// A GoBGP-managed endpoint of `cell`; `sdn_reachable` is its status.sdnReachable.
fn managed(name: &str, cell: &str, sdn_reachable: Option<bool>) -> InfraEndpoint {
    serde_json::from_value(json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"cell": cell, "address": "192.0.2.1", "asn": 65001,
                 "sdn": {"type": "GoBGP", "url": format!("http://{cell}:50051")}},
        "status": {"sdnReachable": sdn_reachable},
    }))
    .unwrap()
}

fn external(name: &str, cell: &str) -> InfraEndpoint {
    serde_json::from_value(json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
        "metadata": {"name": name, "namespace": "ns"},
        "spec": {"cell": cell, "address": "192.0.2.2", "asn": 65002},
    }))
    .unwrap()
}

/// Interconnect `a-b` (generation 2); `status` is its status (null: none yet).
fn interconnect(spec: Value, status: Value) -> CellInterconnect {
    let mut s = json!({"localEndpoint": {"name": "a"}, "remoteEndpoint": {"name": "b"}});
    s.as_object_mut()
        .unwrap()
        .extend(spec.as_object().unwrap().clone());
    let mut obj = json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
        "metadata": {"name": "a-b", "namespace": "ns", "generation": 2},
        "spec": s,
    });
    if !status.is_null() {
        obj["status"] = status;
    }
    serde_json::from_value(obj).unwrap()
}

/// A status at generation 2 with Ready `ready`/`reason`/`message` and both sides.
fn status(ready: &str, reason: &str, message: &str, local: Value, remote: Value) -> Value {
    json!({
        "observedGeneration": 2,
        "conditions": [{"type": "Ready", "status": ready, "reason": reason, "message": message,
                        "lastTransitionTime": "2024-01-01T00:00:00Z"}],
        "local": local, "remote": remote,
    })
}

fn established() -> Value {
    json!({"peerAddress": "192.0.2.2", "sessionState": "Established", "configured": true, "flaps": 1})
}

fn verdicts(steps: &[Step]) -> Vec<(String, Verdict)> {
    steps.iter().map(|s| (s.title.clone(), s.verdict)).collect()
}

#[test]
fn a_healthy_chain_is_walked_speakers_then_peers_then_sessions() {
    let ready = Reason::SessionEstablished.as_str();
    let cic = interconnect(
        json!({}),
        status("True", ready, "up", established(), established()),
    );
    let endpoints: Endpoints = vec![
        ("local", Some(managed("a", "cell1", Some(true)))),
        ("remote", Some(managed("b", "cell2", Some(true)))),
    ];
    let steps = chain(&cic, &endpoints, &ready_of(&cic));
    let titles: Vec<&str> = steps.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "local speaker reachable (cell cell1, GoBGP http://cell1:50051)",
            "remote speaker reachable (cell cell2, GoBGP http://cell2:50051)",
            "local peer 192.0.2.2 configured on cell cell1's speaker",
            "remote peer 192.0.2.2 configured on cell cell2's speaker",
            "local BGP session (cell cell1)",
            "remote BGP session (cell cell2)",
        ]
    );
    assert!(steps.iter().all(|s| s.verdict == Verdict::Ok), "{steps:?}");
    let ready = ready_condition(&ready_of(&cic));
    assert_eq!(ready.verdict, Verdict::Ok);
    assert_eq!(
        ready.evidence,
        [format!("True {}: up", Reason::SessionEstablished)]
    );
}

#[test]
fn an_unreachable_reason_about_this_side_fails_its_speaker_and_leaves_the_rest_unknown() {
    let failing = json!({"peerAddress": "192.0.2.2", "configured": true, "message": "connection refused"});
    let message = "cell cell1 -> cell cell2 (local): connection refused";
    for reason in [
        Reason::SdnUnreachable,
        Reason::SdnAuthFailed,
        Reason::SdnTlsFailed,
    ] {
        let cic = interconnect(
            json!({}),
            status("False", reason.as_str(), message, failing.clone(), established()),
        );
        let endpoints: Endpoints = vec![
            ("local", Some(managed("a", "cell1", None))),
            ("remote", Some(managed("b", "cell2", None))),
        ];
        let steps = chain(&cic, &endpoints, &ready_of(&cic));
        let v = verdicts(&steps);
        assert_eq!(v[0].1, Verdict::Failed, "{reason}: {steps:?}");
        assert_eq!(steps[0].evidence, ["status.local.message: connection refused"]);
        assert_eq!(v[1].1, Verdict::Ok, "the other side answered: {steps:?}");
        assert_eq!(
            (v[2].1, v[4].1),
            (Verdict::Unknown, Verdict::Unknown),
            "{steps:?}"
        );
        assert_eq!(
            steps[4].evidence[0],
            "speaker not reachable; last known state below"
        );
    }
}

#[test]
fn another_reason_or_another_cell_means_the_speaker_answered() {
    let failing = json!({"peerAddress": "192.0.2.2", "configured": true, "message": "peer conflict"});
    let endpoints: Endpoints = vec![
        ("local", Some(managed("a", "cell1", None))),
        ("remote", Some(managed("b", "cell2", None))),
    ];
    for (reason, message) in [
        // Not an unreachable reason: the speaker answered, with a problem.
        (
            Reason::PeerConflict.as_str(),
            "cell cell1 -> cell cell2 (local): peer conflict",
        ),
        // A reason this plugin does not know (a newer controller).
        ("SomeNewReason", "cell cell1 -> cell cell2 (local): peer conflict"),
        // Unreachable, but about the other cell.
        (
            Reason::SdnUnreachable.as_str(),
            "cell cell2 -> cell cell1 (remote): refused",
        ),
    ] {
        let cic = interconnect(
            json!({}),
            status("False", reason, message, failing.clone(), established()),
        );
        let steps = chain(&cic, &endpoints, &ready_of(&cic));
        assert_eq!(steps[0].verdict, Verdict::Ok, "{reason}: {steps:?}");
        assert_eq!(steps[0].evidence, ["it answered, but: peer conflict"]);
        assert_eq!(steps[2].verdict, Verdict::Failed, "{reason}: {steps:?}");
        assert_eq!(steps[2].evidence, ["peer conflict"]);
    }
}

#[test]
fn an_endpoint_reported_unreachable_fails_its_speaker() {
    let side = json!({"peerAddress": "192.0.2.2", "sessionState": "Active", "configured": true});
    let cic = interconnect(
        json!({}),
        status(
            "False",
            Reason::SessionNotEstablished.as_str(),
            "",
            side,
            established(),
        ),
    );
    let endpoints: Endpoints = vec![("local", Some(managed("a", "cell1", Some(false))))];
    let steps = chain(&cic, &endpoints, &ready_of(&cic));
    assert_eq!(steps[0].verdict, Verdict::Failed);
    assert_eq!(steps[0].evidence, ["InfraEndpoint a status.sdnReachable: false"]);
    assert_eq!(
        steps[1].evidence,
        ["speaker not reachable; last known: configured=true"]
    );
}

#[test]
fn before_any_status_the_ready_reason_is_no_status_and_the_sides_are_unknown() {
    let cic = interconnect(json!({}), Value::Null);
    let ready = ready_of(&cic);
    assert_eq!(ready.reason(), Some(Reason::NoStatus));
    let step = ready_condition(&ready);
    assert_eq!(step.verdict, Verdict::Failed);
    assert_eq!(
        step.evidence,
        [format!(
            "Unknown {}: the controller has not written status yet",
            Reason::NoStatus
        )]
    );
    let endpoints: Endpoints = vec![("local", Some(managed("a", "cell1", None))), ("remote", None)];
    let steps = chain(&cic, &endpoints, &ready);
    assert_eq!(
        verdicts(&steps),
        [
            (
                "local speaker reachable (cell cell1, GoBGP http://cell1:50051)".to_string(),
                Verdict::Unknown
            ),
            ("remote side".to_string(), Verdict::Unknown),
        ]
    );
    assert_eq!(steps[0].evidence, ["status has no entry for this side yet"]);
    assert_eq!(controller_steps(&cic)[0].verdict, Verdict::Failed);
}

#[test]
fn a_side_without_session_state_waits_with_the_peers() {
    let side = json!({"peerAddress": "192.0.2.2"});
    let cic = interconnect(json!({}), status("False", "", "", side, Value::Null));
    let endpoints: Endpoints = vec![("local", Some(managed("a", "cell1", None)))];
    let titles: Vec<String> = chain(&cic, &endpoints, &ready_of(&cic))
        .into_iter()
        .map(|s| s.title)
        .collect();
    assert_eq!(
        titles,
        [
            "local speaker reachable (cell cell1, GoBGP http://cell1:50051)",
            "local peer 192.0.2.2 configured on cell cell1's speaker",
            "local BGP session (cell cell1)",
        ]
    );
}

#[test]
fn an_external_side_is_ok_and_has_no_chain() {
    let cic = interconnect(json!({}), Value::Null);
    let endpoints: Endpoints = vec![("remote", Some(external("b", "cell9")))];
    let steps = chain(&cic, &endpoints, &ready_of(&cic));
    assert_eq!(
        verdicts(&steps),
        [("remote side (cell cell9) is external".to_string(), Verdict::Ok)]
    );
    let (step, _) = endpoint_exists("remote", "ns", "b", Ok(Some(external("b", "cell9"))));
    assert_eq!(
        step.evidence,
        ["cell cell9, BGP 192.0.2.2:179, AS 65002, external (not managed by cellnet)"]
    );
}

#[test]
fn suspended_and_disabled_say_how_to_undo_them() {
    let cic = interconnect(
        json!({"suspend": true, "adminState": "Disabled", "adminMessage": "maintenance"}),
        json!({"observedGeneration": 1}),
    );
    let [observed, suspended, enabled] = controller_steps(&cic);
    assert_eq!(observed.verdict, Verdict::Failed);
    assert!(
        observed.evidence[0].starts_with("status is for generation 1:"),
        "{observed:?}"
    );
    assert!(
        suspended.evidence[0].ends_with("(kubectl cellnet resume a-b)"),
        "{suspended:?}"
    );
    assert_eq!(
        enabled.evidence,
        [
            "spec.adminState is Disabled with message \"maintenance\": sessions are shut down on purpose \
          (kubectl cellnet enable a-b)"
        ]
    );
}

fn secret(keys: &[&str]) -> Secret {
    let mut s = Secret::default();
    s.metadata.resource_version = Some("7".into());
    s.data = Some(
        keys.iter()
            .map(|k| (k.to_string(), ByteString(b"value".to_vec())))
            .collect(),
    );
    s
}

#[test]
fn a_secret_must_exist_and_hold_its_key_whose_value_is_never_shown() {
    let check = |key, found| secret_present("ns", "pw", key, "BGP password, key password", found);
    let ok = check(Some("password"), Ok(Some(secret(&["password"]))));
    assert_eq!(
        (ok.verdict, ok.evidence),
        (Verdict::Ok, vec!["resourceVersion 7".to_string()])
    );
    let missing_key = check(Some("password"), Ok(Some(secret(&["b", "a"]))));
    assert_eq!(missing_key.verdict, Verdict::Failed);
    assert_eq!(
        missing_key.evidence,
        ["no key \"password\" in it (keys: a, b); resourceVersion 7"]
    );
    assert!(!missing_key.evidence[0].contains("value"));
    let absent = check(None, Ok(None));
    assert_eq!(absent.evidence, ["Secret ns/pw does not exist"]);
    let forbidden = check(None, Err(anyhow::anyhow!("cannot read it: no permission")));
    assert_eq!(forbidden.verdict, Verdict::Unknown);
}

#[test]
fn recent_events_are_the_five_newest_first_and_never_a_failure() {
    let event = |n: i64| -> Event {
        serde_json::from_value(json!({
            "metadata": {"name": format!("e{n}")},
            "involvedObject": {},
            "type": "Normal", "reason": Reason::PeerCreated.as_str(), "message": format!("event {n}"),
            "lastTimestamp": format!("2024-01-01T00:00:0{n}Z"),
        }))
        .unwrap()
    };
    let step = recent_events(Ok((0..7).map(event).collect()));
    assert_eq!(step.verdict, Verdict::Ok);
    assert_eq!(step.evidence.len(), 5);
    assert!(step.evidence[0].ends_with(&format!("Normal {}: event 6", Reason::PeerCreated)));
    assert!(step.evidence[4].ends_with("event 2"));
    assert_eq!(recent_events(Ok(vec![])).evidence, ["none"]);
    assert_eq!(
        recent_events(Err(anyhow::anyhow!("no"))).verdict,
        Verdict::Unknown
    );
}

#[test]
fn a_stuck_session_shows_its_outage_cause_and_resets_and_its_peer_stays_configured() {
    let cause = "stuck in Active for more than 27 s: no OPEN ever received: the TCP connection to 192.0.2.2:179 does not come up";
    let stuck = json!({"peerAddress": "192.0.2.2", "sessionState": "Active", "configured": true,
        "notEstablishedSince": "2024-01-01T00:00:00Z", "message": cause,
        "resets": 2, "lastResetTime": "2024-01-01T00:01:00Z"});
    let up = json!({"peerAddress": "192.0.2.1", "sessionState": "Established", "configured": true,
        "negotiatedHoldTime": 9, "negotiatedKeepalive": 3});
    let cic = interconnect(
        json!({}),
        status("False", Reason::SessionStuck.as_str(), cause, stuck, up),
    );
    let endpoints: Endpoints = vec![
        ("local", Some(managed("a", "cell1", Some(true)))),
        ("remote", Some(managed("b", "cell2", Some(true)))),
    ];
    let steps = chain(&cic, &endpoints, &ready_of(&cic));
    let step = |title: &str| steps.iter().find(|s| s.title.starts_with(title)).unwrap();
    assert_eq!(
        step("local peer").verdict,
        Verdict::Ok,
        "a stuck session is configured"
    );
    let session = step("local BGP session");
    assert_eq!(
        (session.verdict, session.layer),
        (Verdict::Failed, Layer::Session)
    );
    let evidence = session.evidence.join("\n");
    assert!(
        evidence.contains("not Established since 2024-01-01T00:00:00Z"),
        "{evidence}"
    );
    assert!(evidence.contains("no OPEN ever received"), "{evidence}");
    assert!(
        evidence.contains("cellnet reset this stuck session 2 time(s)"),
        "{evidence}"
    );
    let remote = step("remote BGP session").evidence.join("\n");
    assert!(
        remote.contains("negotiated hold time/keepalive: 9s/3s"),
        "{remote}"
    );
}
