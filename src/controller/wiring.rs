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
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt as _, predicates, watcher};
use kube::{Client, ResourceExt};
use tokio::sync::mpsc::{Receiver, channel};
use tokio_stream::wrappers::ReceiverStream;
use tracing::{debug, info};

use super::context::{Caches, Config, Context};
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

/// Both controllers and the watches they need, built but not running yet.
pub struct Watches {
    sources: Sources,
    cic_ctrl: Controller<CellInterconnect>,
    ep_ctrl: Controller<InfraEndpoint>,
}

/// What the secondary watches are built from: the client, the watcher settings, the caches.
struct Sources {
    client: Client,
    watcher_config: watcher::Config,
    secret_namespaces: Vec<String>,
    interconnects: Store<CellInterconnect>,
    endpoints: Store<InfraEndpoint>,
    own_writes: Arc<changes::OwnWrites>,
}

impl Watches {
    /// The controllers' primary watches and their caches.
    pub fn new(client: &Client, config: &Config) -> Self {
        // Consistent lists (not `any_semantic`): after an etcd restart the API server's watch cache
        // could serve an old resourceVersion, and every watch from it ended in 410 Gone, backing off
        // up to 30 s each time (found by tests/faults_restart.rs).
        let wc = watcher::Config::default();
        let ctrl_config = ControllerConfig::default().concurrency(config.concurrency);

        // Interconnects: reconciled on changes to anything but status. Reacting to our own status
        // writes queued every object once more per write during a bulk apply.
        let own_writes = Arc::new(changes::OwnWrites::default());
        let (cic_store, cic_writer) = kube::runtime::reflector::store();
        let cic_events = watcher(Api::<CellInterconnect>::all(client.clone()), wc.clone())
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
        let ep_ctrl =
            Controller::new(Api::<InfraEndpoint>::all(client.clone()), wc.clone()).with_config(ctrl_config);
        let sources = Sources {
            client: client.clone(),
            watcher_config: wc,
            secret_namespaces: config.secret_namespaces.clone(),
            interconnects: cic_store,
            endpoints: ep_ctrl.store(),
            own_writes,
        };
        Self {
            sources,
            cic_ctrl,
            ep_ctrl,
        }
    }

    /// The caches the reconciles read.
    pub fn caches(&self) -> Caches {
        Caches {
            endpoints: self.sources.endpoints.clone(),
            interconnects: self.sources.interconnects.clone(),
            own_writes: self.sources.own_writes.clone(),
        }
    }

    /// Runs both controllers until `shutdown` resolves and their in-flight reconciles finish.
    pub async fn run(
        self,
        ctx: Arc<Context>,
        changes: SpeakerChanges,
        shutdown: impl Future<Output = ()> + Clone + Send + Sync + 'static,
    ) {
        let Self {
            sources,
            cic_ctrl,
            ep_ctrl,
        } = self;
        let mut secrets = sources.secret_watch();
        let (cic_secrets, ep_secrets) = (secrets.subscribe(), secrets.subscribe());
        let controllers = futures::future::join(
            run_interconnects(
                cic_ctrl,
                &sources,
                cic_secrets,
                ctx.clone(),
                changes.interconnects,
                shutdown.clone(),
            ),
            run_endpoints(ep_ctrl, &sources, ep_secrets, ctx, changes.endpoints, shutdown),
        );
        // The watch runs until the controllers have finished (or it ends with both gone).
        futures::pin_mut!(controllers);
        let watch = std::pin::pin!(secrets.run());
        if let futures::future::Either::Right((_, controllers)) =
            futures::future::select(controllers, watch).await
        {
            controllers.await;
        }
    }
}

