//! `k8s-gpu-mcp serve --http ADDR`: the same MCP server for many people over streamable HTTP (rmcp's
//! service, both protocol generations: 2026-07-28 stateless requests, 2025-11-25 sessions), each request
//! checked for a bearer token ([`auth`]) and answered as the person it names: their Kubernetes rights
//! (impersonation), their tasks, their confirmations, their limits. stdio stays the default and unchanged.
//!
//! In front of rmcp: `Host` and `Origin` checks (DNS rebinding), the token, a per-person bound on requests
//! in flight; beside it, the protected resource metadata (RFC 9728) at the well-known paths and `/healthz`,
//! which need no token.

pub mod auth;
pub mod check;
pub mod config;
mod fetch;
#[cfg(test)]
mod limits_tests;
pub mod replicas;
mod tasks_2025;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::mcp::framework::caller::{Elsewhere, split_replica};
use crate::mcp::server::Launcher;
use auth::{Caller, Verifier};
use config::HttpConfig;
use replicas::{Peer, Replicas};

struct Gate {
    cfg: HttpConfig,
    verifier: Arc<Verifier>,
    /// Requests in flight per person.
    inflight: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// 2025-11-25 sessions: the person each session was opened by. A session is not authentication (the
    /// token of every request is), but its state (a pending confirmation, its stream) is its person's, so
    /// another person's request on it reads as an unknown session.
    sessions: Mutex<HashMap<String, SessionEntry>>,
    /// rmcp's sessions, closed here once idle (rmcp ends an idle session's worker but keeps its entry).
    session_manager: Arc<LocalSessionManager>,
    /// Several replicas behind one Service: this one's name and how to reach the others.
    replicas: Option<Arc<Replicas>>,
    /// Every person's tasks, for 2025-11-25 task requests that reach this replica through another one's
    /// session (answered here, outside any session).
    tasks: Arc<crate::mcp::framework::tasks::Tasks>,
    /// Cancelled when the server stops: a `tasks/result` waiting here returns.
    stop: CancellationToken,
}

/// A 2025-11-25 session's person and when a request last used it.
struct SessionEntry {
    user: String,
    used: Instant,
}

/// A session no request used for this long is forgotten and closed: rmcp's own worker ends after 5 idle
/// minutes (`SessionConfig::DEFAULT_KEEP_ALIVE`), so by then it is dead but still remembered on both sides.
const SESSION_IDLE: Duration = Duration::from_secs(600);
/// How often idle sessions are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// The ids of `sessions` unused since `idle` before `now`, removed from it.
fn take_idle(
    sessions: &mut HashMap<String, SessionEntry>,
    now: Instant,
    idle: Duration,
) -> Vec<String> {
    let gone: Vec<String> = sessions
        .iter()
        .filter(|(_, e)| now.saturating_duration_since(e.used) >= idle)
        .map(|(id, _)| id.clone())
        .collect();
    for id in &gone {
        sessions.remove(id);
    }
    gone
}

/// Every [`PRUNE_EVERY`], sessions idle for [`SESSION_IDLE`] are forgotten here and closed in rmcp, so a
/// flood of sessions (or clients that never say goodbye) does not grow either map for ever.
async fn prune_sessions(gate: Arc<Gate>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = stop.cancelled() => return,
        }
        let idle = take_idle(
            &mut gate.sessions.lock().unwrap_or_else(|e| e.into_inner()),
            Instant::now(),
            SESSION_IDLE,
        );
        if !idle.is_empty() {
            tracing::debug!(sessions = idle.len(), "idle sessions closed");
        }
        for id in idle {
            let _ = rmcp::transport::streamable_http_server::SessionManager::close_session(
                gate.session_manager.as_ref(),
                &id.into(),
            )
            .await;
        }
    }
}

/// Sessions remembered at most, and per person; past either the least recently used (of the person, else
/// of anyone) is forgotten and closed: its requests then get 404 and its client opens a new session, as the
/// 2025-11-25 transport says a client does.
/// A session costs the server about 80 KiB (rmcp's worker and queues; docs/performance.md, the flood of
/// sessions), so 4,096 of them about 330 MiB.
const MAX_SESSIONS: usize = 4_096;
const SESSIONS_PER_PERSON: usize = 64;

