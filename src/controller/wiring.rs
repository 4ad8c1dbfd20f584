//! The watches and the two kube-runtime controllers: which changes reconcile which objects (the
//! mappers of [`super::mappers`] over the caches), and the loops beside them (closing unused
//! speakers, reporting the caches synced).
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, predicates, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::mpsc::{Receiver, channel};
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, info, warn};

use super::context::{Caches, Config, Context};
use super::fanout::{Fanout, Listed};
use super::secret_watch::{SecretEvent, SecretWatch};
use super::speakers::{SpeakerChange, SpeakerKey, Speakers};
use super::{changes, endpoint, interconnect, mappers, target};
use crate::api::{CellInterconnect, InfraEndpoint};
use crate::metrics::Metrics;

/// Written by `kubectl apply` (client-side): a copy of the whole manifest.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// How long speaker changes are gathered before they requeue anything. Both ends of a session
/// reach Established within milliseconds of each other, each reported by its own speaker's
/// watcher: gathered, they requeue the interconnect once (one status write instead of two).
const SPEAKER_CHANGE_WINDOW: Duration = Duration::from_millis(100);
/// Most changes gathered in one window (a full window is passed on at once).
const SPEAKER_CHANGE_BATCH: usize = 4096;
/// Speaker changes waiting for each controller; a watcher finding the channel full sends one
/// change of its whole speaker later instead (`speakers::watcher`), so a flood stays bounded.
const SPEAKER_CHANGE_BUFFER: usize = 2 * SPEAKER_CHANGE_BATCH;
/// Events of a kind's watch waiting for one reader: a reader that does not keep up holds the watch
/// back (the API server keeps the events) instead of this growing.
const EVENTS_PER_READER: usize = 1024;
/// How often the clients of speakers no endpoint uses any more are closed.
const UNUSED_SPEAKER_SWEEP: Duration = Duration::from_secs(60);

/// Speaker changes, one receiver per controller (the registry sends each change to both).
pub struct SpeakerChanges {
    interconnects: Receiver<SpeakerChange>,
    endpoints: Receiver<SpeakerChange>,
}

/// The speaker registry, sending each change on a speaker to both controllers.
pub fn speaker_registry(config: &Config, metrics: Arc<Metrics>) -> (Arc<Speakers>, SpeakerChanges) {
    let (cic_tx, cic_rx) = channel::<SpeakerChange>(SPEAKER_CHANGE_BUFFER);
    let (ep_tx, ep_rx) = channel::<SpeakerChange>(SPEAKER_CHANGE_BUFFER);
    let speakers = Arc::new(Speakers::new(
        vec![cic_tx, ep_tx],
        config.sdn_resync_interval,
        (config.sdn_timeout, config.auth_failure_backoff),
        metrics,
        config.connector.clone(),
    ));
    let changes = SpeakerChanges {
        interconnects: cic_rx,
        endpoints: ep_rx,
    };
    (speakers, changes)
}

/// The one watch of each kind (interconnects, endpoints, Secret metadata), their caches and the
/// fan-out of their events to both controllers, built but not running yet.
pub struct Watches {
    interconnects: KindWatch<CellInterconnect>,
    endpoints: KindWatch<InfraEndpoint>,
    secrets: SecretWatch,
    own_writes: Arc<changes::OwnWrites>,
    ctrl_config: ControllerConfig,
}

/// A kind's one watch: the cache it fills and its events for each reader.
struct KindWatch<K: kube::Resource + 'static>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store: Store<K>,
    listed: Listed,
    events: Fanout<watcher::Event<K>>,
}

/// The events one controller reads from a kind's watch.
type Events<K> = futures::stream::Map<
    ReceiverStream<watcher::Event<K>>,
    fn(watcher::Event<K>) -> Result<watcher::Event<K>, watcher::Error>,
>;

