//! `clouds.yaml`, the file OpenStack users already have (os-client-config / openstacksdk format).
use std::collections::BTreeMap;

use serde::Deserialize;

use super::Sensitive;

/// How to authenticate to one cloud.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// No Keystone: Neutron at `endpoint` (its `auth_strategy = noauth`).
    None { endpoint: String },
    /// Keystone v3 password, scoped to a project.
    Password {
        auth_url: String,
        user: NameOrId,
        password: Sensitive,
        project: Option<NameOrId>,
    },
    /// Keystone v3 application credential (scoped by the credential itself).
    ApplicationCredential {
        auth_url: String,
        /// By id, or by name with the owning user.
        id: Option<String>,
        name: Option<String>,
        user: Option<NameOrId>,
        secret: Sensitive,
    },
}

/// A Keystone user or project, by id or by name in a domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameOrId {
    Id(String),
    Name { name: String, domain: NameOrIdDomain },
}

/// A Keystone domain, by id or name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NameOrIdDomain {
    Id(String),
    Name(String),
}

/// One cloud of a clouds.yaml, resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cloud {
    pub name: String,
    pub auth: Auth,
    /// `region_name`: which catalog endpoint to use.
    pub region: Option<String>,
    /// `interface`: `public` (default), `internal` or `admin`.
    pub interface: String,
    /// `network_endpoint_override` / `endpoint_override`: Neutron's URL, bypassing the catalog.
    pub endpoint_override: Option<String>,
}

impl Cloud {
    /// Every URL cellnet would call for this cloud as written in the clouds.yaml, with the field
    /// that holds it (Keystone's `auth_url`, Neutron's endpoint); the catalog's URLs come later,
    /// from Keystone.
    pub fn urls(&self) -> Vec<(&'static str, &str)> {
        let mut urls = match &self.auth {
            Auth::None { .. } => vec![],
            Auth::Password { auth_url, .. } | Auth::ApplicationCredential { auth_url, .. } => {
                vec![("auth.auth_url", auth_url.as_str())]
            }
        };
        if let Some(endpoint) = self.endpoint_override.as_deref() {
            urls.push(("the Neutron endpoint (endpoint_override)", endpoint));
        }
        urls
    }
}

/// Why a clouds.yaml cannot be used; messages never contain secret values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    #[error("not a valid clouds.yaml{0}")]
    Syntax(String),
    #[error("clouds.yaml has no cloud {0:?} (it has: {1})")]
    NoSuchCloud(String, String),
    #[error("cloud {0:?}: {1}")]
    Invalid(String, String),
}

#[derive(Deserialize)]
struct File {
    #[serde(default)]
    clouds: BTreeMap<String, Entry>,
}

#[derive(Deserialize, Default)]
struct Entry {
    #[serde(default)]
    auth: AuthSection,
    auth_type: Option<String>,
    region_name: Option<String>,
    interface: Option<String>,
    endpoint_override: Option<String>,
    network_endpoint_override: Option<String>,
}

#[derive(Deserialize, Default)]
struct AuthSection {
    auth_url: Option<String>,
    endpoint: Option<String>,
    username: Option<String>,
    user_id: Option<String>,
    password: Option<Sensitive>,
    user_domain_name: Option<String>,
    user_domain_id: Option<String>,
    project_name: Option<String>,
    project_id: Option<String>,
    project_domain_name: Option<String>,
    project_domain_id: Option<String>,
    /// Default for both user and project domains.
    domain_name: Option<String>,
    domain_id: Option<String>,
    application_credential_id: Option<String>,
    application_credential_name: Option<String>,
    application_credential_secret: Option<Sensitive>,
}

fn domain(id: &Option<String>, name: &Option<String>, a: &AuthSection) -> NameOrIdDomain {
    match (id, name, &a.domain_id, &a.domain_name) {
        (Some(id), _, _, _) => NameOrIdDomain::Id(id.clone()),
        (None, Some(n), _, _) => NameOrIdDomain::Name(n.clone()),
        (None, None, Some(id), _) => NameOrIdDomain::Id(id.clone()),
        (None, None, None, Some(n)) => NameOrIdDomain::Name(n.clone()),
        _ => NameOrIdDomain::Id("default".into()),
    }
}

fn user(a: &AuthSection) -> Option<NameOrId> {
    match (&a.user_id, &a.username) {
        (Some(id), _) => Some(NameOrId::Id(id.clone())),
        (None, Some(name)) => Some(NameOrId::Name {
            name: name.clone(),
            domain: domain(&a.user_domain_id, &a.user_domain_name, a),
        }),
        _ => None,
    }
}

fn project(a: &AuthSection) -> Option<NameOrId> {
    match (&a.project_id, &a.project_name) {
        (Some(id), _) => Some(NameOrId::Id(id.clone())),
        (None, Some(name)) => Some(NameOrId::Name {
            name: name.clone(),
            domain: domain(&a.project_domain_id, &a.project_domain_name, a),
        }),
        _ => None,
    }
}

