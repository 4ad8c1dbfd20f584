//! The Secrets of `spec.neutron`: the clouds.yaml that gives the cloud's client, and the BGP
//! peer's password. A missing or unusable Secret is a [`Problem`] (it stalls until the Secret
//! changes); only a Kubernetes API error aborts.
use std::sync::Arc;

use kube::ResourceExt;

use super::PeerPassword;
use crate::api::infra_endpoint::{CloudSecretRef, NeutronBgpSpec};
use crate::api::{InfraEndpoint, Reason};
use crate::controller::Context;
use crate::controller::error::Result;
use crate::controller::problem::Problem;
use crate::controller::target::{self, TargetProblem};
use crate::neutron::{NeutronClient, clouds};

/// One key of a Secret in the endpoint's namespace and the Secret's `resourceVersion`.
async fn read_secret(
    ctx: &Context,
    ep: &InfraEndpoint,
    name: &str,
    key: &str,
) -> Result<std::result::Result<(String, String), String>> {
    let ns = ep.namespace().unwrap_or_default();
    Ok(target::read_secret_key(ctx, &ns, name, key)
        .await?
        .map_err(|p| match p {
            TargetProblem::SecretNotFound(m) | TargetProblem::Invalid(m) => m,
            TargetProblem::NotManaged => String::new(),
        }))
}

/// The client of the cloud `cloud` in the clouds.yaml under `secret_ref`.
pub(super) async fn client(
    ctx: &Context,
    ep: &InfraEndpoint,
    secret_ref: &CloudSecretRef,
    cloud: &str,
) -> Result<std::result::Result<Arc<NeutronClient>, Problem>> {
    let yaml = match read_secret(ctx, ep, &secret_ref.name, &secret_ref.key).await? {
        Ok((yaml, _)) => yaml,
        Err(m) => {
            let message = format!("Neutron credentials: {m}");
            return Ok(Err(Problem::new(Reason::SecretNotFound, message)));
        }
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
    let key = format!("{ns}/{}/{}/{}", secret_ref.name, secret_ref.key, cloud.name);
    Ok(ctx.neutron.get(&key, cloud).map_err(Problem::from))
}

/// The peer's MD5 password when `bgp.passwordSecretRef` names one.
pub(super) async fn peer_password(
    ctx: &Context,
    ep: &InfraEndpoint,
    bgp: Option<&NeutronBgpSpec>,
) -> Result<std::result::Result<Option<PeerPassword>, Problem>> {
    let Some(r) = bgp.and_then(|b| b.password_secret_ref.as_ref()) else {
        return Ok(Ok(None));
    };
    Ok(match read_secret(ctx, ep, &r.name, &r.key).await? {
        Ok((value, secret_version)) => Ok(Some(PeerPassword {
            value,
            secret_version,
        })),
        Err(m) => Err(Problem::new(Reason::SecretNotFound, format!("BGP password: {m}"))),
    })
}
