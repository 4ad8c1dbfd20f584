//! The EVPN part of a route filter on GoBGP, pure: what is wanted, what was read, which writes.
//!
//! Objects of filter `<key>` (all named `cellnet-<key>-...`, beside the unicast ones):
//! - the EXT_COMMUNITY set `cellnet-<key>-in-rt`: the accepted route targets, as regexps (GoBGP
//!   3.10 matches `rt:<regexp>` against `<global>:<local>`; it lists them back as written);
//! - in `cellnet-import`: `...-in-evpn-ok` (neighbours ∧ l2vpn-evpn ∧ RT in the set → ACCEPT),
//!   then `...-in-evpn` (neighbours ∧ l2vpn-evpn → REJECT). Not one INVERT statement: GoBGP 3.10
//!   evaluates an ext-community INVERT on the route's last community only (fixed in 4.7,
//!   8866bd7e), and EVPN routes end with the VXLAN encapsulation community. ACCEPT ends the
//!   evaluation, so the operator's later import policies do not see these routes (docs/l2.md);
//! - in `cellnet-export`: `...-out-evpn` (neighbours ∧ l2vpn-evpn → next hop unchanged, add the
//!   export route targets; no route action, evaluation goes on): GoBGP rewrites the next hop on
//!   eBGP, and the next hop of an EVPN route is the VTEP the other cell must send frames to.
use std::collections::BTreeSet;

use crate::sdn::routes::{EvpnFilter, RouteTargetMatch};

/// A statement of the EVPN filter, by its role.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Statement {
    /// Import: the stretched segments' routes from the neighbours → ACCEPT.
    Accept,
    /// Import: every other EVPN route from the neighbours → REJECT.
    Reject,
    /// Export: EVPN routes to the neighbours keep their next hop and get these route targets.
    Pass { add: Vec<String> },
}

/// What the EVPN filter wants on the speaker (`None` in [`plan`]: nothing).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    /// Members of the route-target set, as GoBGP lists them.
    pub route_targets: BTreeSet<String>,
    pub export_targets: Vec<String>,
}

/// The EVPN objects of one filter as read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// `None`: the set does not exist.
    pub route_targets: Option<BTreeSet<String>>,
    /// The filter's EVPN statements in `cellnet-import`, in policy order; `None` shape: altered.
    pub import: Vec<(String, Option<Statement>)>,
    /// The filter's EVPN statement in `cellnet-export`, if any.
    pub export: Option<(String, Option<Statement>)>,
}

/// One write of the EVPN plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Write {
    AddTargets(Vec<String>),
    RemoveTargets(Vec<String>),
    DeleteSet,
    /// Append the statement to its policy (first deleting a left-over definition of that name).
    AddStatement(Statement),
    /// Remove the statement by name from its policy (import: `true`) and delete it.
    DeleteStatement {
        import: bool,
        name: String,
    },
    /// Re-run the import policy over what the neighbours sent.
    ResetIn,
    /// Send again what the export policy now allows.
    ResetOut,
}

/// The route-target set member for one accepted target.
pub fn member(target: &RouteTargetMatch) -> String {
    match target {
        RouteTargetMatch::Vni(vni) => format!("rt:^[0-9.]+:{vni}$"),
        RouteTargetMatch::Exact(rt) => format!("rt:^{}$", rt.replace('.', "\\.")),
    }
}

/// What `filter` wants (`None`: no EVPN objects).
pub fn desired(filter: Option<&EvpnFilter>) -> Option<Desired> {
    let filter = filter?;
    Some(Desired {
        route_targets: filter.import.iter().map(member).collect(),
        export_targets: filter.export.clone(),
    })
}

/// The writes that turn `observed` into `desired` for the statements `names`.
pub fn plan(names: &Names, desired: Option<&Desired>, observed: &Observed) -> Vec<Write> {
    let Some(want) = desired else {
        return removal(observed);
    };
    let mut writes = Vec::new();
    let have = observed.route_targets.clone().unwrap_or_default();
    let grow: Vec<String> = want.route_targets.difference(&have).cloned().collect();
    if !grow.is_empty() {
        writes.push(Write::AddTargets(grow));
    }
    // Accepting nothing needs no route-target set and no accept statement (GoBGP refuses a
    // statement naming a set that does not exist).
    let accepts = !want.route_targets.is_empty();
    let import_wanted = import_statements(names, accepts);
    let import_ok = observed.import == import_wanted;
    if !import_ok {
        // Accept must come before reject, and GoBGP only appends: both go and come again.
        for (name, _) in &observed.import {
            let name = name.clone();
            writes.push(Write::DeleteStatement { import: true, name });
        }
        for (_, statement) in import_wanted.into_iter() {
            writes.extend(statement.map(Write::AddStatement));
        }
    }
    let pass = Statement::Pass {
        add: want.export_targets.clone(),
    };
    let export_ok = observed.export == Some((names.pass.clone(), Some(pass.clone())));
    if !export_ok {
        if let Some((name, _)) = &observed.export {
            let name = name.clone();
            writes.push(Write::DeleteStatement { import: false, name });
        }
        writes.push(Write::AddStatement(pass));
    }
    let shrink: Vec<String> = have.difference(&want.route_targets).cloned().collect();
    if !accepts && observed.route_targets.is_some() {
        // No statement uses the set any more (they went above).
        writes.push(Write::DeleteSet);
    } else if !shrink.is_empty() {
        writes.push(Write::RemoveTargets(shrink));
    }
    if !writes.is_empty() && (!import_ok || writes.iter().any(is_set_write)) {
        writes.push(Write::ResetIn);
    }
    if !export_ok {
        writes.push(Write::ResetOut);
    }
    writes
}

