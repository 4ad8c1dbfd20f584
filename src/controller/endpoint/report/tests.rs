use serde_json::json;

use super::*;
use crate::api::conditions::get_condition;
use crate::neutron::NeutronError;

const RESYNC: Duration = Duration::from_secs(300);

fn now() -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap())
}

fn ep(managed: bool, status: Option<InfraEndpointStatus>) -> InfraEndpoint {
    let mut spec = json!({"cell": "c1", "address": "10.0.0.1", "asn": 65001});
    if managed {
        spec["sdn"] = json!({"type": "GoBGP", "url": "http://127.0.0.1:50051"});
    }
    let mut ep: InfraEndpoint = serde_json::from_value(json!({
        "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
        "metadata": {"name": "ep1", "namespace": "ns", "uid": "u1", "generation": 3},
        "spec": spec,
    }))
    .unwrap();
    ep.status = status;
    ep
}

fn ready() -> Verdict {
    Verdict::Ready {
        reason: Reason::SpeakerConfigured,
        message: "cell c1: speaker runs AS 65001".into(),
    }
}

fn live(verdict: Verdict) -> Facts {
    Facts {
        phase: Phase::Live,
        users: 2,
        verdict,
        sdn_reachable: Some(true),
        neutron: None,
        speaker_started: None,
        networks: None,
        insecure: None,
    }
}

fn condition(status: &InfraEndpointStatus, type_: ConditionType) -> Option<(String, String)> {
    get_condition(&status.conditions, type_).map(|c| (c.status.clone(), c.reason.clone()))
}

fn pair(status: &str, reason: Reason) -> Option<(String, String)> {
    Some((status.into(), reason.as_str().into()))
}

fn neutron_failed(problem: Problem) -> NeutronOutcome {
    NeutronOutcome {
        status: Some(NeutronStatus::default()),
        result: Err(problem),
        insecure: None,
    }
}

#[test]
fn the_first_problem_wins() {
    let conflict = Problem::new(Reason::NeutronConflict, "cell c1: theirs");
    let failed = neutron_failed(conflict.clone());
    assert_eq!(ready().with_neutron(Some(&failed)), Verdict::NotReady(conflict));
    let speaker = Verdict::NotReady(Problem::new(Reason::SpeakerConflict, "cell c1: AS"));
    assert_eq!(
        speaker.clone().with_neutron(Some(&failed)),
        speaker,
        "the speaker's comes first"
    );
    let ok = NeutronOutcome {
        status: Some(NeutronStatus::default()),
        result: Ok("in place".into()),
        insecure: None,
    };
    assert_eq!(ready().with_neutron(Some(&ok)), ready());
    assert_eq!(ready().with_neutron(None), ready());
}

#[test]
fn a_ready_managed_endpoint_reports_its_speaker_and_counts() {
    let status = new_status(&ep(true, None), &live(ready()), None, &now());
    assert_eq!(
        condition(&status, ConditionType::Ready),
        pair("True", Reason::SpeakerConfigured)
    );
    assert_eq!(
        condition(&status, ConditionType::SpeakerConfigured),
        pair("True", Reason::SpeakerConfigured)
    );
    assert_eq!(condition(&status, ConditionType::Stalled), None);
    assert_eq!(condition(&status, ConditionType::Reconciling), None);
    assert_eq!((status.interconnects, status.sdn_reachable), (2, Some(true)));
    assert_eq!(
        (status.observed_generation, status.sdn),
        (Some(3), Some(SdnKind::GoBgp))
    );
}

#[test]
fn an_external_endpoint_has_no_speaker_condition() {
    let old = new_status(&ep(true, None), &live(ready()), None, &now());
    let external = Verdict::Ready {
        reason: Reason::External,
        message: "external endpoint of cell c1: cellnet does not configure it".into(),
    };
    let status = new_status(&ep(false, Some(old)), &live(external), None, &now());
    assert_eq!(
        condition(&status, ConditionType::Ready),
        pair("True", Reason::External)
    );
    assert_eq!(condition(&status, ConditionType::SpeakerConfigured), None);
    assert_eq!(status.sdn, Some(SdnKind::External));
}

#[test]
fn a_transient_problem_is_reconciling_a_lasting_one_stalled() {
    let down = Problem::from(crate::sdn::SdnError::Unreachable {
        endpoint: "http://127.0.0.1:1".into(),
        message: "refused".into(),
    });
    let status = new_status(&ep(true, None), &live(Verdict::NotReady(down)), None, &now());
    assert_eq!(
        condition(&status, ConditionType::Ready),
        pair("False", Reason::SdnUnreachable)
    );
    assert_eq!(
        condition(&status, ConditionType::Reconciling),
        pair("True", Reason::SdnUnreachable)
    );
    assert_eq!(condition(&status, ConditionType::Stalled), None);
    let conflict = Problem::new(Reason::SpeakerConflict, "cell c1: AS");
    let status = new_status(&ep(true, None), &live(Verdict::NotReady(conflict)), None, &now());
    assert_eq!(
        condition(&status, ConditionType::Stalled),
        pair("True", Reason::SpeakerConflict)
    );
    assert_eq!(condition(&status, ConditionType::Reconciling), None);
}