impl<K> KindWatch<K>
where
    K: kube::Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    K: Send + Sync + 'static,
{
    /// Cluster-wide, the cache trimmed of what no reconcile reads.
    fn new(client: &Client, config: watcher::Config) -> Self {
        let (store, writer) = kube::runtime::reflector::store();
        let (listed_tx, listed) = Listed::new();
        let events = watcher(Api::<K>::all(client.clone()), config)
            .default_backoff()
            // The cache holds every object: without managedFields and kubectl's copy of the last
            // applied manifest (neither is read) it is less than half the size.
            .modify(|obj| {
                obj.managed_fields_mut().clear();
                obj.annotations_mut().remove(LAST_APPLIED);
            })
            .reflect(writer)
            // Once the first list is in the cache.
            .inspect(move |event| {
                if matches!(event, Ok(watcher::Event::InitDone)) {
                    listed_tx.send_replace(true);
                }
            })
            // The watcher retries with backoff; its readers see only events. Said at warn: until
            // the first list succeeds (a 403, say) no reconcile runs.
            .filter_map(|event| {
                futures::future::ready(match event {
                    Ok(event) => Some(event),
                    Err(err) => {
                        warn!(kind = %K::kind(&()), error = %err, "watch failed; retrying");
                        None
                    }
                })
            });
        Self {
            store,
            listed,
            events: Fanout::new(events, EVENTS_PER_READER),
        }
    }

    /// Every event of the watch from now on, for one reader.
    fn subscribe(&mut self) -> Events<K> {
        self.events.subscribe().map(Ok)
    }

    /// Objects whose generation changed (their spec, or a deletion held by a finalizer).
    fn generation_changes(
        &mut self,
    ) -> impl futures::Stream<Item = Result<K, watcher::Error>> + Send + 'static {
        self.subscribe()
            .touched_objects()
            .predicate_filter(predicates::generation, Default::default())
    }
}

/// Whether every cache is filled: interconnects, endpoints, and the Secret watch has listed once.
/// A reconcile before that would miss what it refers to (an endpoint not yet in the cache reads
/// as not found, and is looked at again only after a recheck).
#[derive(Clone)]
pub struct Synced([Listed; 3]);

impl Synced {
    /// Resolves once every cache is filled (or its watch is gone).
    pub async fn wait(&self) {
        for listed in &self.0 {
            listed.wait().await;
        }
    }
}

impl Watches {
    /// One watch per kind and the caches they fill.
    pub fn new(client: &Client, config: &Config) -> Self {
        // Consistent lists (not `any_semantic`): after an etcd restart the API server's watch cache
        // could serve an old resourceVersion, and every watch from it ended in 410 Gone, backing off
        // up to 30 s each time (found by tests/faults_restart.rs).
        let wc = watcher::Config::default();
        Self {
            interconnects: KindWatch::new(client, wc.clone()),
            endpoints: KindWatch::new(client, wc.clone()),
            secrets: SecretWatch::new(client.clone(), &config.secret_namespaces, wc),
            own_writes: Arc::new(changes::OwnWrites::default()),
            ctrl_config: ControllerConfig::default().concurrency(config.concurrency),
        }
    }

    /// The caches the reconciles read.
    pub fn caches(&self) -> Caches {
        Caches {
            endpoints: self.endpoints.store.clone(),
            interconnects: self.interconnects.store.clone(),
            own_writes: self.own_writes.clone(),
        }
    }

    /// Whether every cache is filled.
    pub fn synced(&self) -> Synced {
        Synced([
            self.interconnects.listed.clone(),
            self.endpoints.listed.clone(),
            self.secrets.listed(),
        ])
    }

    /// Runs both controllers until `shutdown` resolves and their in-flight reconciles finish.
    pub async fn run(
        mut self,
        ctx: Arc<Context>,
        changes: SpeakerChanges,
        shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
    ) {
        let synced = self.synced();
        let cic_ctrl = self.interconnect_controller();
        let ep_ctrl = self.endpoint_controller();
        let cic_inputs = Inputs {
            secrets: self.secrets.subscribe(),
            endpoint_specs: self.endpoints.generation_changes(),
            speaker_changes: changes.interconnects,
            synced: synced.clone(),
        };
        let ep_inputs = Inputs {
            secrets: self.secrets.subscribe(),
            endpoint_specs: self.endpoints.generation_changes(),
            speaker_changes: changes.endpoints,
            synced,
        };
        let interconnect_changes = self.interconnect_changes_for_endpoints();
        let (cics, eps) = (self.interconnects.store.clone(), self.endpoints.store.clone());
        let controllers = futures::future::join(
            run_interconnects(
                cic_ctrl,
                (cics, eps.clone()),
                cic_inputs,
                ctx.clone(),
                shutdown.clone(),
            ),
            run_endpoints(ep_ctrl, eps, interconnect_changes, ep_inputs, ctx, shutdown),
        );
        // The watches run until the controllers have finished (or they end with both gone).
        futures::pin_mut!(controllers);
        let Self {
            interconnects,
            endpoints,
            secrets,
            ..
        } = self;
        let watches =
            futures::future::join3(interconnects.events.run(), endpoints.events.run(), secrets.run());
        let watches = std::pin::pin!(watches);
        if let futures::future::Either::Right((_, controllers)) =
            futures::future::select(controllers, watches).await
        {
            controllers.await;
        }
    }

