//! Pure: each side's route status and the `RoutesExchanged` judgement of both sides.
use ipnet::IpNet;

use super::super::problem::Problem;
use super::status::{Side, SideResult};
use crate::api::routes::MAX_LISTED_MISSING;
use crate::api::{Reason, RouteStatus};
use crate::sdn::RouteCounts;

/// One managed side's routes as the reconcile found them.
#[derive(Clone, Debug, PartialEq)]
pub struct SideRoutes {
    /// What this side should accept from the other.
    pub expected_in: Vec<IpNet>,
    /// This side's own networks that the session's families do not carry.
    pub not_carried: Vec<IpNet>,
    /// What its speaker reports, or why it could not be had.
    pub observed: Result<RouteCounts, Problem>,
}

impl SideRoutes {
    /// The expected networks that the speaker has not accepted.
    pub fn missing(&self) -> Vec<IpNet> {
        match &self.observed {
            Ok(counts) => self
                .expected_in
                .iter()
                .filter(|n| counts.missing_received.contains(n))
                .copied()
                .collect(),
            Err(_) => self.expected_in.clone(),
        }
    }
}

/// `status.<side>.routes`; `None` when the counts could not be read.
pub fn route_status(routes: &SideRoutes) -> Option<RouteStatus> {
    let counts = routes.observed.as_ref().ok()?;
    let missing = routes.missing();
    Some(RouteStatus {
        advertised: counts.advertised,
        received: counts.received,
        accepted: counts.accepted,
        rejected: counts.rejected,
        missing: missing
            .iter()
            .take(MAX_LISTED_MISSING)
            .map(ToString::to_string)
            .collect(),
        missing_count: missing.len() as u32,
        not_carried: routes.not_carried.iter().map(ToString::to_string).collect(),
        prefix_limit_exceeded: counts.prefix_limit_hit,
    })
}

/// The `RoutesExchanged` condition, and whether it decides `Ready`.
#[derive(Clone, Debug, PartialEq)]
pub struct RoutesVerdict {
    pub ok: bool,
    pub reason: Reason,
    pub message: String,
    pub stalled: bool,
    /// Some side should receive networks: `Ready` needs `ok`.
    pub gates: bool,
}

fn listed(nets: &[IpNet]) -> String {
    let shown: Vec<String> = nets
        .iter()
        .take(MAX_LISTED_MISSING)
        .map(ToString::to_string)
        .collect();
    match nets.len().saturating_sub(MAX_LISTED_MISSING) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// Judges the routes of both sides: a side's failure first, then a tripped prefix limit, then
/// missing networks.
pub fn routes_verdict(local: &Side, remote: &Side) -> RoutesVerdict {
    let pairs = [(local, remote), (remote, local)];
    let gates = pairs
        .iter()
        .any(|(s, _)| s.routes.as_ref().is_some_and(|r| !r.expected_in.is_empty()));
    let verdict = |ok, reason, message: String, stalled| RoutesVerdict {
        ok,
        reason,
        message,
        stalled,
        gates,
    };
    for (side, _) in pairs {
        if let SideResult::Failed(p) = &side.result {
            let message = format!("cell {}: routes unknown: {}", side.cell, p.message);
            return verdict(false, p.reason, message, p.stalled);
        }
    }
    if !gates {
        let message = format!(
            "no networks to exchange between cell {} and cell {} (none declared, or spec.routes carries none)",
            local.cell, remote.cell
        );
        return verdict(true, Reason::NoNetworks, message, false);
    }
    for (side, other) in pairs {
        let Some(routes) = &side.routes else { continue };
        match &routes.observed {
            Err(p) => {
                let message = format!("cell {}: routes: {}", side.cell, p.message);
                return verdict(false, p.reason, message, p.stalled);
            }
            Ok(counts) if counts.prefix_limit_hit => {
                let message = format!(
                    "cell {} shut the session down: cell {} sent more prefixes than spec.routes.maxPrefixes",
                    side.cell, other.cell
                );
                return verdict(false, Reason::PrefixLimitExceeded, message, true);
            }
            Ok(_) => {}
        }
    }
    let missing: Vec<String> = pairs
        .iter()
        .filter_map(|(s, o)| {
            let missing = s.routes.as_ref()?.missing();
            (!missing.is_empty()).then(|| {
                format!(
                    "cell {} has not accepted {} from cell {}",
                    s.cell,
                    listed(&missing),
                    o.cell
                )
            })
        })
        .collect();
    if !missing.is_empty() {
        return verdict(false, Reason::RoutesMissing, missing.join("; "), false);
    }
    let accepted: Vec<String> = pairs
        .iter()
        .filter_map(|(s, o)| {
            let n = s.routes.as_ref()?.expected_in.len();
            (n > 0).then(|| format!("cell {} accepts {n} network(s) of cell {}", s.cell, o.cell))
        })
        .collect();
    verdict(true, Reason::RoutesExchanged, accepted.join("; "), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SdnKind;
    use crate::sdn::SessionState;

    fn side(cell: &str, expected: &[&str], counts: RouteCounts) -> Side {
        Side {
            cell: cell.into(),
            sdn: SdnKind::GoBgp,
            peer_address: "192.0.2.9".into(),
            passive: false,
            graceful_restart_negotiated: None,
            result: SideResult::Configured {
                session: SessionState::Established,
                admin_down: false,
                last_error: None,
            },
            routes: Some(Box::new(SideRoutes {
                expected_in: expected.iter().map(|n| n.parse().unwrap()).collect(),
                not_carried: Vec::new(),
                observed: Ok(counts),
            })),
            segments: None,
            health: Default::default(),
        }
    }

    fn missing(nets: &[&str]) -> RouteCounts {
        RouteCounts {
            missing_received: nets.iter().map(|n| n.parse().unwrap()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn without_networks_routes_do_not_gate_ready() {
        let v = routes_verdict(&side("c1", &[], missing(&[])), &side("c2", &[], missing(&[])));
        assert!(v.ok && !v.gates);
        assert_eq!(v.reason, Reason::NoNetworks);
    }

    #[test]
    fn missing_networks_name_the_cells_and_prefixes() {
        let v = routes_verdict(
            &side("c1", &["192.0.2.128/25"], missing(&["192.0.2.128/25"])),
            &side("c2", &["192.0.2.0/25"], missing(&[])),
        );
        assert!(!v.ok && v.gates && !v.stalled);
        assert_eq!(v.reason, Reason::RoutesMissing);
        assert_eq!(v.message, "cell c1 has not accepted 192.0.2.128/25 from cell c2");
    }

    #[test]
    fn a_tripped_prefix_limit_stalls() {
        let tripped = RouteCounts {
            prefix_limit_hit: true,
            ..Default::default()
        };
        let v = routes_verdict(
            &side("c1", &["192.0.2.128/25"], tripped),
            &side("c2", &[], missing(&[])),
        );
        assert_eq!((v.reason, v.stalled), (Reason::PrefixLimitExceeded, true));
    }

    #[test]
    fn status_lists_at_most_sixteen_missing_and_counts_all() {
        let all: Vec<String> = (0..20).map(|i| format!("10.{i}.0.0/16")).collect();
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let s = side("c1", &all, missing(&all));
        let status = route_status(s.routes.as_ref().unwrap()).unwrap();
        assert_eq!((status.missing.len(), status.missing_count), (16, 20));
        let v = routes_verdict(&s, &side("c2", &[], missing(&[])));
        assert!(v.message.ends_with("and 4 more from cell c2"), "{}", v.message);
    }
}
