//! Pure: whether an endpoint's API calls would expose credentials on the wire, for the
//! `InsecureTransport` Warning and `--require-tls` (docs/security.md, "Transport").
//!
//! Flagged: credentials over plain `http://` (OpenDaylight basic auth on every request, a
//! Keystone password and the token it returns), and `insecureSkipVerify` (anyone on the path can
//! present a certificate). Not flagged: a GoBGP API over `http://` without credentials, whose
//! plaintext is the operator's choice of network (GoBGP has no authentication to leak).
use crate::sdn::SdnTarget;

/// Why calls to `target` are insecure, or `None`.
pub fn sdn_risk(target: &SdnTarget) -> Option<String> {
    let url = &target.url;
    if target.insecure_skip_verify {
        return Some(format!(
            "spec.sdn.tls.insecureSkipVerify: the certificate of {url} is not verified, so anyone on \
             the path can impersonate it{}",
            if target.credentials.is_some() {
                " and read the credentials"
            } else {
                ""
            }
        ));
    }
    if target.credentials.is_some() && is_plain_http(url) {
        return Some(format!(
            "spec.sdn.url {url} is plain http: the credentials of spec.sdn.credentialsSecretRef go \
             in clear with every request; use https://"
        ));
    }
    None
}

/// Why a Keystone or Neutron URL that receives a password or token is insecure, or `None`.
pub fn cloud_risk(what: &str, url: &str) -> Option<String> {
    is_plain_http(url).then(|| {
        format!(
            "the clouds.yaml {what} {url} is plain http: the password and token go in clear; use https://"
        )
    })
}

fn is_plain_http(url: &str) -> bool {
    url.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdn::{BackendKind, Credentials, Password};

    fn target(url: &str, credentials: bool, skip: bool) -> SdnTarget {
        SdnTarget {
            kind: BackendKind::OpenDaylight,
            url: url.into(),
            ca_pem: None,
            insecure_skip_verify: skip,
            credentials: credentials.then(|| Credentials {
                username: "admin".into(),
                password: Password::new("secret-4711"),
            }),
            open_daylight: None,
        }
    }

    #[test]
    fn credentials_over_http_and_skipped_verification_are_risks() {
        let plain = sdn_risk(&target("http://odl:8181", true, false)).unwrap();
        assert!(
            plain.contains("plain http") && !plain.contains("secret-4711"),
            "{plain}"
        );
        let skip = sdn_risk(&target("https://odl:8443", true, true)).unwrap();
        assert!(
            skip.contains("insecureSkipVerify") && skip.contains("credentials"),
            "{skip}"
        );
        assert!(sdn_risk(&target("https://odl:8443", false, true)).is_some());
    }

    #[test]
    fn https_or_no_credentials_is_no_risk() {
        assert_eq!(sdn_risk(&target("https://odl:8443", true, false)), None);
        assert_eq!(sdn_risk(&target("http://gobgp:50051", false, false)), None);
        assert_eq!(sdn_risk(&target("HTTPS://odl:8443", true, false)), None);
    }

    #[test]
    fn keystone_over_http_is_a_risk() {
        assert!(cloud_risk("auth_url", "HTTP://keystone:5000/v3").is_some());
        assert_eq!(cloud_risk("auth_url", "https://keystone:5000/v3"), None);
    }
}
