//! The controllers: wiring of watches, shared context, and the run loop.
//!
//! Two kube-runtime controllers share one [`Context`]: CellInterconnects (the peers and sessions)
//! and InfraEndpoints (speaker config, labels, in-use finalizer). Speaker watchers
//! ([`speakers`]) requeue the objects of a speaker when something changes on it.
pub mod backoff;
pub mod changes;
pub mod endpoint;
pub mod error;
pub mod interconnect;
pub mod neutron;
pub mod problem;
pub mod speaker_setup;
pub mod speakers;
pub mod status_write;
pub mod target;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt as _, StreamExt as _};
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use kube::api::Api;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, predicates, watcher};
use kube::{Client, Resource, ResourceExt};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_stream::wrappers::UnboundedReceiverStream;
use tracing::{debug, info, warn};

use crate::api::{CellInterconnect, InfraEndpoint};
use crate::metrics::Metrics;
use backoff::Backoffs;
use speakers::{SpeakerChange, SpeakerKey, Speakers};

/// How long in-flight reconciles may run after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

/// Written by `kubectl apply` (client-side): a copy of the whole manifest.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Field manager of every write the controller makes.
pub const FIELD_MANAGER: &str = "cellnet-controller";

/// Settings from the command line.
#[derive(Clone, Debug)]
pub struct Config {
    /// How often each speaker's peers are polled for drift.
    pub sdn_resync_interval: Duration,
    /// Timeout of every SDN API call.
    pub sdn_timeout: Duration,
    /// Reconciles running at once per controller.
    pub concurrency: u16,
    /// Reporter instance name for Events (pod name in a cluster).
    pub instance: Option<String>,
    /// Namespaces whose Secrets are watched; empty: all (`--secret-namespaces`, least privilege).
    pub secret_namespaces: Vec<String>,
    /// Opens SDN clients: the real backends, or an in-memory speaker in tests.
    pub connector: Arc<dyn crate::sdn::Connector>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sdn_resync_interval: Duration::from_secs(10),
            sdn_timeout: Duration::from_secs(5),
            concurrency: 16,
            instance: None,
            secret_namespaces: Vec::new(),
            connector: Arc::new(crate::sdn::RealConnector),
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
    pub metrics: Arc<Metrics>,
    /// Neutron clients (one per cloud) and the Neutron drift resync interval.
    pub neutron: Arc<neutron::NeutronClients>,
    /// Events to send: a queue drained by a few senders beside the reconciles, never in their way.
    pub events: tokio::sync::mpsc::Sender<(Event, ObjectReference)>,
}

/// Events waiting to be sent; beyond this many (an API server that has not answered for a long
/// time), new ones are dropped with a warning rather than held in memory.
const EVENT_QUEUE: usize = 10_000;
/// Events sent at once. Few on purpose: during a bulk apply they compete with the status writes
/// for the API server, and a note for people can wait a few seconds.
const EVENT_SENDERS: usize = 4;

/// Sends queued Events until every sender of `rx` is gone.
async fn send_events(recorder: Recorder, rx: tokio::sync::mpsc::Receiver<(Event, ObjectReference)>) {
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

impl Context {
    /// Publishes an Event on `obj`; a failure is logged, never fatal.
    pub async fn publish<K: Resource<DynamicType = ()>>(
        &self,
        obj: &K,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: action.into(),
            secondary: None,
        };
        // An Event is a note for people, not a step of the reconcile: queued, it kept bulk
        // applies from waiting on two or three API round trips per object.
        if self.events.try_send((event, obj.object_ref(&()))).is_err() {
            warn!(reason, "event queue full or closed; event dropped");
        }
    }
}

/// The speakers that changed as a whole (not one of their peers) in `changes`.
fn whole_speakers(changes: &[SpeakerChange]) -> std::collections::HashSet<&SpeakerKey> {
    changes
        .iter()
        .filter(|c| c.neighbor.is_none())
        .map(|c| &c.key)
        .collect()
}

