//! `k8s-gpu-mcp`: the MCP server (stdio) that answers GPU node questions by running node-probe on the node,
//! in a short-lived probe pod or (local mode) as a child process. stdout carries only MCP (or, for `call`,
//! the one result); logs go to stderr.

mod call;
mod check;
mod cli;
#[allow(dead_code)]
mod cluster;
#[allow(dead_code)]
mod k8s;
mod local;
mod progress;
mod prompts;
mod resources;
#[allow(dead_code)]
mod runner;
mod server;
mod setup;
mod tool;
mod tools;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use rmcp::ServiceExt;

use crate::cli::{Cli, Cmd, Config, LogFormat};
use crate::local::{LocalRunner, find_probe_bin};
use crate::server::{Backends, Launcher};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.log_format);
    match &cli.command {
        Cmd::Version => {
            println!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Cmd::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(*shell, &mut cmd, "k8s-gpu-mcp", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Cmd::Man => return man_page(),
        _ => {}
    }
    let mut cfg = Config::from(&cli.global);
    // What may run as root on a node is settled before anything connects.
    match k8s::trust::TrustPolicy::with(
        &cfg.cluster.trust_image,
        cfg.cluster.trust_images_file.as_deref(),
    ) {
        Ok(p) => cfg.trust = Arc::new(p),
        Err(e) => {
            eprintln!("k8s-gpu-mcp: {e}");
            return ExitCode::from(2);
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("k8s-gpu-mcp: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        match &cli.command {
            Cmd::Gc(a) => return gc(&cfg, a.all).await,
            Cmd::Check(a) => return check(&cfg, a).await,
            Cmd::Setup(a) => return setup(&cfg, a).await,
            _ => {}
        }
        let backends = match backends(&cfg).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("k8s-gpu-mcp: {e}");
                return ExitCode::from(2);
            }
        };
        let launcher = Launcher::new(cfg, backends);
        match cli.command {
            Cmd::Serve => serve(launcher).await,
            Cmd::Call(a) => {
                // Progress lines are for a person watching; scripts reading stderr get none.
                let show_progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
                call::run(launcher, a, show_progress).await
            }
            _ => ExitCode::SUCCESS,
        }
    })
}

async fn serve(launcher: Launcher) -> ExitCode {
    let runner = launcher.runner().clone();
    let service = match launcher.serve(rmcp::transport::stdio()).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "MCP session did not start");
            runner.shutdown().await;
            return ExitCode::from(1);
        }
    };
    let reason = service.waiting().await;
    tracing::info!(?reason, "MCP session ended; cleaning up");
    // Cleanups that outlived their calls (e.g. a probe pod delete after cancellation) finish before exit.
    runner.shutdown().await;
    ExitCode::SUCCESS
}

/// Local mode gets a child-process runner and no cluster; otherwise the Kubernetes runner and backend.
async fn backends(cfg: &Config) -> Result<Backends, String> {
    if cfg.local || cfg.simulate.is_some() {
        let bin = find_probe_bin(cfg.probe_bin.as_deref())?;
        return Ok(Backends {
            runner: Arc::new(LocalRunner::new(bin, cfg.simulate.clone())),
            cluster: None,
        });
    }
    cluster_backends(cfg).await
}

/// The Kubernetes runner and cluster backend (`crate::k8s`).
async fn cluster_backends(cfg: &Config) -> Result<Backends, String> {
    let (runner, cluster) = k8s::connect(&cfg.k8s_config())
        .await
        .map_err(|e| e.to_string())?;
    Ok(Backends {
        runner,
        cluster: Some(cluster),
    })
}

/// `k8s-gpu-mcp gc`: the sweep on demand; the report (JSON) on stdout.
async fn gc(cfg: &Config, all: bool) -> ExitCode {
    match k8s::gc(&cfg.k8s_config(), all).await {
        Ok(report) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report).unwrap_or_default()
            );
            if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("k8s-gpu-mcp gc: {e}");
            ExitCode::from(2)
        }
    }
}

/// `k8s-gpu-mcp check`: the checklist (text or JSON) on stdout; exit 1 when a check failed.
async fn check(cfg: &Config, a: &cli::CheckArgs) -> ExitCode {
    let opts = check::CheckOptions {
        k8s: cfg.k8s_config(),
        mode: cfg.mode,
        selector: a.selector.clone(),
    };
    let report = check::run(&opts).await;
    match a.output {
        cli::OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        cli::OutputFormat::Text => print!("{}", check::render_text(&report)),
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// `k8s-gpu-mcp setup`.
async fn setup(cfg: &Config, a: &cli::SetupArgs) -> ExitCode {
    match setup::run(cfg, a).await {
        Ok(text) => {
            print!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("k8s-gpu-mcp setup: {e}");
            ExitCode::from(2)
        }
    }
}

/// `k8s-gpu-mcp man`: the man page generated from the clap definition.
fn man_page() -> ExitCode {
    let man = clap_mangen::Man::new(<Cli as clap::CommandFactory>::command());
    match man.render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("k8s-gpu-mcp man: {e}");
            ExitCode::from(1)
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,k8s_gpu_mcp=info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}
