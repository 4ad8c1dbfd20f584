//! `cellnet-controller`: parses arguments, sets up logging, runs.
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use cellnet::http::Readiness;
use cellnet::leader::{LeaderConfig, LeaderElector, LeaseLost};
use cellnet::telemetry::{self, LogFormat};
use clap::{Parser, Subcommand};
use futures::FutureExt as _;
use tracing::{info, warn};

/// Reconciles InfraEndpoints and CellInterconnects against the cells' SDN controllers.
#[derive(Parser, Debug)]
#[command(name = "cellnet-controller", version = cellnet::build_info::LONG_VERSION, about)]
struct Args {
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "CELLNET_LOG_FORMAT", global = true)]
    log_format: LogFormat,

    #[command(flatten)]
    run: RunArgs,

    #[command(subcommand)]
    command: Option<Command>,
}

/// Settings of `run` (also accepted without the subcommand).
#[derive(clap::Args, Debug)]
struct RunArgs {
    /// How often each speaker's peers are polled to find drift (e.g. `10s`, `1m`).
    #[arg(long, default_value = "10s", value_parser = parse_duration, global = true, env = "CELLNET_SDN_RESYNC_INTERVAL")]
    sdn_resync_interval: Duration,

    /// Timeout of every call to an SDN controller's API.
    #[arg(long, default_value = "5s", value_parser = parse_duration, global = true, env = "CELLNET_SDN_TIMEOUT")]
    sdn_timeout: Duration,

    /// The least time a managed BGP session may stay down (configured, not Established) before
    /// cellnet calls it stuck (reason `SessionStuck`) and resets its own peer; the threshold is
    /// 3 × `spec.bgp.holdTime` when that is longer. Shorten it only for tests and labs.
    #[arg(long, default_value = "30s", value_parser = parse_duration, global = true, env = "CELLNET_SESSION_STUCK_MINIMUM")]
    session_stuck_minimum: Duration,

    /// First wait after an SDN API refused cellnet's credentials (401/403); it doubles with each
    /// refusal in a row, up to 8 times this. Meanwhile no call with those credentials goes out
    /// (an account lockout on OpenDaylight's AAA needs only a few failed logins); a changed
    /// Secret is tried at once.
    #[arg(long, default_value = "2m", value_parser = parse_duration, global = true, env = "CELLNET_AUTH_FAILURE_BACKOFF")]
    auth_failure_backoff: Duration,

    /// Refuse endpoints whose API calls would send credentials over plain http:// (OpenDaylight
    /// basic auth, a Keystone password) or skip verifying the API's certificate
    /// (`insecureSkipVerify`): they report `TlsRequired` and nothing is sent. Without it they
    /// work and carry the Warning `InsecureTransport`.
    #[arg(long, default_value_t = false, global = true, env = "CELLNET_REQUIRE_TLS")]
    require_tls: bool,

    /// `/healthz` fails when one reconcile has run longer than this (it is stuck and holds a
    /// slot of `--concurrency`) or the runtime stopped running tasks; kubelet then restarts the
    /// pod. Every SDN, Neutron and Kubernetes call has its own timeout well below the default.
    #[arg(long, default_value = "5m", value_parser = parse_duration, global = true, env = "CELLNET_LIVENESS_STALL_AFTER")]
    liveness_stall_after: Duration,

    /// Objects reconciled at once, per kind.
    #[arg(long, default_value_t = 16, global = true)]
    concurrency: u16,

    /// Watch Secrets only in these namespaces (comma-separated; default: all). Lets RBAC grant
    /// Secrets per namespace (Roles) instead of cluster-wide; Secrets that objects in other
    /// namespaces refer to then cannot be read.
    #[arg(long, value_delimiter = ',', global = true, env = "CELLNET_SECRET_NAMESPACES")]
    secret_namespaces: Vec<String>,

