//! The Secrets of `spec.neutron`: the clouds.yaml that gives the cloud's client, and the BGP
//! peer's password. A missing or unusable Secret is a [`Problem`] (it stalls until the Secret
//! changes); only a Kubernetes API error aborts.
use std::sync::Arc;

use kube::ResourceExt;

use super::PeerPassword;
use crate::api::infra_endpoint::{CloudSecretRef, NeutronBgpSpec};
use crate::api::{InfraEndpoint, Reason};
use crate::controller::error::Result;
use crate::controller::problem::Problem;
use crate::controller::target::{self, Checked, SecretValue};
use crate::controller::{Context, allowlist};
use crate::neutron::{NeutronClient, clouds};

/// One key of a Secret in the endpoint's namespace.
async fn read_secret(
    ctx: &Context,
    ep: &InfraEndpoint,
    name: &str,
    key: &str,
) -> Result<Checked<SecretValue>> {
    let ns = ep.namespace().unwrap_or_default();
    target::read_secret_key(ctx, &ns, name, key).await
}

/// The client of the cloud `cloud` in the clouds.yaml under `secret_ref`.
pub(super) async fn client(
    ctx: &Context,
    ep: &InfraEndpoint,
    secret_ref: &CloudSecretRef,
    cloud: &str,
) -> Result<Checked<(Arc<NeutronClient>, super::AuthGate)>> {
    let yaml = match read_secret(ctx, ep, &secret_ref.name, &secret_ref.key).await? {
        Ok(secret) => secret.value,
        Err(p) => return Ok(Err(p.within("Neutron credentials"))),
    };
    let ns = ep.namespace().unwrap_or_default();
    let cloud = match clouds::parse(&yaml, cloud) {
        Ok(c) => c,
        Err(e) => {
            let (name, key) = (&secret_ref.name, &secret_ref.key);
            let message = format!("Secret {ns}/{name} key {key:?}: {e}");
            return Ok(Err(Problem::new(Reason::InvalidCloud, message)));
        }
    };
    if let Err(p) = urls_usable(ctx, &cloud) {
        let (name, key) = (&secret_ref.name, &secret_ref.key);
        return Ok(Err(p.within(format!(
            "Secret {ns}/{name} key {key:?}, cloud {:?}",
            cloud.name
        ))));
    }
    let key = format!("{ns}/{}/{}/{}", secret_ref.name, secret_ref.key, cloud.name);
    Ok(ctx.neutron.get(&key, cloud).map_err(Problem::from))
}

/// The cloud's Keystone and Neutron URLs are plain (`InvalidCloud`) and in the operator's
/// allowlist (`EndpointNotAllowed`); checked before any connection.
fn urls_usable(ctx: &Context, cloud: &clouds::Cloud) -> Checked<()> {
    // Without authentication nothing secret goes to Keystone or Neutron.
    let sends_secrets = !matches!(cloud.auth, clouds::Auth::None { .. });
    for (field, url) in cloud.urls() {
        // Never the URL itself in the message: it may hold a password (user:password@).
        if let Err(why) = allowlist::check_plain(url) {
            return Err(Problem::new(Reason::InvalidCloud, format!("{field}: {why}")));
        }
        if let Err(why) = ctx.endpoint_allow.check(url) {
            return Err(Problem::new(
                Reason::EndpointNotAllowed,
                format!("{field}: {why}"),
            ));
        }
        if let Some(why) = super::super::transport::cloud_risk(field, url)
            && sends_secrets
            && ctx.require_tls
        {
            let message = format!("{why}; the controller runs with --require-tls, so nothing was sent");
            return Err(Problem::new(Reason::TlsRequired, message));
        }
    }
    Ok(())
}

/// Why the cloud's Keystone or Neutron URLs would carry its password or token in clear, or `None`.
pub(super) fn insecure(cloud: &clouds::Cloud) -> Option<String> {
    if matches!(cloud.auth, clouds::Auth::None { .. }) {
        return None;
    }
    let risks: Vec<String> = cloud
        .urls()
        .into_iter()
        .filter_map(|(field, url)| super::super::transport::cloud_risk(field, url))
        .collect();
    (!risks.is_empty()).then(|| format!("cloud {:?}: {}", cloud.name, risks.join("; ")))
}

/// The peer's MD5 password when `bgp.passwordSecretRef` names one.
pub(super) async fn peer_password(
    ctx: &Context,
    ep: &InfraEndpoint,
    bgp: Option<&NeutronBgpSpec>,
) -> Result<Checked<Option<PeerPassword>>> {
    let Some(r) = bgp.and_then(|b| b.password_secret_ref.as_ref()) else {
        return Ok(Ok(None));
    };
    Ok(match read_secret(ctx, ep, &r.name, &r.key).await? {
        Ok(s) => Ok(Some(PeerPassword {
            value: s.value,
            secret_version: s.version,
        })),
        Err(p) => Err(p.within("BGP password")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud(auth_url: &str) -> clouds::Cloud {
        let yaml = format!(
            "clouds:\n  prod:\n    auth:\n      auth_url: {auth_url}\n      username: admin\n      \
             password: secret-4711\n      project_name: p\n      user_domain_name: Default\n      \
             project_domain_name: Default\n"
        );
        clouds::parse(&yaml, "prod").unwrap()
    }

    #[test]
    fn a_password_to_keystone_over_plain_http_is_insecure() {
        let why = insecure(&cloud("http://keystone.example:5000/v3")).unwrap();
        assert!(
            why.contains("auth.auth_url") && why.contains("plain http"),
            "{why}"
        );
        assert!(!why.contains("secret-4711"), "{why}");
        assert_eq!(insecure(&cloud("https://keystone.example:5000/v3")), None);
    }
}
