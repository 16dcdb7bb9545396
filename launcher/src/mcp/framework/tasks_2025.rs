//! Protocol 2025-11-25's own tasks (SEP-1686), beside the `io.modelcontextprotocol/tasks` extension of
//! 2026-07-28 ([`super::tasks`]) and on the same task store ([`Tasks`]): the same long tools, owners,
//! per-person limits and cancellation; only the revision's wire shapes differ.
//!
//! rmcp 3.9 models only the extension: it drops `params.task` from `tools/call`, has no
//! `capabilities.tasks` nor `execution.taskSupport`, and refuses `tasks/get` and `tasks/cancel` to a client
//! without the extension. So each transport (stdio: [`stdio`]; HTTP: `crate::http`) passes the messages
//! of a 2025-11-25 session through [`inbound`] and [`outbound`]: a task-augmented `tools/call`, `tasks/get`
//! and `tasks/cancel` are renamed to methods of ours, which reach the server's `on_custom_request` with
//! their params whole ([`handle`]; `tasks/result` gets there as it is), and the `initialize` and
//! `tools/list` answers get the capability and the long tools' `execution`.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CustomRequest, CustomResult, ErrorCode,
    ProtocolVersion, Task, TaskPayload,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream};

use super::tasks::Tasks;

/// The revision whose tasks these are.
pub const VERSION: &str = "2025-11-25";

/// Where a task's messages name it (`_meta` of `tasks/result`'s answer).
pub const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

// Our names for the requests rmcp would take as the extension's (or drop `task` from).
const CALL: &str = "k8s-gpu-mcp/2025-11-25/tools/call";
const GET: &str = "k8s-gpu-mcp/2025-11-25/tasks/get";
const CANCEL: &str = "k8s-gpu-mcp/2025-11-25/tasks/cancel";
const RESULT: &str = "tasks/result";

/// How long `tasks/cancel` waits for the task to settle: the revision answers a cancel with the task
/// `cancelled`, which it is once its probes have deleted their pods (seconds).
const CANCEL_WAIT: Duration = Duration::from_secs(30);

/// How often a waiting `tasks/result` or `tasks/cancel` looks at the task.
const WAIT_STEP: Duration = Duration::from_millis(100);

/// The answers [`outbound`] completes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Initialize,
    ToolsList,
}

/// The server's `capabilities.tasks` (2025-11-25): `tools/call` may be a task, and a task may be cancelled.
/// No `list`: a task is found by the id its creation answered.
pub fn capability() -> Value {
    json!({"requests": {"tools": {"call": {}}}, "cancel": {}})
}

/// An incoming JSON-RPC message, `session_2025` when its session agreed on 2025-11-25: renames that
/// revision's task requests to ours; says which answer [`outbound`] must complete, if any.
pub fn inbound(msg: &mut Value, session_2025: bool) -> Option<Answer> {
    let method = msg.get("method")?.as_str()?;
    if method == "initialize" {
        return Some(Answer::Initialize);
    }
    // A request naming its own revision in `_meta` is 2026-07-28's: the extension's, left to rmcp.
    if !session_2025
        || msg
            .pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion")
            .is_some()
    {
        return None;
    }
    let ours = match method {
        "tools/list" => return Some(Answer::ToolsList),
        "tools/call" if msg.pointer("/params/task").is_some_and(Value::is_object) => CALL,
        "tasks/get" => GET,
        "tasks/cancel" => CANCEL,
        _ => return None,
    };
    msg["method"] = Value::from(ours);
    None
}

