//! The operator's allowlist of the APIs cellnet may call (`--endpoint-allow`): whoever may create
//! an InfraEndpoint chooses `spec.sdn.url` and the clouds.yaml `auth_url`, and without a list the
//! controller would connect wherever they point (another tenant's gobgpd has no authentication).
//!
//! A rule is `<host-or-CIDR>[:port]`: `10.0.0.5`, `10.0.0.0/24:50051`, `[2001:db8::/32]:8181`,
//! `odl.cell1.example:8181` or `*.cells.example`. An address or CIDR matches URLs written with an
//! IP address; a name matches URLs with that host name (`*.` any name below it). Names are not
//! resolved for the check: what they resolve to is the operator's DNS, and a resolved address
//! could change before the connection anyway. Without a port, any port matches.
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

/// Which hosts a rule admits.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Hosts {
    /// URLs written with an address in this network.
    Net(IpNet),
    /// URLs with exactly this host name (lower case).
    Name(String),
    /// URLs with a host name ending in `.<suffix>` (from `*.suffix`).
    Below(String),
}

/// One `<host-or-CIDR>[:port]` entry of `--endpoint-allow`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowRule {
    hosts: Hosts,
    port: Option<u16>,
    text: String,
}

impl fmt::Display for AllowRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for AllowRule {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (host, port) = split_port(text)?;
        let hosts = parse_hosts(host).ok_or_else(|| {
            format!("{text:?} is not <address, CIDR or host name>[:port] (for example 10.0.0.0/24:50051)")
        })?;
        Ok(Self {
            hosts,
            port,
            text: text.to_string(),
        })
    }
}

/// `host` and the port after it: `[v6-or-cidr]:port`, a bare IPv6 address or CIDR (no port), or
/// `host:port`.
fn split_port(text: &str) -> Result<(&str, Option<u16>), String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .map(Some)
            .ok_or_else(|| format!("{text:?}: {p:?} is not a port"))
    };
    if let Some(rest) = text.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{text:?}: missing ']'"))?;
        return match after {
            "" => Ok((host, None)),
            _ => Ok((host, port(after.strip_prefix(':').unwrap_or(after))?)),
        };
    }
    match text.matches(':').count() {
        0 => Ok((text, None)),
        1 => {
            let (host, p) = text.split_once(':').unwrap_or((text, ""));
            Ok((host, port(p)?))
        }
        _ => Ok((text, None)), // IPv6 without brackets: no port
    }
}

fn parse_hosts(host: &str) -> Option<Hosts> {
    if let Ok(net) = host.parse::<IpNet>() {
        return Some(Hosts::Net(net.trunc()));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Some(Hosts::Net(IpNet::from(ip)));
    }
    let host = host.to_ascii_lowercase();
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.split('.')
                .all(|l| !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
    };
    match host.strip_prefix("*.") {
        Some(suffix) if name_ok(suffix) => Some(Hosts::Below(suffix.to_string())),
        None if name_ok(&host) => Some(Hosts::Name(host)),
        _ => None,
    }
}

/// The host of a URL: an address, or a host name in lower case.
#[derive(Debug)]
enum UrlHost {
    Ip(IpAddr),
    Name(String),
}

impl AllowRule {
    fn admits(&self, host: &UrlHost, port: Option<u16>) -> bool {
        if self.port.is_some() && self.port != port {
            return false;
        }
        match (&self.hosts, host) {
            (Hosts::Net(net), UrlHost::Ip(ip)) => net.contains(ip),
            (Hosts::Name(name), UrlHost::Name(n)) => n == name,
            (Hosts::Below(suffix), UrlHost::Name(n)) => n
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            _ => false,
        }
    }
}

/// `Err` names what an API URL must not carry: user information (credentials belong in a
/// Secret), a query or a fragment (cellnet appends paths to the URL: with `?` or `#` in it,
/// every request would go to the same foreign URL whatever cellnet meant to call).
pub fn check_plain(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "the URL must not contain user information (user:password@); put credentials in the Secret"
                .into(),
        );
    }
    if parsed.query().is_some() {
        return Err("the URL must not have a query (?...)".into());
    }
    if parsed.fragment().is_some() {
        return Err("the URL must not have a fragment (#...)".into());
    }
    Ok(())
}

