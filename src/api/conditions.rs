//! Status conditions (`metav1.Condition`) of cellnet objects.
//!
//! `Ready`, `Reconciling` and `Stalled` follow kstatus: `Reconciling` and `Stalled` are
//! "abnormal-true" (present and True only while that is the case).
use std::fmt;
use std::str::FromStr;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// The API server's limit on a condition message.
const MAX_MESSAGE_BYTES: usize = 32768;

/// Every condition type cellnet writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ConditionType {
    /// The object is fully reconciled and working.
    Ready,
    /// The controller is working towards the desired state.
    Reconciling,
    /// The controller cannot make progress without a change (bad reference, conflict...).
    Stalled,
    /// CellInterconnect: the local speaker has the peer configured.
    LocalConfigured,
    /// CellInterconnect: the remote speaker has the peer configured (False for external remotes).
    RemoteConfigured,
    /// CellInterconnect: the BGP session is Established.
    SessionEstablished,
    /// InfraEndpoint: the speaker's global BGP configuration is in place.
    SpeakerConfigured,
    /// InfraEndpoint: Neutron has the network, subnet and BGP resources of `spec.neutron`.
    NeutronConfigured,
    /// CellInterconnect: every prefix each managed side should accept is in its table.
    RoutesExchanged,
    /// InfraEndpoint: its networks are announced by its speaker (False: a conflict with
    /// another cell's endpoint, or the speaker refused them).
    NetworksAnnounced,
    /// CellInterconnect: every managed side has the other cell's VTEP for every stretched L2
    /// segment (present only when `spec.l2` is set).
    SegmentsStretched,
    /// InfraEndpoint, present only while true: cellnet sends credentials to an API over plain
    /// `http://`, or skips verifying its TLS certificate (`--require-tls` refuses both).
    InsecureTransport,
}

impl ConditionType {
    pub const ALL: [ConditionType; 12] = [
        Self::Ready,
        Self::Reconciling,
        Self::Stalled,
        Self::LocalConfigured,
        Self::RemoteConfigured,
        Self::SessionEstablished,
        Self::SpeakerConfigured,
        Self::NeutronConfigured,
        Self::RoutesExchanged,
        Self::NetworksAnnounced,
        Self::SegmentsStretched,
        Self::InsecureTransport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "Ready",
            Self::Reconciling => "Reconciling",
            Self::Stalled => "Stalled",
            Self::LocalConfigured => "LocalConfigured",
            Self::RemoteConfigured => "RemoteConfigured",
            Self::SessionEstablished => "SessionEstablished",
            Self::SpeakerConfigured => "SpeakerConfigured",
            Self::NeutronConfigured => "NeutronConfigured",
            Self::RoutesExchanged => "RoutesExchanged",
            Self::NetworksAnnounced => "NetworksAnnounced",
            Self::SegmentsStretched => "SegmentsStretched",
            Self::InsecureTransport => "InsecureTransport",
        }
    }
}

impl fmt::Display for ConditionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConditionType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown condition type {s:?}"))
    }
}

fn status_str(status: bool) -> &'static str {
    if status { "True" } else { "False" }
}

/// Truncates to the API server's limit, on a character boundary.
fn bounded(message: &str) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message.to_string();
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_string()
}

fn whole_seconds(t: &Time) -> Time {
    Time(Timestamp::from_second(t.0.as_second()).unwrap_or(t.0))
}

/// Sets condition `type_` in `conditions`, adding it if missing.
///
/// `lastTransitionTime` becomes `now` (truncated to whole seconds) only when the condition is new or its status flips, so that
/// it tells since when the status holds. Returns whether anything changed (to skip needless status
/// writes).
pub fn set_condition(
    conditions: &mut Vec<Condition>,
    type_: ConditionType,
    status: bool,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
    now: &Time,
) -> bool {
    let status = status_str(status);
    let message = bounded(message);
    // The API server keeps whole seconds; so do we, so that a status read back compares equal.
    let now = &whole_seconds(now);
    match conditions.iter_mut().find(|c| c.type_ == type_.as_str()) {
        Some(existing) => {
            let before = existing.clone();
            if existing.status != status {
                existing.status = status.to_string();
                existing.last_transition_time = now.clone();
            }
            existing.reason = reason.to_string();
            existing.message = message;
            existing.observed_generation = observed_generation;
            *existing != before
        }
        None => {
            conditions.push(Condition {
                type_: type_.as_str().to_string(),
                status: status.to_string(),
                reason: reason.to_string(),
                message,
                observed_generation,
                last_transition_time: now.clone(),
            });
            true
        }
    }
}

/// Removes condition `type_`; returns whether it was there (kstatus drops `Reconciling` and
/// `Stalled` once they no longer apply).
pub fn remove_condition(conditions: &mut Vec<Condition>, type_: ConditionType) -> bool {
    let before = conditions.len();
    conditions.retain(|c| c.type_ != type_.as_str());
    conditions.len() != before
}

