//! `kubectl-cellnet`: the operators' CLI for cellnet, a kubectl plugin (`kubectl cellnet ...`).
//!
//! It reads and writes only through the Kubernetes API, with the user's kubeconfig and RBAC; the
//! one exception is `diagnose --probe`, which opens a TCP connection to each endpoint's BGP port.
//!
//! Exit status: 0 success (for `diagnose`: healthy), 1 error (object not found, no permission,
//! CRDs not installed, API unreachable), 2 usage error, 3 unhealthy (`diagnose` found a failed or
//! unknown step; `resync` timed out before the controller handled the request).
mod actions;
mod cells;
mod diagnose;
mod document;
mod output;
mod routes;
mod segments;
mod selection;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};

pub use actions::MAX_ADMIN_MESSAGE;
pub use document::API_VERSION as DOCUMENT_API_VERSION;
pub use output::Style;
pub use selection::Selection;

/// Exit status: success, or `diagnose` found everything healthy.
pub const EXIT_OK: u8 = 0;
/// Exit status: the command could not do its job (not found, forbidden, CRDs missing...).
pub const EXIT_ERROR: u8 = 1;
/// Exit status: bad arguments (clap's own code).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: `diagnose` found something not healthy; `resync` was not handled in time.
pub const EXIT_UNHEALTHY: u8 = 3;

const AFTER_HELP: &str = "\
Exit status: 0 success (diagnose: healthy), 1 error (not found, no permission, CRDs not installed),
2 usage error, 3 unhealthy (diagnose found a failed or unknown step; resync not handled in time).

Examples:
  kubectl cellnet cells -A
  kubectl cellnet status --cell cell2
  kubectl cellnet routes --cell cell2
  kubectl cellnet diagnose cell1-cell2 --probe
  kubectl cellnet resync --cell cell2
  kubectl cellnet disable --cell cell2 --message \"maintenance CHG-1234\"
  kubectl cellnet enable --cell cell2";

/// Inspect and operate the BGP links between OpenStack cells managed by cellnet.
#[derive(Parser, Debug)]
#[command(
    name = "kubectl-cellnet",
    bin_name = "kubectl cellnet",
    version = crate::build_info::LONG_VERSION,
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Connection and scope flags, accepted before or after the command.
#[derive(Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true, value_name = "NS")]
    pub namespace: Option<String>,
    /// All namespaces.
    #[arg(short = 'A', long, global = true, conflicts_with = "namespace")]
    pub all_namespaces: bool,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// One line per cell: endpoints, interconnects ready/total, sessions not Established.
    #[command(after_help = "Examples:\n  kubectl cellnet cells\n  kubectl cellnet cells -A -o json")]
    Cells(cells::CellsArgs),
    /// Interconnects grouped by cell, both sides: session state, since when, flaps, last error.
    #[command(
        after_help = "Examples:\n  kubectl cellnet status\n  kubectl cellnet status --cell cell2 -o wide\n  \
                            kubectl cellnet status -A -o json"
    )]
    Status(status::StatusArgs),
    /// Walk the chain of one interconnect and say where it breaks (exit 0 only when healthy).
    #[command(
        after_help = "Each step is ok, failed or unknown, with its evidence. Exit status 0 only when \
                            every step is ok, 3 otherwise.\n\nExamples:\n  kubectl cellnet diagnose cell1-cell2\n  \
                            kubectl cellnet diagnose cell1-cell2 --probe -n cells"
    )]
    Diagnose(diagnose::DiagnoseArgs),
    /// The networks each interconnect carries: per side advertised, received, accepted,
    /// rejected and missing prefixes, and the networks of its endpoints.
    #[command(
        after_help = "Examples:\n  kubectl cellnet routes\n  kubectl cellnet routes cell1-cell2\n  \
                            kubectl cellnet routes --cell cell2 -o json"
    )]
    Routes(routes::RoutesArgs),
    /// The L2 segments each interconnect stretches: per side the other cell's VTEPs and MACs
    /// per VNI, the EVPN routes rejected, and SegmentsStretched.
    #[command(
        after_help = "Examples:\n  kubectl cellnet segments\n  kubectl cellnet segments cell1-cell2\n  \
                            kubectl cellnet segments --cell cell2 -o json"
    )]
    Segments(segments::SegmentsArgs),
    /// Ask the controller to reconcile now, and wait until it has.
    #[command(
        after_help = "Sets the annotation cellnet.io/reconcile-requested-at and waits until the \
                            controller has handled it.\n\nExamples:\n  kubectl cellnet resync cell1-cell2\n  \
                            kubectl cellnet resync --cell cell2\n  kubectl cellnet resync --all -A --wait=false"
    )]
    Resync(actions::ResyncArgs),
    /// Stop reconciling (spec.suspend=true); the speakers keep what they have.
    #[command(
        after_help = "Examples:\n  kubectl cellnet suspend cell1-cell2\n  kubectl cellnet suspend --cell cell2"
    )]
    Suspend(actions::TargetArgs),
    /// Reconcile again (spec.suspend=false).
    #[command(
        after_help = "Examples:\n  kubectl cellnet resume cell1-cell2\n  kubectl cellnet resume --cell cell2"
    )]
    Resume(actions::TargetArgs),
    /// Shut the BGP sessions down administratively (spec.adminState=Disabled), peers kept.
    #[command(
        after_help = "The message is sent to the peer as the shutdown communication (RFC 8203).\n\n\
                            Examples:\n  kubectl cellnet disable cell1-cell2 --message \"fibre cut, ticket 42\"\n  \
                            kubectl cellnet disable --cell cell2 --message \"cell2 maintenance\" --wait"
    )]
    Disable(actions::DisableArgs),
    /// Bring administratively disabled sessions back (spec.adminState=Enabled).
    #[command(
        after_help = "Examples:\n  kubectl cellnet enable cell1-cell2\n  kubectl cellnet enable --cell cell2"
    )]
    Enable(actions::TargetArgs),
    /// The plugin's version and the git commit it was built from (needs no cluster).
    Version,
    /// Print a shell completion script for `kubectl-cellnet` (needs no cluster).
    #[command(
        after_help = "Examples:\n  kubectl cellnet completion bash > ~/.local/share/bash-completion/completions/kubectl-cellnet\n  \
                            kubectl cellnet completion zsh > \"${fpath[1]}/_kubectl-cellnet\"\n  \
                            kubectl cellnet completion fish > ~/.config/fish/completions/kubectl-cellnet.fish"
    )]
    Completion {
        #[arg(value_enum)]
        shell: CompletionShell,
    },
}

