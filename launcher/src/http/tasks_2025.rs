//! Protocol 2025-11-25's tasks over HTTP: each MCP request body passes through
//! [`crate::mcp::framework::tasks_2025::inbound`] before rmcp reads it, and the answer to an `initialize`
//! or a 2025-11-25 `tools/list` through `outbound` (rmcp models neither that revision's `params.task` nor
//! its `capabilities.tasks`; the module says why and how).

use std::collections::HashSet;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::mcp::framework::tasks_2025::{self, Answer};

/// rmcp's own bound on a request body (`StreamableHttpServerConfig`'s default).
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The long tools (those that run as tasks), for `tools/list`'s `execution`.
pub type LongTools = Arc<HashSet<String>>;

pub async fn rewrite(State(long): State<LongTools>, req: Request, next: Next) -> Response {
    if req.method() != axum::http::Method::POST {
        return next.run(req).await;
    }
    // After `initialize`, a 2025-11-25 client names its revision in this header on every request.
    let session_2025 = req
        .headers()
        .get("mcp-protocol-version")
        .is_some_and(|v| v.as_bytes() == tasks_2025::VERSION.as_bytes());
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response();
    };
    let mut answer = None;
    let mut bytes = bytes;
    // A body that is not JSON goes on as it is: rmcp answers it.
    if let Ok(mut v) = serde_json::from_slice::<Value>(&bytes) {
        let method = v.get("method").cloned();
        answer = tasks_2025::inbound(&mut v, session_2025);
        if v.get("method") != method.as_ref() {
            bytes = Bytes::from(serde_json::to_vec(&v).unwrap_or_default());
            parts.headers.remove(header::CONTENT_LENGTH);
        }
    }
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    match answer {
        Some(a) if resp.status().is_success() => complete(a, resp, &long).await,
        _ => resp,
    }
}

/// The answer to an `initialize` or `tools/list`: one JSON-RPC response, as JSON or as the `data:` of an
/// SSE event (the stream of such a request ends with it, so it can be read whole).
async fn complete(answer: Answer, resp: Response, long: &HashSet<String>) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return (StatusCode::BAD_GATEWAY, "answer too large").into_response();
    };
    let text = String::from_utf8_lossy(&bytes);
    let fix = |json: &str| -> Option<String> {
        let mut v: Value = serde_json::from_str(json.trim()).ok()?;
        v.get("result")?;
        tasks_2025::outbound(answer, &mut v, long);
        Some(v.to_string())
    };
    let out = match fix(&text) {
        Some(json) => json,
        None => text
            .split_inclusive('\n')
            .map(|line| match line.strip_prefix("data:").and_then(&fix) {
                Some(json) => format!("data: {json}\n"),
                None => line.to_string(),
            })
            .collect(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(out))
}
