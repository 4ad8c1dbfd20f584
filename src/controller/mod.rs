//! The controllers: two kube-runtime controllers share one [`Context`]: CellInterconnects (the
//! peers and sessions) and InfraEndpoints (speaker config, labels, in-use finalizer). Speaker
//! watchers ([`speakers`]) requeue the objects of a speaker when something changes on it.
//!
//! The modules, one line each for what it owns:
pub mod allowlist; // the operator's allowlist of the APIs cellnet may call (--endpoint-allow)
pub mod backoff; // per-object retry delays of failing reconciles
pub mod changes; // which watch events are worth a reconcile
pub mod context; // Context shared by the reconciles, Config from the command line, the Event queue
pub mod endpoint; // the InfraEndpoint reconciler
pub mod error; // Kubernetes errors that abort a reconcile
pub mod events; // Events, counted as a series only when the note is the same too
pub mod fanout; // one watch, several readers: each event handed to every subscriber
pub mod interconnect; // the CellInterconnect reconciler
pub mod mappers; // pure mappers: which objects a change concerns
pub mod networks; // pure: the networks each endpoint declares, conflicts between cells, origination and route filters
pub mod neutron_sync; // the Neutron part of the InfraEndpoint reconcile: network, subnet, BGP, memo, cleanup
pub mod problem; // Problem: what a step could not do, as a typed reason and a message
pub mod secret_watch; // the one watch of Secret metadata both controllers share
pub mod segments; // pure: the L2 segments an interconnect stretches and the EVPN part of its route filters
pub mod speaker_setup; // the speaker's global BGP config, shared by both reconcilers
pub mod speakers; // registry of speakers (SDN clients) and their watchers
pub mod status_write; // status writes (one JSON patch)
pub mod target; // the SDN target and speaker key of an endpoint
pub mod transport; // pure: credentials over plain http or unverified TLS (InsecureTransport, --require-tls)
pub mod wiring; // watches, the two controllers, the loops beside them (unused speakers, readiness)

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt as _;
use kube::Client;
use tracing::{info, warn};

pub use context::{Config, Context, FIELD_MANAGER};
use wiring::Watches;

use crate::metrics::Metrics;

/// How long in-flight reconciles may run after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(4);

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
    let watches = Watches::new(&client, &config);
    let (speakers, speaker_changes) = wiring::speaker_registry(&config, metrics.clone());
    let ctx = Arc::new(Context::new(
        client,
        &config,
        metrics,
        speakers.clone(),
        watches.caches(),
    ));

    let caches = watches.caches();
    let unused_speakers = wiring::close_unused_speakers(caches.endpoints.clone(), speakers.clone());
    let synced = wiring::report_caches_synced(watches.synced(), readiness);
    let controllers = watches.run(ctx, speaker_changes, shutdown.clone());
    info!("controllers started");
    // kube-runtime's graceful shutdown can wait forever when the signal comes before the caches
    // are filled; the grace period bounds the exit (the process must stop within 5 s of SIGTERM).
    let deadline = async move {
        shutdown.await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        _ = controllers => {},
        _ = unused_speakers => {},
        _ = synced => {},
        _ = deadline => warn!(grace = ?SHUTDOWN_GRACE, "in-flight reconciles did not finish in time; stopping anyway"),
    }
    speakers.shutdown();
    info!("controllers stopped");
}