/// The shells `completion` writes scripts for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CompletionShell {
    Bash,
    Zsh,
    Fish,
}

/// The completion script of `shell` for the `kubectl-cellnet` binary.
pub fn completion_script(shell: CompletionShell) -> String {
    use clap::CommandFactory as _;
    let shell = match shell {
        CompletionShell::Bash => clap_complete::Shell::Bash,
        CompletionShell::Zsh => clap_complete::Shell::Zsh,
        CompletionShell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "kubectl-cellnet", &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// What every command gets: a client and the namespace scope.
pub struct Ctx {
    pub client: kube::Client,
    /// `None` with `-A`.
    pub namespace: Option<String>,
    pub style: Style,
}

impl Ctx {
    pub fn scope(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("namespace {ns}"),
            None => "any namespace".into(),
        }
    }
}

async fn connect(global: &GlobalArgs) -> anyhow::Result<(kube::Client, String)> {
    let options = kube::config::KubeConfigOptions {
        context: global.context.clone(),
        ..Default::default()
    };
    let config = if let Some(path) = &global.kubeconfig {
        let kubeconfig = kube::config::Kubeconfig::read_from(path)
            .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
        kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .context("invalid kubeconfig")?
    } else if global.context.is_some() {
        kube::Config::from_kubeconfig(&options)
            .await
            .context("invalid kubeconfig")?
    } else {
        kube::Config::infer()
            .await
            .context("no usable kubeconfig (set KUBECONFIG or --kubeconfig)")?
    };
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).context("cannot build a Kubernetes client")?;
    Ok((client, namespace))
}

/// A clear message for an API error while doing `what`.
pub fn explain(err: kube::Error, what: &str) -> anyhow::Error {
    match &err {
        kube::Error::Api(s) if crds_missing(s) => {
            anyhow::anyhow!(
                "{what}: the cellnet CRDs are not installed in this cluster (cellinterconnects.cellnet.io, \
                 infraendpoints.cellnet.io); install them with `kubectl apply -f crds/`"
            )
        }
        kube::Error::Api(s) if s.code == 404 => anyhow::anyhow!("{what}: not found ({})", s.message),
        kube::Error::Api(s) if s.code == 403 => anyhow::anyhow!(
            "{what}: no permission: {} (ask for RBAC on cellnet.io resources)",
            s.message
        ),
        kube::Error::Api(s) if s.code == 401 => {
            anyhow::anyhow!("{what}: not authenticated: {} (check your kubeconfig)", s.message)
        }
        _ => anyhow::anyhow!("{what}: {err}"),
    }
}