fn is_set_write(w: &Write) -> bool {
    matches!(
        w,
        Write::AddTargets(_) | Write::RemoveTargets(_) | Write::DeleteSet
    )
}

/// The import statements in policy order: accept the set's route targets (when there are any),
/// then reject every other EVPN route from the neighbours.
fn import_statements(names: &Names, accepts: bool) -> Vec<(String, Option<Statement>)> {
    let accept = (names.accept.clone(), Some(Statement::Accept));
    let reject = (names.reject.clone(), Some(Statement::Reject));
    if accepts {
        vec![accept, reject]
    } else {
        vec![reject]
    }
}

/// Statements first (a set in use cannot go), then the set.
fn removal(observed: &Observed) -> Vec<Write> {
    let mut writes = Vec::new();
    if let Some((name, _)) = &observed.export {
        let name = name.clone();
        writes.push(Write::DeleteStatement { import: false, name });
    }
    for (name, _) in &observed.import {
        let name = name.clone();
        writes.push(Write::DeleteStatement { import: true, name });
    }
    if observed.route_targets.is_some() {
        writes.push(Write::DeleteSet);
    }
    if !observed.import.is_empty() {
        writes.push(Write::ResetIn);
    }
    writes
}

/// The names of one filter's EVPN objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Names {
    /// The filter's NEIGHBOR set (shared with its unicast statements).
    pub peers: String,
    pub set: String,
    pub accept: String,
    pub reject: String,
    pub pass: String,
}

impl Names {
    pub fn of(key: &str) -> Self {
        let base = super::super::names::filter_prefix(key);
        Self {
            peers: super::super::names::peers_set(key),
            set: format!("{base}in-rt"),
            accept: format!("{base}in-evpn-ok"),
            reject: format!("{base}in-evpn"),
            pass: format!("{base}out-evpn"),
        }
    }

    /// Whether `name` is one of these statements.
    pub fn is_statement(&self, name: &str) -> bool {
        [&self.accept, &self.reject, &self.pass].contains(&&name.to_owned())
    }

    pub fn name_of(&self, statement: &Statement) -> &str {
        match statement {
            Statement::Accept => &self.accept,
            Statement::Reject => &self.reject,
            Statement::Pass { .. } => &self.pass,
        }
    }
}

