//! The one watch of Secret metadata, shared by both controllers.
//!
//! Both controllers requeue objects when a Secret they use changes. Each used to hold its own
//! watch; now one watch (one per namespace with `--secret-namespaces`) feeds both. The watch asks
//! the API server for metadata only (`Api<PartialObjectMeta<Secret>>`: kube sends
//! `Accept: application/json;as=PartialObjectMetadata(List);g=meta.k8s.io;v=v1` on the list and
//! the watch), so Secret values never cross the wire to the controller until a reconcile reads
//! one it needs. `tests/production.rs` checks both on the API server's own metrics.
use futures::{Stream, StreamExt as _};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, ResourceExt as _};
use tokio::sync::mpsc::{Receiver, Sender, channel};
use tokio_stream::wrappers::ReceiverStream;
use tracing::debug;

/// Changed Secrets waiting for a controller: a slow controller holds the watch back (the API
/// server keeps the events) instead of this growing without bound.
const PENDING_PER_CONTROLLER: usize = 1024;

/// A Secret's changed metadata as the controllers' Secret watches yield it.
pub type SecretEvent = Result<PartialObjectMeta<Secret>, watcher::Error>;

/// The shared watch: [`SecretWatch::run`] drives it and hands every changed Secret to each
/// subscriber.
pub struct SecretWatch {
    source: std::pin::Pin<Box<dyn Stream<Item = SecretEvent> + Send>>,
    subscribers: Vec<Sender<PartialObjectMeta<Secret>>>,
}

impl SecretWatch {
    /// Cluster-wide with no `namespaces`, else one watch per namespace (RBAC can then grant
    /// Secrets per namespace).
    pub fn new(client: Client, namespaces: &[String], config: watcher::Config) -> Self {
        let apis: Vec<Api<PartialObjectMeta<Secret>>> = if namespaces.is_empty() {
            vec![Api::all(client)]
        } else {
            namespaces
                .iter()
                .map(|ns| Api::namespaced(client.clone(), ns))
                .collect()
        };
        // Backed off, so a 403 or an API server outage is no hot LIST loop.
        let source = futures::stream::select_all(apis.into_iter().map(|api| {
            watcher(api, config.clone())
                .default_backoff()
                // Only the name and namespace are read; managedFields are most of the metadata.
                .modify(|secret| secret.managed_fields_mut().clear())
                .touched_objects()
                .boxed()
        }))
        .boxed();
        Self {
            source,
            subscribers: Vec::new(),
        }
    }

    /// A stream of every changed Secret, for one controller's `watches_stream`.
    pub fn subscribe(&mut self) -> impl Stream<Item = SecretEvent> + Send + 'static {
        let (tx, rx): (_, Receiver<_>) = channel(PENDING_PER_CONTROLLER);
        self.subscribers.push(tx);
        ReceiverStream::new(rx).map(Ok)
    }

    /// Drives the watch until every subscriber is gone. Errors are the watcher's (it retries with
    /// backoff); subscribers see only changes.
    pub async fn run(self) {
        let Self {
            mut source,
            mut subscribers,
        } = self;
        while let Some(event) = source.next().await {
            let secret = match event {
                Ok(secret) => secret,
                Err(err) => {
                    debug!(error = %err, "Secret watch");
                    continue;
                }
            };
            let mut open = Vec::with_capacity(subscribers.len());
            for tx in subscribers {
                if tx.send(secret.clone()).await.is_ok() {
                    open.push(tx);
                }
            }
            subscribers = open;
            if subscribers.is_empty() {
                return;
            }
        }
    }
}
