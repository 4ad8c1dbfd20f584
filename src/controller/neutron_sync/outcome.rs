//! What the Neutron step hands to the endpoint's report: the ids to keep in `status.neutron`
//! and how it went, and how that goes into the status (pure).
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::conditions::{remove_condition, set_condition};
use crate::api::infra_endpoint::NeutronStatus;
use crate::api::{ConditionType, InfraEndpointStatus, Reason};
use crate::controller::problem::Problem;

/// The result of a Neutron reconcile or cleanup.
#[derive(Debug, Clone, PartialEq)]
pub struct NeutronOutcome {
    /// `status.neutron` to write; `None` removes it (after a cleanup). On a failure it still
    /// holds the ids of what was made before it, so that nothing is made twice.
    pub status: Option<NeutronStatus>,
    /// `Ok(message)`: Neutron holds what the spec asks (or nothing is left to clean up).
    pub result: Result<String, Problem>,
    /// Why the cloud's Keystone or Neutron URLs expose the password or token (plain http).
    pub insecure: Option<String>,
}

impl NeutronOutcome {
    /// Neutron holds what the spec asks; it answered.
    pub(super) fn configured(mut status: NeutronStatus, message: String) -> Self {
        status.reachable = Some(true);
        Self {
            status: Some(status),
            result: Ok(message),
            insecure: None,
        }
    }

    /// Nothing of cellnet's is left in Neutron for this endpoint (or there never was).
    pub(super) fn removed() -> Self {
        Self {
            status: None,
            result: Ok(String::new()),
            insecure: None,
        }
    }

    /// The step stopped on `problem`; whether Neutron answered follows from its reason.
    pub(super) fn failed(mut status: NeutronStatus, problem: Problem) -> Self {
        if let Some(answered) = answered(problem.reason) {
            status.reachable = Some(answered);
        }
        Self {
            status: Some(status),
            result: Err(problem),
            insecure: None,
        }
    }

    pub fn problem(&self) -> Option<&Problem> {
        self.result.as_ref().err()
    }
}

/// Whether Neutron (and Keystone) answered, judged by the reason a step stopped; `None` when
/// the step stopped before asking them (a Secret).
fn answered(reason: Reason) -> Option<bool> {
    match reason {
        Reason::NeutronUnreachable => Some(false),
        Reason::NeutronAuthFailed
        | Reason::NeutronRejected
        | Reason::NeutronError
        | Reason::NeutronConflict => Some(true),
        _ => None,
    }
}

/// Writes the outcome into `status`: `status.neutron` and the `NeutronConfigured` condition
/// (removed with `status.neutron`).
pub fn fold_status(
    status: &mut InfraEndpointStatus,
    outcome: &NeutronOutcome,
    generation: Option<i64>,
    now: &Time,
) {
    status.neutron = outcome.status.clone();
    if outcome.status.is_none() {
        remove_condition(&mut status.conditions, ConditionType::NeutronConfigured);
        return;
    }
    let (ok, reason, message) = match &outcome.result {
        Ok(message) => (true, Reason::NeutronConfigured, message.as_str()),
        Err(p) => (false, p.reason, p.message.as_str()),
    };
    set_condition(
        &mut status.conditions,
        ConditionType::NeutronConfigured,
        ok,
        reason.as_str(),
        message,
        generation,
        now,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::conditions::get_condition;
    use crate::neutron::NeutronError;

    fn now() -> Time {
        Time(k8s_openapi::jiff::Timestamp::from_second(1_700_000_000).unwrap())
    }

    #[test]
    fn reachability_follows_whether_neutron_answered() {
        let before = NeutronStatus {
            reachable: Some(true),
            ..Default::default()
        };
        let down = Problem::from(NeutronError::Unreachable("refused".into()));
        let out = NeutronOutcome::failed(before.clone(), down);
        assert_eq!(out.status.unwrap().reachable, Some(false));
        let refused = Problem::from(NeutronError::Auth("401".into()));
        let out = NeutronOutcome::failed(NeutronStatus::default(), refused);
        assert_eq!(out.status.unwrap().reachable, Some(true));
        let conflict = Problem::new(Reason::NeutronConflict, "theirs");
        let out = NeutronOutcome::failed(NeutronStatus::default(), conflict);
        assert_eq!(
            out.status.unwrap().reachable,
            Some(true),
            "a conflict is an answer"
        );
        // A missing Secret says nothing about Neutron: the last known value stays.
        let secret = Problem::new(Reason::SecretNotFound, "no Secret");
        let out = NeutronOutcome::failed(before, secret);
        assert_eq!(out.status.unwrap().reachable, Some(true));
        let out = NeutronOutcome::configured(NeutronStatus::default(), "ok".into());
        assert_eq!(out.status.unwrap().reachable, Some(true));
    }

    #[test]
    fn a_transient_neutron_error_is_retried_a_refusal_stalls() {
        let server = NeutronError::Api {
            status: 503,
            what: "GET /networks".into(),
            message: "busy".into(),
        };
        let out = NeutronOutcome::failed(NeutronStatus::default(), server.into());
        assert!(!out.problem().unwrap().stalled);
        let refused = NeutronError::Api {
            status: 409,
            what: "POST /networks".into(),
            message: "in use".into(),
        };
        let out = NeutronOutcome::failed(NeutronStatus::default(), refused.into());
        assert_eq!(out.problem().unwrap().reason, Reason::NeutronRejected);
        assert!(out.problem().unwrap().stalled);
    }

    #[test]
    fn folding_sets_the_condition_and_a_cleanup_removes_it() {
        let mut status = InfraEndpointStatus::default();
        let ids = NeutronStatus {
            network_id: Some("n1".into()),
            ..Default::default()
        };
        let failed = NeutronOutcome::failed(ids, Problem::new(Reason::NeutronConflict, "cell a: theirs"));
        fold_status(&mut status, &failed, Some(2), &now());
        let c = get_condition(&status.conditions, ConditionType::NeutronConfigured).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("False", Reason::NeutronConflict.as_str())
        );
        assert_eq!(c.message, "cell a: theirs");
        assert_eq!(status.neutron.as_ref().unwrap().network_id.as_deref(), Some("n1"));

        let ok = NeutronOutcome::configured(NeutronStatus::default(), "cell a: in place".into());
        fold_status(&mut status, &ok, Some(2), &now());
        let c = get_condition(&status.conditions, ConditionType::NeutronConfigured).unwrap();
        assert_eq!(
            (c.status.as_str(), c.reason.as_str()),
            ("True", Reason::NeutronConfigured.as_str())
        );

        fold_status(&mut status, &NeutronOutcome::removed(), Some(2), &now());
        assert!(get_condition(&status.conditions, ConditionType::NeutronConfigured).is_none());
        assert_eq!(status.neutron, None);
    }
}