/// A 404 from the API group itself (no CRD), not from a missing object.
pub fn crds_missing(s: &kube::core::Status) -> bool {
    s.code == 404
        && (s.message.contains("could not find the requested resource")
            || s.message.contains("page not found"))
}

/// Parses `500ms`, `10s`, `2m` (a bare number means seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s, 500ms or 2m"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "" | "s" => Some(n),
        // Found by fuzzing (fuzz/regressions/plugin_args): `n * 60` overflowed and panicked.
        "m" => n.checked_mul(60),
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s or m)")),
    };
    seconds
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long a duration"))
}

/// Runs the plugin with `args` (argv, program name first); returns the exit status.
pub async fn main_with(args: Vec<String>) -> ExitCode {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    match run(cli).await {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            let style = Style::for_stderr();
            eprintln!("{} {e:#}", style.red("error:"));
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Version => {
            println!("kubectl-cellnet {}", crate::build_info::LONG_VERSION);
            Ok(EXIT_OK)
        }
        Command::Completion { shell } => {
            print!("{}", completion_script(shell));
            Ok(EXIT_OK)
        }
        command => run_on_cluster(&cli.global, command).await,
    }
}

/// The commands that read or write the cluster.
async fn run_on_cluster(global: &GlobalArgs, command: Command) -> anyhow::Result<u8> {
    let (client, default_ns) = connect(global).await?;
    let namespace = if global.all_namespaces {
        None
    } else {
        Some(global.namespace.clone().unwrap_or(default_ns))
    };
    let ctx = Ctx {
        client,
        namespace,
        style: Style::for_stdout(),
    };
    match command {
        Command::Cells(args) => cells::run(&ctx, &args).await,
        Command::Status(args) => status::run(&ctx, &args).await,
        Command::Diagnose(args) => diagnose::run(&ctx, &args).await,
        Command::Routes(args) => routes::run(&ctx, &args).await,
        Command::Segments(args) => segments::run(&ctx, &args).await,
        Command::Resync(args) => actions::resync(&ctx, &args).await,
        Command::Suspend(args) => actions::set_suspend(&ctx, &args, true).await,
        Command::Resume(args) => actions::set_suspend(&ctx, &args, false).await,
        Command::Disable(args) => actions::set_admin(&ctx, &args.target, Some(args.message.as_deref())).await,
        Command::Enable(args) => actions::set_admin(&ctx, &args, None).await,
        Command::Version | Command::Completion { .. } => Ok(EXIT_OK),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn completion_scripts_know_every_command() {
        for shell in [CompletionShell::Bash, CompletionShell::Zsh, CompletionShell::Fish] {
            let script = completion_script(shell);
            for word in [
                "cells",
                "status",
                "diagnose",
                "routes",
                "resync",
                "completion",
                "output",
            ] {
                assert!(script.contains(word), "{shell:?} lacks {word}");
            }
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("2h").is_err());
        // The overflow fuzzing found: an error, not a panic.
        assert!(parse_duration("999999999999999999m").is_err());
        assert!(parse_duration("18446744073709551615ms").is_ok());
    }

    #[test]
    fn selection_needs_exactly_one_target() {
        assert!(Cli::try_parse_from(["kubectl-cellnet", "suspend"]).is_err());
        assert!(Cli::try_parse_from(["kubectl-cellnet", "suspend", "x", "--cell", "c"]).is_err());
        assert!(Cli::try_parse_from(["kubectl-cellnet", "suspend", "--all"]).is_err());
        assert!(Cli::try_parse_from(["kubectl-cellnet", "resync", "--all"]).is_ok());
        assert!(Cli::try_parse_from(["kubectl-cellnet", "disable", "--cell", "c", "--message", "m"]).is_ok());
        assert!(Cli::try_parse_from(["kubectl-cellnet", "-n", "x", "-A", "cells"]).is_err());
        // The shutdown communication's limit is a usage error (exit 2), found before connecting.
        let message = |n: usize| ["kubectl-cellnet", "disable", "x", "-m", &"a".repeat(n)].map(String::from);
        assert!(Cli::try_parse_from(message(255)).is_ok());
        let err = Cli::try_parse_from(message(256)).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ValueValidation);
        assert!(err.to_string().contains("at most 255 bytes"), "{err}");
    }
}