/// Remember session `id` of `user`, first making room within `per_person` and `in_all`; returns the ids
/// forgotten to make it, to be closed in rmcp.
fn admit(
    sessions: &mut HashMap<String, SessionEntry>,
    id: String,
    user: String,
    now: Instant,
    per_person: usize,
    in_all: usize,
) -> Vec<String> {
    let mut gone = Vec::new();
    let lru = |m: &HashMap<String, SessionEntry>, who: Option<&str>| {
        m.iter()
            .filter(|(_, e)| who.is_none_or(|w| e.user == w))
            .min_by_key(|(_, e)| e.used)
            .map(|(id, _)| id.clone())
    };
    while sessions.values().filter(|e| e.user == user).count() >= per_person.max(1)
        && let Some(old) = lru(sessions, Some(&user))
    {
        sessions.remove(&old);
        gone.push(old);
    }
    while sessions.len() >= in_all.max(1)
        && let Some(old) = lru(sessions, None)
    {
        sessions.remove(&old);
        gone.push(old);
    }
    sessions.insert(id, SessionEntry { user, used: now });
    gone
}

/// Close sessions forgotten here in rmcp too (their workers and queues go).
fn close_sessions(gate: &Arc<Gate>, ids: Vec<String>) {
    if ids.is_empty() {
        return;
    }
    tracing::debug!(sessions = ids.len(), "sessions closed to make room");
    let manager = gate.session_manager.clone();
    tokio::spawn(async move {
        for id in ids {
            let _ = rmcp::transport::streamable_http_server::SessionManager::close_session(
                manager.as_ref(),
                &id.into(),
            )
            .await;
        }
    });
}

impl Gate {
    fn challenge(&self, error: Option<&str>) -> Response {
        let mut v = format!("Bearer resource_metadata=\"{}\"", self.cfg.metadata_url());
        if !self.cfg.scopes.is_empty() {
            v.push_str(&format!(", scope=\"{}\"", self.cfg.scopes.join(" ")));
        }
        if let Some(e) = error {
            // RFC 6750 section 3: quoted-string; the description is ours, never the token.
            let e: String = e.chars().filter(|c| *c != '"' && *c != '\\').collect();
            v.push_str(&format!(
                ", error=\"invalid_token\", error_description=\"{e}\""
            ));
        }
        let mut r = (
            StatusCode::UNAUTHORIZED,
            error.unwrap_or("a bearer token is required").to_string(),
        )
            .into_response();
        if let Ok(h) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, h);
        }
        r
    }

    fn permits(&self, user: &str) -> Arc<Semaphore> {
        let mut m = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
        // Bounded: people who are idle hold no permit, so their entries can go.
        if m.len() > 4096 {
            m.retain(|_, s| s.available_permits() < self.cfg.limits.calls_per_person);
        }
        m.entry(user.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.cfg.limits.calls_per_person)))
            .clone()
    }
}

