//! The per-person bound on running tool calls through the whole HTTP stack (gate, rmcp, the tool, the
//! runner), without a cluster: a local launcher whose runner only counts the probes running at once and
//! holds them until told. A dropped response is a client that hung up: rmcp runs the handler on to its
//! end, so the bound must hold however often a person hangs up and posts again.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use clap::Parser;
use http_body_util::BodyExt;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::mcp::server::{Backends, Launcher};
use crate::probe::runner::{ProbeRequest, ProgressSink, RunError, RunFuture, Runner};

/// Probes running now and the most ever at once. Each runs until `release`, cancelled or not: a cancelled
/// probe's cleanup takes its time too (its pod's deletion; a DCGM run's orderly stop, up to
/// `probe::stop_first::STOP_WAIT`), and rmcp's cancellation of a call whose client hung up only asks the
/// handler to stop; the call runs until its cleanup is done.
#[derive(Default)]
struct Held {
    now: AtomicUsize,
    most: AtomicUsize,
    started: AtomicUsize,
    cancelled: AtomicUsize,
    release: CancellationToken,
}

struct HeldRunner(Arc<Held>);

/// Counts a probe down however its future ends (completed or dropped).
struct Running(Arc<Held>);
impl Drop for Running {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Runner for HeldRunner {
    fn run<'a>(
        &'a self,
        _req: ProbeRequest,
        _progress: ProgressSink,
        cancel: CancellationToken,
    ) -> RunFuture<'a> {
        let h = self.0.clone();
        Box::pin(async move {
            let n = h.now.fetch_add(1, Ordering::SeqCst) + 1;
            h.most.fetch_max(n, Ordering::SeqCst);
            h.started.fetch_add(1, Ordering::SeqCst);
            let _running = Running(h.clone());
            tokio::select! {
                _ = h.release.cancelled() => {}
                _ = cancel.cancelled() => {
                    h.cancelled.fetch_add(1, Ordering::SeqCst);
                    // The cleanup, until the test lets it end.
                    h.release.cancelled().await;
                }
            }
            Err(RunError::Other("released by the test".into()))
        })
    }
    fn shutdown<'a>(
        &'a self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>> {
        Box::pin(async {})
    }
}

use super::auth::tests::rsa_key;

const URL: &str = "http://127.0.0.1:8080/mcp";
const ISSUER: &str = "https://issuer.example.com";

fn token(enc: &jsonwebtoken::EncodingKey, email: &str) -> String {
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.kid = Some("k1".into());
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = serde_json::json!({"iss": ISSUER, "aud": URL, "sub": email, "exp": now + 600,
        "email": email, "email_verified": true});
    jsonwebtoken::encode(&h, &claims, enc).unwrap()
}

/// The router of a local launcher whose probes are [`Held`], with `calls` per person, its tokens' keys
/// served on a loopback port.
async fn server(calls: usize, held: Arc<Held>) -> (axum::Router, jsonwebtoken::EncodingKey) {
    let (enc, jwk) = rsa_key("k1");
    let set = serde_json::json!({"keys": [jwk]});
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let keys = format!("http://{}/keys", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/keys",
        axum::routing::get(move || {
            let set = set.clone();
            async move { axum::Json(set) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let yaml = format!(
        "url: {URL}\nissuer: {ISSUER}\njwks_uri: {keys}\nlimits: {{calls_per_person: {calls}}}\n"
    );
    let cfg: super::config::HttpConfig = serde_saphyr::from_str(&yaml).unwrap();
    cfg.check().unwrap();
    // No kept readings: each call's own probe is what the tests count (one person's calls on one node
    // would otherwise share one probe, `mcp::framework::readings`).
    let cli = crate::cli::Cli::try_parse_from([
        "k8s-gpu-mcp",
        "--local",
        "--reading-max-age",
        "0",
        "serve",
    ])
    .unwrap();
    let launcher = Launcher::new(
        cli.global.config().unwrap(),
        Backends {
            runner: Arc::new(HeldRunner(held)),
            cluster: None,
        },
    )
    .limit_calls(calls);
    let router = super::router(launcher, cfg, CancellationToken::new(), None).unwrap();
    (router, enc)
}

/// A 2026-07-28 `tools/call` of get_gpu_health on the local node, as `bearer`'s person.
fn call(bearer: &str) -> axum::http::Request<Body> {
    let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
    "name": "get_gpu_health", "arguments": {"node_name": "local"},
    "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "limits-test", "version": "1"},
    }}});
    axum::http::Request::post("/mcp")
        .header("host", "127.0.0.1:8080")
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2026-07-28")
        .header("mcp-method", "tools/call")
        .header("mcp-name", "get_gpu_health")
        .header("authorization", format!("Bearer {bearer}"))
        .body(Body::from(body.to_string()))
        .unwrap()
}

