//! The steps of the walk from what was read, without I/O: the objects exist, the Secrets hold
//! their keys, the controller has caught up, then down the chain of each managed side (speaker
//! reachable, peer configured, session Established), the Ready condition and the recent events.
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::ResourceExt;

use super::super::output::{age, shorten};
use super::super::status::{Ready, since};
use super::{Endpoints, Layer, Step, Verdict, step};
use crate::api::{AdminState, CellInterconnect, InfraEndpoint, Reason, SdnKind, SessionState, SideStatus};

/// Each side of the interconnect and the name of its endpoint.
pub fn sides(cic: &CellInterconnect) -> [(&'static str, &String); 2] {
    [
        ("local", &cic.spec.local_endpoint.name),
        ("remote", &cic.spec.remote_endpoint.name),
    ]
}

pub fn interconnect_exists(ns: &str, cic: &CellInterconnect) -> Step {
    let generation = cic.metadata.generation.unwrap_or_default();
    step(
        format!("CellInterconnect {ns}/{} exists", cic.name_any()),
        Verdict::Ok,
        vec![format!(
            "generation {generation}, local {}, remote {}",
            cic.spec.local_endpoint.name, cic.spec.remote_endpoint.name
        )],
    )
}

/// The step of one side's InfraEndpoint, and the endpoint when it was found.
pub fn endpoint_exists(
    which: &str,
    ns: &str,
    name: &str,
    found: anyhow::Result<Option<InfraEndpoint>>,
) -> (Step, Option<InfraEndpoint>) {
    let title = format!("{which} InfraEndpoint {ns}/{name} exists");
    match found {
        Ok(Some(ep)) => {
            let sdn = match &ep.spec.sdn {
                Some(s) => format!("{} at {}", serde_name(s.type_), s.url),
                None => "external (not managed by cellnet)".into(),
            };
            let evidence = format!(
                "cell {}, BGP {}:{}, AS {}, {sdn}",
                ep.spec.cell, ep.spec.address, ep.spec.port, ep.spec.asn
            );
            (step(title, Verdict::Ok, vec![evidence]), Some(ep))
        }
        Ok(None) => (
            step(
                title,
                Verdict::Failed,
                vec![format!("InfraEndpoint {ns}/{name} does not exist")],
            ),
            None,
        ),
        Err(e) => (step(title, Verdict::Unknown, vec![format!("{e:#}")]), None),
    }
}

/// The name of an enum value as written in YAML (`GoBGP`, `OpenDaylight`, `External`).
fn serde_name(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// The Secret `ns/name` exists and, when `key` is given, holds that key. The value is read to
/// check the key, never printed.
pub fn secret_present(
    ns: &str,
    name: &str,
    key: Option<&str>,
    purpose: &str,
    found: anyhow::Result<Option<Secret>>,
) -> Step {
    let title = format!("Secret {ns}/{name} present ({purpose})");
    let secret = match found {
        Ok(Some(secret)) => secret,
        Ok(None) => {
            return step(
                title,
                Verdict::Failed,
                vec![format!("Secret {ns}/{name} does not exist")],
            );
        }
        Err(e) => return step(title, Verdict::Unknown, vec![format!("{e:#}")]),
    };
    let rv = format!(
        "resourceVersion {}",
        secret.resource_version().unwrap_or_default()
    );
    let has_key = |k: &str| {
        secret.data.as_ref().is_some_and(|d| d.contains_key(k))
            || secret.string_data.as_ref().is_some_and(|d| d.contains_key(k))
    };
    match key {
        Some(k) if !has_key(k) => {
            let mut keys: Vec<String> = secret.data.iter().flat_map(|d| d.keys().cloned()).collect();
            keys.sort();
            step(
                title,
                Verdict::Failed,
                vec![format!("no key {k:?} in it (keys: {}); {rv}", keys.join(", "))],
            )
        }
        _ => step(title, Verdict::Ok, vec![rv]),
    }
}

/// The controller has seen this generation, and nothing in the spec stops it on purpose.
pub fn controller_steps(cic: &CellInterconnect) -> [Step; 3] {
    [observed_generation(cic), not_suspended(cic), enabled(cic)]
}

fn observed_generation(cic: &CellInterconnect) -> Step {
    let generation = cic.metadata.generation.unwrap_or_default();
    let observed = cic.status.as_ref().and_then(|s| s.observed_generation);
    let title = format!("controller has observed generation {generation}");
    match observed {
        None => step(
            title,
            Verdict::Failed,
            vec![
                "no status.observedGeneration: is cellnet-controller running, with RBAC on this namespace?"
                    .into(),
            ],
        ),
        Some(g) if g < generation => step(
            title,
            Verdict::Failed,
            vec![format!(
                "status is for generation {g}: the controller has not caught up (is it running?)"
            )],
        ),
        Some(g) => step(title, Verdict::Ok, vec![format!("status.observedGeneration {g}")]),
    }
}

fn not_suspended(cic: &CellInterconnect) -> Step {
    if !cic.spec.suspend {
        return step("not suspended", Verdict::Ok, vec![]);
    }
    step(
        "not suspended",
        Verdict::Failed,
        vec![format!(
            "spec.suspend is true: the controller leaves this interconnect alone (kubectl cellnet resume {})",
            cic.name_any()
        )],
    )
}

fn enabled(cic: &CellInterconnect) -> Step {
    if cic.spec.admin_state != AdminState::Disabled {
        return step("administratively enabled", Verdict::Ok, vec![]);
    }
    let msg = cic
        .spec
        .admin_message
        .clone()
        .map(|m| format!(" with message {m:?}"))
        .unwrap_or_default();
    step(
        "administratively enabled",
        Verdict::Failed,
        vec![format!(
            "spec.adminState is Disabled{msg}: sessions are shut down on purpose (kubectl cellnet enable {})",
            cic.name_any()
        )],
    )
}

/// Down the chain: both speakers reachable, then both peers configured, then both sessions.
pub fn chain(cic: &CellInterconnect, endpoints: &Endpoints, ready: &Ready) -> Vec<Step> {
    let status = cic.status.as_ref();
    let mut phases: [Vec<Step>; 3] = Default::default();
    for (which, ep) in endpoints {
        let side = status.and_then(|s| {
            if *which == "local" {
                s.local.as_ref()
            } else {
                s.remote.as_ref()
            }
        });
        match ep {
            None => phases[0].push(step(
                format!("{which} side"),
                Verdict::Unknown,
                vec!["its InfraEndpoint is missing".into()],
            )),
            Some(ep) if !ep.spec.is_managed() => phases[0].push(step(
                format!("{which} side (cell {}) is external", ep.spec.cell),
                Verdict::Ok,
                vec!["configured by its own operators; its session is seen from the other side".into()],
            )),
            Some(ep) => side_steps(which, ep, side, ready, &mut phases),
        }
    }
    phases.into_iter().flatten().collect()
}

/// Steps for one managed side: speaker reachable, peer configured, session.
fn side_steps(
    which: &str,
    ep: &InfraEndpoint,
    side: Option<&SideStatus>,
    ready: &Ready,
    phases: &mut [Vec<Step>; 3],
) {
    let Some(side) = side else {
        phases[0].push(step(
            speaker_title(which, ep),
            Verdict::Unknown,
            vec!["status has no entry for this side yet".into()],
        ));
        return;
    };
    let (reachable, phase, step) = speaker_reachable(which, ep, side, ready);
    phases[phase].push(step);
    phases[1].push(peer_configured(which, ep, side, reachable));
    phases[2].push(session(which, ep, side, reachable));
}

fn speaker_title(which: &str, ep: &InfraEndpoint) -> String {
    let url = ep.spec.sdn.as_ref().map(|s| s.url.clone()).unwrap_or_default();
    let kind = ep
        .spec
        .sdn
        .as_ref()
        .map(|s| SdnKind::from(Some(s)))
        .unwrap_or(SdnKind::External);
    format!(
        "{which} speaker reachable (cell {}, {} {url})",
        ep.spec.cell,
        serde_name(kind)
    )
}

/// The side of a failure message in Ready: "cell X -> cell Y (...): ...".
fn failure_is_about(cell: &str, message: &str) -> bool {
    message.starts_with(&format!("cell {cell} -> "))
}

/// Whether the side's speaker answered, the phase its step goes in (a side without any session
/// state yet is not known to be unreachable: it waits with the peers) and the step.
fn speaker_reachable(
    which: &str,
    ep: &InfraEndpoint,
    side: &SideStatus,
    ready: &Ready,
) -> (bool, usize, Step) {
    let title = speaker_title(which, ep);
    let ep_unreachable = ep.status.as_ref().and_then(|s| s.sdn_reachable) == Some(false);
    let side_failed_unreachable = side.message.is_some()
        && ready.reason().is_some_and(Reason::is_unreachable)
        && failure_is_about(&ep.spec.cell, &ready.message);
    if ep_unreachable || side_failed_unreachable {
        let mut ev = vec![];
        if let Some(m) = &side.message {
            ev.push(format!("status.{which}.message: {m}"));
        }
        if ep_unreachable {
            ev.push(format!(
                "InfraEndpoint {} status.sdnReachable: false",
                ep.name_any()
            ));
        }
        (false, 0, step(title, Verdict::Failed, ev))
    } else if session_story(side) && side.session_state != SessionState::Unknown {
        let ev = vec!["the controller read the session from it".into()];
        (true, 0, step(title, Verdict::Ok, ev))
    } else if let Some(m) = &side.message {
        let ev = vec![format!("it answered, but: {m}")];
        (true, 0, step(title, Verdict::Ok, ev))
    } else {
        let ev = vec!["no session state recorded yet".into()];
        (false, 1, step(title, Verdict::Unknown, ev))
    }
}

/// The side's message, if any, is about its session (a stuck session's cause, shown by the
/// session step), not a failure to configure or read it.
fn session_story(side: &SideStatus) -> bool {
    side.message.is_none() || side.not_established_since.is_some()
}

fn peer_configured(which: &str, ep: &InfraEndpoint, side: &SideStatus, reachable: bool) -> Step {
    let peer = side.peer_address.clone().unwrap_or_else(|| "?".into());
    let title = format!(
        "{which} peer {peer} configured on cell {}'s speaker",
        ep.spec.cell
    );
    if !reachable {
        let ev = format!(
            "speaker not reachable; last known: configured={}",
            side.configured
        );
        step(title, Verdict::Unknown, vec![ev])
    } else if side.configured && session_story(side) {
        step(title, Verdict::Ok, vec![])
    } else {
        let why = side
            .message
            .clone()
            .unwrap_or_else(|| "status.configured is false".into());
        step(title, Verdict::Failed, vec![why])
    }
}

fn session(which: &str, ep: &InfraEndpoint, side: &SideStatus, reachable: bool) -> Step {
    let title = format!("{which} BGP session (cell {})", ep.spec.cell);
    let mut ev = vec![format!(
        "{:?} for {}, {} flap(s)",
        side.session_state,
        since(side),
        side.flaps
    )];
    if let Some(t) = &side.established_since
        && side.session_state == SessionState::Established
    {
        ev[0] = format!(
            "Established since {} ({} ago), {} flap(s)",
            t.0,
            age(t),
            side.flaps
        );
    }
    ev.extend(session_health(side));
    if let Some(e) = &side.last_error {
        ev.push(format!("last error: {e}"));
    }
    let verdict = if !reachable {
        ev.insert(0, "speaker not reachable; last known state below".into());
        Verdict::Unknown
    } else if side.session_state == SessionState::Established {
        Verdict::Ok
    } else {
        Verdict::Failed
    };
    step(title, verdict, ev).at(Layer::Session)
}

/// What status says beyond the state: how long the session has been down and why, cellnet's
/// resets, the timers agreed with the peer.
fn session_health(side: &SideStatus) -> Vec<String> {
    let mut ev = vec![];
    if let Some(t) = &side.not_established_since {
        ev.push(format!("not Established since {} ({} ago)", t.0, age(t)));
    }
    if side.session_state != SessionState::Established
        && let Some(m) = &side.message
    {
        ev.push(m.clone());
    }
    if side.resets > 0 {
        let last = side
            .last_reset_time
            .as_ref()
            .map(age)
            .unwrap_or_else(|| "?".into());
        ev.push(format!(
            "cellnet reset this stuck session {} time(s), last {last} ago",
            side.resets
        ));
    }
    if side.negotiated_hold_time.is_some() || side.negotiated_keepalive.is_some() {
        ev.push(format!(
            "negotiated hold time/keepalive: {}",
            super::super::status::timers(side)
        ));
    }
    ev
}

pub fn ready_condition(ready: &Ready) -> Step {
    let verdict = if ready.is_true() {
        Verdict::Ok
    } else {
        Verdict::Failed
    };
    step("Ready condition", verdict, vec![ready.to_string()])
}

/// The five newest events (evidence only: never a failure).
pub fn recent_events(found: anyhow::Result<Vec<Event>>) -> Step {
    let mut items = match found {
        Ok(items) => items,
        Err(e) => return step("recent events", Verdict::Unknown, vec![format!("{e:#}")]),
    };
    items.sort_by_key(|e| {
        e.last_timestamp
            .as_ref()
            .map(|t| t.0)
            .or(e.event_time.as_ref().map(|t| t.0))
            .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
    });
    let mut lines: Vec<String> = items.iter().rev().take(5).map(event_line).collect();
    if lines.is_empty() {
        lines = vec!["none".into()];
    }
    step("recent events (newest first)", Verdict::Ok, lines)
}

fn event_line(e: &Event) -> String {
    let when = e
        .last_timestamp
        .as_ref()
        .or(e.metadata.creation_timestamp.as_ref())
        .map(age)
        .unwrap_or_else(|| "?".into());
    format!(
        "{when} ago  {} {}: {}",
        e.type_.clone().unwrap_or_default(),
        e.reason.clone().unwrap_or_default(),
        shorten(&e.message.clone().unwrap_or_default(), 160)
    )
}

#[cfg(test)]
mod tests;
