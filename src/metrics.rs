//! Prometheus metrics. Reconcile metrics use controller-runtime's names so existing dashboards
//! and alerts work; cellnet's own are prefixed `cellnet_`.
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::sdn::SdnTarget;

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
    }

    /// Counts a reconcile and observes its duration when the guard drops.
    pub fn reconcile_timer(&self, controller: &str) -> Timer<'_> {
        self.reconcile_total
            .get_or_create(&ResultLabels {
                controller: controller.into(),
                result: "attempt".into(),
            })
            .inc();
        Timer {
            histogram: self.reconcile_time.get_or_create_owned(&ControllerLabels {
                controller: controller.into(),
            }),
            start: Instant::now(),
            _lifetime: std::marker::PhantomData,
        }
    }

    pub fn reconcile_error(&self, controller: &str, reason: &str) {
        self.reconcile_errors
            .get_or_create(&ErrorLabels {
                controller: controller.into(),
                reason: reason.into(),
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
