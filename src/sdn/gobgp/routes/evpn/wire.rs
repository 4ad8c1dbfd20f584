//! The EVPN filter's objects as GoBGP's protobuf messages (shapes checked against gobgpd 3.10:
//! statements and ext-community sets list back as written, with `rpki_result: -1`).
use super::plan::{Names, Statement};
use crate::sdn::gobgp::proto::{self, family, match_set};

/// GoBGP's AFI/SAFI of `l2vpn-evpn`.
pub fn evpn_family() -> proto::Family {
    proto::Family {
        afi: family::Afi::L2vpn as i32,
        safi: family::Safi::Evpn as i32,
    }
}

/// The EXT_COMMUNITY set `name` with `members` (the whole set, or those to add or remove).
pub fn target_set(name: &str, members: &[String]) -> proto::DefinedSet {
    proto::DefinedSet {
        defined_type: proto::DefinedType::ExtCommunity as i32,
        name: name.to_owned(),
        list: members.to_vec(),
        ..Default::default()
    }
}

fn any_of(name: &str) -> proto::MatchSet {
    proto::MatchSet {
        r#type: match_set::Type::Any as i32,
        name: name.to_owned(),
    }
}

fn conditions(names: &Names, with_targets: bool) -> proto::Conditions {
    proto::Conditions {
        neighbor_set: Some(any_of(&names.peers)),
        ext_community_set: with_targets.then(|| any_of(&names.set)),
        afi_safi_in: vec![evpn_family()],
        ..Default::default()
    }
}

fn actions(statement: &Statement) -> proto::Actions {
    match statement {
        Statement::Accept => proto::Actions {
            route_action: proto::RouteAction::Accept as i32,
            ..Default::default()
        },
        Statement::Reject => proto::Actions {
            route_action: proto::RouteAction::Reject as i32,
            ..Default::default()
        },
        Statement::Pass { add } => proto::Actions {
            nexthop: Some(proto::NexthopAction {
                unchanged: true,
                ..Default::default()
            }),
            ext_community: (!add.is_empty()).then(|| proto::CommunityAction {
                r#type: proto::community_action::Type::Add as i32,
                communities: add.iter().map(|rt| format!("rt:{rt}")).collect(),
            }),
            ..Default::default()
        },
    }
}

/// A statement as `AddPolicy` gets it.
pub fn statement(names: &Names, statement: &Statement) -> proto::Statement {
    proto::Statement {
        name: names.name_of(statement).to_owned(),
        conditions: Some(conditions(names, *statement == Statement::Accept)),
        actions: Some(actions(statement)),
    }
}

/// The role of a listed statement if it is exactly one cellnet writes, else `None` (altered).
pub fn shape_of(names: &Names, listed: &proto::Statement) -> Option<Statement> {
    let mut conditions = listed.conditions.clone()?;
    conditions.rpki_result = 0;
    let candidate = if listed.name == names.accept {
        Statement::Accept
    } else if listed.name == names.reject {
        Statement::Reject
    } else {
        let added = listed.actions.as_ref()?.ext_community.as_ref();
        let add = added
            .map(|c| {
                c.communities
                    .iter()
                    .map(|rt| rt.trim_start_matches("rt:").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        Statement::Pass { add }
    };
    let written = statement(names, &candidate);
    (written.conditions == Some(conditions) && written.actions == listed.actions).then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_statements_read_back_as_themselves_and_altered_ones_do_not() {
        let names = Names::of("ab12");
        for s in [
            Statement::Accept,
            Statement::Reject,
            Statement::Pass { add: vec![] },
            Statement::Pass {
                add: vec!["65002:100".into()],
            },
        ] {
            let mut listed = statement(&names, &s);
            listed.conditions.as_mut().unwrap().rpki_result = -1;
            assert_eq!(shape_of(&names, &listed), Some(s.clone()));
            listed.conditions.as_mut().unwrap().afi_safi_in.clear();
            assert_eq!(shape_of(&names, &listed), None, "{s:?} without its family");
        }
        let mut accept_all = statement(&names, &Statement::Accept);
        accept_all.conditions.as_mut().unwrap().ext_community_set = None;
        assert_eq!(shape_of(&names, &accept_all), None);
    }
}
