//! `k8s-gpu-mcp`: the MCP server (stdio) that answers GPU node questions by running node-probe on the node,
//! in a short-lived probe pod or (local mode) as a child process. stdout carries only MCP (or, for `call`,
//! the one result); logs go to stderr.
//!
//! This file only wires: the CLI (`cli`, converted into the settings of `config`), logging, and the dispatch
//! to the MCP server (`mcp`) or another subcommand (`commands`). Below them: the readiness checks
//! (`readiness`), how node-probe runs (`probe`) and the API server's reads and writes (`cluster`).

mod cli;
mod cluster;
mod commands;
mod config;
mod http;
mod mcp;
mod probe;
mod readiness;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Cmd, LogFormat};
use crate::config::Config;
use crate::mcp::server::Launcher;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.global.log_format);
    match &cli.command {
        Cmd::Version => return commands::info::version(),
        Cmd::Completions { shell } => return commands::info::completions(*shell),
        Cmd::Man => return commands::info::man_page(),
        _ => {}
    }
    let cfg = match cli.global.config() {
        Ok(cfg) => cfg,
        Err(e) => return fail(&e),
    };
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
    let code = rt.block_on(dispatch(cli.command, cfg));
    // Every cleanup (probe pod deletes) was awaited inside. What may still run is the stdin reader of
    // `serve`, a blocking read that ends only when the host closes stdin: after a signal, waiting for it
    // would keep the process alive.
    rt.shutdown_background();
    code
}

async fn dispatch(command: Cmd, cfg: Config) -> ExitCode {
    match command {
        Cmd::Gc(a) => commands::gc::command(&cfg, a.all).await,
        Cmd::Check(a) => commands::check::command(&cfg, &a).await,
        Cmd::Setup(a) => commands::setup::command(&cfg, &a).await,
        Cmd::Serve(a) => match (a.http, a.http_config) {
            (Some(addr), Some(path)) => {
                let http = match http::config::HttpConfig::read(&path) {
                    Ok(h) => h,
                    Err(e) => return fail(&e),
                };
                if cfg.local || cfg.simulate.is_some() {
                    return fail(
                        "serve --http acts for each person in a cluster: not with --local or --simulate",
                    );
                }
                let replicas = match http::replicas_for(&http, &cfg).await {
                    Ok(r) => r,
                    Err(e) => return fail(&e),
                };
                match Launcher::connect(cfg).await {
                    Ok(launcher) => {
                        let launcher = launcher
                            .for_people(
                                http.limits.tasks_per_person,
                                http.limits.tasks_in_all,
                                replicas.as_ref().map(|r| r.me().to_string()),
                            )
                            .limit_calls(http.limits.calls_per_person);
                        http::serve(launcher, addr, http, replicas).await
                    }
                    Err(e) => fail(&e),
                }
            }
            _ => match Launcher::connect(cfg).await {
                Ok(launcher) => mcp::server::serve_stdio(launcher).await,
                Err(e) => fail(&e),
            },
        },
        Cmd::Watch(a) => match (
            commands::people::watch_call(&a),
            Launcher::connect(cfg).await,
        ) {
            (Err(e), _) => {
                eprintln!("k8s-gpu-mcp watch: {e}");
                ExitCode::from(2)
            }
            (Ok(call), Ok(launcher)) => {
                commands::people::run(launcher, call, a.chart.clone()).await
            }
            (_, Err(e)) => fail(&e),
        },
        Cmd::Top(a) => match Launcher::connect(cfg).await {
            Ok(launcher) => commands::top::run(launcher, a).await,
            Err(e) => fail(&e),
        },
        Cmd::Diagnose(a) => match (
            commands::people::diagnose_call(&a),
            Launcher::connect(cfg).await,
        ) {
            (Err(e), _) => {
                eprintln!("k8s-gpu-mcp diagnose: {e}");
                ExitCode::from(2)
            }
            (Ok(call), Ok(launcher)) => commands::people::run(launcher, call, None).await,
            (_, Err(e)) => fail(&e),
        },
        Cmd::Call(a) => match Launcher::connect(cfg).await {
            Ok(launcher) => commands::call::command(launcher, a).await,
            Err(e) => fail(&e),
        },
        // Answered before the runtime started.
        Cmd::Version | Cmd::Completions { .. } | Cmd::Man => ExitCode::SUCCESS,
    }
}

/// The launcher cannot start (bad flags, no cluster): said on stderr, exit 2.
fn fail(e: &str) -> ExitCode {
    eprintln!("k8s-gpu-mcp: {e}");
    ExitCode::from(2)
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

// Unit tests of the Kubernetes runners, backend and pod builder live beside the other test areas
// (tests/k8s/); they need crate internals, so they are compiled as a module of the binary rather than as an
// integration test.
#[cfg(test)]
#[path = "../../tests/k8s/mod.rs"]
mod k8s_tests;