/// What became of one post: its call ran on (the client hung up on it), or it was answered at once.
enum Posted {
    HungUp,
    Answered(u16, String),
}

/// Post a call and hang up on it once it reaches its probe (`held.started` grows): the request's future and
/// its response are dropped, as a client's closed connection drops them. A call refused before any probe
/// is answered, however long a loaded machine takes to answer it: what tells the two apart is whether the
/// call reached the probe, never a time.
async fn post_and_hang_up(router: &axum::Router, bearer: &str, held: &Held) -> Posted {
    let before = held.started.load(Ordering::SeqCst);
    let answer = post(router, bearer);
    let reached = async {
        while held.started.load(Ordering::SeqCst) == before {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    let either = async {
        tokio::select! {
            (status, body) = answer => Posted::Answered(status, body),
            () = reached => Posted::HungUp,
        }
    };
    tokio::time::timeout(Duration::from_secs(60), either)
        .await
        .expect("a call neither answered nor reached its probe in 60 s")
}

/// Post a call and wait for its answer.
async fn post(router: &axum::Router, bearer: &str) -> (u16, String) {
    let resp = router.clone().oneshot(call(bearer)).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.map(|b| b.to_bytes());
    (
        status,
        String::from_utf8_lossy(&body.unwrap_or_default()).into_owned(),
    )
}

/// Wait until `count` reaches `n` (or some seconds passed: the assertion after it then says what is wrong).
async fn until_at_least(count: &AtomicUsize, n: usize) {
    for _ in 0..1000 {
        if count.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Wait until `held` has `n` probes running (or a few seconds passed).
async fn until_running(held: &Held, n: usize) {
    for _ in 0..300 {
        if held.now.load(Ordering::SeqCst) == n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// One person opens a call, hangs up, posts again, and again: never more than their bound of calls run
/// at once, the posts past it are refused with the limit in words and numbers, another person still gets
/// their call, and once the running calls end the person's slots are theirs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_who_hangs_up_and_posts_again_stays_within_their_calls() {
    let held = Arc::new(Held::default());
    let (router, enc) = server(2, held.clone()).await;
    let alice = token(&enc, "alice@example.com");
    let mut refused = Vec::new();
    for _ in 0..8 {
        match post_and_hang_up(&router, &alice, &held).await {
            Posted::HungUp => {}
            Posted::Answered(status, body) => refused.push((status, body)),
        }
    }
    until_running(&held, 2).await;
    assert_eq!(
        held.most.load(Ordering::SeqCst),
        2,
        "alice's calls running at once past her bound of 2 (each hang-up freed a slot the call still ran in)"
    );
    assert_eq!(held.now.load(Ordering::SeqCst), 2, "her two calls run on");
    assert_eq!(refused.len(), 6, "{refused:?}");
    for (status, body) in &refused {
        assert!(
            body.contains("-32029")
                && body.contains("2 tool calls of yours are running (at most 2 per person"),
            "{status}: {body}"
        );
    }
    until_at_least(&held.cancelled, 2).await;
    assert!(
        held.cancelled.load(Ordering::SeqCst) >= 2,
        "rmcp asked the hung-up calls to stop"
    );
    // Another person is not held up by alice's bound.
    let bob = token(&enc, "bob@example.com");
    assert!(matches!(
        post_and_hang_up(&router, &bob, &held).await,
        Posted::HungUp
    ));
    until_running(&held, 3).await;
    assert_eq!(held.now.load(Ordering::SeqCst), 3, "bob's call runs");
    // The calls end (with nobody listening): their slots are free again.
    held.release.cancel();
    until_running(&held, 0).await;
    assert_eq!(held.now.load(Ordering::SeqCst), 0);
    let was = held.started.load(Ordering::SeqCst);
    // A released runner answers at once now, so the call ends with an answer rather than a refusal.
    let (_, body) = tokio::time::timeout(Duration::from_secs(60), post(&router, &alice))
        .await
        .expect("a released probe still running");
    assert!(!body.contains("-32029"), "{body}");
    assert_eq!(
        held.started.load(Ordering::SeqCst),
        was + 1,
        "alice's call ran"
    );
}
