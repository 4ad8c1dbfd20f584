//! Per-object latency: for each interconnect, from its creation to its peers on the speakers and
//! to `Ready`.
//!
//! `metadata.creationTimestamp` has second resolution, too coarse for waits of a few seconds, so
//! an object's creation is the instant the API server answered the bench's apply of it (the
//! answer carries the created object; it follows the creationTimestamp by one request's
//! latency). Ready is the instant the bench's watch delivered the first version with
//! `Ready=True`; the peers, the end of the speaker read that first showed both sides (speakers
//! that have all their peers are not read again).
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cellnet::api::CellInterconnect;
use futures::StreamExt as _;
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt as _, watcher};
use tokio::task::JoinHandle;

/// When each object (by name) reached a stage.
pub type Times = HashMap<String, Instant>;

/// The bench's cache of every interconnect (what a controller would use) and when each was
/// first seen Ready; the watch ends on drop.
pub struct Watched {
    pub store: Store<CellInterconnect>,
    ready_at: Arc<Mutex<Times>>,
    task: JoinHandle<()>,
}

impl Drop for Watched {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn is_ready(cic: &CellInterconnect) -> bool {
    cic.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

impl Watched {
    /// Starts the watch and waits (bounded) until its first list is in.
    pub async fn start(api: &Api<CellInterconnect>) -> Watched {
        let (store, writer) = reflector::store();
        let ready_at = Arc::new(Mutex::new(Times::new()));
        let seen = ready_at.clone();
        let events = watcher(api.clone(), watcher::Config::default())
            .default_backoff()
            .reflect(writer)
            .applied_objects()
            .for_each(move |cic| {
                if let Ok(cic) = cic
                    && is_ready(&cic)
                {
                    let mut seen = seen.lock().unwrap();
                    seen.entry(cic.name_any()).or_insert_with(Instant::now);
                }
                std::future::ready(())
            });
        let task = tokio::spawn(events);
        let synced = store.wait_until_ready();
        tokio::time::timeout(std::time::Duration::from_secs(30), synced)
            .await
            .expect("the bench's watch listed in 30 s")
            .expect("the bench's watch");
        Watched {
            store,
            ready_at,
            task,
        }
    }

    /// Interconnects whose `Ready` condition is `True` now.
    pub fn ready_count(&self) -> usize {
        self.store.state().iter().filter(|c| is_ready(c)).count()
    }

    /// When each interconnect was first seen Ready.
    pub fn ready_at(&self) -> Times {
        self.ready_at.lock().unwrap().clone()
    }
}

/// Seconds from each object's creation to `reached`, sorted (objects not reached are left out).
pub fn waits(created: &Times, reached: &Times) -> Vec<f64> {
    let mut out: Vec<f64> = reached
        .iter()
        .filter_map(|(name, at)| Some(at.saturating_duration_since(*created.get(name)?).as_secs_f64()))
        .collect();
    out.sort_by(f64::total_cmp);
    out
}

/// The `p` quantile of sorted samples (nearest rank; 0 without samples).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}
