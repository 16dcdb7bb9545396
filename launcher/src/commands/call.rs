//! `k8s-gpu-mcp call`: one tool call for people and scripts. It runs the real MCP server in-process and
//! talks to it with the MCP client over an in-memory pipe, so it takes exactly the code path an AI host
//! does (argument checks, progress, rendering).

use std::process::ExitCode;

use rmcp::model::{
    CallToolRequestParams, JsonObject, NumberOrString, ProgressNotificationParam, ProgressToken,
    RequestMetaObject,
};
use rmcp::service::NotificationContext;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;

use crate::cli::{CallArgs, OutputFormat};
use crate::mcp::server::Launcher;

/// Prints progress notifications on stderr.
struct StderrProgress;

impl ClientHandler for StderrProgress {
    async fn on_progress(&self, p: ProgressNotificationParam, _c: NotificationContext<RoleClient>) {
        let total = p.total.map(|t| format!("/{t}")).unwrap_or_default();
        eprintln!(
            "[{}{total}] {}",
            p.progress,
            p.message.as_deref().unwrap_or("")
        );
    }
}

/// Build the argument object from `--json` and `--arg key=value` (values parsed as JSON when they are).
pub fn build_arguments(a: &CallArgs) -> Result<JsonObject, String> {
    let mut obj = match &a.json {
        None => JsonObject::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                return Err(
                    "--json must be a JSON object, e.g. '{\"node_name\":\"local\"}'".into(),
                );
            }
            Err(e) => return Err(format!("--json is not valid JSON: {e}")),
        },
    };
    for kv in &a.args {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(format!(
                "--arg `{kv}` must be key=value, e.g. --arg node_name=gpu-node-5"
            ));
        };
        if k.is_empty() {
            return Err(format!("--arg `{kv}` has an empty key"));
        }
        let value = match serde_json::from_str::<Value>(v) {
            Ok(x @ (Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Object(_))) => x,
            _ => Value::String(v.to_string()),
        };
        obj.insert(k.to_string(), value);
    }
    Ok(obj)
}

/// `k8s-gpu-mcp call`: progress lines are for a person watching; scripts reading stderr get none.
pub async fn command(launcher: Launcher, a: CallArgs) -> ExitCode {
    let show_progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    run(launcher, a, show_progress).await
}

pub async fn run(launcher: Launcher, a: CallArgs, verbose_progress: bool) -> ExitCode {
    let arguments = match build_arguments(&a) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("k8s-gpu-mcp call: {e}");
            return ExitCode::from(2);
        }
    };
    let names = launcher.tool_names();
    if a.tool == "list" {
        if a.output == OutputFormat::Json {
            // What `tools/list` answers: names, schemas, annotations (tests derive their tool lists from it).
            match serde_json::to_string_pretty(&launcher.tools()) {
                Ok(s) => println!("{s}"),
                Err(e) => {
                    eprintln!("k8s-gpu-mcp call list: {e}");
                    return ExitCode::from(1);
                }
            }
        } else {
            for n in &names {
                println!("{n}");
            }
        }
        return ExitCode::SUCCESS;
    }
    if !names.iter().any(|n| n == &a.tool) {
        eprintln!(
            "k8s-gpu-mcp call: unknown tool `{}`; tools: {}",
            a.tool,
            names.join(", ")
        );
        return ExitCode::from(2);
    }
    let runner = launcher.runner().clone();
    let (server_io, client_io) = tokio::io::duplex(1 << 20);
    let server = tokio::spawn(async move {
        match launcher.serve(server_io).await {
            Ok(s) => {
                let _ = s.waiting().await;
            }
            Err(e) => tracing::error!(error = %e, "in-process server failed to start"),
        }
    });
    let client = match StderrProgress.serve(client_io).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("k8s-gpu-mcp call: cannot start the in-process client: {e}");
            return ExitCode::from(1);
        }
    };
    let mut params = CallToolRequestParams::new(a.tool.clone()).with_arguments(arguments);
    if verbose_progress {
        params.meta = Some(RequestMetaObject::with_progress_token(ProgressToken(
            NumberOrString::String("call".into()),
        )));
    }
    let res = client.call_tool(params).await;
    let _ = client.cancel().await;
    let _ = server.await;
    runner.shutdown().await;
    let res = match res {
        Ok(r) => r,
        Err(e) => {
            eprintln!("k8s-gpu-mcp call: {e}");
            return ExitCode::from(2);
        }
    };
    let text: Vec<String> = res
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    if res.is_error == Some(true) {
        eprintln!("{}", text.join("\n"));
        // Scripts that asked for JSON get a JSON document on stdout for errors too, never an empty stdout.
        if a.output == OutputFormat::Json {
            let mut doc = serde_json::json!({
                "tool": a.tool,
                "is_error": true,
                "error": text.join("\n"),
            });
            if let Some(sc) = res.structured_content {
                doc["structured_content"] = sc;
            }
            println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        }
        return ExitCode::from(1);
    }
    match a.output {
        OutputFormat::Text => {
            let t = text.join("\n");
            print!("{t}");
            if !t.ends_with('\n') {
                println!();
            }
        }
        OutputFormat::Json => {
            let v = res.structured_content.unwrap_or(Value::Null);
            println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        }
    }
    ExitCode::SUCCESS
}