/// Whether a statement name of a filter's is an EVPN one (the unicast plan leaves them alone).
pub fn is_evpn_statement(name: &str) -> bool {
    name.ends_with("-in-evpn-ok") || name.ends_with("-in-evpn") || name.ends_with("-out-evpn")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Names {
        Names::of("ab12")
    }

    fn filter() -> EvpnFilter {
        EvpnFilter {
            import: vec![
                RouteTargetMatch::Vni(100),
                RouteTargetMatch::Exact("192.0.2.1:7".into()),
            ],
            export: vec![],
        }
    }

    fn in_place(want: &Desired) -> Observed {
        let n = names();
        Observed {
            route_targets: Some(want.route_targets.clone()),
            import: vec![
                (n.accept.clone(), Some(Statement::Accept)),
                (n.reject.clone(), Some(Statement::Reject)),
            ],
            export: Some((
                n.pass.clone(),
                Some(Statement::Pass {
                    add: want.export_targets.clone(),
                }),
            )),
        }
    }

    #[test]
    fn members_are_anchored_regexps_with_any_global_administrator_for_a_vni() {
        assert_eq!(member(&RouteTargetMatch::Vni(100)), "rt:^[0-9.]+:100$");
        assert_eq!(
            member(&RouteTargetMatch::Exact("192.0.2.1:7".into())),
            "rt:^192\\.0\\.2\\.1:7$"
        );
        assert_eq!(
            member(&RouteTargetMatch::Exact("65002:100".into())),
            "rt:^65002:100$"
        );
    }

    #[test]
    fn a_new_filter_creates_the_set_then_accept_before_reject_then_the_export_statement() {
        let want = desired(Some(&filter())).unwrap();
        let writes = plan(&names(), Some(&want), &Observed::default());
        assert_eq!(
            writes,
            [
                Write::AddTargets(want.route_targets.iter().cloned().collect()),
                Write::AddStatement(Statement::Accept),
                Write::AddStatement(Statement::Reject),
                Write::AddStatement(Statement::Pass { add: vec![] }),
                Write::ResetIn,
                Write::ResetOut,
            ]
        );
    }

    #[test]
    fn nothing_is_written_in_steady_state() {
        let want = desired(Some(&filter())).unwrap();
        assert_eq!(plan(&names(), Some(&want), &in_place(&want)), []);
    }

    #[test]
    fn a_reject_left_before_its_accept_is_rewritten_in_order() {
        let want = desired(Some(&filter())).unwrap();
        let mut observed = in_place(&want);
        observed.import.reverse();
        let writes = plan(&names(), Some(&want), &observed);
        let n = names();
        assert_eq!(
            writes,
            [
                Write::DeleteStatement {
                    import: true,
                    name: n.reject.clone()
                },
                Write::DeleteStatement {
                    import: true,
                    name: n.accept.clone()
                },
                Write::AddStatement(Statement::Accept),
                Write::AddStatement(Statement::Reject),
                Write::ResetIn,
            ]
        );
    }

    #[test]
    fn a_narrower_set_shrinks_after_the_statements_and_re_evaluates_imports() {
        let want = desired(Some(&filter())).unwrap();
        let mut observed = in_place(&want);
        observed
            .route_targets
            .as_mut()
            .unwrap()
            .insert("rt:^[0-9.]+:200$".into());
        assert_eq!(
            plan(&names(), Some(&want), &observed),
            [
                Write::RemoveTargets(vec!["rt:^[0-9.]+:200$".into()]),
                Write::ResetIn
            ]
        );
    }

    #[test]
    fn changed_export_targets_replace_the_export_statement() {
        let want = desired(Some(&filter())).unwrap();
        let observed = in_place(&want);
        let mut wider = filter();
        wider.export = vec!["65002:100".into()];
        let wider = desired(Some(&wider)).unwrap();
        let n = names();
        assert_eq!(
            plan(&names(), Some(&wider), &observed),
            [
                Write::DeleteStatement {
                    import: false,
                    name: n.pass.clone()
                },
                Write::AddStatement(Statement::Pass {
                    add: vec!["65002:100".into()]
                }),
                Write::ResetOut,
            ]
        );
    }

    #[test]
    fn removal_takes_the_statements_then_the_set() {
        let want = desired(Some(&filter())).unwrap();
        let n = names();
        assert_eq!(
            plan(&names(), None, &in_place(&want)),
            [
                Write::DeleteStatement {
                    import: false,
                    name: n.pass.clone()
                },
                Write::DeleteStatement {
                    import: true,
                    name: n.accept.clone()
                },
                Write::DeleteStatement {
                    import: true,
                    name: n.reject.clone()
                },
                Write::DeleteSet,
                Write::ResetIn,
            ]
        );
        assert_eq!(plan(&names(), None, &Observed::default()), []);
    }

    fn accepting_nothing() -> Desired {
        desired(Some(&EvpnFilter {
            import: vec![],
            export: vec![],
        }))
        .unwrap()
    }

    #[test]
    fn a_filter_accepting_nothing_has_no_set_and_only_the_reject() {
        let writes = plan(&names(), Some(&accepting_nothing()), &Observed::default());
        assert_eq!(
            writes,
            [
                Write::AddStatement(Statement::Reject),
                Write::AddStatement(Statement::Pass { add: vec![] }),
                Write::ResetIn,
                Write::ResetOut,
            ]
        );
    }

    #[test]
    fn un_stretching_the_last_segment_drops_the_accept_then_the_set() {
        let before = desired(Some(&filter())).unwrap();
        let n = names();
        assert_eq!(
            plan(&names(), Some(&accepting_nothing()), &in_place(&before)),
            [
                Write::DeleteStatement {
                    import: true,
                    name: n.accept.clone()
                },
                Write::DeleteStatement {
                    import: true,
                    name: n.reject.clone()
                },
                Write::AddStatement(Statement::Reject),
                Write::DeleteSet,
                Write::ResetIn,
            ]
        );
        let empty = accepting_nothing();
        let mut steady = in_place(&empty);
        steady.route_targets = None;
        steady.import.remove(0);
        assert_eq!(plan(&names(), Some(&empty), &steady), []);
    }

    #[test]
    fn stretching_a_first_segment_makes_the_set_before_the_accept() {
        let empty = accepting_nothing();
        let mut observed = in_place(&empty);
        observed.route_targets = None;
        observed.import.remove(0);
        let want = desired(Some(&filter())).unwrap();
        let n = names();
        assert_eq!(
            plan(&names(), Some(&want), &observed),
            [
                Write::AddTargets(want.route_targets.iter().cloned().collect()),
                Write::DeleteStatement {
                    import: true,
                    name: n.reject.clone()
                },
                Write::AddStatement(Statement::Accept),
                Write::AddStatement(Statement::Reject),
                Write::ResetIn,
            ]
        );
    }

    #[test]
    fn evpn_statement_names_are_recognised() {
        let n = names();
        for name in [&n.accept, &n.reject, &n.pass] {
            assert!(is_evpn_statement(name) && n.is_statement(name), "{name}");
        }
        assert!(!is_evpn_statement("cellnet-ab12-in-v4-all"));
    }
}