    /// Interconnects: reconciled on changes to anything but status. Reacting to our own status
    /// writes queued every object once more per write during a bulk apply.
    fn interconnect_controller(&mut self) -> Controller<CellInterconnect> {
        let own = self.interconnects.subscribe();
        Controller::for_stream(
            changes::filtered(
                own,
                changes::spec_or_meta::<CellInterconnect>,
                Some(self.own_writes.clone()),
            ),
            self.interconnects.store.clone(),
        )
        .with_config(self.ctrl_config.clone())
    }

    /// Endpoints: reconciled on every change of their own.
    fn endpoint_controller(&mut self) -> Controller<InfraEndpoint> {
        let own = self.endpoints.subscribe().applied_objects();
        Controller::for_stream(own, self.endpoints.store.clone()).with_config(self.ctrl_config.clone())
    }

    /// Endpoints count and guard their interconnects: only existence, spec and deletion of an
    /// interconnect matter to them, not its status.
    fn interconnect_changes_for_endpoints(
        &mut self,
    ) -> impl futures::Stream<Item = Result<CellInterconnect, watcher::Error>> + Send + 'static {
        changes::filtered(
            self.interconnects.subscribe(),
            changes::spec_or_deletion::<CellInterconnect>,
            None,
        )
    }
}

/// What a controller reacts to besides its own kind: Secrets, endpoint specs, speakers.
struct Inputs<S, E> {
    secrets: S,
    endpoint_specs: E,
    speaker_changes: Receiver<SpeakerChange>,
    synced: Synced,
}

/// Interconnects: reconciled on their own changes (see [`Watches::interconnect_controller`]), on
/// their endpoints' spec changes, on their Secrets' changes and on changes on their speakers.
async fn run_interconnects(
    ctrl: Controller<CellInterconnect>,
    (cics, eps): (Store<CellInterconnect>, Store<InfraEndpoint>),
    inputs: Inputs<
        impl futures::Stream<Item = SecretEvent> + Send + 'static,
        impl futures::Stream<Item = Result<InfraEndpoint, watcher::Error>> + Send + 'static,
    >,
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    // An endpoint change requeues every interconnect that refers to it, and those of the
    // endpoints whose network conflicts it may start or end.
    let endpoint_to_cics = {
        let (cics, eps) = (cics.clone(), eps.clone());
        move |ep: InfraEndpoint| mappers::interconnects_of_endpoint_change(&cics.state(), &eps.state(), &ep)
    };
    // A Secret change (password, SDN credentials, CA) requeues the interconnects that use it.
    let secret_to_cics = {
        let (cics, eps) = (cics.clone(), eps.clone());
        move |secret: PartialObjectMeta<Secret>| {
            let (ns, name) = (secret.namespace().unwrap_or_default(), secret.name_any());
            mappers::interconnects_using_secret(&cics.state(), |r| eps.get(r), &ns, &name)
        }
    };
    let requeue = speaker_requeue(inputs.speaker_changes, move |changes: &[SpeakerChange]| {
        mappers::interconnects_on(|r| eps.get(r), &cics.state(), changes)
    });
    let synced = inputs.synced;
    ctrl
        // Only endpoint spec changes concern interconnects: an endpoint's status changes with
        // every interconnect added to it, and reacting to that requeued them all (a storm at scale).
        .watches_stream(inputs.endpoint_specs, endpoint_to_cics)
        .watches_stream(inputs.secrets, secret_to_cics)
        .reconcile_on(requeue)
        .graceful_shutdown_on(shutdown)
        .run(
            move |obj, ctx: Arc<Context>| {
                let synced = synced.clone();
                watched("CellInterconnect", synced, obj, ctx, interconnect::reconcile)
            },
            interconnect::error_policy,
            ctx,
        )
        .for_each(|res| async move { log_result("CellInterconnect", res) })
        .await;
}

