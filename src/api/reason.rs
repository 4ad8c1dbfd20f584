//! Every reason cellnet writes: condition reasons, Event reasons and the `reason` label of its
//! metrics. One enum, so that the controller, the plugin and the docs cannot drift apart
//! (`docs/reasons.md` is checked against [`Reason::ALL`] by a test).
use std::fmt;
use std::str::FromStr;

/// Declares [`Reason`] with, per variant, its documentation and whether it stalls progress.
macro_rules! reasons {
    ($( $(#[doc = $doc:literal])* $name:ident => stalls: $stalls:literal, )*) => {
        /// Why a condition holds, why an Event was sent, or why a reconcile failed.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Reason {
            $( $(#[doc = $doc])* $name, )*
        }

        impl Reason {
            /// Every reason, in declaration order (the order of `docs/reasons.md`).
            pub const ALL: &'static [Reason] = &[$(Reason::$name,)*];

            /// The reason as written into conditions, Events and metric labels.
            pub const fn as_str(self) -> &'static str {
                match self { $(Reason::$name => stringify!($name),)* }
            }

            /// Whether only a change (of the object, a Secret, a speaker) can clear this problem:
            /// kstatus `Stalled=True` instead of `Reconciling=True`, and no fast retry.
            pub const fn stalls(self) -> bool {
                match self { $(Reason::$name => $stalls,)* }
            }

            /// The documentation of this reason (its doc comment), for `docs/reasons.md`.
            pub fn doc(self) -> &'static str {
                match self { $(Reason::$name => concat!($($doc, "\n",)*).trim(),)* }
            }
        }
    };
}

reasons! {
    // ---- Ready and healthy
    /// Interconnect: every managed side reports its BGP session Established. As an Event: the
    /// sessions came up, with what cellnet did in the same report (a new link: peers created,
    /// route filters).
    SessionEstablished => stalls: false,
    /// Interconnect side: the peer is configured on that side's speaker.
    PeerConfigured => stalls: false,
    /// Endpoint: the speaker runs with the endpoint's global BGP configuration.
    SpeakerConfigured => stalls: false,
    /// Endpoint: Neutron holds the network, subnet and BGP objects of `spec.neutron`.
    NeutronConfigured => stalls: false,
    /// Endpoint or interconnect side: an external endpoint (no `spec.sdn`); cellnet configures nothing there.
    External => stalls: false,
    /// Interconnect: every prefix each managed side should accept is in its table.
    RoutesExchanged => stalls: false,
    /// Endpoint: its speaker announces all of its networks.
    NetworksAnnounced => stalls: false,
    /// Interconnect: every managed side has the other cell's EVPN inclusive-multicast route of
    /// every stretched segment (its VTEP is known, so frames can flow).
    SegmentsStretched => stalls: false,
    /// Interconnect: `spec.l2` is set but the endpoints declare no segment in common (or it names
    /// none): nothing is stretched.
    NoSegments => stalls: false,
    /// Interconnect or endpoint: no networks to exchange (none declared, or `spec.routes` carries
    /// nothing in either direction).
    NoNetworks => stalls: false,

    // ---- Waiting, not a fault
    /// Interconnect: a managed side's BGP session is not Established yet (the message names the state).
    SessionNotEstablished => stalls: false,
    /// Interconnect: a managed side's session has not been Established for longer than the stuck
    /// threshold (3 × `spec.bgp.holdTime`, at least `--session-stuck-minimum`); the message names
    /// the state and the likely cause read from the speaker's message counters, and cellnet
    /// resets its own peer (Event `SessionReset`, `status.<side>.resets`).
    SessionStuck => stalls: false,
    /// Interconnect: `spec.adminState: Disabled`; the peers stay configured, the session is shut down.
    AdministrativelyDown => stalls: false,
    /// Interconnect: `spec.suspend: true`; cellnet leaves the speakers as they are.
    Suspended => stalls: false,
    /// Endpoint: deletion waits for the CellInterconnects that still refer to it.
    InUse => stalls: false,
    /// Interconnect: a managed side has not accepted every network the other cell declares (the
    /// message names the cells and the prefixes): not sent yet, rejected by a policy, or the
    /// session is down.
    RoutesMissing => stalls: false,

    /// Interconnect: a managed side lacks the other cell's EVPN route for a stretched segment (the
    /// message names the cell and the VNI): the other cell's fabric does not announce the VNI,
    /// the session is down, or a policy dropped it.
    SegmentMissing => stalls: false,

    // ---- Problems in the objects (a change is needed)
    /// Interconnect: an InfraEndpoint it names does not exist in its namespace.
    EndpointNotFound => stalls: true,
    /// Interconnect: its local endpoint has no `spec.sdn`; the local side must be SDN-managed.
    EndpointNotManaged => stalls: true,
    /// A referenced Secret or one of its keys is missing.
    SecretNotFound => stalls: true,
    /// A referenced Secret lacks the label `cellnet.io/credentials: "true"` that lets cellnet
    /// use it; nothing from it is sent anywhere until it is labelled (or the controller runs
    /// with `--allow-unlabelled-secrets`).
    SecretNotPermitted => stalls: true,
    /// The controller's RBAC does not let it read a referenced Secret (403); grant it `get` on
    /// Secrets in that namespace (Helm `rbac.secretNamespaces`). Retried with backoff.
    SecretForbidden => stalls: false,
    /// The URL of an SDN, Keystone or Neutron API is outside the operator's allowlist
    /// (`--endpoint-allow`); cellnet made no connection to it.
    EndpointNotAllowed => stalls: true,
    /// Endpoint: the controller runs with `--require-tls` and the endpoint would send credentials
    /// over plain `http://` (OpenDaylight basic auth, a Keystone password) or skip verifying the
    /// API's certificate (`insecureSkipVerify`); nothing was sent. Use `https://` with a trusted CA.
    TlsRequired => stalls: true,
    /// Endpoint: something the API server could not refuse is unusable (an address that is not an
    /// IP, an IPv6 address without `routerId`).
    InvalidEndpoint => stalls: true,
    /// Endpoint: the clouds.yaml Secret of `spec.neutron` cannot be used.
    InvalidCloud => stalls: true,
    /// Endpoint: another cell's endpoint declares the same or an overlapping network (the
    /// message names it); neither is announced on the interconnects that join them until fixed.
    NetworkConflict => stalls: true,
    /// Interconnect: `spec.l2.segments` names a segment that an endpoint does not declare in
    /// `spec.l2Segments`; nothing is stretched until it is fixed. Endpoint: the same for
    /// `spec.neutron.network.segment` (an object from before the API server refused it); nothing
    /// is changed in Neutron until it is fixed.
    SegmentNotDeclared => stalls: true,
    /// Interconnect: the two endpoints declare one VNI under two names, or one name with two
    /// VNIs; nothing is stretched until it is fixed.
    SegmentConflict => stalls: true,
    /// Interconnect: the other side sent more prefixes than `spec.routes.maxPrefixes` and the
    /// speaker shut the session down; raise the limit or fix the other side.
    PrefixLimitExceeded => stalls: true,

    // ---- Conflicts with state cellnet does not own
    /// The speaker already has a peer at that address that cellnet did not create; left untouched.
    PeerConflict => stalls: true,
    /// The speaker runs with another global configuration (AS, router id); nothing was changed.
    SpeakerConflict => stalls: true,
    /// Neutron already holds an object cellnet would have to change or replace but may not.
    NeutronConflict => stalls: true,

    // ---- The SDN controller's API
    /// The SDN API cannot be reached or did not answer in time; retried with backoff.
    SdnUnreachable => stalls: false,
    /// The SDN API refused cellnet's credentials.
    SdnAuthFailed => stalls: true,
    /// TLS with the SDN API failed (untrusted or expired certificate, wrong host name, not TLS).
    SdnTlsFailed => stalls: true,
    /// The SDN API rejected a request; retried with backoff.
    SdnRejected => stalls: false,
    /// The SDN settings of the endpoint cannot be used (for example a malformed URL).
    InvalidSdnConfig => stalls: true,
    /// The SDN backend cannot do what the spec asks (for example a setting OpenDaylight lacks).
    Unsupported => stalls: true,

    // ---- Neutron's and Keystone's APIs (whether a retry helps depends on the answer)
    /// Neutron or Keystone cannot be reached.
    NeutronUnreachable => stalls: false,
    /// Keystone refused the credentials of the clouds.yaml Secret.
    NeutronAuthFailed => stalls: false,
    /// Neutron rejected a request (4xx stalls, 5xx is retried).
    NeutronRejected => stalls: false,
    /// Neutron or Keystone answered something cellnet cannot read.
    NeutronError => stalls: false,

    // ---- Events: what cellnet did or saw
    /// Event: cellnet started BGP on a bare speaker (global AS and router id).
    SpeakerStarted => stalls: false,
    /// Event: cellnet created a BGP peer on a speaker (told in the `SessionEstablished` Event
    /// instead when the new link's sessions come up within 15 s).
    PeerCreated => stalls: false,
    /// Event: cellnet changed a peer in place (the fields are named, never a secret).
    PeerUpdated => stalls: false,
    /// Event: cellnet removed one of its peers from a speaker.
    PeerRemoved => stalls: false,
    /// Event (Warning): a peer was missing or changed behind cellnet's back and was put back.
    DriftRepaired => stalls: false,
    /// Event (Warning): an Established session went down.
    SessionDown => stalls: false,
    /// Event (Warning): cellnet reset one of its own peers whose session was stuck (at most once
    /// per stuck threshold, the wait doubling per reset of the same outage).
    SessionReset => stalls: false,
    /// Event: cellnet changed what a speaker announces or accepts (paths, filters).
    RoutesUpdated => stalls: false,
    /// Event (Warning): a peer at the address of cellnet's peer is someone else's; not removed.
    PeerNotOwned => stalls: false,
    /// Event (Warning) and the endpoint's `InsecureTransport` condition: cellnet sends
    /// credentials over plain `http://` (OpenDaylight basic auth, a Keystone password or token) or
    /// skips verifying the API's TLS certificate. Anyone on the path can read or replace them;
    /// `--require-tls` refuses such endpoints (`TlsRequired`).
    InsecureTransport => stalls: false,
    /// Event: deletion with `cellnet.io/deletion-policy: Orphan`; peers left on the speakers.
    Orphaned => stalls: false,
    /// Event (Warning) and status: deletion waits because a speaker cannot be reached.
    CleanupBlocked => stalls: false,

    // ---- Reconcile errors (the `reason` label of `controller_runtime_reconcile_errors_total`)
    /// A Kubernetes API call failed; the reconcile is retried with backoff.
    KubeApiError => stalls: false,
    /// Adding or removing a finalizer failed; retried with backoff.
    FinalizerError => stalls: false,
    /// The object lacks a field every object has (for example a namespace).
    InvalidObject => stalls: true,

    // ---- Shown by the plugin only
    /// Plugin: the object has no status yet (the controller has not reconciled it).
    NoStatus => stalls: false,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Reason {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown reason {s:?}"))
    }
}

impl PartialEq<str> for Reason {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Reason {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl Reason {
    /// The SDN API cannot be used at all: unreachable, or refusing cellnet's credentials or TLS.
    pub fn is_unreachable(self) -> bool {
        matches!(
            self,
            Self::SdnUnreachable | Self::SdnAuthFailed | Self::SdnTlsFailed
        )
    }
}

/// The reasons as the Markdown table of `docs/reasons.md` (generated, and checked by a test).
pub fn markdown_table() -> String {
    let mut out = String::from("| reason | stalls | meaning |\n|---|---|---|\n");
    for r in Reason::ALL {
        let stalls = if r.stalls() { "yes" } else { "no" };
        // One line per row; a `|` would end the cell early.
        let doc = r.doc().lines().map(str::trim).collect::<Vec<_>>().join(" ");
        let doc = doc.replace('|', "\\|");
        out.push_str(&format!("| `{r}` | {stalls} | {doc} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_round_trips_and_is_documented() {
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>().unwrap(), *r);
            assert!(!r.doc().is_empty(), "{r} has no documentation");
        }
        assert!("NoSuchReason".parse::<Reason>().is_err());
    }

    #[test]
    fn only_changes_clear_stalling_reasons() {
        assert!(Reason::PeerConflict.stalls());
        assert!(Reason::SdnAuthFailed.stalls());
        assert!(!Reason::SdnUnreachable.stalls());
        assert!(!Reason::SessionNotEstablished.stalls());
    }

    const BEGIN: &str = "<!-- reasons:begin -->\n";
    const END: &str = "<!-- reasons:end -->";

    /// The text of `doc` between the marker lines, and where it starts and ends.
    fn between_markers(doc: &str) -> Option<(usize, usize)> {
        let start = doc.find(BEGIN)? + BEGIN.len();
        let end = start + doc[start..].find(END)?;
        Some((start, end))
    }

    /// The table in `doc` replaced by `table` (unchanged when the markers are missing).
    fn with_table(doc: &str, table: &str) -> String {
        match between_markers(doc) {
            Some((start, end)) => format!("{}{table}{}", &doc[..start], &doc[end..]),
            None => doc.to_string(),
        }
    }

    /// docs/reasons.md carries exactly `markdown_table()` between its markers. With
    /// `CELLNET_WRITE_DOCS=1` (`make reasons`) the table is written there first.
    #[test]
    fn docs_reasons_md_is_the_generated_table() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/reasons.md");
        let read = || std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let table = markdown_table();
        if std::env::var_os("CELLNET_WRITE_DOCS").is_some() {
            std::fs::write(&path, with_table(&read(), &table))
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        let doc = read();
        let (start, end) = between_markers(&doc)
            .unwrap_or_else(|| panic!("{} lacks the lines {BEGIN:?} and {END:?}", path.display()));
        assert!(
            doc[start..end] == table,
            "docs/reasons.md is stale: the table between its markers must be markdown_table(). \
             Regenerate it with `make reasons` (CELLNET_WRITE_DOCS=1 cargo test --locked --lib \
             api::reason). Expected:\n{table}"
        );
    }

    #[test]
    fn markers_enclose_the_table_and_nothing_else() {
        let doc = format!("intro\n{BEGIN}| a |\n{END}\nafter\n");
        let (start, end) = between_markers(&doc).unwrap();
        assert_eq!(&doc[start..end], "| a |\n");
        assert_eq!(between_markers("no markers"), None);
        assert_eq!(
            with_table(&doc, "| b |\n"),
            format!("intro\n{BEGIN}| b |\n{END}\nafter\n")
        );
    }

    #[test]
    fn table_has_a_row_per_reason() {
        let table = markdown_table();
        assert_eq!(table.lines().count(), Reason::ALL.len() + 2);
        assert!(table.contains("| `PeerConflict` | yes |"));
    }
}
