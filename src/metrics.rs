//! Prometheus metrics. Reconcile metrics use controller-runtime's names so existing dashboards
//! and alerts work; cellnet's own are prefixed `cellnet_`.
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::sdn::SdnTarget;

pub mod objects;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    pub controller: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub controller: String,
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    pub controller: String,
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SdnCallLabels {
    pub backend: String,
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SessionLabels {
    pub cell: String,
    pub peer: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CellLabels {
    pub cell: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
    pub commit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LeaseLabels {
    pub name: String,
}

fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric the controller exports.
pub struct Metrics {
    pub reconcile_total: Family<ResultLabels, Counter>,
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    pub reconcile_time: Family<ControllerLabels, Histogram, fn() -> Histogram>,
    pub sdn_calls: Family<SdnCallLabels, Counter>,
    pub sdn_call_time: Family<SdnCallLabels, Histogram, fn() -> Histogram>,
    pub sdn_writes: Family<OperationLabels, Counter>,
    pub status_writes: Family<ControllerLabels, Counter>,
    /// One series per BGP session seen from a cell's speaker, 1 for its current state
    /// (`sum by (cell, state)` counts sessions per state and cell).
    pub sessions: Family<SessionLabels, Gauge>,
    /// The state each (cell, peer) series currently carries, to remove the old one on a change.
    session_states: std::sync::Mutex<std::collections::HashMap<(String, String), String>>,
    pub drift_repairs: Family<CellLabels, Counter>,
    /// client-go's `leader_election_master_status`: 1 while this replica leads.
    pub leader: Family<LeaseLabels, Gauge>,
    /// Always 1, labelled with the version and git commit (`cellnet_build_info`).
    pub build_info: Family<BuildLabels, Gauge>,
    /// Per-object series: readiness, flaps and routes per interconnect side, SDN reachability.
    pub objects: objects::ObjectSeries,
}

/// The one `cellnet_build_info` series of this binary.
fn build_info() -> Family<BuildLabels, Gauge> {
    let family = Family::<BuildLabels, Gauge>::default();
    family
        .get_or_create(&BuildLabels {
            version: crate::build_info::VERSION.into(),
            commit: crate::build_info::GIT_COMMIT.into(),
        })
        .set(1);
    family
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            reconcile_total: Family::default(),
            reconcile_errors: Family::default(),
            reconcile_time: Family::new_with_constructor(latency_histogram),
            sdn_calls: Family::default(),
            sdn_call_time: Family::new_with_constructor(latency_histogram),
            sdn_writes: Family::default(),
            status_writes: Family::default(),
            sessions: Family::default(),
            session_states: Default::default(),
            drift_repairs: Family::default(),
            leader: Family::default(),
            build_info: build_info(),
            objects: Default::default(),
        }
    }
}

impl Metrics {
    /// Registers everything in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            self.reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            self.reconcile_errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            self.reconcile_time.clone(),
        );
        registry.register(
            "cellnet_sdn_api_calls",
            "SDN API calls by backend and operation",
            self.sdn_calls.clone(),
        );
        registry.register(
            "cellnet_sdn_api_call_duration_seconds",
            "SDN API call latency by backend and operation",
            self.sdn_call_time.clone(),
        );
        registry.register(
            "cellnet_sdn_writes",
            "Changes made on speakers (peer created, updated, removed)",
            self.sdn_writes.clone(),
        );
        registry.register(
            "cellnet_status_writes",
            "Status updates written per controller",
            self.status_writes.clone(),
        );
        registry.register(
            "cellnet_bgp_sessions",
            "BGP sessions by cell, peer and state (1 for the current state)",
            self.sessions.clone(),
        );
        registry.register(
            "cellnet_drift_repairs",
            "Peers found changed or missing on a speaker and repaired, by cell",
            self.drift_repairs.clone(),
        );
        registry.register(
            "leader_election_master_status",
            "1 while this replica holds the leader election Lease, 0 otherwise",
            self.leader.clone(),
        );
        registry.register(
            "cellnet_build_info",
            "Always 1; the version and git commit this controller was built from",
            self.build_info.clone(),
        );
        self.objects.register(registry);
    }

    /// Records that the session of `peer` on the speaker of `cell` is in `state` (e.g.
    /// `Established`, `Active`); the series of its previous state is removed.
    pub fn set_session(&self, cell: &str, peer: &str, state: &str) {
        let key = (cell.to_string(), peer.to_string());
        let mut states = self.session_states.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = states.insert(key, state.to_string())
            && old != state
        {
            self.sessions.remove(&SessionLabels {
                cell: cell.into(),
                peer: peer.into(),
                state: old,
            });
        }
        self.sessions
            .get_or_create(&SessionLabels {
                cell: cell.into(),
                peer: peer.into(),
                state: state.into(),
            })
            .set(1);
    }

    /// Forgets the session of `peer` on `cell` (peer removed, interconnect deleted).
    pub fn remove_session(&self, cell: &str, peer: &str) {
        let mut states = self.session_states.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = states.remove(&(cell.to_string(), peer.to_string())) {
            self.sessions.remove(&SessionLabels {
                cell: cell.into(),
                peer: peer.into(),
                state,
            });
        }
    }

    /// Counts one repair of drift (a peer changed or removed behind cellnet's back) on `cell`.
    pub fn drift_repair(&self, cell: &str) {
        self.drift_repairs
            .get_or_create(&CellLabels { cell: cell.into() })
            .inc();
    }

    /// Sets `leader_election_master_status{name}`.
    pub fn set_leader(&self, lease: &str, leading: bool) {
        self.leader
            .get_or_create(&LeaseLabels { name: lease.into() })
            .set(i64::from(leading));
    }

    /// Observes a reconcile's duration when the guard drops (the count is [`Self::reconcile_result`]).
    pub fn reconcile_timer(&self, controller: &str) -> Timer<'_> {
        Timer {
            histogram: self.reconcile_time.get_or_create_owned(&ControllerLabels {
                controller: controller.into(),
            }),
            start: Instant::now(),
            _lifetime: std::marker::PhantomData,
        }
    }

    /// Counts a finished reconcile with controller-runtime's `result` label: `success` (wait for a
    /// change), `requeue_after` (requeued at a time), or `error` (`action` is `None`).
    pub fn reconcile_result(&self, controller: &str, action: Option<&kube::runtime::controller::Action>) {
        let result = match action {
            None => "error",
            Some(a) if *a == kube::runtime::controller::Action::await_change() => "success",
            Some(_) => "requeue_after",
        };
        self.reconcile_total
            .get_or_create(&ResultLabels {
                controller: controller.into(),
                result: result.into(),
            })
            .inc();
    }

    pub fn reconcile_error(&self, controller: &str, reason: crate::api::Reason) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                controller: controller.into(),
                reason: reason.as_str().into(),
            })
            .inc();
    }

    /// Counts an SDN API call and observes its latency when the guard drops.
    pub fn sdn_timer(&self, target: &SdnTarget, operation: &str) -> Timer<'_> {
        let labels = SdnCallLabels {
            backend: format!("{:?}", target.kind),
            operation: operation.into(),
        };
        self.sdn_calls.get_or_create(&labels).inc();
        Timer {
            histogram: self.sdn_call_time.get_or_create_owned(&labels),
            start: Instant::now(),
            _lifetime: std::marker::PhantomData,
        }
    }

    pub fn sdn_write(&self, operation: &str) {
        self.sdn_writes
            .get_or_create(&OperationLabels {
                operation: operation.into(),
            })
            .inc();
    }

    pub fn status_write(&self, controller: &str) {
        self.status_writes
            .get_or_create(&ControllerLabels {
                controller: controller.into(),
            })
            .inc();
    }
}

