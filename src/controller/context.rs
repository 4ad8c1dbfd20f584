//! What every reconcile shares: the [`Context`] (client, caches, speakers, Neutron clients,
//! backoffs, metrics, the Event queue) and the command-line [`Config`] it is built from.
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::runtime::events::{Event, EventType, Reporter};
use kube::runtime::reflector::Store;
use kube::{Client, Resource};
use tokio::sync::mpsc;
use tracing::warn;

use super::allowlist::Allowlist;
use super::backoff::Backoffs;
use super::events::Recorder;
use super::speakers::Speakers;
use super::{changes, endpoint, neutron_sync};
use crate::api::Reason;
use crate::api::{CellInterconnect, InfraEndpoint};
use crate::metrics::Metrics;

/// Field manager of every write the controller makes (and the reporter of its Events).
pub const FIELD_MANAGER: &str = "cellnet-controller";

/// Settings from the command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// How often each speaker's peers are polled for drift.
    pub sdn_resync_interval: Duration,
    /// Timeout of every SDN API call.
    pub sdn_timeout: Duration,
    /// The first wait after an SDN API refused cellnet's credentials; it doubles with each
    /// refusal in a row up to 8 times this (`--auth-failure-backoff`).
    pub auth_failure_backoff: Duration,
    /// Reconciles running at once per controller.
    pub concurrency: u16,
    /// Reporter instance name for Events (pod name in a cluster).
    pub instance: Option<String>,
    /// Namespaces whose Secrets are watched; empty: all (`--secret-namespaces`, least privilege).
    pub secret_namespaces: Vec<String>,
    /// Opens SDN clients: the real backends, or an in-memory speaker in tests.
    pub connector: Arc<dyn crate::sdn::Connector>,
    /// Use referenced Secrets without the label `cellnet.io/credentials: "true"`
    /// (`--allow-unlabelled-secrets`, for single-tenant clusters).
    pub allow_unlabelled_secrets: bool,
    /// The SDN, Keystone and Neutron APIs cellnet may call (`--endpoint-allow`); empty: any.
    pub endpoint_allow: Allowlist,
    /// The least time a session may stay down before it is stuck and reset
    /// (`--session-stuck-minimum`; the threshold is 3 × holdTime when that is longer).
    pub session_stuck_minimum: Duration,
    /// Refuse credentials over plain `http://` and skipped certificate verification
    /// (`--require-tls`) instead of warning (`InsecureTransport`).
    pub require_tls: bool,
    /// The watchdog behind `/healthz`: every reconcile registers with it while it runs.
    pub liveness: Arc<crate::liveness::Liveness>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sdn_resync_interval: Duration::from_secs(10),
            sdn_timeout: Duration::from_secs(5),
            auth_failure_backoff: Duration::from_secs(120),
            concurrency: 16,
            instance: None,
            secret_namespaces: Vec::new(),
            connector: Arc::new(crate::sdn::RealConnector),
            allow_unlabelled_secrets: false,
            endpoint_allow: Allowlist::default(),
            session_stuck_minimum: Duration::from_secs(30),
            require_tls: false,
            liveness: Arc::default(),
        }
    }
}

/// Shared by every reconcile.
pub struct Context {
    pub client: Client,
    pub speakers: Arc<Speakers>,
    pub endpoints: Store<InfraEndpoint>,
    pub interconnects: Store<CellInterconnect>,
    pub backoffs: Backoffs,
    /// When each endpoint's status was last written (count-only changes are spaced out).
    pub endpoint_writes: endpoint::StatusWrites,
    /// Interconnect metadata writes already acted on (their watch events need no reconcile).
    pub own_writes: Arc<changes::OwnWrites>,
    /// The status last written to each object, for when the cache is behind it.
    pub status_memo: super::status_write::StatusMemo,
    /// First reports of new links waiting for their sessions (`interconnect::first_report`).
    pub first_reports: super::interconnect::first_report::FirstReports,
    /// The ownership ledger last written to each interconnect, for when the cache is behind it.
    pub ledgers: super::interconnect::ledger::Written,
    pub metrics: Arc<Metrics>,
    /// Neutron clients (one per cloud) and the Neutron drift resync interval.
    pub neutron: Arc<neutron_sync::NeutronClients>,
    /// Events to send: a queue drained by a few senders beside the reconciles, never in their way.
    pub events: mpsc::Sender<(Event, ObjectReference)>,
    /// Whether Secrets without the `cellnet.io/credentials` label may be used.
    pub allow_unlabelled_secrets: bool,
    /// The APIs cellnet may call; empty: any.
    pub endpoint_allow: Allowlist,
    /// See [`Config::session_stuck_minimum`].
    pub session_stuck_minimum: Duration,
    /// `--require-tls`: insecure transport is refused (`TlsRequired`), not only warned about.
    pub require_tls: bool,
    /// The watchdog behind `/healthz` (reconciles running too long).
    pub liveness: Arc<crate::liveness::Liveness>,
}

