//! Status writes: the whole status replaced in one JSON patch.
//!
//! Not server-side apply: with 1,000 interconnects coming up, SSA status writes were the largest
//! cost of the API server (its merge and managed-fields bookkeeping took 18 % of kube-apiserver's
//! CPU in a profile of the bench's push phase, on a machine where the API server is the
//! bottleneck). The status is the controller's alone, so replacing it whole is exact: a field the
//! new status leaves out is gone, as with apply, without a diff against a cache that may be behind.
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

#[cfg(test)]
mod tests {
    use super::*;

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