/// kstatus's "abnormal-true" pair: `Stalled` and `Reconciling` are present (True) only while they
/// apply, and removed otherwise.
pub fn set_progress(
    conditions: &mut Vec<Condition>,
    stalled: bool,
    reconciling: bool,
    reason: &str,
    message: &str,
    observed_generation: Option<i64>,
    now: &Time,
) {
    for (type_, on) in [
        (ConditionType::Stalled, stalled),
        (ConditionType::Reconciling, reconciling),
    ] {
        if on {
            set_condition(conditions, type_, true, reason, message, observed_generation, now);
        } else {
            remove_condition(conditions, type_);
        }
    }
}

/// The condition of type `type_`, if present.
pub fn get_condition(conditions: &[Condition], type_: ConditionType) -> Option<&Condition> {
    conditions.iter().find(|c| c.type_ == type_.as_str())
}

/// Whether condition `type_` is present with status True.
pub fn is_true(conditions: &[Condition], type_: ConditionType) -> bool {
    get_condition(conditions, type_).is_some_and(|c| c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn adds_a_missing_condition() {
        let mut conds = vec![];
        assert!(set_condition(
            &mut conds,
            ConditionType::Ready,
            true,
            "Established",
            "up",
            Some(3),
            &at(10)
        ));
        assert_eq!(conds.len(), 1);
        let c = &conds[0];
        assert_eq!(
            (c.type_.as_str(), c.status.as_str(), c.reason.as_str()),
            ("Ready", "True", "Established")
        );
        assert_eq!(c.message, "up");
        assert_eq!(c.observed_generation, Some(3));
        assert_eq!(c.last_transition_time, at(10));
    }

    #[test]
    fn keeps_transition_time_while_status_holds() {
        let mut conds = vec![];
        set_condition(
            &mut conds,
            ConditionType::Ready,
            false,
            "Connecting",
            "a",
            Some(1),
            &at(10),
        );
        let changed = set_condition(
            &mut conds,
            ConditionType::Ready,
            false,
            "Waiting",
            "b",
            Some(2),
            &at(20),
        );
        assert!(changed);
        assert_eq!(conds[0].last_transition_time, at(10));
        assert_eq!(
            (conds[0].reason.as_str(), conds[0].message.as_str()),
            ("Waiting", "b")
        );
        assert_eq!(conds[0].observed_generation, Some(2));
    }

    #[test]
    fn flips_update_transition_time() {
        let mut conds = vec![];
        set_condition(
            &mut conds,
            ConditionType::Ready,
            false,
            "Connecting",
            "",
            None,
            &at(10),
        );
        set_condition(
            &mut conds,
            ConditionType::Ready,
            true,
            "Established",
            "",
            None,
            &at(30),
        );
        assert_eq!(conds[0].status, "True");
        assert_eq!(conds[0].last_transition_time, at(30));
    }

    #[test]
    fn identical_update_reports_no_change() {
        let mut conds = vec![];
        set_condition(
            &mut conds,
            ConditionType::Stalled,
            true,
            "NotFound",
            "x",
            Some(1),
            &at(10),
        );
        assert!(!set_condition(
            &mut conds,
            ConditionType::Stalled,
            true,
            "NotFound",
            "x",
            Some(1),
            &at(99)
        ));
        assert_eq!(conds[0].last_transition_time, at(10));
    }

    #[test]
    fn conditions_are_independent() {
        let mut conds = vec![];
        set_condition(&mut conds, ConditionType::Ready, true, "R", "", None, &at(1));
        set_condition(
            &mut conds,
            ConditionType::Reconciling,
            true,
            "R",
            "",
            None,
            &at(2),
        );
        assert_eq!(conds.len(), 2);
        assert!(is_true(&conds, ConditionType::Ready));
        assert!(is_true(&conds, ConditionType::Reconciling));
        assert!(!is_true(&conds, ConditionType::Stalled));
        assert!(remove_condition(&mut conds, ConditionType::Reconciling));
        assert!(!remove_condition(&mut conds, ConditionType::Reconciling));
        assert_eq!(conds.len(), 1);
        assert!(get_condition(&conds, ConditionType::Ready).is_some());
    }

    #[test]
    fn long_messages_are_truncated_on_a_char_boundary() {
        let mut conds = vec![];
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        set_condition(&mut conds, ConditionType::Ready, true, "R", &long, None, &at(1));
        assert!(conds[0].message.len() <= MAX_MESSAGE_BYTES);
        assert!(conds[0].message.chars().all(|c| c == 'é'));
    }

    #[test]
    fn times_are_kept_to_whole_seconds() {
        let mut conds = vec![];
        let precise = Time(Timestamp::new(10, 999_999_999).unwrap());
        set_condition(&mut conds, ConditionType::Ready, true, "R", "", None, &precise);
        assert_eq!(conds[0].last_transition_time, at(10));
    }

    #[test]
    fn types_parse_and_print() {
        for t in ConditionType::ALL {
            assert_eq!(t.to_string().parse::<ConditionType>(), Ok(t));
        }
        assert!("Nope".parse::<ConditionType>().is_err());
    }
}
