//! Short verbs for people at a terminal: `watch TARGET` and `diagnose TARGET` (also as `kubectl gpu-mcp watch`
//! through krew's link). Each is one tool call through `call`'s in-process MCP path, so it answers exactly what an
//! AI host reads; here the window's progress is a bar redrawn in place, the verdict and severities are in
//! colour where the terminal has it (and `NO_COLOR` is unset), and `watch --chart` keeps the picture.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::{Map, Value};

use crate::cli::{CallArgs, DiagnoseArgs, OutputFormat, WatchArgs};
use crate::mcp::server::Launcher;

pub const KINDS: [&str; 6] = ["pod", "job", "jobset", "pytorchjob", "mpijob", "rayjob"];

/// `TARGET` as a tool's arguments: a node, or `KIND/NAME` of a workload in `namespace`.
fn target_args(target: &str, namespace: Option<&str>) -> Result<Map<String, Value>, String> {
    match target.split_once('/') {
        Some((kind, name)) => {
            let kind = kind.to_ascii_lowercase();
            if !KINDS.contains(&kind.as_str()) || name.is_empty() {
                return Err(format!(
                    "`{target}`: a workload is KIND/NAME with KIND one of {}",
                    KINDS.join(", ")
                ));
            }
            let ns =
                namespace.ok_or_else(|| format!("`{target}` needs its namespace: -n NAMESPACE"))?;
            Ok(Map::from_iter([
                ("namespace".to_string(), Value::from(ns)),
                (kind, Value::from(name)),
            ]))
        }
        None => {
            if namespace.is_some() {
                return Err(format!(
                    "`{target}` is a node; -n names a workload's namespace (give KIND/NAME)"
                ));
            }
            Ok(Map::from_iter([(
                "node_name".to_string(),
                Value::from(target),
            )]))
        }
    }
}

pub fn watch_call(a: &WatchArgs) -> Result<CallArgs, String> {
    let mut args = target_args(&a.target, a.workload_namespace.as_deref())?;
    args.insert("seconds".into(), Value::from(a.seconds));
    args.insert("interval_ms".into(), Value::from(a.interval_ms));
    if !a.gpus.is_empty() {
        args.insert("gpus".into(), Value::from(a.gpus.clone()));
    }
    Ok(CallArgs {
        tool: "watch_gpus".into(),
        args: Vec::new(),
        json: Some(Value::Object(args).to_string()),
        output: a.output,
        progress: false,
    })
}

pub fn diagnose_call(a: &DiagnoseArgs) -> Result<CallArgs, String> {
    let args = target_args(&a.target, a.workload_namespace.as_deref())?;
    let tool = if a.target.contains('/') {
        "diagnose_workload"
    } else {
        "get_gpu_health"
    };
    Ok(CallArgs {
        tool: tool.into(),
        args: Vec::new(),
        json: Some(Value::Object(args).to_string()),
        output: a.output,
        progress: false,
    })
}

/// Run the call, with a progress bar on a terminal and colour on stdout's; `chart` keeps the image.
pub async fn run(launcher: Launcher, call: CallArgs, chart: Option<PathBuf>) -> ExitCode {
    let bar = std::io::stderr().is_terminal();
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let present = super::call::Present {
        bar,
        colour: colour && call.output == OutputFormat::Text,
        chart,
    };
    super::call::run_presented(launcher, call, bar, present).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_nodes_or_kind_slash_name_in_a_namespace() {
        assert_eq!(
            Value::Object(target_args("123", None).unwrap()),
            serde_json::json!({"node_name": "123"})
        );
        assert_eq!(
            Value::Object(target_args("job/train", Some("ml")).unwrap()),
            serde_json::json!({"namespace": "ml", "job": "train"})
        );
        assert!(
            target_args("job/train", None)
                .unwrap_err()
                .contains("-n NAMESPACE")
        );
        assert!(
            target_args("deployment/x", Some("ml"))
                .unwrap_err()
                .contains("KIND one of")
        );
        assert!(
            target_args("gpu-node-5", Some("ml"))
                .unwrap_err()
                .contains("is a node")
        );
    }
}
