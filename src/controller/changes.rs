//! Which watch events are worth a reconcile. kube-runtime's `predicate_filter` would do for
//! updates but also drops deletions (a deleted object hashes like its last update), and the
//! endpoint controller must see an interconnect go to release its in-use finalizer.
use std::collections::HashMap;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

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

/// The objects of `events` whose `fingerprint` changed since last seen, and every deleted one.
pub fn filtered<K, S>(
    events: S,
    fingerprint: fn(&K) -> u64,
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
                (seen.insert(key, print) != Some(print)).then_some(Ok(obj))
            }
            Ok(watcher::Event::Delete(obj)) => {
                let key = obj.meta().uid.clone().unwrap_or_else(|| obj.name_any());
                seen.remove(&key);
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
        let passed: Vec<String> = filtered(events, spec_or_meta::<CellInterconnect>)
            .map(|r| r.unwrap().metadata.resource_version.unwrap())
            .collect()
            .await;
        assert_eq!(passed, ["1", "3", "4"]);
    }
}
