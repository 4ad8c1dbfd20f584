//! Status writes: the whole status replaced in one JSON patch.
//!
//! Not server-side apply: with 1,000 interconnects coming up, SSA status writes were the largest
//! cost of the API server (its merge and managed-fields bookkeeping took 18 % of kube-apiserver's
//! CPU in a profile of the bench's push phase, on a machine where the API server is the
//! bottleneck). The status is the controller's alone, so replacing it whole is exact: a field the
//! new status leaves out is gone, as with apply, without a diff against a cache that may be behind.
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use kube::api::{Api, Patch, PatchParams};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::FIELD_MANAGER;

/// Replaces `status` of the object `name`.
pub async fn replace_status<K, S>(api: &Api<K>, name: &str, status: &S) -> kube::Result<K>
where
    K: Clone + DeserializeOwned + std::fmt::Debug,
    S: Serialize,
{
    let patch = replace_patch(status).map_err(kube::Error::SerdeError)?;
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    api.patch_status(name, &params, &Patch::<()>::Json(patch)).await
}

/// `add` replaces a member that exists and creates it otherwise (RFC 6902, 4.1).
fn replace_patch<S: Serialize>(status: &S) -> serde_json::Result<json_patch::Patch> {
    serde_json::from_value(serde_json::json!([
        {"op": "add", "path": "/status", "value": serde_json::to_value(status)?}
    ]))
}

/// The status this process last wrote to each object (a hash of it, and the resourceVersion the
/// write produced), to tell when the cache is behind our own write.
///
/// A status write does not trigger a reconcile, so the next reconcile (a speaker event, often
/// within milliseconds) may still read the status from before that write. If the new status then
/// equals that older one, skipping the write would leave our last write (say, a session that was
/// down for a moment) on the API server, and a healthy object resyncs only hourly: seen in CI as
/// one interconnect of 100 left `Ready=False` after a controller restart.
#[derive(Default)]
pub struct StatusMemo(Mutex<HashMap<String, Written>>);

struct Written {
    resource_version: String,
    status: u64,
}

impl StatusMemo {
    /// Whether `new` is what the API server holds, so the write can be skipped: the cached object
    /// (`cached_rv`, `cached`) shows it, and it is not behind a different status we wrote.
    pub fn unchanged<S: Serialize + PartialEq>(
        &self,
        uid: &str,
        cached_rv: Option<&str>,
        cached: Option<&S>,
        new: &S,
    ) -> bool {
        if cached != Some(new) {
            return false;
        }
        match self.0.lock().unwrap().get(uid) {
            None => true,
            Some(w) => Some(w.resource_version.as_str()) == cached_rv || w.status == digest(new),
        }
    }

    /// Records that we wrote `status` to `uid`, producing `resource_version`.
    pub fn wrote<S: Serialize>(&self, uid: &str, resource_version: Option<&str>, status: &S) {
        let written = Written {
            resource_version: resource_version.unwrap_or_default().into(),
            status: digest(status),
        };
        self.0.lock().unwrap().insert(uid.into(), written);
    }

    /// Forgets a deleted object.
    pub fn forget(&self, uid: &str) {
        self.0.lock().unwrap().remove(uid);
    }
}

fn digest<S: Serialize>(status: &S) -> u64 {
    let mut h = DefaultHasher::new();
    serde_json::to_string(status).unwrap_or_default().hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_behind_a_different_write_of_ours_is_not_trusted() {
        let memo = StatusMemo::default();
        let (ready, down) = (
            serde_json::json!({"ready": true}),
            serde_json::json!({"ready": false}),
        );
        // Nothing written yet: the cache is all we know.
        assert!(memo.unchanged("u", Some("1"), Some(&ready), &ready));
        // We wrote `down` (rv 2); the cache still shows `ready` at rv 1: the server holds `down`.
        memo.wrote("u", Some("2"), &down);
        assert!(!memo.unchanged("u", Some("1"), Some(&ready), &ready));
        // Once the cache shows our write, it is trusted again.
        assert!(memo.unchanged("u", Some("2"), Some(&down), &down));
        assert!(!memo.unchanged("u", Some("2"), Some(&down), &ready));
        // A cache behind a write of the same status: nothing to write either way.
        memo.wrote("u", Some("3"), &ready);
        assert!(memo.unchanged("u", Some("2"), Some(&ready), &ready));
        memo.forget("u");
        assert!(memo.unchanged("u", Some("1"), Some(&ready), &ready));
    }

    #[test]
    fn the_patch_replaces_the_whole_status_and_drops_what_the_new_one_leaves_out() {
        let mut doc = serde_json::json!({"spec": {"a": 1}, "status": {"old": true, "kept": 1}});
        let patch = replace_patch(&serde_json::json!({"kept": 2})).unwrap();
        json_patch::patch(&mut doc, &patch).unwrap();
        assert_eq!(doc, serde_json::json!({"spec": {"a": 1}, "status": {"kept": 2}}));
    }

    #[test]
    fn the_patch_adds_a_status_to_an_object_without_one() {
        let mut doc = serde_json::json!({"spec": {}});
        let patch = replace_patch(&serde_json::json!({"n": 1})).unwrap();
        json_patch::patch(&mut doc, &patch).unwrap();
        assert_eq!(doc["status"], serde_json::json!({"n": 1}));
    }
}