/// The CellInterconnects that use a changed speaker (on either side) and, for a change of one
/// peer, have that neighbour: the other endpoint's address. One pass over the interconnects for
/// a whole window of changes: a pass per change (endpoint lookups, speaker keys and addresses
/// rebuilt each time) was the controller's largest CPU cost while 2,000 sessions came up.
fn interconnects_on(
    ctx_endpoints: &Store<InfraEndpoint>,
    cics: &Store<CellInterconnect>,
    changes: &[SpeakerChange],
) -> Vec<ObjectRef<CellInterconnect>> {
    let whole = whole_speakers(changes);
    let peers: std::collections::HashSet<(&SpeakerKey, std::net::IpAddr)> = changes
        .iter()
        .filter_map(|c| Some((&c.key, c.neighbor?)))
        .collect();
    cics.state()
        .iter()
        .filter(|cic| {
            let ns = cic.namespace().unwrap_or_default();
            let ep = |name: &String| ctx_endpoints.get(&ObjectRef::new(name).within(&ns));
            let (local, remote) = (
                ep(&cic.spec.local_endpoint.name),
                ep(&cic.spec.remote_endpoint.name),
            );
            [(&local, &remote), (&remote, &local)]
                .iter()
                .any(|(this, other)| {
                    let Some(key) = this.as_ref().and_then(|e| target::endpoint_speaker_key(e)) else {
                        return false;
                    };
                    whole.contains(&key)
                        || other
                            .as_ref()
                            .and_then(|o| o.spec.address.parse().ok())
                            .is_some_and(|n| peers.contains(&(&key, n)))
                })
        })
        .map(|cic| ObjectRef::from_obj(cic.as_ref()))
        .collect()
}

/// Runs both controllers until `shutdown` resolves; in-flight reconciles finish first.
pub async fn run(
    client: Client,
    config: Config,
    metrics: Arc<Metrics>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let readiness = Arc::new(crate::http::Readiness::new(false));
    run_with(client, config, metrics, readiness, shutdown).await
}

