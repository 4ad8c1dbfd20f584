//! Series per object, for alerts and dashboards that name the cell: each interconnect's
//! readiness (with both cells), each managed side's session, flaps and routes, each managed
//! endpoint's SDN reachability. `paused="true"` marks a suspended or disabled interconnect, whose
//! sessions are down on purpose (alerts leave it out). Taken from the status the controller computes; replaced whole when an object's
//! labels change and removed when it is deleted. Cardinality: one series per interconnect plus
//! four per managed side, one per managed endpoint (as kube-state-metrics has per object).
use std::collections::HashMap;
use std::sync::Mutex;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The label value naming an object: `namespace/name`.
pub fn object_label(object: &impl kube::ResourceExt) -> String {
    format!("{}/{}", object.namespace().unwrap_or_default(), object.name_any())
}

/// `interconnect` is `namespace/name` (a `namespace` label would clash with the scrape target's).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct InterconnectLabels {
    pub interconnect: String,
    pub local_cell: String,
    pub remote_cell: String,
    pub paused: String,
}

/// One managed side of an interconnect: `side` is `local` or `remote`, `cell` that side's cell,
/// `peer_cell` the other one.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SideLabels {
    pub interconnect: String,
    pub side: String,
    pub cell: String,
    pub peer_cell: String,
    pub paused: String,
}

/// `infraendpoint` is `namespace/name` (`endpoint` is a Prometheus Operator target label).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    pub infraendpoint: String,
    pub cell: String,
}

