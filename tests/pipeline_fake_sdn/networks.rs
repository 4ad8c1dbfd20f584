//! The networks between cells through the pipeline: origination by the endpoints, one filter per
//! interconnect and side, route status and `RoutesExchanged`, conflicts between cells, drift and
//! cleanup.
use cellnet::api::{InfraEndpoint, Reason};
use cellnet::sdn::routes::{ExportRule, ImportRule, mark_of};

use super::*;

fn net(s: &str) -> ipnet::IpNet {
    s.parse().unwrap()
}

/// The (status, reason, message) of condition `type_` of an interconnect.
pub(super) async fn condition(
    client: &kube::Client,
    ns: &str,
    name: &str,
    type_: &str,
) -> Option<(String, String, String)> {
    let cic = Api::<CellInterconnect>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .ok()??;
    let c = cic.status?.conditions.into_iter().find(|c| c.type_ == type_)?;
    Some((c.status, c.reason, c.message))
}

async fn endpoint_condition(
    client: &kube::Client,
    ns: &str,
    name: &str,
    type_: &str,
) -> Option<(String, String, String)> {
    let ep = Api::<InfraEndpoint>::namespaced(client.clone(), ns)
        .get_opt(name)
        .await
        .ok()??;
    let c = ep.status?.conditions.into_iter().find(|c| c.type_ == type_)?;
    Some((c.status, c.reason, c.message))
}

pub(super) fn is(status: &str, reason: Reason) -> impl Fn(&Option<(String, String, String)>) -> bool {
    let status = status.to_string();
    move |c| {
        c.as_ref()
            .is_some_and(|(s, r, _)| *s == status && r == reason.as_str())
    }
}

