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
use tracing::warn;

use super::fanout::{Fanout, Listed};

/// Changed Secrets waiting for a controller: a slow controller holds the watch back (the API
/// server keeps the events) instead of this growing without bound.
const PENDING_PER_CONTROLLER: usize = 1024;

/// A Secret's changed metadata as the controllers' Secret watches yield it.
pub type SecretEvent = Result<PartialObjectMeta<Secret>, watcher::Error>;

/// The shared watch: [`SecretWatch::run`] drives it and hands every changed Secret to each
/// subscriber.
pub struct SecretWatch {
    fanout: Fanout<PartialObjectMeta<Secret>>,
    listed: Listed,
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
        let watches = apis.len();
        // Backed off, so a 403 or an API server outage is no hot LIST loop.
        let events = futures::stream::select_all(apis.into_iter().enumerate().map(|(i, api)| {
            watcher(api, config.clone())
                .default_backoff()
                // Only the name and namespace are read; managedFields are most of the metadata.
                .modify(|secret| secret.managed_fields_mut().clear())
                .map(move |event| (i, event))
                .boxed()
        }));
        let (listed_tx, listed_rx) = Listed::new();
        let mut listed = vec![false; watches];
        let changed = events.filter_map(move |(i, event)| {
            let secret = match event {
                Ok(watcher::Event::Apply(s) | watcher::Event::InitApply(s) | watcher::Event::Delete(s)) => {
                    Some(s)
                }
                Ok(watcher::Event::InitDone) => {
                    listed[i] = true;
                    if listed.iter().all(|l| *l) {
                        listed_tx.send_replace(true);
                    }
                    None
                }
                Ok(watcher::Event::Init) => None,
                Err(err) => {
                    // Until every Secret watch has listed once (a 403 in one namespace, say), no
                    // reconcile runs: said at warn.
                    warn!(error = %err, "Secret watch failed; retrying");
                    None
                }
            };
            futures::future::ready(secret)
        });
        Self {
            fanout: Fanout::new(changed, PENDING_PER_CONTROLLER),
            listed: listed_rx,
        }
    }

    /// A stream of every changed Secret, for one controller's `watches_stream`.
    pub fn subscribe(&mut self) -> impl Stream<Item = SecretEvent> + Send + 'static {
        self.fanout.subscribe().map(Ok)
    }

    /// Whether every Secret watch has listed its Secrets once (their users are requeued by then).
    pub fn listed(&self) -> Listed {
        self.listed.clone()
    }

    /// Drives the watch until every subscriber is gone. Errors are the watcher's (it retries with
    /// backoff); subscribers see only changes.
    pub async fn run(self) {
        self.fanout.run().await
    }
}
