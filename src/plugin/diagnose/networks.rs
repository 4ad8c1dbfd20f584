//! The steps after the sessions, without I/O: each endpoint's networks announced (conflicts
//! named), then the routes exchanged on the interconnect (a missing network named as the break).
use kube::ResourceExt;

use super::super::routes::{networks_announced, networks_of, routes_exchanged, side_problems};
use super::{Endpoints, Step, Verdict, step};
use crate::api::{CellInterconnect, InfraEndpoint, NetworkStatus, RouteStatus, SideStatus};

/// `192.0.2.0/25 (mgmt), 2001:db8:1::/48`.
fn listed(nets: &[NetworkStatus]) -> String {
    let one = |n: &NetworkStatus| match &n.name {
        Some(name) => format!("{} ({name})", n.cidr),
        None => n.cidr.clone(),
    };
    nets.iter().map(one).collect::<Vec<_>>().join(", ")
}

/// A step per endpoint that declares networks: are they announced by its speaker?
pub fn networks_steps(endpoints: &Endpoints) -> Vec<Step> {
    endpoints
        .iter()
        .filter_map(|(which, ep)| ep.as_ref().and_then(|ep| announced(which, ep)))
        .collect()
}

fn announced(which: &str, ep: &InfraEndpoint) -> Option<Step> {
    let nets = networks_of(ep);
    if nets.is_empty() {
        return None;
    }
    let title = format!("{which} networks announced (cell {})", ep.spec.cell);
    if !ep.spec.is_managed() {
        let ev = format!(
            "declared {}: announced by its own operators, accepted from it as declared",
            listed(&nets)
        );
        return Some(step(title, Verdict::Ok, vec![ev]));
    }
    let Some(condition) = networks_announced(ep) else {
        let ev = format!(
            "declared {}; InfraEndpoint {} has no NetworksAnnounced condition yet",
            listed(&nets),
            ep.name_any()
        );
        return Some(step(title, Verdict::Unknown, vec![ev]));
    };
    let (shown, held): (Vec<NetworkStatus>, Vec<NetworkStatus>) = nets.into_iter().partition(|n| n.announced);
    let mut ev = vec![];
    let verdict = if condition.is_true() {
        Verdict::Ok
    } else {
        ev.push(format!("{}: {}", condition.reason, condition.message));
        Verdict::Failed
    };
    for n in &held {
        let why = n.message.clone().unwrap_or_else(|| "not announced".into());
        ev.push(format!("{}: {why}", listed(std::slice::from_ref(n))));
    }
    if !shown.is_empty() {
        ev.push(format!("announced: {}", listed(&shown)));
    }
    Some(step(title, verdict, ev))
}

/// The routes step: `None` when neither endpoint declares networks and the controller wrote no
/// RoutesExchanged condition (nothing to exchange).
pub fn routes_step(cic: &CellInterconnect, endpoints: &Endpoints) -> Option<Step> {
    let cell_of = |which: &str| {
        let ep = endpoints
            .iter()
            .find(|(w, _)| *w == which)
            .and_then(|(_, e)| e.as_ref());
        let from_status = cic.status.as_ref().and_then(|s| match which {
            "local" => s.local_cell.clone(),
            _ => s.remote_cell.clone(),
        });
        ep.map(|e| e.spec.cell.clone())
            .or(from_status)
            .unwrap_or_else(|| "?".into())
    };
    let (local, remote) = (cell_of("local"), cell_of("remote"));
    let declared = endpoints
        .iter()
        .any(|(_, ep)| ep.as_ref().is_some_and(|e| !networks_of(e).is_empty()));
    let condition = routes_exchanged(cic);
    if condition.is_none() && !declared {
        return None;
    }
    let title = format!("routes exchanged between cell {local} and cell {remote}");
    let status = cic.status.as_ref();
    let sides: [(&str, &str, &str, Option<&SideStatus>); 2] = [
        ("local", &local, &remote, status.and_then(|s| s.local.as_ref())),
        ("remote", &remote, &local, status.and_then(|s| s.remote.as_ref())),
    ];
    let max = cic.spec.routes.max_prefixes;
    let mut problems = vec![];
    let mut counts = vec![];
    for (which, cell, other, side) in sides {
        let Some(routes) = side.and_then(|s| s.routes.as_ref()) else {
            continue;
        };
        for (reason, text) in side_problems(cell, other, routes, max) {
            problems.push(match reason {
                Some(r) => format!("{text} ({r})"),
                None => text,
            });
        }
        counts.push(count_line(which, cell, routes));
    }
    let Some(condition) = condition else {
        let mut ev = vec!["status has no RoutesExchanged condition yet".to_string()];
        ev.extend(problems);
        ev.extend(counts);
        return Some(step(title, Verdict::Unknown, ev));
    };
    let verdict = if condition.is_true() {
        Verdict::Ok
    } else {
        Verdict::Failed
    };
    let mut ev = problems;
    ev.push(format!("RoutesExchanged {condition}"));
    ev.extend(counts);
    Some(step(title, verdict, ev))
}

fn count_line(which: &str, cell: &str, r: &RouteStatus) -> String {
    format!(
        "{which} (cell {cell}): advertised {}, received {}, accepted {}, rejected {}",
        r.advertised, r.received, r.accepted, r.rejected
    )
}

#[cfg(test)]
mod tests;