/// The response to a request [`inbound`] marked: `capabilities.tasks` in `initialize` where 2025-11-25 was
/// agreed, `execution.taskSupport` of each long tool in `tools/list`. Returns the agreed revision of an
/// `initialize` answer.
pub fn outbound(answer: Answer, msg: &mut Value, long_tools: &HashSet<String>) -> Option<String> {
    let result = msg.get_mut("result")?.as_object_mut()?;
    match answer {
        Answer::Initialize => {
            let version = result.get("protocolVersion")?.as_str()?.to_string();
            if version == VERSION
                && let Some(caps) = result
                    .get_mut("capabilities")
                    .and_then(Value::as_object_mut)
            {
                caps.insert("tasks".into(), capability());
            }
            Some(version)
        }
        Answer::ToolsList => {
            for tool in result.get_mut("tools")?.as_array_mut()? {
                if tool
                    .get("name")
                    .and_then(Value::as_str)
                    .is_some_and(|n| long_tools.contains(n))
                {
                    tool["execution"] = json!({"taskSupport": "optional"});
                }
            }
            None
        }
    }
}

/// Whether `on_custom_request` should give `method` to [`handle`].
pub fn handles(method: &str) -> bool {
    matches!(method, CALL | GET | CANCEL | RESULT)
}

/// A task as 2025-11-25 writes it (`ttl`, `pollInterval`; the extension says `ttlMs`, `pollIntervalMs`).
pub fn wire(t: &Task) -> Value {
    let mut v = json!({
        "taskId": t.task_id,
        "status": t.status,
        "createdAt": t.created_at,
        "lastUpdatedAt": t.last_updated_at,
        "ttl": t.ttl_ms,
    });
    if let Some(p) = t.poll_interval_ms {
        v["pollInterval"] = p.into();
    }
    if let Some(m) = &t.status_message {
        v["statusMessage"] = m.clone().into();
    }
    v
}

fn task_id(request: &CustomRequest) -> Result<String, ErrorData> {
    request
        .params
        .as_ref()
        .and_then(|p| p.get("taskId"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| ErrorData::invalid_params("taskId (a string) is required", None))
}

/// The task once it is terminal, or as it is when `deadline` passes or `stop` is cancelled.
async fn settled(
    tasks: &Tasks,
    id: &str,
    deadline: Option<Instant>,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<rmcp::model::DetailedTask, ErrorData> {
    loop {
        let t = tasks.get(id)?;
        if t.status().is_terminal() || deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(t);
        }
        tokio::select! {
            _ = tokio::time::sleep(WAIT_STEP) => {}
            _ = stop.cancelled() => return Ok(t),
        }
    }
}

/// One of [`handles`]' requests. `call` runs the tool call (given its params and request context), as a
/// plain call or as the task's work.
pub async fn handle<F, Fut>(
    tasks: &Tasks,
    request: CustomRequest,
    context: RequestContext<RoleServer>,
    call: F,
) -> Result<CustomResult, ErrorData>
where
    F: FnOnce(CallToolRequestParams, RequestContext<RoleServer>) -> Fut,
    Fut: Future<Output = Result<CallToolResponse, ErrorData>> + Send + 'static,
{
    if context.protocol_version() != Some(ProtocolVersion::V_2025_11_25) {
        return Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            format!(
                "{}: a request of protocol {VERSION}'s tasks, and this session is on another revision",
                request.method
            ),
            None,
        ));
    }
    match request.method.as_str() {
        CALL => {
            let params: CallToolRequestParams =
                serde_json::from_value(request.params.unwrap_or_default())
                    .map_err(|e| ErrorData::invalid_params(format!("tools/call: {e}"), None))?;
            if !tasks.tools().any(|t| *t == params.name) {
                // The revision: a tool whose taskSupport is forbidden (absent) is not called as a task.
                return Err(ErrorData::new(
                    ErrorCode::METHOD_NOT_FOUND,
                    format!(
                        "{} does not run as a task (tools/list gives it no execution.taskSupport); call it \
                         without params.task",
                        params.name
                    ),
                    None,
                ));
            }
            tasks.room(&context)?;
            let created = tasks.spawn(context, move |ctx| call(params, ctx))?;
            Ok(CustomResult(json!({"task": wire(&created.task)})))
        }
        GET | CANCEL | RESULT => {
            let id = task_id(&request)?;
            tasks.owned(&id, &context)?;
            on_task(tasks, &request.method, &id, &context.ct)
                .await
                .map(CustomResult)
        }
        other => Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            other.to_string(),
            None,
        )),
    }
}

