//! The cellnet API, `cellnet.io/v1alpha1`: [`InfraEndpoint`] and [`CellInterconnect`].
//!
//! The Rust types are the source of truth: the CRD YAML in `crds/` is generated from them
//! (`cellnet-controller crd --out-dir crds`, `make crds`) and a unit test fails when it is stale.
//! Validation lives in the schema (formats, enums, bounds, patterns) and in CEL rules
//! (`x-kubernetes-validations`), so that the API server refuses bad input before any controller
//! sees it.
use std::path::Path;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::Value;

pub mod cell_interconnect;
pub mod conditions;
pub mod infra_endpoint;
pub mod reason;
pub mod routes;
pub mod segments;

pub use cell_interconnect::{
    AddressFamily, AdminState, BgpSpec, CellInterconnect, CellInterconnectSpec, CellInterconnectStatus,
    EndpointRef, GracefulRestart, OwnedPeer, PassiveSide, SecretKeyRef, SessionState, SideStatus,
};
pub use conditions::{ConditionType, set_condition};
pub use infra_endpoint::{
    InfraEndpoint, InfraEndpointSpec, InfraEndpointStatus, OpenDaylightSpec, SdnKind, SdnSpec, SdnType,
    SecretRef, TlsSpec,
};
pub use reason::Reason;
pub use routes::{ExportPolicy, ImportPolicy, Network, NetworkStatus, RouteStatus, RoutesSpec};
pub use segments::{L2Segment, L2Spec, RouteTargets, SegmentStatus};

/// API group of every cellnet kind.
pub const GROUP: &str = "cellnet.io";
/// The only served version so far.
pub const VERSION: &str = "v1alpha1";
/// Label the controller keeps on each InfraEndpoint: the value of `spec.cell`.
pub const CELL_LABEL: &str = "cellnet.io/cell";

/// `format` values the API server understands; it silently drops any other (schemars emits
/// `uint32`, `uint16`, `uint8`, `ip`, ...), so they are removed here and the CRD files show
/// exactly what the server enforces.
const SERVER_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "date-time",
    "int32",
    "int64",
    "float",
    "double",
];

/// Every cellnet CRD, in a stable order: cellinterconnects, then infraendpoints.
pub fn all_crds() -> Vec<CustomResourceDefinition> {
    [CellInterconnect::crd(), InfraEndpoint::crd()]
        .into_iter()
        .map(clean_crd)
        .collect()
}