/// The caches the reconciles read, filled by the watches of [`super::wiring`].
pub struct Caches {
    pub endpoints: Store<InfraEndpoint>,
    pub interconnects: Store<CellInterconnect>,
    /// Shared with the interconnect watch, which skips the events of these writes.
    pub own_writes: Arc<changes::OwnWrites>,
}

/// The longest Event note the API server takes (events.k8s.io/v1 `note`: 1 KiB); a longer one
/// is refused and the Event lost.
pub const EVENT_NOTE_LIMIT: usize = 1024;
/// Events waiting to be sent; beyond this many (an API server that has not answered for a long
/// time), new ones are dropped with a warning rather than held in memory.
const EVENT_QUEUE: usize = 10_000;
/// Events sent at once. Few on purpose: during a bulk apply they compete with the status writes
/// for the API server, and a note for people can wait a few seconds.
const EVENT_SENDERS: usize = 4;

/// Backoff of failing reconciles: from the first retry to the longest wait.
const RECONCILE_BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));

impl Context {
    /// The shared context; starts the Event senders (they stop when the context is dropped).
    pub fn new(
        client: Client,
        config: &Config,
        metrics: Arc<Metrics>,
        speakers: Arc<Speakers>,
        caches: Caches,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.into(),
            instance: config.instance.clone(),
        };
        let recorder = Arc::new(Recorder::new(client.clone(), reporter));
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        tokio::spawn(send_events(recorder, events_rx));
        Self {
            client,
            speakers,
            endpoints: caches.endpoints,
            interconnects: caches.interconnects,
            backoffs: Backoffs::new(RECONCILE_BACKOFF.0, RECONCILE_BACKOFF.1),
            endpoint_writes: Default::default(),
            own_writes: caches.own_writes,
            status_memo: Default::default(),
            first_reports: Default::default(),
            ledgers: Default::default(),
            events: events_tx,
            allow_unlabelled_secrets: config.allow_unlabelled_secrets,
            endpoint_allow: config.endpoint_allow.clone(),
            session_stuck_minimum: config.session_stuck_minimum,
            require_tls: config.require_tls,
            liveness: config.liveness.clone(),
            metrics,
            neutron: Arc::new(
                neutron_sync::NeutronClients::new(config.sdn_resync_interval, config.sdn_timeout)
                    .with_auth_backoff(config.auth_failure_backoff),
            ),
        }
    }

    /// Publishes an Event on `obj`; a failure is logged, never fatal.
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: Reason,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.as_str().into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        // An Event is a note for people, not a step of the reconcile: queued, it kept bulk
        // applies from waiting on two or three API round trips per object.
        if self.events.try_send((event, obj.object_ref(&()))).is_err() {
            warn!(reason = %reason, "event queue full or closed; event dropped");
        }
    }
}

/// Sends queued Events until every sender of `rx` is gone.
async fn send_events(recorder: Arc<Recorder>, rx: mpsc::Receiver<(Event, ObjectReference)>) {
    tokio_stream::wrappers::ReceiverStream::new(rx)
        .for_each_concurrent(EVENT_SENDERS, |(event, reference)| {
            let recorder = recorder.clone();
            async move {
                if let Err(err) = recorder.publish(&event, &reference).await {
                    warn!(error = %err, reason = %event.reason, "cannot publish event");
                }
            }
        })
        .await;
}