/// The rules of `--endpoint-allow`; empty admits every URL (the behaviour before the list).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Allowlist(Vec<AllowRule>);

impl Allowlist {
    pub fn new(rules: Vec<AllowRule>) -> Self {
        Self(rules)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `Ok` when `url` may be called; `Err` says why not, for status.
    pub fn check(&self, url: &str) -> Result<(), String> {
        if self.0.is_empty() {
            return Ok(());
        }
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL ({e})"))?;
        let host = parsed.host_str().ok_or("the URL has no host")?;
        let port = parsed.port_or_known_default();
        let of_url = match host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
        {
            Ok(ip) => UrlHost::Ip(ip),
            Err(_) => UrlHost::Name(host.to_ascii_lowercase()),
        };
        if self.0.iter().any(|r| r.admits(&of_url, port)) {
            return Ok(());
        }
        let rules: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        Err(format!(
            "{host}:{} is not in the controller's --endpoint-allow list ({}); ask the cluster operator \
             to add it, or use an API the list admits",
            port.map_or("-".into(), |p| p.to_string()),
            rules.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(rules: &[&str]) -> Allowlist {
        Allowlist::new(rules.iter().map(|r| r.parse().unwrap()).collect())
    }

    #[test]
    fn rules_parse_addresses_networks_names_and_ports() {
        for ok in [
            "10.0.0.5",
            "10.0.0.0/24:50051",
            "[2001:db8::/32]:8181",
            "2001:db8::1",
            "[2001:db8::1]",
            "odl.cell1.example:8181",
            "*.cells.example",
        ] {
            assert!(ok.parse::<AllowRule>().is_ok(), "{ok}");
        }
        for bad in [
            "",
            "host:",
            "host:0",
            "host:99999",
            "a b",
            "*.",
            "[::1",
            "http://x",
            "10.0.0.0/33",
        ] {
            assert!(bad.parse::<AllowRule>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn an_empty_list_admits_everything() {
        assert_eq!(Allowlist::default().check("http://203.0.113.9:50051"), Ok(()));
    }

    #[test]
    fn addresses_match_networks_and_ports() {
        let l = list(&["198.51.100.0/24:50051", "[2001:db8::/32]", "192.0.2.7"]);
        assert!(l.check("http://198.51.100.20:50051").is_ok());
        assert!(l.check("http://198.51.100.20:50052").is_err(), "other port");
        assert!(l.check("http://203.0.113.1:50051").is_err(), "other network");
        assert!(l.check("https://[2001:db8::5]:8181/rests").is_ok());
        assert!(l.check("http://192.0.2.7").is_ok(), "any port");
        // A name is never matched against a network: it is not resolved for the check.
        assert!(l.check("http://localhost:50051").is_err());
    }

    #[test]
    fn names_match_exactly_or_below_a_wildcard() {
        let l = list(&["odl.cell1.example:8181", "*.cells.example"]);
        assert!(l.check("https://ODL.cell1.example:8181/rests").is_ok());
        assert!(l.check("https://odl.cell1.example:8443").is_err());
        assert!(l.check("http://a.cells.example:1").is_ok());
        assert!(
            l.check("http://cells.example:1").is_err(),
            "the wildcard is below the name"
        );
        assert!(l.check("http://evilcells.example:1").is_err());
        // The default port of the scheme counts when the URL has none.
        assert!(list(&["ks.example:443"]).check("https://ks.example/v3").is_ok());
    }

    #[test]
    fn plain_urls_have_no_user_query_or_fragment() {
        assert_eq!(check_plain("https://ks.example:5000/v3"), Ok(()));
        for (url, why) in [
            ("http://admin:pw@ks.example/v3", "user information"),
            ("http://admin@ks.example/v3", "user information"),
            ("http://ks.example/v3?", "query"),
            ("http://ks.example/v3?x=1", "query"),
            ("http://ks.example/v3#", "fragment"),
        ] {
            assert!(check_plain(url).unwrap_err().contains(why), "{url}");
        }
    }

    #[test]
    fn the_refusal_names_the_host_and_the_list() {
        let err = list(&["10.0.0.0/8"]).check("http://192.0.2.1:50051").unwrap_err();
        assert!(
            err.contains("192.0.2.1:50051") && err.contains("10.0.0.0/8"),
            "{err}"
        );
    }
}
