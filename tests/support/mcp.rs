//! The MCP test harness: `k8s-gpu-mcp serve` as a child process behind the rmcp client, and what tests read
//! from its answers. The one copy the launcher's suites (through tests/launcher/common/) and the end-to-end
//! and real-node suites (through tests/e2e/mcp.rs) include with `#[path]`.
#![allow(dead_code)] // each test binary uses some of these

use std::path::Path;
use std::process::Stdio;

use rmcp::model::{CallToolRequestParams, CallToolResult, Tool};
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::process::{ChildStderr, Command};

/// `k8s-gpu-mcp serve --local --simulate <scenario> --probe-bin <probe>`, logging warnings only; add the
/// evidence directory and any other flags with `.arg`.
pub fn local_serve(launcher: &str, scenario: &str, probe: &Path) -> Command {
    Command::new(launcher).configure(|c| {
        c.args(["serve", "--local", "--simulate", scenario, "--probe-bin"])
            .arg(probe)
            .env("RUST_LOG", "warn");
    })
}

/// A launcher the client is connected to.
pub struct Connected<H: ClientHandler> {
    pub client: RunningService<RoleClient, H>,
    /// The launcher's process id.
    pub pid: u32,
    /// Its stderr, when `stderr` was `Stdio::piped()`.
    pub stderr: Option<ChildStderr>,
}

/// Start `cmd` (a `k8s-gpu-mcp serve`) with its stderr sent to `stderr`, and complete the MCP handshake as
/// `handler` (`()` for a plain client). Panics when the launcher cannot start; a failed handshake is the
/// caller's to report (with the launcher's log, say).
pub async fn connect<H: ClientHandler>(
    handler: H,
    cmd: Command,
    stderr: Stdio,
) -> Result<Connected<H>, rmcp::service::ClientInitializeError> {
    let (transport, stderr) = TokioChildProcess::builder(cmd)
        .stderr(stderr)
        .spawn()
        .expect("spawn k8s-gpu-mcp serve");
    let pid = transport.id().expect("the launcher's pid");
    let client = handler.serve(transport).await?;
    Ok(Connected {
        client,
        pid,
        stderr,
    })
}

/// A plain client connected to `cmd`, the launcher's stderr passed through.
pub async fn plain_client(cmd: Command) -> RunningService<RoleClient, ()> {
    connect((), cmd, Stdio::inherit())
        .await
        .expect("initialize handshake")
        .client
}

/// The names `tools/list` answers, in its order.
pub async fn tool_names(client: &RunningService<RoleClient, impl ClientHandler>) -> Vec<String> {
    client
        .list_all_tools()
        .await
        .expect("tools/list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect()
}

/// A `tools/call` request; `args` must be a JSON object.
pub fn request(tool: &str, args: Value) -> CallToolRequestParams {
    let Value::Object(args) = args else {
        panic!("{tool}: arguments must be a JSON object, not {args}")
    };
    CallToolRequestParams::new(tool.to_string()).with_arguments(args)
}

/// Call `tool`: its result (a tool error included); a JSON-RPC error fails the test.
pub async fn call(
    client: &RunningService<RoleClient, impl ClientHandler>,
    tool: &str,
    args: Value,
) -> CallToolResult {
    client
        .call_tool(request(tool, args))
        .await
        .unwrap_or_else(|e| panic!("{tool}: JSON-RPC error {e}"))
}

/// Every text block of a result, joined.
pub fn text_of(r: &CallToolResult) -> String {
    r.content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The structuredContent of a result that must not be an error.
pub fn structured(r: &CallToolResult) -> Value {
    assert_ne!(r.is_error, Some(true), "{}", text_of(r));
    r.structured_content.clone().expect("structuredContent")
}

/// `value` (a result's structuredContent) is valid against `tool`'s declared outputSchema, as a host's SDK
/// checks it.
pub fn assert_schema_valid(tool: &Tool, value: &Value) {
    let schema = Value::Object(
        tool.output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{} has no outputSchema", tool.name))
            .as_ref()
            .clone(),
    );
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| {
        panic!(
            "{}: outputSchema is not a valid JSON Schema: {e}",
            tool.name
        )
    });
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{}: structuredContent violates outputSchema: {errors:#?}\n{value:#}",
        tool.name
    );
}

/// A successful result's structuredContent checked against its tool's outputSchema (from `tools`, the
/// server's own tools/list); an error result (isError) carries none to check. Returns whether it checked.
pub fn check_output_schema(tools: &[Tool], name: &str, r: &CallToolResult) -> bool {
    if r.is_error == Some(true) {
        return false;
    }
    let tool = tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("{name} is not in tools/list"));
    let sc = r
        .structured_content
        .as_ref()
        .unwrap_or_else(|| panic!("{name}: a successful result without structuredContent"));
    assert_schema_valid(tool, sc);
    true
}