/// `tasks/get`, `tasks/cancel` (ours, as [`inbound`] renames them) or `tasks/result` on task `id`, whose
/// owner was checked.
async fn on_task(
    tasks: &Tasks,
    method: &str,
    id: &str,
    stop: &tokio_util::sync::CancellationToken,
) -> Result<Value, ErrorData> {
    match method {
        GET => Ok(wire(&tasks.get(id)?.task)),
        CANCEL => {
            let status = tasks.get(id)?.status();
            if status.is_terminal() {
                return Err(ErrorData::invalid_params(
                    format!("task {id} has ended ({status:?}): it cannot be cancelled"),
                    None,
                ));
            }
            tasks.cancel(id)?;
            let deadline = Some(Instant::now() + CANCEL_WAIT);
            let t = settled(tasks, id, deadline, stop).await?;
            Ok(wire(&t.task))
        }
        RESULT => {
            let t = settled(tasks, id, None, stop).await?;
            match t.payload {
                TaskPayload::Completed { result } => {
                    let mut result = Value::Object(result);
                    result["_meta"][RELATED_TASK] = json!({"taskId": id});
                    Ok(result)
                }
                TaskPayload::Failed { error } => Err(serde_json::from_value(Value::Object(error))
                    .unwrap_or_else(|e| ErrorData::internal_error(e.to_string(), None))),
                TaskPayload::Cancelled => Err(ErrorData::invalid_request(
                    format!("task {id} was cancelled: it has no result"),
                    None,
                )),
                _ => Err(ErrorData::invalid_request(
                    format!("task {id} has not ended (the request was cancelled)"),
                    None,
                )),
            }
        }
        other => Err(ErrorData::new(
            ErrorCode::METHOD_NOT_FOUND,
            other.to_string(),
            None,
        )),
    }
}

/// A 2025-11-25 task request (`tasks/get`, `tasks/result`, `tasks/cancel`) as the HTTP gate reads it from a
/// body: its JSON-RPC id, its method, and the task it names.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRequest {
    pub id: Value,
    pub method: String,
    pub task_id: String,
}

/// The task request `msg` is, if it is one of this revision's (a request naming 2026-07-28 in `_meta` is
/// the extension's, routed by its `Mcp-Name` header instead).
pub fn task_request(msg: &Value) -> Option<TaskRequest> {
    let method = msg.get("method")?.as_str()?;
    if !matches!(method, "tasks/get" | "tasks/result" | "tasks/cancel")
        || msg
            .pointer("/params/_meta/io.modelcontextprotocol~1protocolVersion")
            .is_some()
    {
        return None;
    }
    Some(TaskRequest {
        id: msg.get("id")?.clone(),
        method: method.to_string(),
        task_id: msg.pointer("/params/taskId")?.as_str()?.to_string(),
    })
}

/// The JSON-RPC response to `req` for `caller`, answered outside any MCP session: a task is its person's
/// wherever their request lands (the token was checked; a session is no authentication), so a request for
/// it through another replica's session reaches the task's replica and is answered here. `elsewhere`: the
/// task's replica could not be asked.
pub async fn answer(
    tasks: &Tasks,
    req: &TaskRequest,
    caller: &super::caller::Caller,
    elsewhere: Option<&super::caller::Elsewhere>,
    stop: &tokio_util::sync::CancellationToken,
) -> Value {
    let ours = match req.method.as_str() {
        "tasks/get" => GET,
        "tasks/cancel" => CANCEL,
        _ => RESULT,
    };
    let answered = match elsewhere {
        Some(e) => Err(Tasks::elsewhere(&req.task_id, e)),
        None => match tasks.owned_by(&req.task_id, Some(caller)) {
            Ok(()) => on_task(tasks, ours, &req.task_id, stop).await,
            Err(e) => Err(e),
        },
    };
    match answered {
        Ok(result) => json!({"jsonrpc": "2.0", "id": req.id, "result": result}),
        Err(e) => json!({"jsonrpc": "2.0", "id": req.id, "error": e}),
    }
}