/// Interconnects: reconciled on their own changes (see [`Watches::new`]), on their endpoints'
/// spec changes, on their Secrets' changes and on changes on their speakers.
async fn run_interconnects(
    ctrl: Controller<CellInterconnect>,
    sources: &Sources,
    secrets: impl futures::Stream<Item = SecretEvent> + Send + 'static,
    ctx: Arc<Context>,
    speaker_changes: Receiver<SpeakerChange>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (cics, eps) = (sources.interconnects.clone(), sources.endpoints.clone());
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
    let requeue = speaker_requeue(speaker_changes, move |changes: &[SpeakerChange]| {
        mappers::interconnects_on(|r| eps.get(r), &cics.state(), changes)
    });
    let endpoint_specs = sources.endpoint_spec_changes();
    ctrl
        // Only endpoint spec changes concern interconnects: an endpoint's status changes with
        // every interconnect added to it, and reacting to that requeued them all (a storm at scale).
        .watches_stream(endpoint_specs, endpoint_to_cics)
        .watches_stream(secrets, secret_to_cics)
        .reconcile_on(requeue)
        .graceful_shutdown_on(shutdown)
        .run(
            |obj, ctx: Arc<Context>| async move {
                let _running = ctx
                    .liveness
                    .reconciling(object_name("CellInterconnect", obj.as_ref()));
                let result = interconnect::reconcile(obj, ctx.clone()).await;
                ctx.metrics
                    .reconcile_result("CellInterconnect", result.as_ref().ok());
                result
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
    sources: &Sources,
    secrets: impl futures::Stream<Item = SecretEvent> + Send + 'static,
    ctx: Arc<Context>,
    speaker_changes: Receiver<SpeakerChange>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    // A Secret change (SDN credentials, CA, Neutron's clouds.yaml or BGP password) requeues the
    // endpoints that use it.
    let secret_to_eps = {
        let eps = sources.endpoints.clone();
        move |secret: PartialObjectMeta<Secret>| {
            let (ns, name) = (secret.namespace().unwrap_or_default(), secret.name_any());
            mappers::endpoints_using_secret(&eps.state(), &ns, &name)
        }
    };
    let requeue = speaker_requeue(speaker_changes, {
        let eps = sources.endpoints.clone();
        move |changes: &[SpeakerChange]| mappers::endpoints_on(&eps.state(), changes)
    });
    let cic_changes = changes::filtered(
        watcher(
            Api::<CellInterconnect>::all(sources.client.clone()),
            sources.watcher_config.clone(),
        )
        .default_backoff(),
        changes::spec_or_deletion::<CellInterconnect>,
        None,
    );
    // Another endpoint's networks can start or end a conflict with this one's.
    let endpoint_specs = sources.endpoint_spec_changes();
    let neighbours = {
        let eps = sources.endpoints.clone();
        move |ep: InfraEndpoint| {
            mappers::network_neighbours(&eps.state(), &ep)
                .iter()
                .map(|n| ObjectRef::from_obj(n.as_ref()))
                .collect::<Vec<_>>()
        }
    };
    ctrl
        // Endpoints count and guard their interconnects: only existence, spec and deletion of
        // an interconnect matter to them, not its status.
        .watches_stream(cic_changes, |cic: CellInterconnect| mappers::endpoints_of(&cic))
        .watches_stream(endpoint_specs, neighbours)
        .watches_stream(secrets, secret_to_eps)
        .reconcile_on(requeue)
        .graceful_shutdown_on(shutdown)
        .run(
            |obj, ctx: Arc<Context>| async move {
                let _running = ctx
                    .liveness
                    .reconciling(object_name("InfraEndpoint", obj.as_ref()));
                let result = endpoint::reconcile(obj, ctx.clone()).await;
                ctx.metrics
                    .reconcile_result("InfraEndpoint", result.as_ref().ok());
                result
            },
            endpoint::error_policy,
            ctx,
        )
        .for_each(|res| async move { log_result("InfraEndpoint", res) })
        .await;
}

/// `Kind/namespace/name`, as the liveness watchdog names a reconcile.
fn object_name(kind: &str, obj: &impl ResourceExt) -> String {
    format!(
        "{kind}/{}/{}",
        obj.namespace().unwrap_or_default(),
        obj.name_any()
    )
}

impl Sources {
    /// Endpoints whose generation changed (their spec, or a deletion held by a finalizer): one
    /// watch per controller that needs them.
    fn endpoint_spec_changes(
        &self,
    ) -> impl futures::Stream<Item = Result<InfraEndpoint, watcher::Error>> + Send + 'static {
        watcher(
            Api::<InfraEndpoint>::all(self.client.clone()),
            self.watcher_config.clone(),
        )
        .default_backoff()
        .touched_objects()
        .predicate_filter(predicates::generation, Default::default())
    }

    /// The one watch of Secret metadata both controllers share ([`SecretWatch`]).
    fn secret_watch(&self) -> SecretWatch {
        SecretWatch::new(
            self.client.clone(),
            &self.secret_namespaces,
            self.watcher_config.clone(),
        )
    }
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

/// Turns `/readyz` ready once both caches hold a full list; then waits forever.
pub async fn report_caches_synced(caches: Caches, readiness: Arc<crate::http::Readiness>) {
    if caches.interconnects.wait_until_ready().await.is_ok()
        && caches.endpoints.wait_until_ready().await.is_ok()
    {
        info!("caches synced");
        readiness.set_caches_synced(true);
    }
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