/// Every MCP request: a valid token (else 401 and nothing behind runs), a free slot of its person (else
/// 429), the person in the request's extensions for the tools.
async fn authorize(State(gate): State<Arc<Gate>>, mut req: Request, next: Next) -> Response {
    if req
        .uri()
        .query()
        .is_some_and(|q| q.contains("access_token"))
    {
        // RFC 6750 section 2.3 / MCP authorization: tokens never in the query string.
        return (
            StatusCode::BAD_REQUEST,
            "a token in the URL is not accepted",
        )
            .into_response();
    }
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            let (scheme, rest) = h.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .filter(|t| !t.is_empty())
        .map(str::to_string);
    let Some(token) = token else {
        return gate.challenge(None);
    };
    let caller: Caller = match gate.verifier.verify(&token).await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(why = %e.0, "request refused: bad access token");
            return gate.challenge(Some(&e.0));
        }
    };
    let Ok(permit) = gate.permits(&caller.user).try_acquire_owned() else {
        let mut r = (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "{} requests of yours are in flight (at most {}); retry when one has finished",
                gate.cfg.limits.calls_per_person, gate.cfg.limits.calls_per_person
            ),
        )
            .into_response();
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    };
    let mut session = req
        .headers()
        .get("mcp-session-id")
        .and_then(|h| h.to_str().ok())
        .map(str::to_string);
    if let Some(r) = &gate.replicas {
        let (back, in_body) = match body_named(req).await {
            Ok(b) => b,
            Err(too_large) => return too_large,
        };
        req = back;
        // The id this request is for: the task a 2025-11-25 task request names (a task is its person's
        // through any session, as 2026-07-28's are through none), else its session, else the task a
        // 2026-07-28 tasks/* request names, else the confirmation a 2026-07-28 tool call's retry answers.
        let task_2025 = in_body.task_2025;
        let named = match &task_2025 {
            Some(t) => Some(t.task_id.clone()),
            None => session
                .clone()
                .or_else(|| task_named(&req))
                .or(in_body.request_state),
        };
        // A 2025-11-25 task request for a task of this replica's that came through a session that is not
        // (another replica's, which forwarded it here): answered here, outside rmcp's sessions.
        let own_session = session
            .as_deref()
            .and_then(split_replica)
            .is_some_and(|(rep, _)| rep == r.me());
        if let Some(t) = &task_2025
            && !own_session
            && split_replica(&t.task_id).is_some_and(|(rep, _)| rep == r.me())
        {
            let v = crate::mcp::framework::tasks_2025::answer(
                &gate.tasks,
                t,
                &caller,
                None,
                &gate.stop,
            )
            .await;
            return hold(axum::Json(v).into_response(), permit, true);
        }
        if let Some(other) = named.as_deref().and_then(|id| r.other(id)) {
            let other = other.to_string();
            // A request that was forwarded once is answered where it landed.
            let peer = if req.headers().contains_key(replicas::FORWARDED_BY) {
                Peer::Gone("was not asked (a forwarded request goes no further)".into())
            } else {
                r.locate(&other).await
            };
            match peer {
                Peer::At(addr) => {
                    tracing::debug!(user = %caller.user, replica = %other, "forwarded to the replica holding it");
                    let streams_a_call = streams_a_call(&req);
                    let resp = r.forward(req, addr, &other).await;
                    return hold(resp, permit, streams_a_call);
                }
                Peer::Gone(why) if task_2025.is_some() => {
                    // Answered here whoever's session it came through: the task ended with its replica.
                    let gone = Elsewhere {
                        replica: other,
                        why,
                    };
                    let t = task_2025.as_ref().expect("a 2025-11-25 task request");
                    let v = crate::mcp::framework::tasks_2025::answer(
                        &gate.tasks,
                        t,
                        &caller,
                        Some(&gone),
                        &gate.stop,
                    )
                    .await;
                    return hold(axum::Json(v).into_response(), permit, true);
                }
                Peer::Gone(why) if session.is_some() => {
                    // 2025-11-25: 404 tells the client to open a new session.
                    return (
                        StatusCode::NOT_FOUND,
                        format!("no such session: it was opened on replica {other}, which {why}; open a new session"),
                    )
                        .into_response();
                }
                Peer::Gone(why) => {
                    req.extensions_mut().insert(Elsewhere {
                        replica: other,
                        why,
                    });
                }
            }
        }
        // This replica's own session: rmcp knows it by the id without the replica's name.
        if let Some(id) = session.take() {
            session = Some(match split_replica(&id) {
                Some((rep, inner)) if rep == r.me() => {
                    if let Ok(v) = HeaderValue::from_str(inner) {
                        req.headers_mut().insert("mcp-session-id", v);
                    }
                    inner.to_string()
                }
                // Not this replica's (a forwarded request, or no replica's): unknown below.
                _ => id,
            });
        }
    }
    if let Some(id) = &session {
        let owner = gate
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(id)
            .map(|e| {
                e.used = Instant::now();
                e.user.clone()
            });
        // Every session was opened through here; one not remembered (forgotten, or never ours) is
        // unknown, as is another person's.
        if owner.as_deref() != Some(caller.user.as_str()) {
            tracing::info!(user = %caller.user, "request refused: a session this person did not open");
            return (StatusCode::NOT_FOUND, "no such session").into_response();
        }
        if req.method() == axum::http::Method::DELETE {
            gate.sessions
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(id);
        }
    }
    tracing::debug!(user = %caller.user, subject = %caller.subject, "request");
    let user = caller.user.clone();
    req.extensions_mut().insert(caller);
    let streams_a_call = streams_a_call(&req);
    let mut resp = next.run(req).await;
    if session.is_none()
        && let Some(id) = resp
            .headers()
            .get("mcp-session-id")
            .and_then(|h| h.to_str().ok())
            .map(str::to_string)
    {
        let gone = admit(
            &mut gate.sessions.lock().unwrap_or_else(|e| e.into_inner()),
            id.clone(),
            user,
            Instant::now(),
            SESSIONS_PER_PERSON,
            MAX_SESSIONS,
        );
        close_sessions(&gate, gone);
        // The client sees the session as this replica's, so another replica sends it here.
        if let Some(r) = &gate.replicas
            && let Ok(v) = HeaderValue::from_str(&r.outer(&id))
        {
            resp.headers_mut().insert("mcp-session-id", v);
        }
    }
    hold(resp, permit, streams_a_call)
}