/// Endpoints: reconciled on their own changes, on their interconnects' existence, spec and
/// deletion, on their Secrets' changes and on changes of their speaker as a whole.
async fn run_endpoints(
    ctrl: Controller<InfraEndpoint>,
    eps: Store<InfraEndpoint>,
    interconnect_changes: impl futures::Stream<Item = Result<CellInterconnect, watcher::Error>> + Send + 'static,
    inputs: Inputs<
        impl futures::Stream<Item = SecretEvent> + Send + 'static,
        impl futures::Stream<Item = Result<InfraEndpoint, watcher::Error>> + Send + 'static,
    >,
    ctx: Arc<Context>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    // A Secret change (SDN credentials, CA, Neutron's clouds.yaml or BGP password) requeues the
    // endpoints that use it.
    let secret_to_eps = {
        let eps = eps.clone();
        move |secret: PartialObjectMeta<Secret>| {
            let (ns, name) = (secret.namespace().unwrap_or_default(), secret.name_any());
            mappers::endpoints_using_secret(&eps.state(), &ns, &name)
        }
    };
    let requeue = speaker_requeue(inputs.speaker_changes, {
        let eps = eps.clone();
        move |changes: &[SpeakerChange]| mappers::endpoints_on(&eps.state(), changes)
    });
    // Another endpoint's networks can start or end a conflict with this one's.
    let neighbours = move |ep: InfraEndpoint| {
        mappers::network_neighbours(&eps.state(), &ep)
            .iter()
            .map(|n| ObjectRef::from_obj(n.as_ref()))
            .collect::<Vec<_>>()
    };
    let synced = inputs.synced;
    ctrl.watches_stream(interconnect_changes, |cic: CellInterconnect| {
        mappers::endpoints_of(&cic)
    })
    .watches_stream(inputs.endpoint_specs, neighbours)
    .watches_stream(inputs.secrets, secret_to_eps)
    .reconcile_on(requeue)
    .graceful_shutdown_on(shutdown)
    .run(
        move |obj, ctx: Arc<Context>| {
            let synced = synced.clone();
            watched("InfraEndpoint", synced, obj, ctx, endpoint::reconcile)
        },
        endpoint::error_policy,
        ctx,
    )
    .for_each(|res| async move { log_result("InfraEndpoint", res) })
    .await;
}

/// One reconcile as both controllers run it: once every watch has listed, under the liveness
/// watchdog, its result counted.
async fn watched<K, Fut>(
    kind: &'static str,
    synced: Synced,
    obj: Arc<K>,
    ctx: Arc<Context>,
    reconcile: impl FnOnce(Arc<K>, Arc<Context>) -> Fut,
) -> super::error::Result<Action>
where
    K: ResourceExt,
    Fut: Future<Output = super::error::Result<Action>>,
{
    synced.wait().await;
    let _running = ctx.liveness.reconciling(object_name(kind, obj.as_ref()));
    let result = reconcile(obj, ctx.clone()).await;
    ctx.metrics.reconcile_result(kind, result.as_ref().ok());
    result
}

/// `Kind/namespace/name`, as the liveness watchdog names a reconcile.
fn object_name(kind: &str, obj: &impl ResourceExt) -> String {
    format!(
        "{kind}/{}/{}",
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

/// Turns speaker changes into requeues of the objects they concern, each object once per window.
fn speaker_requeue<K>(
    rx: Receiver<SpeakerChange>,
    objects_on: impl Fn(&[SpeakerChange]) -> Vec<ObjectRef<K>> + Send + 'static,
) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Clone + Eq + std::hash::Hash,
    ObjectRef<K>: Send,
{
    use tokio_stream::StreamExt as _;
    ReceiverStream::new(rx)
        .chunks_timeout(SPEAKER_CHANGE_BATCH, SPEAKER_CHANGE_WINDOW)
        .flat_map(move |changes| futures::stream::iter(mappers::coalesce(&changes, &objects_on)))
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

/// Closes the clients of speakers no endpoint uses any more, every [`UNUSED_SPEAKER_SWEEP`].
pub async fn close_unused_speakers(eps: Store<InfraEndpoint>, speakers: Arc<Speakers>) {
    let mut tick = tokio::time::interval(UNUSED_SPEAKER_SWEEP);
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

/// Turns `/readyz` ready once every cache is filled (the controllers start reconciling then);
/// then waits forever.
pub async fn report_caches_synced(synced: Synced, readiness: Arc<crate::http::Readiness>) {
    synced.wait().await;
    info!("caches synced");
    readiness.set_caches_synced(true);
    std::future::pending::<()>().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(key: &str) -> SpeakerChange {
        SpeakerChange {
            key: key.into(),
            neighbor: None,
        }
    }

    #[tokio::test]
    async fn a_change_is_passed_on_and_its_duplicate_in_the_window_is_not() {
        let (tx, rx) = channel(8);
        let mut requeues = Box::pin(speaker_requeue(rx, |changes: &[SpeakerChange]| {
            changes
                .iter()
                .map(|c| ObjectRef::<CellInterconnect>::new(&c.key).within("ns"))
                .collect()
        }));
        tx.try_send(change("a")).unwrap();
        tx.try_send(change("a")).unwrap();
        let first = futures::StreamExt::next(&mut requeues).await.unwrap();
        assert_eq!(first.name, "a");
        drop(tx);
        assert!(
            futures::StreamExt::next(&mut requeues).await.is_none(),
            "the duplicate was passed on"
        );
    }
}
