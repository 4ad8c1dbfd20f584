//! Which watch events are worth a reconcile. kube-runtime's `predicate_filter` would do for
//! updates but also drops deletions (a deleted object hashes like its last update), and the
//! endpoint controller must see an interconnect go to release its in-use finalizer.
use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use futures::{Stream, StreamExt as _};
use kube::runtime::watcher;
use kube::{Resource, ResourceExt};

/// What a change must touch to matter: everything but status and the resourceVersion.
pub fn spec_or_meta<K: Resource>(obj: &K) -> u64 {
    let mut h = DefaultHasher::new();
    obj.meta().generation.hash(&mut h);
    obj.meta().deletion_timestamp.is_some().hash(&mut h);
    obj.finalizers().hash(&mut h);
    obj.annotations().hash(&mut h);
    obj.labels().hash(&mut h);
    h.finish()
}

/// Only existence, spec and deletion (for objects that only count or refer to `K`).
pub fn spec_or_deletion<K: Resource>(obj: &K) -> u64 {
    let mut h = DefaultHasher::new();
    obj.meta().generation.hash(&mut h);
    obj.meta().deletion_timestamp.is_some().hash(&mut h);
    h.finish()
}

/// Metadata writes the reconciler made itself and has already acted on (the finalizer it adds
/// before creating peers, in the same reconcile): the resourceVersion each produced, by uid.
/// Their watch events need no reconcile of their own. While 1,000 interconnects came up, each
/// one's finalizer event queued a second reconcile right behind the first, which found the
/// sessions moved from Idle to Active and wrote status once more (3 writes instead of 2).
#[derive(Default)]
pub struct OwnWrites(Mutex<HashMap<String, String>>);

impl OwnWrites {
    /// Records that our write to `uid` produced `resource_version`.
    pub fn record(&self, uid: &str, resource_version: &str) {
        self.0.lock().unwrap().insert(uid.into(), resource_version.into());
    }

    /// Whether this version of `uid` is our recorded write (forgotten once seen).
    fn is_own(&self, uid: &str, resource_version: Option<&str>) -> bool {
        let mut own = self.0.lock().unwrap();
        let hit = own
            .get(uid)
            .is_some_and(|rv| Some(rv.as_str()) == resource_version);
        if hit {
            own.remove(uid);
        }
        hit
    }

    fn forget(&self, uid: &str) {
        self.0.lock().unwrap().remove(uid);
    }
}

/// The objects of `events` whose `fingerprint` changed since last seen, and every deleted one;
/// a change that is one of `own` writes is taken in (later events compare with it) but not
/// passed on. A write of ours whose event arrives before it is recorded passes: one reconcile
/// more, as without the record.
pub fn filtered<K, S>(
    events: S,
    fingerprint: fn(&K) -> u64,
    own: Option<Arc<OwnWrites>>,
) -> impl Stream<Item = Result<K, watcher::Error>> + Send + 'static
where
    K: Resource + Send + 'static,
    S: Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    let mut seen: HashMap<String, u64> = HashMap::new();
    events.filter_map(move |event| {
        let out = match event {
            Err(e) => Some(Err(e)),
            Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => {
                let key = obj.meta().uid.clone().unwrap_or_else(|| obj.name_any());
                let print = fingerprint(&obj);
                let changed = seen.insert(key.clone(), print) != Some(print);
                let ours = changed
                    && own
                        .as_ref()
                        .is_some_and(|o| o.is_own(&key, obj.meta().resource_version.as_deref()));
                (changed && !ours).then_some(Ok(obj))
            }
            Ok(watcher::Event::Delete(obj)) => {
                let key = obj.meta().uid.clone().unwrap_or_else(|| obj.name_any());
                seen.remove(&key);
                if let Some(o) = &own {
                    o.forget(&key);
                }
                Some(Ok(obj))
            }
            Ok(watcher::Event::Init | watcher::Event::InitDone) => None,
        };
        futures::future::ready(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CellInterconnect;
    use serde_json::json;

    fn cic(generation: i64, rv: &str, status: &str) -> CellInterconnect {
        serde_json::from_value(json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "CellInterconnect",
            "metadata": {"name": "a", "namespace": "n", "uid": "u", "generation": generation, "resourceVersion": rv},
            "spec": {"localEndpoint": {"name": "x"}, "remoteEndpoint": {"name": "y"}},
            "status": {"localCell": status},
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn status_writes_are_dropped_spec_changes_and_deletions_pass() {
        let events = futures::stream::iter([
            Ok(watcher::Event::Apply(cic(1, "1", "a"))),
            Ok(watcher::Event::Apply(cic(1, "2", "b"))), // our own status write
            Ok(watcher::Event::Apply(cic(2, "3", "b"))), // spec change
            Ok(watcher::Event::Delete(cic(2, "4", "b"))),
        ]);
        let passed: Vec<String> = filtered(events, spec_or_meta::<CellInterconnect>, None)
            .map(|r| r.unwrap().metadata.resource_version.unwrap())
            .collect()
            .await;
        assert_eq!(passed, ["1", "3", "4"]);
    }

    fn with_finalizer(mut cic: CellInterconnect, finalizers: &[&str]) -> CellInterconnect {
        cic.metadata.finalizers = Some(finalizers.iter().map(|f| f.to_string()).collect());
        cic
    }

    #[tokio::test]
    async fn our_own_finalizer_write_is_dropped_someone_elses_change_passes() {
        let own = Arc::new(OwnWrites::default());
        own.record("u", "2");
        let events = futures::stream::iter([
            Ok(watcher::Event::Apply(cic(1, "1", "a"))),
            // Our finalizer, already acted on.
            Ok(watcher::Event::Apply(with_finalizer(
                cic(1, "2", "a"),
                &["cellnet.io/cleanup"],
            ))),
            // Our status write: same fingerprint as the version before.
            Ok(watcher::Event::Apply(with_finalizer(
                cic(1, "3", "b"),
                &["cellnet.io/cleanup"],
            ))),
            // Someone removes the finalizer by hand: must be seen.
            Ok(watcher::Event::Apply(cic(1, "4", "b"))),
        ]);
        let passed: Vec<String> = filtered(events, spec_or_meta::<CellInterconnect>, Some(own.clone()))
            .map(|r| r.unwrap().metadata.resource_version.unwrap())
            .collect()
            .await;
        assert_eq!(passed, ["1", "4"]);
        assert!(own.0.lock().unwrap().is_empty(), "the record is used once");
    }
}