#[test]
fn neutron_goes_into_its_own_condition_and_the_memo_is_the_base() {
    let known = NeutronStatus {
        network_id: Some("memo".into()),
        ..Default::default()
    };
    // No Neutron step ran: status.neutron is what this process knows.
    let status = new_status(&ep(true, None), &live(ready()), Some(known.clone()), &now());
    assert_eq!(status.neutron, Some(known.clone()));
    let refused = Problem::from(NeutronError::Auth("401".into())).within("cell c1");
    let mut facts = live(ready().with_neutron(Some(&neutron_failed(refused.clone()))));
    facts.neutron = Some(neutron_failed(refused));
    let status = new_status(&ep(true, None), &facts, Some(known), &now());
    assert_eq!(
        condition(&status, ConditionType::NeutronConfigured),
        pair("False", Reason::NeutronAuthFailed)
    );
    assert_eq!(
        condition(&status, ConditionType::Ready),
        pair("False", Reason::NeutronAuthFailed)
    );
    assert_eq!(
        status.neutron,
        Some(NeutronStatus::default()),
        "the step's ids win"
    );
}

#[test]
fn only_a_changed_count_is_a_count_only_change() {
    let old = InfraEndpointStatus {
        interconnects: 3,
        sdn_reachable: Some(true),
        ..Default::default()
    };
    let more = InfraEndpointStatus {
        interconnects: 4,
        ..old.clone()
    };
    assert!(count_only_change(&old, &more));
    let unreachable = InfraEndpointStatus {
        sdn_reachable: Some(false),
        ..more.clone()
    };
    assert!(
        !count_only_change(&old, &unreachable),
        "reachability must go at once"
    );
    assert!(!count_only_change(&old, &old.clone()), "no change at all");
    assert_eq!(write_kind(Some(&old), &old.clone()), Write::Unchanged);
    assert_eq!(write_kind(Some(&old), &more), Write::CountOnly);
    assert_eq!(write_kind(Some(&old), &unreachable), Write::Now);
    assert_eq!(write_kind(None, &more), Write::Now, "a first status goes at once");
}

#[test]
fn the_next_look_follows_the_phase_and_the_verdict() {
    let held = Some(Duration::from_secs(2));
    assert_eq!(
        next(&live(ready()), held, RESYNC),
        Next::After(Duration::from_secs(2))
    );
    assert_eq!(next(&live(ready()), None, RESYNC), Next::Resync(RESYNC));
    let transient = Problem::from(NeutronError::Unreachable("down".into()));
    assert_eq!(
        next(&live(Verdict::NotReady(transient.clone())), None, RESYNC),
        Next::Backoff
    );
    let stalled = Problem::new(Reason::NeutronConflict, "theirs");
    assert_eq!(
        next(&live(Verdict::NotReady(stalled.clone())), None, RESYNC),
        Next::Resync(RESYNC),
        "stalled: only the periodic check"
    );
    let in_use = Facts::stopped(Phase::InUse, 1, Problem::new(Reason::InUse, "waits"), None);
    assert_eq!(next(&in_use, None, RESYNC), Next::After(IN_USE_RECHECK));
    let cleanup = Facts::stopped(Phase::CleanupFailed, 0, stalled, None);
    assert_eq!(next(&cleanup, None, RESYNC), Next::Backoff);
}

#[test]
fn insecure_transport_is_a_condition_while_true_and_a_warning_when_new() {
    let why = "spec.sdn.url http://odl:8181 is plain http";
    let facts = Facts {
        insecure: Some(why.into()),
        ..live(ready())
    };
    let first = new_status(&ep(true, None), &facts, None, &now());
    assert_eq!(
        condition(&first, ConditionType::InsecureTransport),
        pair("True", Reason::InsecureTransport)
    );
    assert_eq!(
        condition(&first, ConditionType::Ready),
        pair("True", Reason::SpeakerConfigured)
    );
    assert_eq!(insecure_news(None, &facts).as_deref(), Some(why));
    assert_eq!(
        insecure_news(Some(&first), &facts),
        None,
        "said once, not every reconcile"
    );

    // A reconcile that stopped early keeps it; https removes it.
    let stopped = Facts::stopped(Phase::InUse, 1, Problem::new(Reason::InUse, "in use"), None);
    let kept = new_status(&ep(true, Some(first.clone())), &stopped, None, &now());
    assert!(condition(&kept, ConditionType::InsecureTransport).is_some());
    let secure = new_status(&ep(true, Some(first)), &live(ready()), None, &now());
    assert_eq!(condition(&secure, ConditionType::InsecureTransport), None);
}