async fn uid(client: &kube::Client, ns: &str, name: &str) -> String {
    let ep = Api::<InfraEndpoint>::namespaced(client.clone(), ns)
        .get(name)
        .await
        .unwrap();
    ep.metadata.uid.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn networks_are_announced_filtered_reported_and_withdrawn() {
    let (cp, fakes) = env();
    let client = cp.client().await;
    let ns = "pipeline-networks";
    assert!(support::namespace(cp, ns).await, "namespace {ns} is new");
    let (a, b) = (
        gobgp(&fakes, "http://fake-na:50051"),
        gobgp(&fakes, "http://fake-nb:50051"),
    );
    let a_ep = endpoint("na", "192.0.2.1", 65001)
        // Another spelling of the same API: one speaker, whose poll requeues this endpoint.
        .gobgp("http://Fake-NA:50051/")
        .networks(&["203.0.113.0/26", "2001:db8:a::/48"]);
    let b_ep = endpoint("nb", "192.0.2.2", 65002)
        .gobgp("http://fake-nb:50051")
        .networks(&["203.0.113.64/26"]);
    create(&client, ns, &a_ep.typed()).await;
    create(&client, ns, &b_ep.typed()).await;
    create(&client, ns, &interconnect("na-nb", "na", "nb").typed()).await;

    // Announced, filtered both ways, exchanged: Ready.
    let exchanged = wait_until(
        "RoutesExchanged",
        async || condition(&client, ns, "na-nb", "RoutesExchanged").await,
        is("True", Reason::RoutesExchanged),
    )
    .await;
    assert!(
        exchanged
            .unwrap()
            .2
            .contains("cell na accepts 1 network(s) of cell nb")
    );
    wait_until(
        "Ready",
        async || ready(&client, ns, "na-nb").await,
        |r| r.as_ref().is_some_and(|(s, _)| s == "True"),
    )
    .await;
    let mark_a = mark_of(&uid(&client, ns, "na").await);
    let origination = &a.originations()[&mark_a];
    assert_eq!(
        origination.networks,
        [net("203.0.113.0/26")],
        "the IPv6 network has no IPv6 next hop"
    );
    assert_eq!(origination.next_hop, ip("192.0.2.1"));
    let filter = a.filters().into_values().next().expect("a filter on a");
    assert_eq!(filter.neighbors, [ip("192.0.2.2")]);
    assert_eq!(filter.import, ImportRule::Only(vec![net("203.0.113.64/26")]));
    assert_eq!(filter.export, ExportRule::Only(vec![net("203.0.113.0/26")]));
    let ep = Api::<InfraEndpoint>::namespaced(client.clone(), ns)
        .get("na")
        .await
        .unwrap();
    let networks = ep.status.unwrap().networks;
    assert_eq!((networks[0].announced, networks[1].announced), (true, false));
    assert!(
        networks[1]
            .message
            .as_deref()
            .unwrap_or("")
            .contains("no next hop of its family")
    );

    // The other cell stops sending its network and sends one it does not declare.
    a.set_sent_by(ip("192.0.2.2"), vec![net("10.99.0.0/16")]);
    let missing = wait_until(
        "RoutesMissing",
        async || condition(&client, ns, "na-nb", "RoutesExchanged").await,
        is("False", Reason::RoutesMissing),
    )
    .await;
    assert!(
        missing
            .unwrap()
            .2
            .contains("cell na has not accepted 203.0.113.64/26 from cell nb")
    );
    assert_eq!(
        ready(&client, ns, "na-nb").await.unwrap().1,
        Reason::RoutesMissing.as_str()
    );
    let cic = Api::<CellInterconnect>::namespaced(client.clone(), ns)
        .get("na-nb")
        .await
        .unwrap();
    let routes = cic.status.unwrap().local.unwrap().routes.unwrap();
    assert_eq!((routes.received, routes.accepted, routes.rejected), (1, 0, 1));
    assert_eq!(
        (routes.missing.as_slice(), routes.missing_count),
        (&["203.0.113.64/26".to_string()][..], 1)
    );
    a.set_sent_by(ip("192.0.2.2"), vec![net("203.0.113.64/26")]);
    wait_until(
        "Ready again",
        async || ready(&client, ns, "na-nb").await,
        |r| r.as_ref().is_some_and(|(s, _)| s == "True"),
    )
    .await;

    // A prefix limit that tripped stalls the interconnect with its own reason.
    b.set_prefix_limit_hit(ip("192.0.2.1"), true);
    wait_until(
        "PrefixLimitExceeded",
        async || condition(&client, ns, "na-nb", "RoutesExchanged").await,
        is("False", Reason::PrefixLimitExceeded),
    )
    .await;
    b.set_prefix_limit_hit(ip("192.0.2.1"), false);

    // Drift: the origination removed by hand comes back with the speaker poll.
    a.drop_origination(mark_a);
    wait_until(
        "origination restored",
        async || a.originations().contains_key(&mark_a),
        |back| *back,
    )
    .await;

    // Another cell declaring an overlapping network: both held back, both told.
    let c_ep = endpoint("nc", "192.0.2.3", 65003).networks(&["203.0.113.0/25"]);
    create(&client, ns, &c_ep.typed()).await;
    let conflict = wait_until(
        "NetworkConflict on na",
        async || endpoint_condition(&client, ns, "na", "NetworksAnnounced").await,
        is("False", Reason::NetworkConflict),
    )
    .await;
    assert!(
        conflict
            .unwrap()
            .2
            .contains("203.0.113.0/25 of InfraEndpoint nc (cell nc)")
    );
    wait_until(
        "NetworkConflict on nc",
        async || endpoint_condition(&client, ns, "nc", "NetworksAnnounced").await,
        is("False", Reason::NetworkConflict),
    )
    .await;
    wait_until(
        "na's network no longer originated nor accepted by nb",
        async || {
            (
                a.originations()[&mark_a].networks.clone(),
                b.filters().into_values().next().map(|f| f.import),
            )
        },
        |(nets, import)| nets.is_empty() && *import == Some(ImportRule::Only(vec![])),
    )
    .await;
    Api::<InfraEndpoint>::namespaced(client.clone(), ns)
        .delete("nc", &DeleteParams::default())
        .await
        .expect("delete nc");
    wait_until(
        "conflict resolved",
        async || endpoint_condition(&client, ns, "na", "NetworksAnnounced").await,
        is("True", Reason::NetworksAnnounced),
    )
    .await;
    wait_until(
        "na's network announced again",
        async || a.originations()[&mark_a].networks.clone(),
        |nets| *nets == [net("203.0.113.0/26")],
    )
    .await;

    // Deleting everything leaves nothing of cellnet's on either speaker.
    Api::<CellInterconnect>::namespaced(client.clone(), ns)
        .delete("na-nb", &DeleteParams::default())
        .await
        .expect("delete na-nb");
    for name in ["na", "nb"] {
        Api::<InfraEndpoint>::namespaced(client.clone(), ns)
            .delete(name, &DeleteParams::default())
            .await
            .expect("delete endpoint");
    }
    wait_until(
        "nothing left on the speakers",
        async || {
            (
                a.filters().len(),
                b.filters().len(),
                a.originations().len(),
                b.originations().len(),
                a.peers().len(),
            )
        },
        |n| *n == (0, 0, 0, 0, 0),
    )
    .await;
}
