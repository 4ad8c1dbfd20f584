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

/// The one form of an SDN API URL that cellnet uses everywhere (client, speaker key, mappers):
/// without trailing `/`, scheme and host in lower case. Two spellings of one API gave two speaker
/// keys, and the events of one never requeued the objects written with the other.
pub fn normalize_url(url: &str) -> String {
    let url = url.trim().trim_end_matches('/');
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    format!(
        "{}://{}{path}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    )
}

/// The speaker key of an endpoint without reading any Secret (for mapping events to objects).
pub fn endpoint_speaker_key(ep: &InfraEndpoint) -> Option<super::speakers::SpeakerKey> {
    let sdn = ep.spec.sdn.as_ref()?;
    Some(super::speakers::speaker_key(
        backend_kind(sdn.type_),
        &normalize_url(&sdn.url),
    ))
}

/// A Secret's value and resourceVersion (the version tells a rotation).
pub struct SecretValue {
    pub value: String,
    pub version: String,
}

/// The label a Secret must carry before cellnet uses it: whoever may create an InfraEndpoint or a
/// CellInterconnect may name any Secret of the namespace, and cellnet sends its value to a URL
/// they choose; the label is the Secret owner's consent (`--allow-unlabelled-secrets` waives it).
pub const CREDENTIALS_LABEL: &str = "cellnet.io/credentials";

/// Reads one key of a Secret in `namespace`: a missing Secret or key is `SecretNotFound`, one
/// without [`CREDENTIALS_LABEL`] `SecretNotPermitted` (its value is not read), a Secret the
/// controller's RBAC may not read `SecretForbidden`.
pub async fn read_secret_key(
    ctx: &Context,
    namespace: &str,
    name: &str,
    key: &str,
) -> Result<Checked<SecretValue>> {
    let secret = match Api::<Secret>::namespaced(ctx.client.clone(), namespace)
        .get_opt(name)
        .await
    {
        Ok(secret) => secret,
        Err(kube::Error::Api(s)) if s.code == 403 => return Ok(Err(forbidden(namespace, name))),
        Err(e) => return Err(e.into()),
    };
    let Some(secret) = secret else {
        let message = format!("Secret {namespace}/{name} not found");
        return Ok(Err(Problem::new(Reason::SecretNotFound, message)));
    };
    if !ctx.allow_unlabelled_secrets && !labelled(&secret) {
        return Ok(Err(not_permitted(namespace, name)));
    }
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

/// Whether the Secret carries `cellnet.io/credentials: "true"`.
fn labelled(secret: &Secret) -> bool {
    secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(CREDENTIALS_LABEL))
        .is_some_and(|v| v == "true")
}

fn not_permitted(namespace: &str, name: &str) -> Problem {
    let message = format!(
        "Secret {namespace}/{name} lacks the label {CREDENTIALS_LABEL}: \"true\", so cellnet does not use it; \
         if it is meant for cellnet, label it: kubectl label secret -n {namespace} {name} {CREDENTIALS_LABEL}=true"
    );
    Problem::new(Reason::SecretNotPermitted, message)
}

fn forbidden(namespace: &str, name: &str) -> Problem {
    let message = format!(
        "the controller may not read Secret {namespace}/{name} (403 Forbidden): grant its ServiceAccount \
         get on Secrets in namespace {namespace} (Helm: add it to rbac.secretNamespaces)"
    );
    Problem::new(Reason::SecretForbidden, message)
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
    let url = normalize_url(&sdn.url);
    // The API server refuses these since the CEL rule; objects written before may still have them.
    if let Err(why) = super::allowlist::check_plain(&url) {
        return Ok(Err(Problem::new(
            Reason::InvalidSdnConfig,
            format!("spec.sdn.url: {why}"),
        )));
    }
    if let Err(why) = ctx.endpoint_allow.check(&url) {
        let message = format!("spec.sdn.url: {why}");
        return Ok(Err(Problem::new(Reason::EndpointNotAllowed, message)));
    }
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
    let target = SdnTarget {
        kind: backend_kind(sdn.type_),
        url,
        ca_pem,
        insecure_skip_verify: tls.is_some_and(|t| t.insecure_skip_verify),
        credentials,
        open_daylight: matches!(sdn.type_, SdnType::OpenDaylight).then(|| OpenDaylightTarget {
            rib_id: odl.rib_id,
            network_instance: odl.network_instance,
            // The API server refuses anything but an IPv4 address (CEL).
            application_peer: odl.application_peer.and_then(|a| a.parse().ok()),
        }),
    };
    Ok(require_tls(ctx, target))
}

/// With `--require-tls`, a target whose calls would expose credentials is refused before any call.
fn require_tls(ctx: &Context, target: SdnTarget) -> Checked<SdnTarget> {
    match super::transport::sdn_risk(&target) {
        Some(why) if ctx.require_tls => Err(Problem::new(
            Reason::TlsRequired,
            format!("{why}; the controller runs with --require-tls, so nothing was sent"),
        )),
        _ => Ok(target),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_api_has_one_url_and_one_speaker_key() {
        assert_eq!(
            normalize_url("HTTP://Odl.Example:8181/"),
            "http://odl.example:8181"
        );
        assert_eq!(normalize_url("https://odl:8181/Rests/"), "https://odl:8181/Rests");
        let ep: InfraEndpoint = serde_json::from_value(serde_json::json!({
            "apiVersion": "cellnet.io/v1alpha1", "kind": "InfraEndpoint",
            "metadata": {"name": "a", "namespace": "ns"},
            "spec": {"cell": "c", "address": "192.0.2.1", "asn": 1,
                     "sdn": {"type": "GoBGP", "url": "http://Speaker-A:50051//"}},
        }))
        .unwrap();
        let resolved = super::super::speakers::speaker_key(BackendKind::GoBgp, "http://speaker-a:50051");
        assert_eq!(endpoint_speaker_key(&ep), Some(resolved));
    }
}