/// Whether a request's response is a call in flight for as long as it streams: a POST's is (its SSE stream
/// carries the call's progress and result). A GET opens the session's standalone SSE stream (MCP transports,
/// "Listening for Messages from the Server"), which carries no request of the person's and which a host
/// keeps open for the session's life: held to its end, every open session would take a slot for good (the
/// official conformance suite's sessions took all 16 and its DNS-rebinding scenario got 429).
fn streams_a_call(req: &Request) -> bool {
    req.method() != axum::http::Method::GET
}

/// The response, holding the request's per-person slot until its body ends or its client goes where it
/// streams a call; else the slot is freed as the headers leave.
fn hold(
    resp: Response,
    permit: tokio::sync::OwnedSemaphorePermit,
    streams_a_call: bool,
) -> Response {
    if !streams_a_call {
        return resp;
    }
    resp.map(|body| {
        axum::body::Body::new(Held {
            body,
            _permit: permit,
        })
    })
}

/// A response body that holds its request's per-person slot for as long as it streams.
struct Held {
    body: axum::body::Body,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl hyper::body::Body for Held {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// The task a 2026-07-28 `tasks/*` request names (its `Mcp-Name` header; the body says the same, and
/// rmcp checks that it does).
fn task_named(req: &Request) -> Option<String> {
    let h = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
    h("mcp-method")
        .filter(|m| m.starts_with("tasks/"))
        .and(h("mcp-name"))
        .map(str::to_string)
}

/// What a request's body names that decides which replica answers it.
#[derive(Default)]
struct InBody {
    /// The `requestState` a 2026-07-28 `tools/call` retry carries (the confirmation it answers names the
    /// replica that asked).
    request_state: Option<String>,
    /// A 2025-11-25 `tasks/get`, `tasks/result` or `tasks/cancel` (its task names the replica holding it).
    task_2025: Option<crate::mcp::framework::tasks_2025::TaskRequest>,
}

/// [`InBody`] of a POST that may name something in its body (a 2026-07-28 `tools/call`; a request of a
/// 2025-11-25 session, which carries no `Mcp-Method`), and the request, its body read and put back. Bounded
/// as rmcp bounds a body.
async fn body_named(req: Request) -> Result<(Request, InBody), Response> {
    let (is_call, is_2025) = {
        let h = |n: &str| req.headers().get(n).map(HeaderValue::as_bytes);
        (
            h("mcp-method").is_some_and(|m| m == b"tools/call"),
            h("mcp-method").is_none()
                && h("mcp-protocol-version")
                    .is_some_and(|v| v == crate::mcp::framework::tasks_2025::VERSION.as_bytes()),
        )
    };
    if !(is_call || is_2025) || req.method() != axum::http::Method::POST {
        return Ok((req, InBody::default()));
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 4 * 1024 * 1024).await else {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response());
    };
    // Most of a session's requests are no task request: parsed only where the text could be one.
    let mentions_tasks = is_call || bytes.windows(7).any(|w| w == b"\"tasks/");
    let v = mentions_tasks
        .then(|| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
        .flatten();
    let named = InBody {
        request_state: v
            .as_ref()
            .filter(|_| is_call)
            .and_then(|v| v["params"]["requestState"].as_str().map(str::to_string)),
        task_2025: v
            .as_ref()
            .filter(|_| is_2025)
            .and_then(crate::mcp::framework::tasks_2025::task_request),
    };
    Ok((
        Request::from_parts(parts, axum::body::Body::from(bytes)),
        named,
    ))
}

/// The replicas' view of each other (`replicas` in the config): the server's own identity reads their pods.
pub async fn replicas_for(
    http: &HttpConfig,
    cfg: &crate::config::Config,
) -> Result<Option<Arc<Replicas>>, String> {
    let Some(rc) = &http.replicas else {
        return Ok(None);
    };
    let clients = crate::cluster::clients::Clients::connect(
        cfg.cluster.kubeconfig.as_deref(),
        cfg.cluster.context.as_deref(),
    )
    .await?;
    let client = clients.get(None).await.map_err(|e| e.to_string())?;
    Replicas::new(rc, client).map(|r| Some(Arc::new(r)))
}

/// RFC 9728 protected resource metadata: where the tokens come from.
async fn metadata(State(gate): State<Arc<Gate>>) -> Response {
    let c = &gate.cfg;
    let mut doc = serde_json::json!({
        "resource": c.url,
        "authorization_servers": [c.issuer],
        "bearer_methods_supported": ["header"],
        "resource_name": "k8s-gpu-mcp",
    });
    if !c.scopes.is_empty() {
        doc["scopes_supported"] = serde_json::json!(c.scopes);
    }
    axum::Json(doc).into_response()
}

/// The router: the MCP endpoint behind the gate, the metadata and health beside it.
pub fn router(
    launcher: Launcher,
    cfg: HttpConfig,
    shutdown: CancellationToken,
    replicas: Option<Arc<Replicas>>,
) -> Result<axum::Router, String> {
    let verifier = Verifier::new(&cfg)?;
    let prune_stop = shutdown.clone();
    let stop = shutdown.clone();
    let mut rc = StreamableHttpServerConfig::default()
        .with_allowed_hosts(cfg.hosts())
        .with_cancellation_token(shutdown);
    // Browsers send Origin; no other browser origin than the server's own is allowed unless listed.
    let mut origins = cfg.own_origins();
    origins.extend(cfg.allowed_origins.iter().cloned());
    rc = rc.with_allowed_origins(origins).enforce_origin_validation();
    let long_tools: tasks_2025::LongTools = Arc::new(launcher.tasks.tools().cloned().collect());
    let factory = {
        let l = launcher.clone();
        move || Ok(l.clone())
    };
    let session_manager = Arc::new(LocalSessionManager::default());
    let mcp = StreamableHttpService::new(factory, session_manager.clone(), rc);
    let path = cfg.endpoint_path();
    let well_known = format!("/.well-known/oauth-protected-resource{path}");
    let gate = Arc::new(Gate {
        cfg,
        verifier,
        inflight: Mutex::new(HashMap::new()),
        sessions: Mutex::new(HashMap::new()),
        session_manager,
        replicas,
        tasks: launcher.tasks.clone(),
        stop,
    });
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(prune_sessions(gate.clone(), prune_stop));
    }
    Ok(axum::Router::new()
        .nest_service(&path, mcp)
        // Protocol 2025-11-25's tasks, which rmcp does not model (tasks_2025).
        .layer(axum::middleware::from_fn_with_state(
            long_tools,
            tasks_2025::rewrite,
        ))
        .layer(axum::middleware::from_fn_with_state(
            gate.clone(),
            authorize,
        ))
        .route(&well_known, axum::routing::get(metadata))
        .route(
            "/.well-known/oauth-protected-resource",
            axum::routing::get(metadata),
        )
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .with_state(gate))
}

/// `serve --http ADDR --http-config FILE`: until SIGINT/SIGTERM, then every person's tasks are cancelled
/// and their probe pods deleted before exit.
/// How often the server sweeps the marks of gone runs (`keep_pods_off` taints past their deadline) after
/// the startup sweep of its own runner.
const MARK_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// The periodic sweep of gone runs' marks, as the server's own identity, until the server stops. The
/// runs of this server's people are live runs of this process and never lifted. An identity that may not
/// list or patch nodes (deploy/http/rbac.yaml grants none) stops it: then each run sweeps its node first,
/// as its person, and `k8s-gpu-mcp gc` of an operator sweeps every node.
async fn sweep_run_marks_every(
    cluster: Arc<dyn crate::cluster::ClusterBackend>,
    stop: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(MARK_SWEEP_EVERY) => {}
            _ = stop.cancelled() => return,
        }
        match cluster
            .sweep_run_marks(None, None, &crate::cluster::run_mark::live())
            .await
        {
            Ok(m) if !m.lifted.is_empty() || !m.failed.is_empty() => tracing::info!(
                lifted = ?m.lifted, failed = ?m.failed, "periodic sweep of gone runs' marks"
            ),
            Ok(_) => {}
            Err(crate::cluster::ClusterError::Forbidden(e)) => {
                tracing::info!(
                    error = %e,
                    "periodic sweep of gone runs' marks stopped: the server's identity may not list nodes; \
                     each run sweeps its own node first"
                );
                return;
            }
            Err(e) => tracing::warn!(error = %e, "periodic sweep of gone runs' marks failed"),
        }
    }
}