/// What the metrics say about one interconnect (from its new status).
#[derive(Clone, Debug, PartialEq)]
pub struct InterconnectView {
    pub labels: InterconnectLabels,
    pub ready: bool,
    pub sides: Vec<SideView>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SideView {
    pub side: &'static str,
    pub cell: String,
    pub peer_cell: String,
    pub established: bool,
    pub flaps: u32,
    /// Routes accepted from the other side and expected networks missing; `None` until observed.
    pub routes: Option<(u64, u32)>,
}

#[derive(Default)]
pub struct ObjectSeries {
    pub interconnect_ready: Family<InterconnectLabels, Gauge>,
    pub session_established: Family<SideLabels, Gauge>,
    pub flaps: Family<SideLabels, Gauge>,
    pub routes_accepted: Family<SideLabels, Gauge>,
    pub routes_missing: Family<SideLabels, Gauge>,
    pub sdn_reachable: Family<EndpointLabels, Gauge>,
    /// The labels each interconnect's series carry now, to remove them on a change.
    interconnects: Mutex<HashMap<String, (InterconnectLabels, Vec<SideLabels>)>>,
    endpoints: Mutex<HashMap<String, EndpointLabels>>,
}

impl ObjectSeries {
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "cellnet_interconnect_ready",
            "1 while the CellInterconnect's Ready condition is True, else 0; labels name both cells",
            self.interconnect_ready.clone(),
        );
        registry.register(
            "cellnet_interconnect_session_established",
            "1 while this side's BGP session is Established (status.<side>.sessionState), else 0",
            self.session_established.clone(),
        );
        registry.register(
            "cellnet_interconnect_flaps",
            "Established -> down transitions seen by this side (status.<side>.flaps)",
            self.flaps.clone(),
        );
        registry.register(
            "cellnet_interconnect_routes_accepted",
            "Routes this side accepted from the other cell (status.<side>.routes.accepted)",
            self.routes_accepted.clone(),
        );
        registry.register(
            "cellnet_interconnect_routes_missing",
            "Networks of the other cell this side should receive and has not (status.<side>.routes.missingCount)",
            self.routes_missing.clone(),
        );
        registry.register(
            "cellnet_sdn_reachable",
            "1 when the managed InfraEndpoint's SDN API answered at its last reconcile, else 0",
            self.sdn_reachable.clone(),
        );
    }

    /// Sets the series of interconnect `key` (`namespace/name`) to `view`.
    pub fn set_interconnect(&self, key: &str, view: &InterconnectView) {
        let sides: Vec<SideLabels> = view
            .sides
            .iter()
            .map(|s| SideLabels {
                interconnect: view.labels.interconnect.clone(),
                side: s.side.into(),
                cell: s.cell.clone(),
                peer_cell: s.peer_cell.clone(),
                paused: view.labels.paused.clone(),
            })
            .collect();
        let mut known = self.interconnects.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = known.insert(key.into(), (view.labels.clone(), sides.clone())) {
            self.remove_series(&old);
        }
        self.interconnect_ready
            .get_or_create(&view.labels)
            .set(i64::from(view.ready));
        for (labels, side) in sides.iter().zip(&view.sides) {
            let established = i64::from(side.established);
            self.session_established.get_or_create(labels).set(established);
            self.flaps.get_or_create(labels).set(i64::from(side.flaps));
            if let Some((accepted, missing)) = side.routes {
                let accepted = i64::try_from(accepted).unwrap_or(i64::MAX);
                self.routes_accepted.get_or_create(labels).set(accepted);
                self.routes_missing.get_or_create(labels).set(i64::from(missing));
            }
        }
    }

    /// Removes every series of interconnect `key` (it is being deleted).
    pub fn remove_interconnect(&self, key: &str) {
        let mut known = self.interconnects.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = known.remove(key) {
            self.remove_series(&old);
        }
    }

    fn remove_series(&self, (labels, sides): &(InterconnectLabels, Vec<SideLabels>)) {
        self.interconnect_ready.remove(labels);
        for side in sides {
            self.session_established.remove(side);
            self.flaps.remove(side);
            self.routes_accepted.remove(side);
            self.routes_missing.remove(side);
        }
    }

    /// Sets the reachability of endpoint `key` in `cell`; `None` (external) removes it.
    pub fn set_endpoint(&self, key: &str, cell: &str, reachable: Option<bool>) {
        let labels = EndpointLabels {
            infraendpoint: key.into(),
            cell: cell.into(),
        };
        let mut known = self.endpoints.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = known.remove(key) {
            self.sdn_reachable.remove(&old);
        }
        if let Some(reachable) = reachable {
            self.sdn_reachable
                .get_or_create(&labels)
                .set(i64::from(reachable));
            known.insert(key.into(), labels);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(series: &ObjectSeries) -> String {
        let mut registry = Registry::default();
        series.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    fn view(remote_cell: &str, ready: bool) -> InterconnectView {
        InterconnectView {
            labels: InterconnectLabels {
                interconnect: "ns/a-b".into(),
                local_cell: "a".into(),
                remote_cell: remote_cell.into(),
                paused: "false".into(),
            },
            ready,
            sides: vec![
                SideView {
                    side: "local",
                    cell: "a".into(),
                    peer_cell: remote_cell.into(),
                    established: true,
                    flaps: 2,
                    routes: Some((3, 1)),
                },
                SideView {
                    side: "remote",
                    cell: remote_cell.into(),
                    peer_cell: "a".into(),
                    established: false,
                    flaps: 0,
                    routes: None,
                },
            ],
        }
    }

    #[test]
    fn an_interconnect_has_one_set_of_series_and_loses_it_on_deletion() {
        let s = ObjectSeries::default();
        s.set_interconnect("ns/a-b", &view("b", true));
        s.set_interconnect("ns/a-b", &view("c", false));
        let out = exposition(&s);
        assert!(
            out.contains(
                r#"cellnet_interconnect_ready{interconnect="ns/a-b",local_cell="a",remote_cell="c",paused="false"} 0"#
            ),
            "{out}"
        );
        assert!(!out.contains(r#"remote_cell="b""#), "old labels removed: {out}");
        let local = r#"{interconnect="ns/a-b",side="local",cell="a",peer_cell="c",paused="false"}"#;
        for line in [
            format!("cellnet_interconnect_flaps{local} 2"),
            format!("cellnet_interconnect_routes_missing{local} 1"),
            format!("cellnet_interconnect_session_established{local} 1"),
        ] {
            assert!(out.contains(&line), "{line} in {out}");
        }
        assert!(
            !out.contains(r#"routes_accepted{interconnect="ns/a-b",side="remote""#),
            "not observed yet"
        );
        s.remove_interconnect("ns/a-b");
        assert!(!exposition(&s).contains("ns/a-b"));
    }

    #[test]
    fn an_external_endpoint_has_no_reachability_series() {
        let s = ObjectSeries::default();
        s.set_endpoint("ns/e", "a", Some(false));
        assert!(exposition(&s).contains(r#"cellnet_sdn_reachable{infraendpoint="ns/e",cell="a"} 0"#));
        s.set_endpoint("ns/e", "a", None);
        assert!(!exposition(&s).contains("ns/e"));
    }
}
