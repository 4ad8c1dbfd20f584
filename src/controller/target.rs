//! From an InfraEndpoint to what the SDN layer needs: the API target (with Secrets read) and the
//! speaker's global config.
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use super::{Context, error::Result};
use crate::api::{InfraEndpoint, SdnType};
use crate::sdn::{BackendKind, Credentials, Password, SdnTarget, SpeakerConfig};

/// Why an endpoint cannot be turned into a target; each maps to a condition reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetProblem {
    /// Not SDN-managed.
    NotManaged,
    /// A referenced Secret or key is missing.
    SecretNotFound(String),
    /// Something in the spec the API server could not refuse (e.g. an unusable router ID).
    Invalid(String),
}

impl TargetProblem {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NotManaged => "EndpointNotManaged",
            Self::SecretNotFound(_) => "SecretNotFound",
            Self::Invalid(_) => "InvalidEndpoint",
        }
    }
}

pub fn backend_kind(t: SdnType) -> BackendKind {
    match t {
        SdnType::GoBgp => BackendKind::GoBgp,
        SdnType::OpenDaylight => BackendKind::OpenDaylight,
    }
}

/// The speaker key of an endpoint without reading any Secret (for mapping events to objects).
pub fn endpoint_speaker_key(ep: &InfraEndpoint) -> Option<super::speakers::SpeakerKey> {
    let sdn = ep.spec.sdn.as_ref()?;
    Some(super::speakers::speaker_key(backend_kind(sdn.type_), &sdn.url))
}

/// Reads one key of a Secret in `namespace`; `Ok(Err(..))` when it or the key is missing.
pub async fn read_secret_key(
    ctx: &Context,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<std::result::Result<(String, String), TargetProblem>> {
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await?;
    let Some(secret) = secret else {
        return Ok(Err(TargetProblem::SecretNotFound(format!(
            "Secret {namespace}/{name} not found"
        ))));
    };
    let version = secret.metadata.resource_version.clone().unwrap_or_default();
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .or_else(|| secret.string_data.as_ref().and_then(|d| d.get(key).cloned()));
    Ok(match value {
        Some(v) => Ok((v, version)),
        None => Err(TargetProblem::SecretNotFound(format!(
            "Secret {namespace}/{name} has no key {key:?}"
        ))),
    })
}

/// Resolves the API target of a managed endpoint, reading its credential and CA Secrets.
pub async fn resolve_target(
    ctx: &Context,
    ep: &InfraEndpoint,
) -> Result<std::result::Result<SdnTarget, TargetProblem>> {
    let Some(sdn) = ep.spec.sdn.as_ref() else {
        return Ok(Err(TargetProblem::NotManaged));
    };
    let ns = ep.metadata.namespace.as_deref().unwrap_or("default");
    let credentials = match &sdn.credentials_secret_ref {
        None => None,
        Some(r) => {
            let user = match read_secret_key(ctx, ns, &r.name, "username").await? {
                Ok((v, _)) => v,
                Err(p) => return Ok(Err(p)),
            };
            let pass = match read_secret_key(ctx, ns, &r.name, "password").await? {
                Ok((v, _)) => v,
                Err(p) => return Ok(Err(p)),
            };
            Some(Credentials {
                username: user,
                password: Password::new(pass),
            })
        }
    };
    let (ca_pem, insecure_skip_verify) = match &sdn.tls {
        None => (None, false),
        Some(tls) => {
            let ca = match &tls.ca_secret_ref {
                None => None,
                Some(r) => match read_secret_key(ctx, ns, &r.name, "ca.crt").await? {
                    Ok((v, _)) => Some(v),
                    Err(p) => return Ok(Err(p)),
                },
            };
            (ca, tls.insecure_skip_verify)
        }
    };
    let odl = sdn.open_daylight_or_default();
    Ok(Ok(SdnTarget {
        kind: backend_kind(sdn.type_),
        url: sdn.url.trim_end_matches('/').to_string(),
        ca_pem,
        insecure_skip_verify,
        credentials,
        open_daylight: matches!(sdn.type_, SdnType::OpenDaylight).then(|| (odl.rib_id, odl.network_instance)),
    }))
}

/// The speaker's global config from its endpoint.
pub fn speaker_config(ep: &InfraEndpoint) -> std::result::Result<SpeakerConfig, TargetProblem> {
    let address: IpAddr = ep.spec.address.parse().map_err(|_| {
        TargetProblem::Invalid(format!("spec.address {:?} is not an IP address", ep.spec.address))
    })?;
    let router_id = ep.spec.effective_router_id().ok_or_else(|| {
        TargetProblem::Invalid("spec.routerId is required when spec.address is IPv6".to_string())
    })?;
    Ok(SpeakerConfig {
        asn: ep.spec.asn,
        router_id,
        listen_address: address,
        listen_port: ep.spec.port,
    })
}
