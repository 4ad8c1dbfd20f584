//! The `-o json|yaml` documents of `cells`, `status`, `routes` and `diagnose`: every one is an
//! object with `apiVersion` (the shape's version) and `kind` beside its own fields. Within one version fields are
//! only added; a rename, removal or change of meaning makes a new version (docs/operations.md,
//! "Output for scripts").
use clap::ValueEnum;
use serde_json::{Map, Value};

/// The version of every document's shape.
pub const API_VERSION: &str = "cellnet.io/plugin-v1";

/// A machine-readable output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MachineFormat {
    Json,
    Yaml,
}

/// The kind of each command's document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `cells`: `{"cells": [{"cell", "endpoints", "interconnects", "ready", "notEstablished"}]}`.
    Cells,
    /// `status`: `{"cells": [{"cell", "interconnects": [...]}]}`.
    Status,
    /// `routes`: `{"interconnects": [...], "endpoints": [...]}`.
    Routes,
    /// `segments`: `{"interconnects": [{"namespace", "name", "stretched", "segments": [...]}]}`.
    Segments,
    /// `diagnose`: `{"interconnect", "healthy", "breaksAt", "steps": [{"title", "verdict", "evidence"}]}`.
    Diagnosis,
    /// `diagnose` without a name: `{"items": [Diagnosis bodies]}`, one per interconnect not Ready.
    DiagnosisList,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Cells => "Cells",
            Self::Status => "Status",
            Self::Routes => "Routes",
            Self::Segments => "Segments",
            Self::Diagnosis => "Diagnosis",
            Self::DiagnosisList => "DiagnosisList",
        }
    }
}

/// `body`'s fields with `apiVersion` and `kind`.
pub fn versioned(kind: Kind, body: Value) -> Value {
    let mut doc = Map::new();
    doc.insert("apiVersion".into(), API_VERSION.into());
    doc.insert("kind".into(), kind.as_str().into());
    if let Value::Object(fields) = body {
        doc.extend(fields);
    }
    Value::Object(doc)
}

/// The document as text in `format` (JSON pretty-printed, with a final newline).
pub fn to_text(format: MachineFormat, kind: Kind, body: Value) -> anyhow::Result<String> {
    let doc = versioned(kind, body);
    Ok(match format {
        MachineFormat::Json => format!("{}\n", serde_json::to_string_pretty(&doc)?),
        MachineFormat::Yaml => serde_yaml::to_string(&doc)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_document_carries_its_version_and_kind() {
        let text = to_text(MachineFormat::Json, Kind::Cells, json!({"cells": []})).unwrap();
        let doc: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            doc,
            json!({"apiVersion": "cellnet.io/plugin-v1", "kind": "Cells", "cells": []})
        );
        let yaml = to_text(MachineFormat::Yaml, Kind::Diagnosis, json!({"healthy": true})).unwrap();
        let doc: Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(
            doc,
            json!({"apiVersion": "cellnet.io/plugin-v1", "kind": "Diagnosis", "healthy": true})
        );
    }
}
