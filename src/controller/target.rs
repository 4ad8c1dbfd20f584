//! Dereference step shared by both reconcilers: from an InfraEndpoint to what the SDN layer needs,
//! the API target (its Secrets read) and the speaker's global config. Anything missing or unusable
//! is a [`Problem`]; only Kubernetes API errors abort.
use std::net::IpAddr;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use super::problem::Problem;
use super::{Context, error::Result};
use crate::api::{InfraEndpoint, Reason, SdnType};
use crate::sdn::{BackendKind, Credentials, OpenDaylightTarget, Password, SdnTarget, SpeakerConfig};

/// What a step produced, or the problem that status will show instead.
pub type Checked<T> = std::result::Result<T, Problem>;

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

/// A Secret's value and resourceVersion (the version tells a rotation).
pub struct SecretValue {
    pub value: String,
    pub version: String,
}

/// Reads one key of a Secret in `namespace`; a missing Secret or key is a `SecretNotFound` problem.
pub async fn read_secret_key(
    ctx: &Context,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<Checked<SecretValue>> {
    let secret = Api::<Secret>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await?;
    let Some(secret) = secret else {
        let message = format!("Secret {namespace}/{name} not found");
        return Ok(Err(Problem::new(Reason::SecretNotFound, message)));
    };
    let version = secret.metadata.resource_version.clone().unwrap_or_default();
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .or_else(|| secret.string_data.as_ref().and_then(|d| d.get(key).cloned()));
    Ok(match value {
        Some(value) => Ok(SecretValue { value, version }),
        None => {
            let message = format!("Secret {namespace}/{name} has no key {key:?}");
            Err(Problem::new(Reason::SecretNotFound, message))
        }
    })
}

/// Reads `key` of the Secret `name` if a reference is given.
async fn optional_secret(
    ctx: &Context,
    ns: &str,
    name: Option<&str>,
    key: &str,
) -> Result<Checked<Option<String>>> {
    let Some(name) = name else { return Ok(Ok(None)) };
    Ok(read_secret_key(ctx, ns, name, key).await?.map(|s| Some(s.value)))
}

/// Resolves the API target of a managed endpoint, reading its credential and CA Secrets.
pub async fn resolve_target(ctx: &Context, ep: &InfraEndpoint) -> Result<Checked<SdnTarget>> {
    let Some(sdn) = ep.spec.sdn.as_ref() else {
        return Ok(Err(Problem::new(Reason::EndpointNotManaged, "not SDN-managed")));
    };
    let ns = ep.metadata.namespace.as_deref().unwrap_or("default");
    let creds = sdn.credentials_secret_ref.as_ref().map(|r| r.name.as_str());
    let username = match optional_secret(ctx, ns, creds, "username").await? {
        Ok(v) => v,
        Err(p) => return Ok(Err(p)),
    };
    let password = match optional_secret(ctx, ns, creds, "password").await? {
        Ok(v) => v,
        Err(p) => return Ok(Err(p)),
    };
    let tls = sdn.tls.as_ref();
    let ca_name = tls
        .and_then(|t| t.ca_secret_ref.as_ref())
        .map(|r| r.name.as_str());
    let ca_pem = match optional_secret(ctx, ns, ca_name, "ca.crt").await? {
        Ok(v) => v,
        Err(p) => return Ok(Err(p)),
    };
    let credentials = username.zip(password).map(|(username, password)| Credentials {
        username,
        password: Password::new(password),
    });
    let odl = sdn.open_daylight_or_default();
    Ok(Ok(SdnTarget {
        kind: backend_kind(sdn.type_),
        url: sdn.url.trim_end_matches('/').to_string(),
        ca_pem,
        insecure_skip_verify: tls.is_some_and(|t| t.insecure_skip_verify),
        credentials,
        open_daylight: matches!(sdn.type_, SdnType::OpenDaylight).then(|| OpenDaylightTarget {
            rib_id: odl.rib_id,
            network_instance: odl.network_instance,
            // The API server refuses anything but an IPv4 address (CEL).
            application_peer: odl.application_peer.and_then(|a| a.parse().ok()),
        }),
    }))
}

/// The speaker's global config from its endpoint.
pub fn speaker_config(ep: &InfraEndpoint) -> Checked<SpeakerConfig> {
    let address: IpAddr = ep.spec.address.parse().map_err(|_| {
        let message = format!("spec.address {:?} is not an IP address", ep.spec.address);
        Problem::new(Reason::InvalidEndpoint, message)
    })?;
    let router_id = ep.spec.effective_router_id().ok_or_else(|| {
        Problem::new(
            Reason::InvalidEndpoint,
            "spec.routerId is required when spec.address is IPv6",
        )
    })?;
    Ok(SpeakerConfig {
        asn: ep.spec.asn,
        router_id,
        listen_address: address,
        listen_port: ep.spec.port,
    })
}