pub async fn serve(
    launcher: Launcher,
    addr: SocketAddr,
    cfg: HttpConfig,
    replicas: Option<Arc<Replicas>>,
) -> ExitCode {
    let shutdown = CancellationToken::new();
    let tls = cfg.tls.clone();
    let app = match router(launcher.clone(), cfg.clone(), shutdown.clone(), replicas) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("k8s-gpu-mcp: {e}");
            return ExitCode::from(2);
        }
    };
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("k8s-gpu-mcp: cannot listen on {addr}: {e}");
            return ExitCode::from(2);
        }
    };
    let local = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    if let Some(cluster) = launcher.env.cluster.clone() {
        tokio::spawn(sweep_run_marks_every(cluster, shutdown.clone()));
    }
    // The one line a supervisor or a test reads to know where it listens (stderr: stdout is unused here).
    tracing::info!(listen = %local, url = %cfg.url, tls = tls.is_some(), "serving MCP over HTTP");
    eprintln!("k8s-gpu-mcp: listening on {local}");
    let stop = {
        let shutdown = shutdown.clone();
        async move {
            let name = crate::mcp::server::stop_signal().await;
            tracing::info!(
                signal = name,
                "stopping: no new requests; running probe pods are being deleted"
            );
            shutdown.cancel();
        }
    };
    let served = match tls {
        None => axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
            .map_err(|e| e.to_string()),
        Some(t) => tls::serve(listener, app, &t, stop).await,
    };
    launcher.end_all().await;
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("k8s-gpu-mcp: {e}");
            ExitCode::from(1)
        }
    }
}