    /// Use Secrets without the label `cellnet.io/credentials: "true"`. For single-tenant
    /// clusters only: otherwise whoever may create an InfraEndpoint or a CellInterconnect can have
    /// any Secret of their namespace sent to a URL of their choice.
    #[arg(
        long,
        default_value_t = false,
        global = true,
        env = "CELLNET_ALLOW_UNLABELLED_SECRETS"
    )]
    allow_unlabelled_secrets: bool,

    /// An SDN, Keystone or Neutron API cellnet may call: `<address, CIDR or host name>[:port]`,
    /// e.g. `198.51.100.0/24:50051`, `[2001:db8::/32]:8181`, `*.cells.example` (repeat the flag or
    /// separate with commas). None: any URL an InfraEndpoint names (a warning at start-up).
    #[arg(long, value_delimiter = ',', global = true, env = "CELLNET_ENDPOINT_ALLOW")]
    endpoint_allow: Vec<cellnet::controller::allowlist::AllowRule>,

    /// Where `/metrics` is served (`:8080` = all interfaces; `0` disables it).
    #[arg(long, default_value = ":8080", value_parser = parse_bind, global = true, env = "CELLNET_METRICS_BIND_ADDRESS")]
    metrics_bind_address: BindAddress,

    /// Where `/healthz` and `/readyz` are served (`0` disables them).
    #[arg(long, default_value = ":8081", value_parser = parse_bind, global = true, env = "CELLNET_HEALTH_PROBE_BIND_ADDRESS")]
    health_probe_bind_address: BindAddress,

    /// Run the controllers only while holding a coordination.k8s.io Lease, so that one of several
    /// replicas writes (on in the manifests).
    #[arg(long, default_value_t = false, global = true)]
    leader_elect: bool,

    /// Namespace of the Lease; default: the pod's namespace (POD_NAMESPACE or the service account
    /// namespace file), else `default`.
    #[arg(long, global = true, env = "POD_NAMESPACE")]
    leader_election_namespace: Option<String>,

    /// Name of the Lease.
    #[arg(long, default_value = "cellnet-controller", global = true)]
    leader_election_id: String,

    /// How long a standby waits on an unrenewed Lease before taking it over.
    #[arg(long, default_value = "15s", value_parser = parse_duration, global = true)]
    lease_duration: Duration,

    /// How long the leader keeps running without renewing the Lease before it steps down.
    #[arg(long, default_value = "10s", value_parser = parse_duration, global = true)]
    renew_deadline: Duration,

    /// How often standbys retry the Lease (and the leader retries a failed renewal).
    #[arg(long, default_value = "2s", value_parser = parse_duration, global = true)]
    retry_period: Duration,
}

/// A listen address, or none (`0`: the server is off).
#[derive(Clone, Copy, Debug)]
struct BindAddress(Option<std::net::SocketAddr>);

fn parse_bind(text: &str) -> Result<BindAddress, String> {
    cellnet::http::parse_bind_address(text).map(BindAddress)
}

