//! `k8s-gpu-mcp check`: the readiness checklist (`crate::readiness`) for the cluster of the flags, as text
//! or JSON on stdout; exit 1 when a check failed.

use std::process::ExitCode;

use crate::cli::{CheckArgs, OutputFormat};
use crate::config::Config;
use crate::readiness::{self, CheckOptions, render_text};

/// `k8s-gpu-mcp check`: the checklist (text or JSON) on stdout; exit 1 when a check failed.
pub async fn command(cfg: &Config, a: &CheckArgs) -> ExitCode {
    let opts = CheckOptions {
        k8s: cfg.k8s_config(),
        mode: cfg.mode,
        selector: a.selector.clone(),
    };
    let report = match &a.http_config {
        Some(path) => {
            let checks = crate::http::check::run(path, &opts.k8s).await;
            readiness::CheckReport {
                ok: !checks.iter().any(|c| c.status == readiness::Status::Fail),
                context: opts.k8s.context.clone(),
                namespace: opts.k8s.namespace.clone(),
                mode: "http server".into(),
                user: None,
                checks,
            }
        }
        None => readiness::run(&opts).await,
    };
    match a.output {
        OutputFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ),
        OutputFormat::Text => print!("{}", render_text(&report)),
    }
    if report.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