mod tls {
    //! HTTPS from PEM files: rustls in front of the same router.
    use std::future::Future;
    use std::sync::Arc;

    use std::time::Duration;

    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use hyper_util::server::conn::auto;
    use hyper_util::service::TowerToHyperService;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    use super::config::Tls;

    /// The TLS handshake of a new connection must end within this.
    pub(super) const HANDSHAKE: Duration = Duration::from_secs(10);
    /// A request's headers must arrive within this (hyper's own bound, which needs a timer).
    pub(super) const HEADERS: Duration = Duration::from_secs(10);

    fn acceptor(t: &Tls) -> Result<tokio_rustls::TlsAcceptor, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&t.cert_file)
            .and_then(|i| i.collect())
            .map_err(|e| format!("tls.cert_file {}: {e}", t.cert_file.display()))?;
        let key = PrivateKeyDer::from_pem_file(&t.key_file)
            .map_err(|e| format!("tls.key_file {}: {e}", t.key_file.display()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| format!("tls: {e}"))?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
    }

    pub async fn serve(
        listener: tokio::net::TcpListener,
        app: axum::Router,
        t: &Tls,
        stop: impl Future<Output = ()>,
    ) -> Result<(), String> {
        let acceptor = acceptor(t)?;
        let mut stop = std::pin::pin!(stop);
        loop {
            let (tcp, _) = tokio::select! {
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                _ = &mut stop => return Ok(()),
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                // A client that opens a connection and never finishes its handshake, or never finishes
                // its request's headers, must not hold a task and a socket for ever (slowloris).
                let Ok(Ok(stream)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await
                else {
                    return;
                };
                let svc = TowerToHyperService::new(app);
                let mut b = auto::Builder::new(TokioExecutor::new());
                b.http1()
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADERS);
                let _ = b.serve_connection(TokioIo::new(stream), svc).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sessions unused for the idle time go (and are returned to be closed); used ones stay.
    #[test]
    fn idle_sessions_are_taken_used_ones_stay() {
        let t0 = Instant::now();
        let now = t0 + Duration::from_secs(700);
        let mut m: HashMap<String, SessionEntry> = [("old", 0), ("edge", 100), ("fresh", 650)]
            .into_iter()
            .map(|(id, at)| {
                let used = t0 + Duration::from_secs(at);
                (
                    id.to_string(),
                    SessionEntry {
                        user: "alice".into(),
                        used,
                    },
                )
            })
            .collect();
        let mut gone = take_idle(&mut m, now, SESSION_IDLE);
        gone.sort();
        assert_eq!(gone, ["edge", "old"]);
        assert_eq!(m.keys().collect::<Vec<_>>(), ["fresh"]);
        assert!(take_idle(&mut m, now, SESSION_IDLE).is_empty());
    }

    /// A person's flood of sessions evicts only their own least recently used; past the server's bound,
    /// anyone's least recently used goes; every eviction is returned to be closed, and the map never grows
    /// past its bounds.
    #[test]
    fn sessions_are_bounded_per_person_and_in_all_lru_first() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut m = HashMap::new();
        assert!(admit(&mut m, "bob-1".into(), "bob".into(), at(0), 3, 8).is_empty());
        let mut gone = Vec::new();
        for i in 0..10u64 {
            gone.extend(admit(
                &mut m,
                format!("alice-{i}"),
                "alice".into(),
                at(1 + i),
                3,
                8,
            ));
            assert!(m.len() <= 8);
        }
        assert_eq!(gone.len(), 7, "{gone:?}");
        assert!(gone.iter().all(|g| g.starts_with("alice-")), "{gone:?}");
        assert!(m.contains_key("bob-1"), "alice's flood evicted bob");
        let mut alice: Vec<&String> = m.keys().filter(|k| k.starts_with("alice")).collect();
        alice.sort();
        assert_eq!(alice, ["alice-7", "alice-8", "alice-9"]);
        // The server's bound: six more people; the least recently used (bob's, used first) goes.
        let mut gone = Vec::new();
        for p in 0..6u64 {
            gone.extend(admit(
                &mut m,
                format!("p{p}"),
                format!("p{p}"),
                at(20 + p),
                3,
                8,
            ));
        }
        assert_eq!(m.len(), 8);
        assert_eq!(gone, ["bob-1", "alice-7"]);
    }
}