/// The namespace the pod runs in, from the service account mount.
fn pod_namespace() -> Option<String> {
    std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Parses `500ms`, `10s`, `2m`, `1h` (a bare number means seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 10s, 500ms or 2m"))?;
    let seconds = |per: u64| {
        n.checked_mul(per)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{text:?} is too long a duration"))
    };
    let d = match unit {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => seconds(60)?,
        "h" => seconds(3600)?,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    if d.is_zero() {
        return Err("a duration must be greater than zero".into());
    }
    Ok(d)
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the controller (the default).
    Run,
    /// Print the CustomResourceDefinitions as YAML, or write one file per CRD into --out-dir.
    Crd {
        /// Directory to write `cellnet.io_<plural>.yaml` files into, instead of stdout.
        #[arg(long)]
        out_dir: Option<std::path::PathBuf>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    telemetry::init(args.log_format, "info");
    cellnet::tls::install_crypto_provider();
    let result = match args.command.unwrap_or(Command::Run) {
        Command::Run => run(args.run).await,
        Command::Crd { out_dir: None } => {
            print!("{}", cellnet::api::crds_yaml());
            Ok(())
        }
        Command::Crd { out_dir: Some(dir) } => {
            cellnet::api::write_crds(&dir).with_context(|| format!("cannot write CRDs to {}", dir.display()))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line an operator can act on, never a panic or a backtrace.
            eprintln!("cellnet-controller: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let client = connect().await?;
    check_crds(&client).await?;
    let shutdown = shutdown_signal().shared();
    let metrics = Arc::new(cellnet::metrics::Metrics::default());
    let readiness = Arc::new(Readiness::new(args.leader_elect));
    // The endpoints run on every replica (standbys too), for the whole life of the process.
    let config = controller_config(&args);
    let _servers = start_servers(&args, &metrics, (&readiness, &config.liveness)).await?;
    warn_about_trust(&config);
    if !args.leader_elect {
        cellnet::controller::run_with(client, config, metrics, readiness.clone(), async move {
            shutdown.await;
            readiness.set_shutting_down();
        })
        .await;
        info!("shut down");
        return Ok(());
    }
    let leader_config = leader_config(&args)?;
    let mut elector = LeaderElector::new(client.clone(), leader_config, readiness.clone(), metrics.clone());
    tokio::select! {
        _ = elector.acquire() => {},
        _ = shutdown.clone() => {
            readiness.set_shutting_down();
            info!("shut down while standing by");
            return Ok(());
        }
    }
    lead(client, config, metrics, readiness, shutdown, elector).await
}

/// A client for the cluster, after checking that the API server answers.
async fn connect() -> anyhow::Result<kube::Client> {
    let config = kube::Config::infer()
        .await
        .context("no Kubernetes configuration found (set KUBECONFIG or run in a cluster)")?;
    let cluster = config.cluster_url.clone();
    let client = kube::Client::try_from(config).context("cannot build a Kubernetes client")?;
    let version = tokio::time::timeout(std::time::Duration::from_secs(10), client.apiserver_version())
        .await
        .map_err(|_| anyhow::anyhow!("timed out after 10 s"))
        .and_then(|r| r.map_err(anyhow::Error::from))
        .with_context(|| format!("cannot reach the Kubernetes API server at {cluster}"))?;
    info!(%cluster, server_version = %version.git_version, "connected");
    Ok(client)
}

fn controller_config(args: &RunArgs) -> cellnet::controller::Config {
    cellnet::controller::Config {
        sdn_resync_interval: args.sdn_resync_interval,
        sdn_timeout: args.sdn_timeout,
        auth_failure_backoff: args.auth_failure_backoff,
        concurrency: args.concurrency,
        instance: std::env::var("POD_NAME").ok(),
        secret_namespaces: args
            .secret_namespaces
            .iter()
            .filter(|n| !n.is_empty())
            .cloned()
            .collect(),
        allow_unlabelled_secrets: args.allow_unlabelled_secrets,
        require_tls: args.require_tls,
        liveness: Arc::new(cellnet::liveness::Liveness::new(args.liveness_stall_after)),
        endpoint_allow: cellnet::controller::allowlist::Allowlist::new(args.endpoint_allow.clone()),
        session_stuck_minimum: args.session_stuck_minimum,
        ..Default::default()
    }
}

/// Warns about the settings that trust whoever may create cellnet's objects (docs/security.md).
fn warn_about_trust(config: &cellnet::controller::Config) {
    if config.endpoint_allow.is_empty() {
        warn!(
            "no --endpoint-allow: cellnet calls any SDN, Keystone or Neutron URL an InfraEndpoint names; \
             list the APIs of your cells (docs/security.md)"
        );
    }
    if config.allow_unlabelled_secrets {
        warn!("--allow-unlabelled-secrets: any Secret an object names is used, labelled or not");
    }
}

/// `/metrics` and the probes, each where its flag says (none when the flag is empty).
async fn start_servers(
    args: &RunArgs,
    metrics: &Arc<cellnet::metrics::Metrics>,
    (readiness, liveness): (&Arc<Readiness>, &Arc<cellnet::liveness::Liveness>),
) -> anyhow::Result<tokio::task::JoinSet<()>> {
    let mut servers = tokio::task::JoinSet::new();
    if let BindAddress(Some(addr)) = args.metrics_bind_address {
        let listener = cellnet::http::bind(addr, "--metrics-bind-address").await?;
        let mut registry = prometheus_client::registry::Registry::default();
        metrics.register(&mut registry);
        servers.spawn(cellnet::http::serve_metrics(listener, Arc::new(registry)));
    }
    if let BindAddress(Some(addr)) = args.health_probe_bind_address {
        let listener = cellnet::http::bind(addr, "--health-probe-bind-address").await?;
        servers.spawn(cellnet::http::serve_probes(
            listener,
            readiness.clone(),
            liveness.clone(),
        ));
    }
    Ok(servers)
}

fn leader_config(args: &RunArgs) -> anyhow::Result<LeaderConfig> {
    let leader_config = LeaderConfig {
        namespace: args
            .leader_election_namespace
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(pod_namespace)
            .unwrap_or_else(|| "default".into()),
        name: args.leader_election_id.clone(),
        identity: cellnet::leader::default_identity(),
        lease_duration: args.lease_duration,
        renew_deadline: args.renew_deadline,
        retry_period: args.retry_period,
    };
    leader_config.validate().map_err(anyhow::Error::msg)?;
    info!(
        lease = %format!("{}/{}", leader_config.namespace, leader_config.name),
        identity = %leader_config.identity,
        "leader election on; waiting for the lease"
    );
    Ok(leader_config)
}

/// Leading: runs the controllers until SIGTERM or until the lease is lost, whichever is first.
async fn lead(
    client: kube::Client,
    config: cellnet::controller::Config,
    metrics: Arc<cellnet::metrics::Metrics>,
    readiness: Arc<Readiness>,
    shutdown: futures::future::Shared<impl std::future::Future<Output = ()> + Send + 'static>,
    mut elector: LeaderElector,
) -> anyhow::Result<()> {
    let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<LeaseLost>();
    let stop = {
        let (shutdown, readiness) = (shutdown.clone(), readiness.clone());
        async move {
            tokio::select! {
                _ = shutdown => {},
                _ = async { if let Ok(lost) = lost_rx.await { warn!(error = %lost, "stopping the controllers"); } } => {},
            }
            readiness.set_shutting_down();
        }
    };
    let mut lost = None;
    {
        let controllers = cellnet::controller::run_with(client, config, metrics, readiness.clone(), stop);
        tokio::pin!(controllers);
        tokio::select! {
            _ = &mut controllers => {},
            lease_lost = elector.hold() => {
                lost = Some(lease_lost.to_string());
                let _ = lost_tx.send(lease_lost);
                // Stop taking work and finish in-flight reconciles (bounded by the grace period).
                controllers.await;
            }
        }
    }
    // The controllers have stopped: in-flight SDN calls are done (or the grace period is over).
    match lost {
        None => {
            elector.release().await;
            info!("shut down");
            Ok(())
        }
        // Never lead again from this process: exit non-zero so that the pod restarts as a standby.
        Some(message) => Err(anyhow::anyhow!(message)),
    }
}

/// Fails with a clear message when the CRDs are not installed (the watches would only retry).
async fn check_crds(client: &kube::Client) -> anyhow::Result<()> {
    let resources = client
        .list_api_group_resources("cellnet.io/v1alpha1")
        .await
        .map_err(|_| {
            anyhow::anyhow!("the cellnet.io/v1alpha1 CRDs are not installed (kubectl apply -f crds/)")
        })?;
    for plural in ["infraendpoints", "cellinterconnects"] {
        if !resources.resources.iter().any(|r| r.name == plural) {
            anyhow::bail!("CRD {plural}.cellnet.io is not installed (kubectl apply -f crds/)");
        }
    }
    Ok(())
}

/// Registers the SIGTERM and Ctrl-C handlers now (so a signal that arrives during start-up is
/// not fatal) and returns a future that resolves on the first of them.
fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    let int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = int.recv() => {},
                }
            }
            // Without handlers the default action (exit) applies; never resolve.
            _ => std::future::pending::<()>().await,
        }
        info!("signal received; finishing in-flight work");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("ten").unwrap_err().contains("not a duration"));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
        // An overflow is an error, not a panic (as the plugin's parser was fixed before).
        assert!(
            parse_duration("18446744073709551615h")
                .unwrap_err()
                .contains("too long")
        );
    }
}