/// Observes the elapsed time into a histogram when dropped.
pub struct Timer<'a> {
    histogram: Histogram,
    start: Instant,
    _lifetime: std::marker::PhantomData<&'a ()>,
}

impl Drop for Timer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.start.elapsed().as_secs_f64());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exposition(metrics: &Metrics) -> String {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &registry).unwrap();
        out
    }

    #[test]
    fn names_match_controller_runtime() {
        let m = Metrics::default();
        drop(m.reconcile_timer("CellInterconnect"));
        m.reconcile_result("CellInterconnect", None);
        m.reconcile_result(
            "CellInterconnect",
            Some(&kube::runtime::controller::Action::await_change()),
        );
        m.reconcile_result(
            "CellInterconnect",
            Some(&kube::runtime::controller::Action::requeue(
                std::time::Duration::from_secs(5),
            )),
        );
        m.reconcile_error("CellInterconnect", crate::api::Reason::SdnUnreachable);
        let out = exposition(&m);
        for line in [
            "# TYPE controller_runtime_reconcile counter",
            "controller_runtime_reconcile_total{controller=\"CellInterconnect\",result=\"error\"} 1",
            "controller_runtime_reconcile_total{controller=\"CellInterconnect\",result=\"success\"} 1",
            "controller_runtime_reconcile_total{controller=\"CellInterconnect\",result=\"requeue_after\"} 1",
            "controller_runtime_reconcile_errors_total{controller=\"CellInterconnect\",",
            "controller_runtime_reconcile_time_seconds_bucket{",
            "controller_runtime_reconcile_time_seconds_count{controller=\"CellInterconnect\"} 1",
            &format!(
                "cellnet_build_info{{version=\"{}\",commit=\"{}\"}} 1",
                crate::build_info::VERSION,
                crate::build_info::GIT_COMMIT
            ),
        ] {
            assert!(out.contains(line), "missing {line:?} in:\n{out}");
        }
    }

    #[test]
    fn a_session_has_one_series_for_its_current_state() {
        let m = Metrics::default();
        m.set_session("cell1", "127.0.0.12", "Active");
        m.set_session("cell1", "127.0.0.12", "Established");
        m.drift_repair("cell1");
        m.set_leader("cellnet-controller", true);
        let out = exposition(&m);
        assert!(
            out.contains("cellnet_bgp_sessions{cell=\"cell1\",peer=\"127.0.0.12\",state=\"Established\"} 1"),
            "{out}"
        );
        assert!(!out.contains("state=\"Active\""), "{out}");
        assert!(
            out.contains("cellnet_drift_repairs_total{cell=\"cell1\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("leader_election_master_status{name=\"cellnet-controller\"} 1"),
            "{out}"
        );
        m.remove_session("cell1", "127.0.0.12");
        assert!(!exposition(&m).contains("peer=\"127.0.0.12\""));
    }
}