/// [`run`], reporting to `readiness` when both controllers' caches are synced (for `/readyz`).
pub async fn run_with(
    client: Client,
    config: Config,
    metrics: Arc<Metrics>,
    readiness: Arc<crate::http::Readiness>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let shutdown = shutdown.shared();
    let cics: Api<CellInterconnect> = Api::all(client.clone());
    let eps: Api<InfraEndpoint> = Api::all(client.clone());
    // Consistent lists (not `any_semantic`): after an etcd restart the API server's watch cache
    // could serve an old resourceVersion, and every watch from it ended in 410 Gone, backing off
    // up to 30 s each time (found by tests/faults_restart.rs).
    let wc = watcher::Config::default();
    let ctrl_config = ControllerConfig::default().concurrency(config.concurrency);

    // Interconnects: reconciled on changes to anything but status. Reacting to our own status
    // writes queued every object once more per write during a bulk apply.
    let own_writes = Arc::new(changes::OwnWrites::default());
    let (cic_store, cic_writer) = kube::runtime::reflector::store();
    let cic_events = watcher(cics.clone(), wc.clone())
        .default_backoff()
        // The cache holds every interconnect: without managedFields and kubectl's copy of the
        // last applied manifest (neither is read) it is less than half the size.
        .modify(|cic| {
            cic.managed_fields_mut().clear();
            cic.annotations_mut().remove(LAST_APPLIED);
        })
        .reflect(cic_writer);
    let cic_ctrl = Controller::for_stream(
        changes::filtered(
            cic_events,
            changes::spec_or_meta::<CellInterconnect>,
            Some(own_writes.clone()),
        ),
        cic_store.clone(),
    )
    .with_config(ctrl_config.clone());
    let ep_ctrl = Controller::new(eps.clone(), wc.clone()).with_config(ctrl_config);
    let ep_store = ep_ctrl.store();

    let (cic_tx, cic_rx) = unbounded_channel::<SpeakerChange>();
    let (ep_tx, ep_rx) = unbounded_channel::<SpeakerChange>();
    let speakers = Arc::new(Speakers::new(
        vec![cic_tx, ep_tx],
        config.sdn_resync_interval,
        config.sdn_timeout,
        metrics.clone(),
        config.connector.clone(),
    ));
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: config.instance.clone(),
    };
    let recorder = Recorder::new(client.clone(), reporter);
    let (events_tx, events_rx) = tokio::sync::mpsc::channel(EVENT_QUEUE);
    tokio::spawn(send_events(recorder, events_rx));
    let ctx = Arc::new(Context {
        client: client.clone(),
        speakers: speakers.clone(),
        endpoints: ep_store.clone(),
        interconnects: cic_store.clone(),
        backoffs: Backoffs::new(Duration::from_secs(1), Duration::from_secs(60)),
        endpoint_writes: Default::default(),
        own_writes: own_writes.clone(),
        events: events_tx,
        metrics,
        neutron: Arc::new(neutron::NeutronClients::new(
            config.sdn_resync_interval,
            config.sdn_timeout,
        )),
    });

    // An endpoint change requeues every interconnect that refers to it.
    let endpoint_to_cics = {
        let cics = cic_store.clone();
        move |ep: InfraEndpoint| {
            let (ns, name) = (ep.namespace().unwrap_or_default(), ep.name_any());
            cics.state()
                .iter()
                .filter(|c| endpoint::refers_to(c, &ns, &name))
                .map(|c| ObjectRef::from_obj(c.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    // A Secret change (password, SDN credentials, CA) requeues the interconnects that use it.
    let secret_to_cics = {
        let (cics, eps) = (cic_store.clone(), ep_store.clone());
        move |secret: kube::core::PartialObjectMeta<Secret>| {
            let (ns, name) = (secret.namespace().unwrap_or_default(), secret.name_any());
            cics.state()
                .iter()
                .filter(|c| c.namespace().as_deref() == Some(ns.as_str()))
                .filter(|c| {
                    c.spec
                        .bgp
                        .password_secret_ref
                        .as_ref()
                        .is_some_and(|r| r.name == name)
                        || [&c.spec.local_endpoint.name, &c.spec.remote_endpoint.name]
                            .iter()
                            .any(|ep| {
                                eps.get(&ObjectRef::new(ep).within(&ns))
                                    .is_some_and(|ep| uses_secret(&ep, &name))
                            })
                })
                .map(|c| ObjectRef::from_obj(c.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    // Metadata only: the controller never caches Secret values; it reads them when it needs them.
    // With --secret-namespaces, one watch per namespace, so RBAC can grant Secrets per namespace.
    let secret_apis: Vec<Api<kube::core::PartialObjectMeta<Secret>>> = if config.secret_namespaces.is_empty()
    {
        vec![Api::all(client.clone())]
    } else {
        config
            .secret_namespaces
            .iter()
            .map(|ns| Api::namespaced(client.clone(), ns))
            .collect()
    };
    // Two watches of the same metadata (one per controller): simpler than a fan-out task, and
    // Secret metadata events are few.
    let secret_events = || {
        futures::stream::select_all(
            secret_apis
                .iter()
                .cloned()
                .map(|api| watcher(api, wc.clone()).touched_objects().boxed()),
        )
    };
    let (secrets, secrets_for_eps) = (secret_events(), secret_events());
    // A Secret change (SDN credentials, CA, Neutron's clouds.yaml or BGP password) requeues the
    // endpoints that use it.
    let secret_to_eps = {
        let eps = ep_store.clone();
        move |secret: kube::core::PartialObjectMeta<Secret>| {
            let (ns, name) = (secret.namespace().unwrap_or_default(), secret.name_any());
            eps.state()
                .iter()
                .filter(|ep| ep.namespace().as_deref() == Some(ns.as_str()))
                .filter(|ep| uses_secret(ep, &name) || neutron_uses_secret(ep, &name))
                .map(|ep| ObjectRef::from_obj(ep.as_ref()))
                .collect::<Vec<_>>()
        }
    };

    let cic_requeue = speaker_requeue(cic_rx, {
        let (eps, cics) = (ep_store.clone(), cic_store.clone());
        move |changes: &[SpeakerChange]| interconnects_on(&eps, &cics, changes)
    });
    let ep_requeue = speaker_requeue(ep_rx, {
        let eps = ep_store.clone();
        // Endpoints care about the speaker as a whole, not about one of its peers.
        move |changes: &[SpeakerChange]| {
            let whole = whole_speakers(changes);
            eps.state()
                .iter()
                .filter(|ep| target::endpoint_speaker_key(ep).is_some_and(|k| whole.contains(&k)))
                .map(|ep| ObjectRef::from_obj(ep.as_ref()))
                .collect()
        }
    });

    let cic_run = cic_ctrl
        // Only endpoint spec changes concern interconnects: an endpoint's status changes with
        // every interconnect added to it, and reacting to that requeued them all (a storm at scale).
        .watches_stream(
            watcher(eps.clone(), wc.clone())
                .touched_objects()
                .predicate_filter(predicates::generation, Default::default()),
            endpoint_to_cics,
        )
        .watches_stream(secrets, secret_to_cics)
        .reconcile_on(cic_requeue)
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |obj, ctx: Arc<Context>| async move {
                let result = interconnect::reconcile(obj, ctx.clone()).await;
                ctx.metrics
                    .reconcile_result("CellInterconnect", result.as_ref().ok());
                result
            },
            interconnect::error_policy,
            ctx.clone(),
        )
        .for_each(|res| async move { log_result("CellInterconnect", res) });

    let cic_to_eps = |cic: CellInterconnect| {
        let ns = cic.namespace().unwrap_or_default();
        [
            cic.spec.local_endpoint.name.clone(),
            cic.spec.remote_endpoint.name.clone(),
        ]
        .into_iter()
        .map(move |n| ObjectRef::<InfraEndpoint>::new(&n).within(&ns))
        .collect::<Vec<_>>()
    };
    let ep_run = ep_ctrl
        // Endpoints count and guard their interconnects: only existence, spec and deletion of
        // an interconnect matter to them, not its status.
        .watches_stream(
            changes::filtered(
                watcher(cics, wc.clone()).default_backoff(),
                changes::spec_or_deletion::<CellInterconnect>,
                None,
            ),
            cic_to_eps,
        )
        .watches_stream(secrets_for_eps, secret_to_eps)
        .reconcile_on(ep_requeue)
        .graceful_shutdown_on(shutdown.clone())
        .run(
            |obj, ctx: Arc<Context>| async move {
                let result = endpoint::reconcile(obj, ctx.clone()).await;
                ctx.metrics
                    .reconcile_result("InfraEndpoint", result.as_ref().ok());
                result
            },
            endpoint::error_policy,
            ctx.clone(),
        )
        .for_each(|res| async move { log_result("InfraEndpoint", res) });

    // Close clients of speakers no endpoint uses any more.
    let gc = {
        let (eps, speakers) = (ep_store.clone(), speakers.clone());
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                let keys: std::collections::HashSet<SpeakerKey> = eps
                    .state()
                    .iter()
                    .filter_map(|ep| target::endpoint_speaker_key(ep))
                    .collect();
                speakers.retain(|k| keys.contains(k));
            }
        }
    };
    // `/readyz` turns ready once both caches hold a full list.
    let synced = {
        let (cics, eps) = (cic_store.clone(), ep_store.clone());
        async move {
            if cics.wait_until_ready().await.is_ok() && eps.wait_until_ready().await.is_ok() {
                info!("caches synced");
                readiness.set_caches_synced(true);
            }
            std::future::pending::<()>().await
        }
    };
    info!("controllers started");
    // kube-runtime's graceful shutdown can wait forever when the signal comes before the caches
    // are filled; the grace period bounds the exit (the process must stop within 5 s of SIGTERM).
    let deadline = async move {
        shutdown.await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        _ = futures::future::join(cic_run, ep_run) => {},
        _ = gc => {},
        _ = synced => {},
        _ = deadline => warn!(grace = ?SHUTDOWN_GRACE, "in-flight reconciles did not finish in time; stopping anyway"),
    }
    speakers.shutdown();
    info!("controllers stopped");
}

fn uses_secret(ep: &InfraEndpoint, name: &str) -> bool {
    ep.spec.sdn.as_ref().is_some_and(|sdn| {
        sdn.credentials_secret_ref
            .as_ref()
            .is_some_and(|r| r.name == name)
            || sdn
                .tls
                .as_ref()
                .and_then(|t| t.ca_secret_ref.as_ref())
                .is_some_and(|r| r.name == name)
    })
}

fn neutron_uses_secret(ep: &InfraEndpoint, name: &str) -> bool {
    ep.spec.neutron.as_ref().is_some_and(|n| {
        n.cloud_secret_ref.name == name
            || n.bgp
                .as_ref()
                .and_then(|b| b.password_secret_ref.as_ref())
                .is_some_and(|r| r.name == name)
    })
}

/// How long speaker changes are gathered before they requeue anything. Both ends of a session
/// reach Established within milliseconds of each other, each reported by its own speaker's
/// watcher: gathered, they requeue the interconnect once (one status write instead of two).
const SPEAKER_CHANGE_WINDOW: Duration = Duration::from_millis(100);
/// Most changes gathered in one window (a full window is passed on at once).
const SPEAKER_CHANGE_BATCH: usize = 4096;

/// Turns speaker changes into requeues of the objects they concern, each object once per window.
fn speaker_requeue<K>(
    rx: UnboundedReceiver<SpeakerChange>,
    objects_on: impl Fn(&[SpeakerChange]) -> Vec<ObjectRef<K>> + Send + 'static,
) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Clone + Eq + std::hash::Hash,
    ObjectRef<K>: Send,
{
    use tokio_stream::StreamExt as _;
    UnboundedReceiverStream::new(rx)
        .chunks_timeout(SPEAKER_CHANGE_BATCH, SPEAKER_CHANGE_WINDOW)
        .flat_map(move |changes| futures::stream::iter(coalesce(&changes, &objects_on)))
}

/// The objects a window of `changes` concerns, each once.
fn coalesce<K>(
    changes: &[SpeakerChange],
    objects_on: &impl Fn(&[SpeakerChange]) -> Vec<ObjectRef<K>>,
) -> Vec<ObjectRef<K>>
where
    K: kube::Resource,
    K::DynamicType: Clone + Eq + std::hash::Hash,
{
    let mut seen_changes = std::collections::HashSet::new();
    let unique: Vec<SpeakerChange> = changes
        .iter()
        .filter(|c| seen_changes.insert((c.key.clone(), c.neighbor)))
        .cloned()
        .collect();
    let mut seen = std::collections::HashSet::new();
    objects_on(&unique)
        .into_iter()
        .filter(|o| seen.insert(o.clone()))
        .collect()
}

fn log_result<K, E: std::fmt::Display, R: std::fmt::Debug>(kind: &str, res: Result<(ObjectRef<K>, R), E>)
where
    K: kube::Resource,
    K::DynamicType: Clone,
{
    match res {
        Ok((obj, _)) => debug!(kind, object = %obj, "reconciled"),
        Err(err) => debug!(kind, error = %err, "reconcile loop"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str, neighbor: Option<&str>) -> SpeakerChange {
        SpeakerChange {
            key: key.into(),
            neighbor: neighbor.map(|n| n.parse().unwrap()),
        }
    }

    #[test]
    fn both_ends_of_a_session_in_one_window_requeue_the_interconnect_once() {
        // Speaker a reports neighbour b, speaker b reports neighbour a: the same interconnect.
        let objects_on = |changes: &[SpeakerChange]| {
            assert_eq!(changes.len(), 3, "the repeated change is passed on once");
            changes
                .iter()
                .map(|c| match c.key.as_str() {
                    "a" | "b" => ObjectRef::<CellInterconnect>::new("ab").within("ns"),
                    _ => ObjectRef::new("cd").within("ns"),
                })
                .collect()
        };
        let changes = [
            change("a", Some("192.0.2.2")),
            change("b", Some("192.0.2.1")),
            change("c", None),
            change("a", Some("192.0.2.2")),
        ];
        let names: Vec<String> = coalesce(&changes, &objects_on)
            .into_iter()
            .map(|o| o.name)
            .collect();
        assert_eq!(names, ["ab", "cd"]);
    }

    #[tokio::test]
    async fn a_change_is_passed_on_and_its_duplicate_in_the_window_is_not() {
        let (tx, rx) = unbounded_channel();
        let mut requeues = Box::pin(speaker_requeue(rx, |changes: &[SpeakerChange]| {
            changes
                .iter()
                .map(|c| ObjectRef::<CellInterconnect>::new(&c.key).within("ns"))
                .collect()
        }));
        tx.send(change("a", None)).unwrap();
        tx.send(change("a", None)).unwrap();
        let first = futures::StreamExt::next(&mut requeues).await.unwrap();
        assert_eq!(first.name, "a");
        drop(tx);
        assert!(
            futures::StreamExt::next(&mut requeues).await.is_none(),
            "the duplicate was passed on"
        );
    }
}