/// What the two stdio pumps share: the answers awaited (by request id) and whether the session is on
/// 2025-11-25.
#[derive(Default)]
struct Session {
    awaited: HashMap<String, Answer>,
    v2025: bool,
}

/// The methods whose lines [`inbound`] must see (the rest pass unparsed).
fn may_concern(line: &str) -> bool {
    [
        "initialize",
        "tools/list",
        "tools/call",
        "tasks/get",
        "tasks/cancel",
    ]
    .iter()
    .any(|m| line.contains(m))
}

/// stdio with 2025-11-25's tasks: rmcp reads and writes the returned pipe ends; two pumps between them and
/// the process's stdin and stdout pass each line through [`inbound`] and [`outbound`]. Await the handle
/// once the session is over, so that its last answers reach stdout.
pub fn stdio(
    long_tools: HashSet<String>,
) -> ((DuplexStream, DuplexStream), tokio::task::JoinHandle<()>) {
    let (rmcp_in, mut to_rmcp) = tokio::io::duplex(1 << 16);
    let (rmcp_out, from_rmcp) = tokio::io::duplex(1 << 16);
    let session = Arc::new(Mutex::new(Session::default()));
    let s = session.clone();
    tokio::spawn(async move {
        let mut stdin = BufReader::new(tokio::io::stdin());
        let mut line = Vec::new();
        loop {
            line.clear();
            match stdin.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let text = String::from_utf8_lossy(&line);
            if may_concern(&text)
                && let Ok(mut v) = serde_json::from_str::<Value>(&text)
            {
                let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
                let method = v.get("method").cloned();
                if let Some(a) = inbound(&mut v, s.v2025)
                    && let Some(id) = v.get("id")
                {
                    s.awaited.insert(id.to_string(), a);
                }
                if v.get("method") != method.as_ref() {
                    line = serde_json::to_vec(&v).unwrap_or_default();
                    line.push(b'\n');
                }
            }
            if to_rmcp.write_all(&line).await.is_err() {
                break;
            }
        }
        // Dropping the pipe's end is stdin's EOF for rmcp: the session ends as before.
    });
    let out = tokio::spawn(async move {
        let mut from = BufReader::new(from_rmcp);
        let mut stdout = tokio::io::stdout();
        let mut line = Vec::new();
        loop {
            line.clear();
            match from.read_until(b'\n', &mut line).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let awaited = !session
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .awaited
                .is_empty();
            if awaited && let Ok(mut v) = serde_json::from_slice::<Value>(&line) {
                let mut s = session.lock().unwrap_or_else(|e| e.into_inner());
                let answer = v.get("id").and_then(|id| s.awaited.remove(&id.to_string()));
                if let Some(a) = answer {
                    if let Some(version) = outbound(a, &mut v, &long_tools) {
                        s.v2025 = version == VERSION;
                    }
                    line = serde_json::to_vec(&v).unwrap_or_default();
                    line.push(b'\n');
                }
            }
            if stdout.write_all(&line).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
        }
    });
    ((rmcp_in, rmcp_out), out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long() -> HashSet<String> {
        ["scan_gpu_nodes".to_string()].into()
    }

    #[test]
    fn only_a_2025_session_has_its_task_requests_renamed() {
        let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                          "params": {"name": "scan_gpu_nodes", "arguments": {}, "task": {"ttl": 60000}}});
        let mut v = call.clone();
        assert_eq!(inbound(&mut v, true), None);
        assert_eq!(v["method"], CALL);
        assert_eq!(v["params"]["task"]["ttl"], 60000, "the params stay whole");
        // Another revision's session, or a request of 2026-07-28 (its version in `_meta`): untouched.
        let mut v = call.clone();
        inbound(&mut v, false);
        assert_eq!(v, call);
        let mut v = call.clone();
        v["params"]["_meta"] = json!({"io.modelcontextprotocol/protocolVersion": "2026-07-28"});
        let before = v.clone();
        inbound(&mut v, true);
        assert_eq!(v, before);
        // A call without `task` is a plain call.
        let mut v = json!({"id": 4, "method": "tools/call", "params": {"name": "x"}});
        inbound(&mut v, true);
        assert_eq!(v["method"], "tools/call");
        for (m, ours) in [("tasks/get", GET), ("tasks/cancel", CANCEL)] {
            let mut v = json!({"id": 5, "method": m, "params": {"taskId": "t"}});
            inbound(&mut v, true);
            assert_eq!(v["method"], ours);
            assert!(handles(ours));
        }
        assert!(handles("tasks/result"));
        assert_eq!(
            inbound(&mut json!({"id": 1, "method": "initialize"}), false),
            Some(Answer::Initialize)
        );
        assert_eq!(
            inbound(&mut json!({"id": 2, "method": "tools/list"}), true),
            Some(Answer::ToolsList)
        );
        assert_eq!(
            inbound(&mut json!({"id": 2, "method": "tools/list"}), false),
            None
        );
    }

    #[test]
    fn the_capability_only_where_2025_11_25_was_agreed() {
        let init = |v: &str| {
            json!({"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": v,
                   "capabilities": {"tools": {}}, "serverInfo": {"name": "k8s-gpu-mcp", "version": "0"}}})
        };
        let mut v = init(VERSION);
        assert_eq!(
            outbound(Answer::Initialize, &mut v, &long()).as_deref(),
            Some(VERSION)
        );
        assert_eq!(v["result"]["capabilities"]["tasks"], capability());
        assert_eq!(v["result"]["capabilities"]["tools"], json!({}));
        let mut v = init("2025-06-18");
        assert_eq!(
            outbound(Answer::Initialize, &mut v, &long()).as_deref(),
            Some("2025-06-18")
        );
        assert!(v["result"]["capabilities"].get("tasks").is_none());
        // An error answer is left as it is.
        let mut e = json!({"jsonrpc": "2.0", "id": 1, "error": {"code": -32602, "message": "x"}});
        assert_eq!(outbound(Answer::Initialize, &mut e, &long()), None);
    }

    #[test]
    fn long_tools_are_listed_with_optional_task_support() {
        let mut v = json!({"id": 2, "result": {"tools": [{"name": "scan_gpu_nodes"}, {"name": "list_gpu_nodes"}]}});
        outbound(Answer::ToolsList, &mut v, &long());
        assert_eq!(
            v["result"]["tools"][0]["execution"],
            json!({"taskSupport": "optional"})
        );
        assert!(v["result"]["tools"][1].get("execution").is_none());
    }

    #[test]
    fn a_task_in_the_revisions_words() {
        let t = Task::new(
            "abc",
            rmcp::model::TaskStatus::Working,
            "2025-11-25T10:30:00Z",
            "2025-11-25T10:31:00Z",
        )
        .with_ttl_ms(3_600_000)
        .with_poll_interval_ms(500)
        .with_status_message("3 of 41 nodes answered");
        assert_eq!(
            wire(&t),
            json!({"taskId": "abc", "status": "working", "createdAt": "2025-11-25T10:30:00Z",
                   "lastUpdatedAt": "2025-11-25T10:31:00Z", "ttl": 3_600_000, "pollInterval": 500,
                   "statusMessage": "3 of 41 nodes answered"})
        );
    }
}