/// Parses `yaml` and resolves cloud `name`.
pub fn parse(yaml: &str, name: &str) -> Result<Cloud, CloudError> {
    let file: File = serde_yaml::from_str(yaml).map_err(|e| {
        // Only the position: serde's message may quote a value, and values may be secrets.
        CloudError::Syntax(
            e.location()
                .map(|l| format!(" (line {}, column {})", l.line(), l.column()))
                .unwrap_or_default(),
        )
    })?;
    let Some(entry) = file.clouds.get(name) else {
        let names: Vec<&str> = file.clouds.keys().map(String::as_str).collect();
        return Err(CloudError::NoSuchCloud(name.into(), names.join(", ")));
    };
    let invalid = |m: &str| CloudError::Invalid(name.into(), m.into());
    let a = &entry.auth;
    let endpoint_override = entry
        .network_endpoint_override
        .clone()
        .or_else(|| entry.endpoint_override.clone())
        .or_else(|| a.endpoint.clone());
    Ok(Cloud {
        name: name.into(),
        auth: auth(entry, endpoint_override.clone()).map_err(|m| invalid(&m))?,
        region: entry.region_name.clone(),
        interface: interface(entry).map_err(|m| invalid(&m))?,
        endpoint_override,
    })
}

/// The authentication of a cloud entry; `Err` says what is missing or not supported.
fn auth(entry: &Entry, endpoint_override: Option<String>) -> Result<Auth, String> {
    let a = &entry.auth;
    let default = match a.application_credential_secret.is_some() {
        true => "v3applicationcredential",
        false => "password",
    };
    let auth_url = || a.auth_url.clone().ok_or("auth.auth_url is required");
    match entry.auth_type.as_deref().unwrap_or(default) {
        "none" | "noauth" => Ok(Auth::None {
            endpoint: endpoint_override.ok_or("auth_type none needs endpoint_override")?,
        }),
        "password" | "v3password" => Ok(Auth::Password {
            auth_url: auth_url()?,
            user: user(a).ok_or("auth.username or auth.user_id is required")?,
            password: a.password.clone().ok_or("auth.password is required")?,
            project: project(a),
        }),
        "v3applicationcredential" | "application_credential" => application_credential(a),
        other => Err(format!(
            "auth_type {other:?} is not supported (password, v3applicationcredential, none)"
        )),
    }
}

fn application_credential(a: &AuthSection) -> Result<Auth, String> {
    let secret = a
        .application_credential_secret
        .clone()
        .ok_or("auth.application_credential_secret is required")?;
    if a.application_credential_id.is_none() && (a.application_credential_name.is_none() || user(a).is_none())
    {
        return Err("auth.application_credential_id, or its name with the user, is required".into());
    }
    Ok(Auth::ApplicationCredential {
        auth_url: a.auth_url.clone().ok_or("auth.auth_url is required")?,
        id: a.application_credential_id.clone(),
        name: a.application_credential_name.clone(),
        user: user(a),
        secret,
    })
}

/// `public`, `internal` or `admin` (a trailing `URL`, as in `publicURL`, is accepted).
fn interface(entry: &Entry) -> Result<String, String> {
    let interface = entry
        .interface
        .clone()
        .unwrap_or_else(|| "public".into())
        .trim_end_matches("URL")
        .to_string();
    match ["public", "internal", "admin"].contains(&interface.as_str()) {
        true => Ok(interface),
        false => Err("interface must be public, internal or admin".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_cloud_with_defaults() {
        let yaml = "clouds:\n  prod:\n    auth:\n      auth_url: http://ks:5000/v3\n      username: admin\n      \
                    password: s3cret\n      project_name: admin\n      user_domain_name: Default\n      \
                    project_domain_name: Default\n    region_name: RegionOne\n    interface: internal\n";
        let c = parse(yaml, "prod").unwrap();
        assert_eq!(c.region.as_deref(), Some("RegionOne"));
        assert_eq!(c.interface, "internal");
        match &c.auth {
            Auth::Password { user, project, .. } => {
                assert_eq!(
                    user,
                    &NameOrId::Name {
                        name: "admin".into(),
                        domain: NameOrIdDomain::Name("Default".into())
                    }
                );
                assert!(project.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "secrets are redacted in Debug"
        );
    }

    #[test]
    fn application_credential_and_none() {
        let yaml = "clouds:\n  ac:\n    auth_type: v3applicationcredential\n    auth:\n      auth_url: http://ks/v3\n      \
                    application_credential_id: abc\n      application_credential_secret: shh\n  \
                    bare:\n    auth_type: none\n    endpoint_override: http://127.0.0.1:9696\n";
        assert!(matches!(
            parse(yaml, "ac").unwrap().auth,
            Auth::ApplicationCredential { .. }
        ));
        assert_eq!(
            parse(yaml, "bare").unwrap().auth,
            Auth::None {
                endpoint: "http://127.0.0.1:9696".into()
            }
        );
        let err = parse(yaml, "nope").unwrap_err();
        assert_eq!(
            err.to_string(),
            "clouds.yaml has no cloud \"nope\" (it has: ac, bare)"
        );
    }

    #[test]
    fn errors_never_quote_values() {
        let err = parse("clouds:\n  x:\n    auth: [hunter2\n", "x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        let err = parse("clouds:\n  x:\n    auth:\n      password: hunter2\n", "x").unwrap_err();
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(err.to_string().contains("auth_url"), "{err}");
    }
}
