//! `kubectl-cellnet`: the kubectl plugin for cellnet (`kubectl cellnet ...`); see `cellnet::plugin`.
use std::process::ExitCode;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    cellnet::plugin::main_with(std::env::args().collect()).await
}