/// All CRDs as one multi-document YAML stream (what `cellnet-controller crd` prints).
pub fn crds_yaml() -> String {
    crd_files()
        .into_iter()
        .map(|(_, yaml)| yaml)
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The generated CRD files: `(file name, YAML)`, e.g. `cellnet.io_infraendpoints.yaml`.
pub fn crd_files() -> Vec<(String, String)> {
    all_crds()
        .into_iter()
        .map(|crd| {
            let name = crd.metadata.name.clone().unwrap_or_default();
            let (plural, group) = name.split_once('.').unwrap_or((&name, GROUP));
            // Through a JSON value: the typed schema holds bounds as f64 and would print `65535.0`.
            let mut value = serde_json::to_value(&crd).expect("a CRD always serializes");
            integral_bounds(&mut value);
            let yaml = serde_yaml::to_string(&value).expect("a CRD always serializes");
            (format!("{group}_{plural}.yaml"), yaml)
        })
        .collect()
}

/// Writes [`crd_files`] into `dir` (created if missing).
pub fn write_crds(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (file, yaml) in crd_files() {
        std::fs::write(dir.join(file), yaml)?;
    }
    Ok(())
}

/// Post-processes a derived CRD into what the API server keeps.
fn clean_crd(crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let mut value = serde_json::to_value(&crd).expect("a CRD always serializes");
    if let Some(versions) = value.pointer_mut("/spec/versions").and_then(Value::as_array_mut) {
        for version in versions {
            if let Some(schema) = version.pointer_mut("/schema/openAPIV3Schema") {
                tidy_schema(schema);
            }
        }
    }
    serde_json::from_value(value).expect("a cleaned CRD still deserializes")
}

/// Drops the `format`s the server ignores.
fn tidy_schema(schema: &mut Value) {
    match schema {
        Value::Object(map) => {
            let unknown = map
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !SERVER_FORMATS.contains(&f));
            if unknown {
                map.remove("format");
            }
            for (key, child) in map.iter_mut() {
                // Defaults and enums are data, not schemas.
                if key != "default" && key != "enum" && key != "x-kubernetes-validations" {
                    tidy_schema(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy_schema),
        _ => {}
    }
}

/// Writes integral `minimum`/`maximum` bounds as integers (`65535`, not `65535.0`).
fn integral_bounds(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if (key == "minimum" || key == "maximum")
                    && let Some(f) = child.as_f64()
                    && f.fract() == 0.0
                    && f.abs() < 9.0e15
                {
                    *child = Value::from(f as i64);
                } else {
                    integral_bounds(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_bounds),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema_of(crd: &CustomResourceDefinition) -> Value {
        let value = serde_json::to_value(crd).unwrap();
        value
            .pointer("/spec/versions/0/schema/openAPIV3Schema")
            .unwrap()
            .clone()
    }

    /// Walks a schema and collects the paths of properties that lack a description.
    fn undocumented(schema: &Value, path: &str, out: &mut Vec<String>) {
        let Some(props) = schema.get("properties").and_then(Value::as_object) else {
            if let Some(items) = schema.get("items") {
                undocumented(items, &format!("{path}[]"), out);
            }
            if let Some(extra) = schema.get("additionalProperties").filter(|v| v.is_object()) {
                undocumented(extra, &format!("{path}{{}}"), out);
            }
            return;
        };
        for (name, prop) in props {
            let here = format!("{path}.{name}");
            // apiVersion/kind/metadata are documented by Kubernetes itself.
            let well_known = path.is_empty() && matches!(name.as_str(), "apiVersion" | "kind" | "metadata");
            if !well_known
                && prop
                    .get("description")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                out.push(here.clone());
            }
            undocumented(prop, &here, out);
        }
    }

    #[test]
    fn every_field_has_a_description() {
        for crd in all_crds() {
            let mut missing = vec![];
            undocumented(&schema_of(&crd), "", &mut missing);
            assert!(
                missing.is_empty(),
                "{}: fields without a description: {missing:?}",
                crd.metadata.name.unwrap()
            );
        }
    }

    #[test]
    fn crds_have_names_categories_and_status() {
        let crds = all_crds();
        let names: Vec<_> = crds.iter().map(|c| c.metadata.name.clone().unwrap()).collect();
        assert_eq!(
            names,
            ["cellinterconnects.cellnet.io", "infraendpoints.cellnet.io"]
        );
        for crd in &crds {
            assert_eq!(crd.spec.group, GROUP);
            assert_eq!(crd.spec.scope, "Namespaced");
            assert_eq!(
                crd.spec.names.categories.as_deref(),
                Some(&["cellnet".to_string()][..])
            );
            assert_eq!(crd.spec.versions.len(), 1);
            let version = &crd.spec.versions[0];
            assert_eq!(version.name, VERSION);
            assert!(version.subresources.as_ref().unwrap().status.is_some());
        }
        assert_eq!(
            crds[0].spec.names.short_names.as_deref(),
            Some(&["cic".to_string()][..])
        );
        assert_eq!(
            crds[1].spec.names.short_names.as_deref(),
            Some(&["iep".to_string()][..])
        );
        let selectable = crds[1].spec.versions[0].selectable_fields.as_ref().unwrap();
        assert_eq!(selectable[0].json_path, ".spec.cell");
    }

    #[test]
    fn only_formats_the_server_keeps() {
        for crd in all_crds() {
            let text = serde_json::to_string(&schema_of(&crd)).unwrap();
            for bad in ["\"uint32\"", "\"uint16\"", "\"uint8\"", "\"uint\"", "\"ip\""] {
                assert!(
                    !text.contains(&format!("\"format\":{bad}")),
                    "format {bad} in {text}"
                );
            }
        }
    }

    #[test]
    fn yaml_stream_holds_both_crds() {
        let yaml = crds_yaml();
        let docs: Vec<CustomResourceDefinition> = serde_yaml::Deserializer::from_str(&yaml)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect();
        assert_eq!(docs, all_crds());
    }

    /// The committed files in `crds/` must be what the types generate.
    #[test]
    fn crd_files_are_fresh() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
        for (file, want) in crd_files() {
            let path = dir.join(&file);
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                have == want,
                "{} is stale or missing: run `make crds` (cargo run --bin cellnet-controller -- crd --out-dir crds)",
                path.display()
            );
        }
    }
}
