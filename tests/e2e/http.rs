//! `serve --http` (issue 55) on the real API server: one launcher for many people. An OpenID issuer of the
//! test's own (discovery document and keys on a loopback port, RS256 tokens) names two people: one bound to
//! the reader role, one bound to nothing. The launcher's kubeconfig identity impersonates whoever calls, so
//! the API server's RBAC answers per person. Hostile tokens (none, another audience, expired, another
//! issuer, unsigned, an HMAC forged with the public key, a Kubernetes service-account token, a system name)
//! get 401 and reach nothing; Host and Origin are checked; a task is its person's alone.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

use crate::mcp::LAUNCHER;
pub(crate) use crate::oidc::{Key, issuer, now, rsa_key, token};
use crate::testbed::{FakeNode, Testbed, User, skipped, testbed_bin, unique};

/// The launcher serving HTTP; killed (SIGTERM) on drop.
pub(crate) struct Server {
    pub child: Child,
    pub(crate) url: String,
    config: std::path::PathBuf,
    kubeconfig: std::path::PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM: the server cancels every person's tasks and deletes their probe pods before exit.
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// A kubeconfig for the server's own identity as deploy/http/rbac.yaml makes it: the service account that
/// may only impersonate (the testbed's API server and CA, the account's token).
fn server_kubeconfig(tb: &Testbed) -> std::path::PathBuf {
    let rbac =
        std::fs::read_to_string(crate::testbed::repo_root().join("deploy/http/rbac.yaml")).unwrap();
    tb.apply(&rbac);
    account_kubeconfig(tb, "k8s-gpu-mcp-server", None)
}

/// A kubeconfig for service account `account` of gpu-diagnostics (its token), against `server` (default:
/// the testbed's API server).
fn account_kubeconfig(tb: &Testbed, account: &str, server: Option<&str>) -> std::path::PathBuf {
    let token = tb
        .kubectl(&["-n", "gpu-diagnostics", "create", "token", account])
        .trim()
        .to_string();
    let dir = tb.dir.join(unique("http-sa"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = tb.write_kubeconfig(User::Admin, &dir);
    let kc = path.to_str().unwrap();
    let cred = format!("--token={token}");
    let mut steps = vec![
        vec!["config", "set-credentials", "http-server", cred.as_str()],
        vec!["config", "set-context", "--current", "--user=http-server"],
    ];
    let srv = server.map(|s| format!("--server={s}"));
    if let Some(s) = &srv {
        steps.push(vec!["config", "set-cluster", "testbed", s.as_str()]);
    }
    for args in steps {
        let mut a = vec!["--kubeconfig", kc];
        a.extend(args);
        let out = Command::new("kubectl").args(&a).output().expect("kubectl");
        assert!(out.status.success(), "kubectl {a:?}: {out:?}");
    }
    path
}

pub(crate) fn start(tb: &Testbed, ns: &str, config: &str, addr: &str) -> Server {
    start_with(tb, ns, config, addr, &[], &[])
}

/// [`start`] with more launcher flags (`--mode operator`) and environment variables (a replica's
/// `POD_NAME`).
pub(crate) fn start_with(
    tb: &Testbed,
    ns: &str,
    config: &str,
    addr: &str,
    flags: &[&str],
    env: &[(&str, &str)],
) -> Server {
    start_as(tb, server_kubeconfig(tb), ns, config, addr, flags, env)
}

/// [`start_with`] with this kubeconfig for the server's own identity.
fn start_as(
    tb: &Testbed,
    kubeconfig: std::path::PathBuf,
    ns: &str,
    config: &str,
    addr: &str,
    flags: &[&str],
    env: &[(&str, &str)],
) -> Server {
    let dir = tb.dir.join(unique("http"));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("http.yaml");
    std::fs::write(&cfg, config).unwrap();
    let mut child = Command::new(LAUNCHER)
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--namespace",
            ns,
            "--probe-image",
            crate::mcp::E2E_PROBE_IMAGE,
        ])
        .args(flags)
        .args([
            "serve",
            "--http",
            addr,
            "--http-config",
            cfg.to_str().unwrap(),
        ])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("launcher");
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let addr = loop {
        line.clear();
        if err.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("the launcher exited before listening");
        }
        if let Some(a) = line.trim().strip_prefix("k8s-gpu-mcp: listening on ") {
            break a.to_string();
        }
    };
    // Keep draining its logs so it never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut l = String::new();
        while err.read_line(&mut l).unwrap_or(0) > 0 {
            eprint!("launcher: {l}");
            l.clear();
        }
    });
    Server {
        child,
        url: format!("http://{addr}/mcp"),
        config: cfg,
        kubeconfig,
    }
}

/// A server of the test's own issuer (`config_extra` appended to its configuration) and tokens of that issuer
/// for any person.
pub(crate) struct Issued {
    pub(crate) key: Key,
    pub(crate) iss: String,
    pub(crate) audience: String,
    pub(crate) server: Server,
}

impl Issued {
    pub(crate) async fn start(tb: &Testbed, ns: &str, config_extra: &str) -> Issued {
        let key = rsa_key("k1");
        let iss = issuer(vec![key.jwk.clone()]).await;
        let port = free_port();
        let audience = format!("http://127.0.0.1:{port}/mcp");
        let server = start(
            tb,
            ns,
            &format!(
                "url: {audience}\nissuer: {iss}\nuser_claim: preferred_username\n{config_extra}"
            ),
            &format!("127.0.0.1:{port}"),
        );
        assert_eq!(server.url, audience);
        Issued {
            key,
            iss,
            audience,
            server,
        }
    }

    /// A valid token of `user` for this server.
    pub(crate) fn token(&self, user: &str) -> String {
        token(
            &self.key,
            json!({"iss": self.iss, "aud": self.audience, "sub": format!("sub-{user}"),
                   "exp": now() + 600, "iat": now(), "preferred_username": user}),
        )
    }
}

/// `initialize` of a 2025-11-25 session at `url` as `token`'s person (more headers in `extra`): the session id
/// and the result.
pub(crate) async fn open_session(
    url: &str,
    token: &str,
    extra: &[(&str, &str)],
    client: &str,
) -> (String, Value) {
    let auth = format!("Bearer {token}");
    let mut h = vec![("authorization", auth.as_str())];
    h.extend_from_slice(extra);
    let init = send(
        url,
        &h,
        Some(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": client, "version": "1"}}}),
        ),
    )
    .await;
    assert_eq!(init.status, 200, "initialize: {}", init.body);
    let sid = init
        .headers
        .get("mcp-session-id")
        .and_then(|h| h.to_str().ok())
        .expect("a session id")
        .to_string();
    (sid, init.json()["result"].clone())
}

pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: hyper::HeaderMap,
    pub(crate) body: String,
}

impl Answer {
    /// The JSON-RPC response in the body (plain JSON, or the `data:` of an SSE event).
    pub(crate) fn json(&self) -> Value {
        if let Ok(v) = serde_json::from_str::<Value>(&self.body) {
            return v;
        }
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
            .find(|v| v.get("id").is_some())
            .unwrap_or_else(|| panic!("no JSON-RPC response in {}: {}", self.status, self.body))
    }
}

pub(crate) async fn send(url: &str, headers: &[(&str, &str)], body: Option<Value>) -> Answer {
    let mut h = vec![("content-type", "application/json")];
    h.extend_from_slice(headers);
    send_raw(url, &h, body.map(|b| b.to_string())).await
}

pub(crate) async fn send_raw(url: &str, headers: &[(&str, &str)], body: Option<String>) -> Answer {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut req = hyper::Request::builder()
        .method(if body.is_some() { "POST" } else { "GET" })
        .uri(url)
        .header("accept", "application/json, text/event-stream");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let body = body.unwrap_or_default();
    let resp = tokio::time::timeout(
        Duration::from_secs(60),
        client.request(req.body(Full::new(Bytes::from(body))).unwrap()),
    )
    .await
    .expect("no answer in 60 s")
    .expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

pub(crate) const V26: &str = "2026-07-28";

/// A 2026-07-28 request (no session): the revision's headers and `_meta`, with the tasks extension
/// declared when `tasks`.
pub(crate) async fn rpc(
    url: &str,
    token: Option<&str>,
    method: &str,
    name: Option<&str>,
    params: Value,
    tasks: bool,
) -> Answer {
    rpc_with(url, &[], token, method, name, params, tasks).await
}

/// [`rpc`] with more headers (a `Host` naming the Service in front of replicas).
pub(crate) async fn rpc_with(
    url: &str,
    extra: &[(&str, &str)],
    token: Option<&str>,
    method: &str,
    name: Option<&str>,
    mut params: Value,
    tasks: bool,
) -> Answer {
    let caps = if tasks {
        json!({"extensions": {"io.modelcontextprotocol/tasks": {}}})
    } else {
        json!({})
    };
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": V26,
        "io.modelcontextprotocol/clientCapabilities": caps,
        "io.modelcontextprotocol/clientInfo": {"name": "e2e-http", "version": "1"},
    });
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut h: Vec<(&str, &str)> = vec![("mcp-protocol-version", V26), ("mcp-method", method)];
    if let Some(n) = name {
        h.push(("mcp-name", n));
    }
    if let Some(a) = &auth {
        h.push(("authorization", a));
    }
    h.extend_from_slice(extra);
    send(
        url,
        &h,
        Some(json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})),
    )
    .await
}

async fn call(url: &str, token: &str, tool: &str, args: Value) -> Value {
    let a = rpc(
        url,
        Some(token),
        "tools/call",
        Some(tool),
        json!({"name": tool, "arguments": args}),
        false,
    )
    .await;
    assert_eq!(a.status, 200, "{tool}: {}", a.body);
    a.json()
}

/// list_gpu_nodes of `selector` as the token's person: the JSON-RPC response.
async fn list_nodes(url: &str, token: &str, selector: &str) -> Value {
    call(
        url,
        token,
        "list_gpu_nodes",
        json!({"label_selector": selector}),
    )
    .await
}

/// How many nodes a list_gpu_nodes response names (None: not an answer with nodes).
fn nodes_in(v: &Value) -> Option<usize> {
    v["result"]["structuredContent"]["nodes"]
        .as_array()
        .map(Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_person_calls_with_their_own_rights_and_bad_tokens_reach_nothing() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-http");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let group = unique("http");
    let node = unique("http-0");
    tb.add_nodes(&[FakeNode::gpu(&node, "dgx-h100-healthy").label("e2e-group", &group)]);
    let selector = format!("e2e-group={group}");

    let people = Issued::start(
        tb,
        &ns,
        "scopes: [gpu-mcp]\nlimits: {tasks_per_person: 1}\n",
    )
    .await;
    let (key, iss, audience) = (&people.key, people.iss.clone(), people.audience.clone());
    let url = people.server.url.clone();
    let claims = |user: &str| {
        json!({"iss": iss, "aud": audience, "sub": format!("sub-{user}"), "exp": now() + 600,
               "iat": now(), "preferred_username": user})
    };
    let alice = people.token(User::Reader.name());
    let bob = people.token(User::Nobody.name());

    // `check --http-config`: the server's configuration, its issuer, and its identity's right to act for
    // people; a kubeconfig of someone who may not impersonate fails, naming the fix.
    let check = |kc: std::path::PathBuf| {
        Command::new(LAUNCHER)
            .args([
                "--kubeconfig",
                kc.to_str().unwrap(),
                "check",
                "--output",
                "json",
                "--http-config",
            ])
            .arg(&people.server.config)
            .output()
            .expect("check")
    };
    let ok = check(people.server.kubeconfig.clone());
    let report: Value = serde_json::from_slice(&ok.stdout).expect("check's JSON");
    assert_eq!(report["ok"], true, "{report:#}");
    let rows: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        rows,
        ["http-config", "issuer", "permissions/impersonate"],
        "{report:#}"
    );
    let no = check(tb.kubeconfig(User::Reader));
    assert_eq!(
        no.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&no.stdout)
    );
    let report: Value = serde_json::from_slice(&no.stdout).expect("check's JSON");
    let imp = &report["checks"][2];
    assert!(
        imp["status"] == "fail"
            && imp["fix"]
                .as_str()
                .is_some_and(|f| f.contains("deploy/http/rbac.yaml")),
        "{report:#}"
    );

    // The metadata needs no token; it names the issuer and this resource.
    let md = send(
        &url.replace("/mcp", "/.well-known/oauth-protected-resource/mcp"),
        &[],
        None,
    )
    .await;
    assert_eq!(md.status, 200, "{}", md.body);
    let md: Value = serde_json::from_str(&md.body).unwrap();
    assert_eq!(md["resource"], audience.as_str());
    assert_eq!(md["authorization_servers"][0], iss.as_str());

    // Alice (the reader role) sees the nodes; Bob (no role) is refused by the API server itself.
    let a = list_nodes(&url, &alice, &selector).await;
    assert_ne!(a["result"]["isError"], true, "alice: {a}");
    assert_eq!(nodes_in(&a), Some(1), "alice: {a}");
    let b = list_nodes(&url, &bob, &selector).await;
    let text = b.to_string();
    assert!(
        b["result"]["isError"] == true
            && text.contains("forbidden")
            && text.contains(User::Nobody.name()),
        "bob got an answer he has no right to: {b}"
    );

    // A node tool: Alice's probe pod is created, run and deleted as Alice; Bob may not create one.
    let a = call(&url, &alice, "get_gpu_health", json!({"node_name": node})).await;
    assert_ne!(a["result"]["isError"], true, "alice's probe: {a}");
    let b = call(&url, &bob, "get_gpu_health", json!({"node_name": node})).await;
    let text = b.to_string();
    assert!(
        b["result"]["isError"] == true && text.contains(User::Nobody.name()),
        "bob's probe ran: {b}"
    );
    eprintln!("bob's node tool: {}", b["result"]["content"][0]["text"]);
    assert_eq!(
        tb.pods(&ns),
        Vec::<String>::new(),
        "a probe pod outlived its call"
    );

    // Hostile tokens: 401 with the challenge, nothing behind.
    let other = rsa_key("k1");
    let hs = {
        // An HMAC token keyed with the public key's modulus: the algorithm-confusion forgery.
        let n = match &key.jwk.algorithm {
            jsonwebtoken::jwk::AlgorithmParameters::RSA(r) => r.n.clone(),
            _ => unreachable!(),
        };
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("k1".into());
        encode(
            &h,
            &claims("launcher-operator"),
            &EncodingKey::from_secret(n.as_bytes()),
        )
        .unwrap()
    };
    let unsigned = {
        use base64::Engine;
        let b = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        format!(
            "{}.{}.",
            b.encode(r#"{"alg":"none","typ":"JWT"}"#),
            b.encode(claims("launcher-operator").to_string())
        )
    };
    let sa_token = tb
        .kubectl(&["-n", &ns, "create", "token", "default"])
        .trim()
        .to_string();
    let mut wrong_aud = claims("launcher-operator");
    wrong_aud["aud"] = json!("kubernetes");
    let mut expired = claims("launcher-operator");
    expired["exp"] = json!(now() - 600);
    let mut other_iss = claims("launcher-operator");
    other_iss["iss"] = json!("http://127.0.0.1:1/other");
    let mut system = claims("system:admin");
    system["groups"] = json!(["system:masters"]);
    for (t, what) in [
        (None, "no token"),
        (Some(token(key, wrong_aud)), "another audience"),
        (Some(token(key, expired)), "expired"),
        (Some(token(key, other_iss)), "another issuer"),
        (
            Some(token(&other, claims("launcher-operator"))),
            "another key with the same kid",
        ),
        (Some(unsigned), "unsigned"),
        (Some(hs), "HMAC with the public key"),
        (Some(sa_token), "a Kubernetes service-account token"),
        (Some(token(key, system)), "a system name"),
        (Some("not-a-jwt".into()), "garbage"),
    ] {
        let a = rpc(
            &url,
            t.as_deref(),
            "tools/call",
            Some("list_gpu_nodes"),
            json!({"name": "list_gpu_nodes", "arguments": {"label_selector": selector}}),
            false,
        )
        .await;
        assert_eq!(a.status, 401, "{what}: {} {}", a.status, a.body);
        let challenge = a
            .headers
            .get("www-authenticate")
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer ")
                && challenge.contains("resource_metadata=\"http://127.0.0.1:")
                && challenge.contains("scope=\"gpu-mcp\""),
            "{what}: {challenge}"
        );
        assert!(!a.body.contains("nodes"), "{what}: {}", a.body);
    }
    // A token in the URL is refused outright.
    let q = send(&format!("{url}?access_token={alice}"), &[], Some(json!({}))).await;
    assert_eq!(q.status, 400, "{}", q.body);
    // DNS rebinding: another Host, a browser Origin not listed.
    let auth = format!("Bearer {alice}");
    for (h, v, what) in [
        ("host", "evil.example.com", "Host"),
        ("origin", "http://evil.example.com", "Origin"),
    ] {
        let a = send(
            &url,
            &[
                ("authorization", &auth),
                (h, v),
                ("mcp-protocol-version", V26),
            ],
            Some(json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {}})),
        )
        .await;
        assert_eq!(a.status, 403, "{what}: {}", a.body);
    }
    // The server's own origin is not a cross-origin request (the MCP conformance suite's DNS-rebinding
    // scenario sends it and expects an answer).
    let own = url.trim_end_matches("/mcp").to_string();
    let a = rpc_with(
        &url,
        &[("origin", &own)],
        Some(&alice),
        "tools/call",
        Some("list_gpu_nodes"),
        json!({"name": "list_gpu_nodes", "arguments": {}}),
        false,
    )
    .await;
    assert_eq!(a.status, 200, "own origin {own}: {}", a.body);
    assert!(
        a.json()["result"].is_object(),
        "own origin {own}: {}",
        a.body
    );

    // 2025-11-25: a session, opened by Alice, is hers; Bob's valid token on it finds no session.
    let v25 = "2025-11-25";
    let (sid, init) = open_session(&url, &alice, &[], "e2e-http").await;
    assert_eq!(init["protocolVersion"], v25, "{init}");
    let in_session = |tok: String, sid: String, body: Value| {
        let url = url.clone();
        async move {
            let auth = format!("Bearer {tok}");
            send(
                &url,
                &[
                    ("authorization", auth.as_str()),
                    ("mcp-session-id", sid.as_str()),
                    ("mcp-protocol-version", "2025-11-25"),
                ],
                Some(body),
            )
            .await
        }
    };
    let n = in_session(
        alice.clone(),
        sid.clone(),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(n.status, 202, "{}", n.body);
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "list_gpu_nodes", "arguments": {"label_selector": selector}}});
    let a = in_session(alice.clone(), sid.clone(), list.clone()).await;
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        nodes_in(&a.json()),
        Some(1),
        "alice in her session: {}",
        a.body
    );
    let b = in_session(bob.clone(), sid.clone(), list.clone()).await;
    assert_eq!(b.status, 404, "bob on alice's session: {}", b.body);
    let f = in_session(alice.clone(), "forged-session-id".into(), list).await;
    assert_eq!(f.status, 404, "a session never opened: {}", f.body);

    // 2026-07-28: a task only where the request itself declares the tasks extension (its `_meta`), never
    // from an earlier request's declaration.
    let plain = rpc(
        &url,
        Some(&alice),
        "tools/call",
        Some("scan_gpu_nodes"),
        json!({"name": "scan_gpu_nodes", "arguments": {"label_selector": selector}}),
        false,
    )
    .await
    .json();
    assert!(
        plain["result"]["structuredContent"]["nodes_total"] == 1,
        "a request without the extension got a task: {plain}"
    );

    // A task is its person's: Bob cannot read or cancel Alice's, nor learn that it exists.
    let started = rpc(
        &url,
        Some(&alice),
        "tools/call",
        Some("scan_gpu_nodes"),
        json!({"name": "scan_gpu_nodes", "arguments": {"label_selector": selector}}),
        true,
    )
    .await
    .json();
    let id = started["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {started}"))
        .to_string();
    // `method` (tasks/get, tasks/cancel) on the task, as the token's person.
    let on_task = |method: &'static str, tok: String| {
        let url = url.clone();
        let id = id.clone();
        async move {
            rpc(
                &url,
                Some(&tok),
                method,
                Some(&id),
                json!({"taskId": id}),
                true,
            )
            .await
            .json()
        }
    };
    let get = |tok: String| on_task("tasks/get", tok);
    let mine = get(alice.clone()).await;
    assert!(mine.get("result").is_some(), "alice's own task: {mine}");
    let theirs = get(bob.clone()).await;
    assert!(
        theirs.get("error").is_some() && theirs.to_string().contains("no task"),
        "bob read alice's task: {theirs}"
    );
    let cancel = on_task("tasks/cancel", bob.clone()).await;
    assert!(
        cancel.get("error").is_some() && cancel.to_string().contains("no task"),
        "bob cancelled alice's task: {cancel}"
    );
    // Alice's own cancel is taken.
    let cancel = on_task("tasks/cancel", alice.clone()).await;
    assert!(cancel.get("result").is_some(), "alice's cancel: {cancel}");
    // Her one task slot (tasks_per_person: 1) is free once the cancelled task has settled.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let t = get(alice.clone()).await;
        let status = t["result"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if ["cancelled", "completed", "failed"].contains(&status.as_str()) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the cancelled task never settled: {t}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The server stopped mid-task (a replica's SIGTERM): Alice's task on a node whose probe never starts is
    // cancelled and its pod deleted before the process exits.
    let stuck = unique("http-stuck");
    let stuck_group = unique("http-stuck");
    tb.add_nodes(&[FakeNode::without_kubelet(&stuck, true).label("e2e-group", &stuck_group)]);
    let t = rpc(
        &url,
        Some(&alice),
        "tools/call",
        Some("scan_gpu_nodes"),
        json!({"name": "scan_gpu_nodes", "arguments": {"label_selector": format!("e2e-group={stuck_group}")}}),
        true,
    )
    .await
    .json();
    assert!(t["result"]["taskId"].is_string(), "{t}");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while tb.pods(&ns).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the task's probe pod never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t0 = std::time::Instant::now();
    drop(people);
    let stopped = t0.elapsed();
    assert_eq!(
        tb.pods(&ns),
        Vec::<String>::new(),
        "the stopped server left its person's probe pod"
    );
    eprintln!("server stopped mid-task: exited with no probe pod left after {stopped:?}");
}

/// A 2025-11-25 session over HTTP (`initialize`, `mcp-session-id`) as the token's person.
struct Session25 {
    url: String,
    auth: String,
    sid: String,
}

impl Session25 {
    /// `initialize` and `notifications/initialized`; the initialize result beside the session.
    async fn open(url: &str, token: &str) -> (Session25, Value) {
        let (sid, init) = open_session(url, token, &[], "e2e-http-tasks").await;
        let s = Session25 {
            url: url.to_string(),
            auth: format!("Bearer {token}"),
            sid,
        };
        let n = s
            .send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        assert_eq!(n.status, 202, "{}", n.body);
        (s, init)
    }

    async fn send(&self, body: Value) -> Answer {
        send(
            &self.url,
            &[
                ("authorization", self.auth.as_str()),
                ("mcp-session-id", self.sid.as_str()),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            Some(body),
        )
        .await
    }

    /// One request: its JSON-RPC response.
    async fn rpc(&self, method: &str, params: Value) -> Value {
        let a = self
            .send(json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}))
            .await;
        assert_eq!(a.status, 200, "{method}: {}", a.body);
        a.json()
    }
}

/// Protocol 2025-11-25's own tasks (SEP-1686) over HTTP: the session's `initialize` declares them and
/// `tools/list` marks the long tools; a `tools/call` with `params.task` answers a task, `tasks/get` and
/// `tasks/result` (the tool's result, naming its task) read it, as its person only; beyond the person's
/// running-task limit a long tool is refused with the reason; `tasks/cancel` deletes the probe pod and answers
/// the task cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_2025_11_25_session_runs_tasks_of_its_person() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-http25");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let group = unique("http25");
    let stuck_group = unique("http25-stuck");
    tb.add_nodes(&[
        FakeNode::gpu(&unique("http25-0"), "dgx-h100-xid79").label("e2e-group", &group),
        FakeNode::without_kubelet(&unique("http25-stuck"), true).label("e2e-group", &stuck_group),
    ]);
    let selector = format!("e2e-group={group}");

    let people = Issued::start(
        tb,
        &ns,
        "scopes: [gpu-mcp]\nlimits: {tasks_per_person: 1}\n",
    )
    .await;
    let url = people.server.url.clone();
    let alice = people.token(User::Reader.name());
    let bob = people.token(User::Nobody.name());

    let (a, init) = Session25::open(&url, &alice).await;
    assert_eq!(init["protocolVersion"], "2025-11-25", "{init}");
    assert!(
        init["capabilities"]["tasks"]["requests"]["tools"]["call"].is_object(),
        "no capabilities.tasks: {init}"
    );
    let listed = a.rpc("tools/list", json!({})).await;
    let support = |name: &str| {
        listed["result"]["tools"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["name"] == name))
            .map(|t| t["execution"]["taskSupport"].clone())
            .unwrap_or_else(|| panic!("{name} not listed: {listed}"))
    };
    assert_eq!(support("scan_gpu_nodes"), "optional");
    assert_eq!(support("list_gpu_nodes"), Value::Null);

    let scan = |sel: &str, task: bool| {
        let mut p = json!({"name": "scan_gpu_nodes", "arguments": {"label_selector": sel}});
        if task {
            p["task"] = json!({"ttl": 60000});
        }
        p
    };
    let created = a.rpc("tools/call", scan(&selector, true)).await;
    let task = &created["result"]["task"];
    let id = task["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {created}"))
        .to_string();
    assert_eq!(task["status"], "working", "{created}");
    assert!(task["ttl"].as_u64().is_some_and(|t| t > 0), "{created}");
    assert!(task["pollInterval"].as_u64().is_some(), "{created}");
    let got = a.rpc("tasks/get", json!({"taskId": id})).await;
    assert_eq!(got["result"]["taskId"], id.as_str(), "{got}");
    // Bob, in a session of his own, cannot read Alice's task nor learn that it exists.
    let (b, _) = Session25::open(&url, &bob).await;
    for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
        let theirs = b.rpc(method, json!({"taskId": id})).await;
        assert!(
            theirs.get("error").is_some() && theirs.to_string().contains("no task"),
            "bob's {method} on alice's task: {theirs}"
        );
    }
    let result = a.rpc("tasks/result", json!({"taskId": id})).await;
    let r = &result["result"];
    assert_eq!(r["structuredContent"]["nodes_total"], 1, "{result}");
    assert_eq!(
        r["structuredContent"]["needs_attention_total"], 1,
        "{result}"
    );
    assert_eq!(
        r["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        id.as_str(),
        "{result}"
    );
    let done = a.rpc("tasks/get", json!({"taskId": id})).await;
    assert_eq!(done["result"]["status"], "completed", "{done}");

    // A task whose probe never starts holds Alice's one task slot: another long call is refused, with the
    // reason (run plain, it would escape the bound on her tasks).
    let stuck = a
        .rpc(
            "tools/call",
            scan(&format!("e2e-group={stuck_group}"), true),
        )
        .await;
    let stuck_id = stuck["result"]["task"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {stuck}"))
        .to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while tb.pods(&ns).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the task's probe pod never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = a.rpc("tools/call", scan(&selector, true)).await;
    assert_eq!(
        refused["error"]["code"],
        gpu_mcp_too_many_tasks(),
        "beyond the limit, expected a refusal: {refused}"
    );
    let why = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(why.contains("at most 1 per person"), "{why}");
    assert!(tb.pods(&ns).len() <= 1, "the refused call started a probe");

    let t0 = std::time::Instant::now();
    let cancelled = a.rpc("tasks/cancel", json!({"taskId": stuck_id})).await;
    let acked = t0.elapsed();
    assert_eq!(cancelled["result"]["status"], "cancelled", "{cancelled}");
    if let Err(left) = tb.wait_no_pods(&ns, Duration::from_secs(10)) {
        panic!("probe pods left 10 s after tasks/cancel: {left:?}");
    }
    let gone = a.rpc("tasks/result", json!({"taskId": stuck_id})).await;
    assert!(
        gone.get("error").is_some() && gone.to_string().contains("cancelled"),
        "{gone}"
    );
    eprintln!("2025-11-25 tasks/cancel over HTTP: cancelled, pod deleted, answered in {acked:?}");
    drop(people);
}

/// A free loopback port (bound and released: the process given it binds it next).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// dex, a real OpenID provider (built by tests/testbed/build.sh from the Go module proxy), killed on drop.
struct Dex(Child);

impl Drop for Dex {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The bcrypt hash of "password" (dex's own examples/config-dev.yaml).
const PASSWORD_HASH: &str = "$2a$10$2b2cU8CPhOTaGrs1HRQuAueS7JTT5ZHsHSzYiFPm1leZck7Mc8T4W";

/// An access token from dex's password grant for `email`, with `scope`.
async fn dex_token(issuer: &str, ca: &str, email: &str, scope: &str) -> String {
    let out = tokio::process::Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "--cacert",
            ca,
            "-u",
            "mcp-host:mcp-host-secret",
        ])
        .args(["--data-urlencode", "grant_type=password"])
        .args(["--data-urlencode", &format!("username={email}")])
        .args(["--data-urlencode", "password=password"])
        .args(["--data-urlencode", &format!("scope={scope}")])
        .arg(format!("{issuer}/token"))
        .output()
        .await
        .expect("curl");
    let body = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(&body)
        .unwrap_or_else(|_| panic!("dex token for {email}: {body} {out:?}"));
    v["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("dex token for {email}: {v}"))
        .to_string()
}

/// A second kube-apiserver of the testbed (same etcd, RBAC and objects) with more flags. It stops when its
/// stdin closes: on drop, and when this test process dies any other way (testbed.sh apiserver).
struct ExtraApiServer {
    child: Child,
    url: String,
}

impl Drop for ExtraApiServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn extra_apiserver(tb: &Testbed, flags: &[String]) -> ExtraApiServer {
    let dir = tb.dir.join(unique("kas"));
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("kube-apiserver.log")).unwrap();
    let child = Command::new("bash")
        .arg(crate::testbed::repo_root().join("tests/testbed/testbed.sh"))
        .args(["apiserver", tb.dir.to_str().unwrap(), &port.to_string()])
        .args(flags)
        .env("TESTBED_BIN", testbed_bin())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("testbed.sh apiserver");
    ExtraApiServer {
        child,
        url: format!("https://127.0.0.1:{port}"),
    }
}

/// [`extra_apiserver`] that also trusts `issuer` through a structured authentication configuration
/// (claims mapped as the server's config maps them).
fn trusting_apiserver(tb: &Testbed, issuer: &str, ca_pem: &str, prefix: &str) -> ExtraApiServer {
    let authn = tb.dir.join(unique("authentication")).with_extension("yaml");
    let ca_block: String = ca_pem.lines().map(|l| format!("      {l}\n")).collect();
    std::fs::write(
        &authn,
        format!(
            "apiVersion: apiserver.config.k8s.io/v1\nkind: AuthenticationConfiguration\njwt:\n- issuer:\n    \
             url: {issuer}\n    audiences: [kubernetes]\n    certificateAuthority: |\n{ca_block}  \
             claimMappings:\n    username: {{claim: email, prefix: '{prefix}'}}\n    groups: {{claim: groups, \
             prefix: '{prefix}'}}\n"
        ),
    )
    .unwrap();
    extra_apiserver(
        tb,
        &[format!("--authentication-config={}", authn.display())],
    )
}

/// `kubectl` against `server` with a bearer token: its output, or its error.
fn kubectl_with_token(
    tb: &Testbed,
    server: &str,
    token: &str,
    args: &[&str],
) -> Result<String, String> {
    let out = Command::new("kubectl")
        .args([
            "--kubeconfig=/dev/null",
            "--server",
            server,
            "--token",
            token,
        ])
        .args(["--certificate-authority", tb.var("TESTBED_CA")])
        .args(args)
        .output()
        .expect("kubectl");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        // `auth can-i` says "no" on stdout and exits 1.
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// dex as the issuer (HTTPS, its certificate from the testbed's CA): its JWT access tokens (password grant,
/// as an MCP host would get them after a login) are taken when they name this server (dex puts a trusted
/// peer's client ID in `aud`), refused when not, and the person's groups reach the API server: a person bound
/// by a group only gets that group's rights. A second API server of the testbed trusts the same dex
/// (structured authentication configuration, the same claims and prefix): the person's own token for it names
/// the same user and groups the server impersonates, so one RBAC binding holds either way, and a token for
/// either one is refused by the other (no passthrough in either direction).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_dex_act_as_the_person_and_their_groups() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-http-dex");
    tb.probe_namespace(&ns, User::Reader);
    let group = unique("http-dex");
    tb.add_nodes(&[FakeNode::gpu(&unique("dex-0"), "dgx-h100-healthy").label("e2e-group", &group)]);
    let selector = format!("e2e-group={group}");
    // Carol has no binding of her own: only her group's.
    let team = unique("gpu-team");
    tb.apply(&format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {team}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: k8s-gpu-mcp-reader}}\nsubjects: [{{apiGroup: rbac.authorization.k8s.io, kind: Group, name: 'dex:{team}'}}]\n"
    ));

    let dex_port = free_port();
    let issuer = format!("https://127.0.0.1:{dex_port}/dex");
    let dir = tb.dir.join(unique("dex"));
    std::fs::create_dir_all(&dir).unwrap();
    // dex's serving certificate, signed by the testbed's CA.
    let ca = tb.var("TESTBED_CA").to_string();
    let ca_key = std::path::Path::new(&ca).with_file_name("ca.key");
    let sh = format!(
        "set -e; cd {d}; openssl ecparam -name prime256v1 -genkey -noout -out dex.key; \
         openssl req -new -key dex.key -subj /CN=dex -out dex.csr; \
         printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > dex.ext; \
         openssl x509 -req -in dex.csr -CA {ca} -CAkey {k} -CAcreateserial -days 1 -extfile dex.ext -out dex.crt",
        d = dir.display(),
        k = ca_key.display()
    );
    let out = Command::new("bash").args(["-c", &sh]).output().unwrap();
    assert!(out.status.success(), "dex certificate: {out:?}");
    let carol = format!("carol-{team}@example.com");
    let dave = format!("dave-{team}@example.com");
    std::fs::write(
        dir.join("dex.yaml"),
        format!(
            r#"issuer: {issuer}
storage: {{type: memory}}
web: {{https: "127.0.0.1:{dex_port}", tlsCert: "{d}/dex.crt", tlsKey: "{d}/dex.key"}}
oauth2: {{passwordConnector: local, skipApprovalScreen: true}}
enablePasswordDB: true
staticClients:
- {{id: mcp-host, secret: mcp-host-secret, name: host, redirectURIs: ["http://127.0.0.1:1/callback"]}}
- {{id: k8s-gpu-mcp, secret: unused, name: server, redirectURIs: ["http://127.0.0.1:1/callback"], trustedPeers: [mcp-host]}}
- {{id: kubernetes, secret: unused, name: kubernetes, redirectURIs: ["http://127.0.0.1:1/callback"], trustedPeers: [mcp-host]}}
staticPasswords:
- {{email: "{carol}", hash: "{PASSWORD_HASH}", username: carol, userID: "1111-carol", groups: ["{team}"]}}
- {{email: "{dave}", hash: "{PASSWORD_HASH}", username: dave, userID: "2222-dave", groups: [elsewhere]}}
"#,
            d = dir.display()
        ),
    )
    .unwrap();
    let _dex = Dex(Command::new(testbed_bin().join("dex"))
        .args(["serve", dir.join("dex.yaml").to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("dex (tests/testbed/build.sh builds it)"));
    // dex answers once it listens.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", dex_port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "dex did not start in 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let port = free_port();
    let server = start(
        tb,
        &ns,
        &format!(
            "url: http://127.0.0.1:{port}/mcp\nissuer: {issuer}\nissuer_ca_file: {ca}\naudience: k8s-gpu-mcp\nuser_prefix: 'dex:'\ngroups_prefix: 'dex:'\n"
        ),
        &format!("127.0.0.1:{port}"),
    );
    let url = server.url.clone();
    let for_us = "openid email groups audience:server:client_id:k8s-gpu-mcp";
    let carol_t = dex_token(&issuer, &ca, &carol, for_us).await;
    let a = list_nodes(&url, &carol_t, &selector).await;
    assert_ne!(a["result"]["isError"], true, "carol (by her group): {a}");
    assert_eq!(nodes_in(&a), Some(1), "carol: {a}");
    let dave_t = dex_token(&issuer, &ca, &dave, for_us).await;
    let d = list_nodes(&url, &dave_t, &selector).await;
    assert!(
        d["result"]["isError"] == true && d.to_string().contains(&format!("dex:{dave}")),
        "dave (no binding) was answered: {d}"
    );
    // The official TypeScript SDK client, as a host: with the token, and without one (OAuth discovery).
    let sdk = crate::testbed::repo_root().join("tests/mcp-sdk");
    if !sdk.join("node_modules").exists() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&sdk)
            .output()
            .expect("npm (the SDK client test needs node and npm)");
        assert!(out.status.success(), "npm ci: {out:?}");
    }
    let ca_for_node = ca.clone();
    let out = tokio::task::spawn_blocking({
        let (url, carol_t, selector, issuer) = (
            url.clone(),
            carol_t.clone(),
            selector.clone(),
            issuer.clone(),
        );
        move || {
            Command::new("node")
                .arg(sdk.join("http-client.mjs"))
                .args([&url, &carol_t, &selector, &issuer])
                .env("NODE_EXTRA_CA_CERTS", &ca_for_node)
                .output()
                .expect("node")
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the SDK client over HTTP: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout).trim());

    // A token dex issued to the host for itself only (no audience scope): not for this server.
    let own = dex_token(&issuer, &ca, &carol, "openid email groups").await;
    let r = rpc(
        &url,
        Some(&own),
        "tools/call",
        Some("list_gpu_nodes"),
        json!({"name": "list_gpu_nodes", "arguments": {"label_selector": selector}}),
        false,
    )
    .await;
    assert_eq!(r.status, 401, "a token for another audience: {}", r.body);
    assert!(r.body.contains("audience"), "{}", r.body);

    // The API server trusting the same dex: Carol's own token for it (audience `kubernetes`) names the user
    // and groups the server impersonates her as, and her group's binding answers the same.
    let kas = trusting_apiserver(tb, &issuer, &std::fs::read_to_string(&ca).unwrap(), "dex:");
    let for_kas = "openid email groups audience:server:client_id:kubernetes";
    let carol_k = dex_token(&issuer, &ca, &carol, for_kas).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let who = loop {
        // Until it serves and has read dex's keys.
        match kubectl_with_token(tb, &kas.url, &carol_k, &["auth", "whoami", "-o", "json"]) {
            Ok(w) => break serde_json::from_str::<Value>(&w).unwrap(),
            Err(e) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the API server never took dex's token: {e}"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    let info = &who["status"]["userInfo"];
    assert_eq!(info["username"], format!("dex:{carol}"), "{who}");
    assert!(
        info["groups"]
            .as_array()
            .unwrap()
            .contains(&json!(format!("dex:{team}"))),
        "{who}"
    );
    let can = |tok: &str| {
        let (Ok(a) | Err(a)) =
            kubectl_with_token(tb, &kas.url, tok, &["auth", "can-i", "list", "nodes"]);
        a.lines().next().unwrap_or_default().trim().to_string()
    };
    assert_eq!(can(&carol_k), "yes", "carol by her group, as herself");
    let dave_k = dex_token(&issuer, &ca, &dave, for_kas).await;
    assert_eq!(can(&dave_k), "no", "dave, as himself");
    // No passthrough either way: the token for this server is refused by the API server, and the API
    // server's token by this server.
    let e = kubectl_with_token(tb, &kas.url, &carol_t, &["get", "nodes"]).unwrap_err();
    assert!(
        e.contains("Unauthorized"),
        "the MCP server's token at the API server: {e}"
    );
    let r = list_nodes_status(&url, &carol_k).await;
    assert_eq!(r, 401, "the API server's token at the MCP server");
}

async fn list_nodes_status(url: &str, token: &str) -> u16 {
    rpc(
        url,
        Some(token),
        "tools/call",
        Some("list_gpu_nodes"),
        json!({"name": "list_gpu_nodes", "arguments": {}}),
        false,
    )
    .await
    .status
}

/// Constrained impersonation (deploy/http/rbac-constrained.yaml; Kubernetes 1.35's alpha gate on a second API
/// server of the testbed, beta and on by default from 1.36): a server identity with only the constrained
/// grant serves people as before (a list, a probe pod on a node, another person refused as himself), `check`
/// names the bounded grant, and the same identity can neither act as a person beyond the tools' requests
/// (secrets) nor as `system:masters`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constrained_impersonation_bounds_the_server_to_the_tools_requests() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-http-cimp");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let group = unique("http-cimp");
    let node = unique("cimp-0");
    tb.add_nodes(&[FakeNode::gpu(&node, "dgx-h100-healthy").label("e2e-group", &group)]);
    // A service account of its own with only the constrained grant (the shipped role, bound to it).
    let rbac =
        std::fs::read_to_string(crate::testbed::repo_root().join("deploy/http/rbac.yaml")).unwrap();
    tb.apply(&rbac);
    let account = unique("cimp-server");
    tb.kubectl(&[
        "-n",
        "gpu-diagnostics",
        "create",
        "serviceaccount",
        &account,
    ]);
    let constrained = std::fs::read_to_string(
        crate::testbed::repo_root().join("deploy/http/rbac-constrained.yaml"),
    )
    .unwrap()
    .replace(
        "name: k8s-gpu-mcp-server-impersonates-constrained",
        &format!("name: {account}"),
    )
    .replace("name: k8s-gpu-mcp-server\n", &format!("name: {account}\n"));
    tb.apply(&constrained);
    let kas = extra_apiserver(
        tb,
        &["--feature-gates=ConstrainedImpersonation=true".into()],
    );
    let kubeconfig = account_kubeconfig(tb, &account, Some(&kas.url));
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while Command::new("kubectl")
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "auth",
            "whoami",
        ])
        .output()
        .map_or(true, |o| !o.status.success())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the second API server never served"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    let key = rsa_key("k1");
    let iss = issuer(vec![key.jwk.clone()]).await;
    let port = free_port();
    let audience = format!("http://127.0.0.1:{port}/mcp");
    let config = format!("url: {audience}\nissuer: {iss}\nuser_claim: preferred_username\n");
    // `check`: the grant is found, and named as the bounded one.
    let dir = tb.dir.join(unique("cimp"));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg_path = dir.join("http.yaml");
    std::fs::write(&cfg_path, &config).unwrap();
    let out = Command::new(LAUNCHER)
        .args([
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "check",
            "--output",
            "json",
        ])
        .args(["--http-config", cfg_path.to_str().unwrap()])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("only with the tools' verbs (constrained impersonation)"),
        "check: {report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = start_as(
        tb,
        kubeconfig.clone(),
        &ns,
        &config,
        &format!("127.0.0.1:{port}"),
        &["--mode", "operator"],
        &[],
    );
    let url = server.url.clone();
    let claims = |user: &str| {
        json!({"iss": iss, "aud": audience, "sub": format!("sub-{user}"), "exp": now() + 600,
               "iat": now(), "preferred_username": user})
    };
    let alice = token(&key, claims(User::Reader.name()));
    let bob = token(&key, claims(User::Nobody.name()));
    let selector = format!("e2e-group={group}");
    let a = list_nodes(&url, &alice, &selector).await;
    assert_eq!(nodes_in(&a), Some(1), "alice: {a}");
    let inv = call(
        &url,
        &alice,
        "get_gpu_inventory",
        json!({"node_name": node}),
    )
    .await;
    assert!(
        inv["result"]["isError"] != json!(true) && inv.to_string().contains("H100"),
        "alice's probe through constrained impersonation: {inv}"
    );
    let b = list_nodes(&url, &bob, &selector).await;
    assert!(
        b["result"]["isError"] == json!(true) && b.to_string().contains(User::Nobody.name()),
        "bob: {b}"
    );
    // An operator action as the operator: the patch, the audit's user (who they are) and the Node's Event.
    crate::operator::bind_operator(tb, User::Operator);
    tb.bind_reader(User::Operator);
    let op = token(&key, claims(User::Operator.name()));
    let c = call(
        &url,
        &op,
        "cordon_gpu_node",
        json!({"node_name": node, "reason": "e2e constrained", "confirm": node}),
    )
    .await;
    assert_eq!(
        c["result"]["structuredContent"]["audit"]["user"],
        User::Operator.name(),
        "{c}"
    );
    assert_eq!(c["result"]["structuredContent"]["result"], "done", "{c}");
    assert!(tb.pods(&ns).is_empty(), "a probe pod was left");
    // The identity's own limits, asked directly: a request no tool makes, and system:masters.
    let token_of = |kc: &std::path::Path| {
        let out = Command::new("kubectl")
            .args([
                "--kubeconfig",
                kc.to_str().unwrap(),
                "config",
                "view",
                "--raw",
                "-o",
            ])
            .arg("jsonpath={.users[0].user.token}")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let sa = token_of(&kubeconfig);
    let as_reader = ["--as", User::Reader.name()];
    let e = kubectl_with_token(
        tb,
        &kas.url,
        &sa,
        &[&as_reader[..], &["get", "secrets", "-A"]].concat(),
    )
    .unwrap_err();
    assert!(
        e.contains("impersonate-on:user-info:list"),
        "secrets as alice: {e}"
    );
    let e = kubectl_with_token(
        tb,
        &kas.url,
        &sa,
        &[
            "--as",
            "someone",
            "--as-group",
            "system:masters",
            "get",
            "nodes",
        ],
    )
    .unwrap_err();
    assert!(
        e.contains("Forbidden") || e.contains("forbidden"),
        "system:masters: {e}"
    );
    drop(server);
}

/// The bounded load benchmark of a shared server (`bash tests/bench/http.sh`; not a timed test): `HTTP_BENCH_PEOPLE`
/// people (default 50), each with their own token and identity (bound by a group to the reader role), send
/// `HTTP_BENCH_CALLS` calls each (default 10) of list_gpu_nodes, all people at once, each person's calls one after
/// another. Prints the wall time, calls per second, latency percentiles (first calls, which make the person's
/// clients, apart), 429s and the server's peak RSS. kwok measures the control plane, not a GPU node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: bash tests/bench/http.sh"]
async fn http_load_benchmark() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (people, calls) = (env("HTTP_BENCH_PEOPLE", 50), env("HTTP_BENCH_CALLS", 10));
    let tb = Testbed::shared();
    let ns = unique("e2e-http-load");
    tb.probe_namespace(&ns, User::Reader);
    let group = unique("http-load");
    let nodes: Vec<FakeNode> = (0..8)
        .map(|i| {
            FakeNode::gpu(&unique(&format!("load-{i}")), "dgx-h100-healthy")
                .label("e2e-group", &group)
        })
        .collect();
    tb.add_nodes(&nodes);
    let selector = format!("e2e-group={group}");
    let team = unique("load-team");
    tb.apply(&format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {team}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: k8s-gpu-mcp-reader}}\nsubjects: [{{apiGroup: rbac.authorization.k8s.io, kind: Group, name: {team}}}]\n"
    ));
    let key = rsa_key("k1");
    let iss = issuer(vec![key.jwk.clone()]).await;
    let port = free_port();
    let audience = format!("http://127.0.0.1:{port}/mcp");
    let server = start(
        tb,
        &ns,
        &format!("url: {audience}\nissuer: {iss}\nuser_claim: preferred_username\n"),
        &format!("127.0.0.1:{port}"),
    );
    let url = server.url.clone();
    let tokens: Vec<String> = (0..people)
        .map(|i| {
            token(
                &key,
                json!({"iss": iss, "aud": audience, "sub": format!("s{i}"), "exp": now() + 3600,
                       "preferred_username": format!("load-user-{i}"), "groups": [team]}),
            )
        })
        .collect();
    let t0 = std::time::Instant::now();
    let mut handles = Vec::new();
    for t in tokens {
        let (url, selector) = (url.clone(), selector.clone());
        handles.push(tokio::spawn(async move {
            let mut first = None;
            let mut rest = Vec::new();
            let mut refused = 0;
            for c in 0..calls {
                let s = std::time::Instant::now();
                let a = rpc(
                    &url,
                    Some(&t),
                    "tools/call",
                    Some("list_gpu_nodes"),
                    json!({"name": "list_gpu_nodes", "arguments": {"label_selector": selector}}),
                    false,
                )
                .await;
                let ms = s.elapsed().as_secs_f64() * 1000.0;
                if a.status == 429 {
                    refused += 1;
                    continue;
                }
                assert_eq!(a.status, 200, "{}", a.body);
                assert_eq!(nodes_in(&a.json()), Some(8));
                if c == 0 {
                    first = Some(ms);
                } else {
                    rest.push(ms);
                }
            }
            (first, rest, refused)
        }));
    }
    let (mut firsts, mut rest, mut refused) = (Vec::new(), Vec::new(), 0);
    for h in handles {
        let (f, r, x) = h.await.unwrap();
        firsts.extend(f);
        rest.extend(r);
        refused += x;
    }
    let wall = t0.elapsed().as_secs_f64();
    let pct = |v: &mut Vec<f64>, p: f64| {
        v.sort_by(|a, b| a.total_cmp(b));
        v.get(((v.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    let rss = std::fs::read_to_string(format!("/proc/{}/status", server.child.id()))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .map(|l| l.split_whitespace().nth(1).unwrap_or("?").to_string())
        .unwrap_or_default();
    println!(
        "http load (kwok, 8 nodes): {people} people x {calls} calls of list_gpu_nodes at once: {:.1} s wall, {:.0} calls/s; \
         first call per person p50 {:.0} ms p95 {:.0} ms; later calls p50 {:.0} ms p95 {:.0} ms p99 {:.0} ms; \
         {refused} refused (429); server peak RSS {rss} kB",
        wall,
        (people * calls) as f64 / wall,
        pct(&mut firsts, 0.5),
        pct(&mut firsts, 0.95),
        pct(&mut rest, 0.5),
        pct(&mut rest, 0.95),
        pct(&mut rest, 0.99),
    );
}

/// The server's memory as /proc says it: resident now and its peak, in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The value at fraction `p` of `v` (sorted here), in order.
fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(((v.len() as f64 - 1.0) * p).round() as usize)
        .copied()
        .unwrap_or(f64::NAN)
}

/// Floods (issue 62: limits that hold), each printed as one `flood:` line (bash tests/bench/flood.sh):
/// 1. one person's `FLOOD_CALLS` (default 200) calls at once, then `FLOOD_TASKS` (default 20) long calls as
///    tasks at once (a scan of a node whose probe never starts): how many ran, how many were refused (429;
///    -32029), the server's RSS;
/// 2. `FLOOD_KIDS` (default 256, at most 256) connections sending tokens of unknown key ids while the issuer's
///    key set hangs, for as long as one person's 100 valid calls take: their latency p50/p95 before and
///    during the flood, and how the flood was answered;
/// 3. `FLOOD_SESSIONS` (default 2,000) 2025-11-25 sessions of one person, then as many spread over
///    `FLOOD_PEOPLE` (default 100) people: RSS before and after, and how many of the first person's sessions
///    were forgotten (404) to keep the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: bash tests/bench/flood.sh"]
async fn http_flood_benchmark() {
    let env = |k: &str, d: usize| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let (n_calls, n_tasks) = (env("FLOOD_CALLS", 200), env("FLOOD_TASKS", 20));
    let (n_kids, n_sessions) = (env("FLOOD_KIDS", 256), env("FLOOD_SESSIONS", 2000));
    let n_people = env("FLOOD_PEOPLE", 100);
    let tb = Testbed::shared();
    let ns = unique("e2e-http-flood");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let group = unique("flood");
    let stuck = unique("flood-stuck");
    tb.add_nodes(&[
        FakeNode::gpu(&unique("flood-0"), "dgx-h100-healthy").label("e2e-group", &group),
        FakeNode::without_kubelet(&unique("flood-stuck"), true).label("e2e-group", &stuck),
    ]);
    let key = rsa_key("k1");
    let hang = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let iss = crate::oidc::issuer_that_may_hang(vec![key.jwk.clone()], hang.clone()).await;
    let port = free_port();
    let audience = format!("http://127.0.0.1:{port}/mcp");
    let server = start(
        tb,
        &ns,
        &format!("url: {audience}\nissuer: {iss}\nuser_claim: preferred_username\n"),
        &format!("127.0.0.1:{port}"),
    );
    let (url, pid) = (server.url.clone(), server.child.id());
    let claims = |user: &str| {
        json!({"iss": iss, "aud": audience, "sub": format!("sub-{user}"), "exp": now() + 3600,
               "iat": now(), "preferred_username": user})
    };
    let alice = token(&key, claims(User::Reader.name()));
    let list = json!({"name": "list_gpu_nodes", "arguments": {"label_selector": format!("e2e-group={group}")}});
    // Alice's clients are made by her first call, outside the figures.
    let first = rpc(
        &url,
        Some(&alice),
        "tools/call",
        Some("list_gpu_nodes"),
        list.clone(),
        false,
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.body);
    // The server fetched the key set just now; an unknown key id fetches it again only 30 s later.
    let fetched = std::time::Instant::now();
    let (rss0, _) = rss_kib(pid);

    // 1. One person's calls, then tasks, all at once.
    let t0 = std::time::Instant::now();
    let calls: Vec<_> = (0..n_calls)
        .map(|_| {
            let (url, tok, list) = (url.clone(), alice.clone(), list.clone());
            tokio::spawn(async move {
                rpc(
                    &url,
                    Some(&tok),
                    "tools/call",
                    Some("list_gpu_nodes"),
                    list,
                    false,
                )
                .await
                .status
            })
        })
        .collect();
    let (mut ran, mut refused, mut other) = (0, 0, 0);
    for c in calls {
        match c.await.unwrap() {
            200 => ran += 1,
            429 => refused += 1,
            _ => other += 1,
        }
    }
    let calls_wall = t0.elapsed();
    let (rss_calls, _) = rss_kib(pid);
    let scan = json!({"name": "scan_gpu_nodes", "arguments": {"label_selector": format!("e2e-group={stuck}")}});
    let tasks: Vec<_> = (0..n_tasks)
        .map(|_| {
            let (url, tok, scan) = (url.clone(), alice.clone(), scan.clone());
            tokio::spawn(async move {
                let a = rpc(
                    &url,
                    Some(&tok),
                    "tools/call",
                    Some("scan_gpu_nodes"),
                    scan,
                    true,
                )
                .await;
                let v = if a.status == 200 {
                    a.json()
                } else {
                    Value::Null
                };
                (a.status, v)
            })
        })
        .collect();
    let (mut started, mut t_refused, mut t_429) = (Vec::new(), 0, 0);
    for t in tasks {
        let (status, v) = t.await.unwrap();
        if status == 429 {
            t_429 += 1;
        } else if let Some(id) = v["result"]["taskId"].as_str() {
            started.push(id.to_string());
        } else if v["error"]["code"] == json!(-32029) {
            t_refused += 1;
        } else {
            panic!("a task call answered neither a task nor a refusal: {status} {v}");
        }
    }
    let (rss_tasks, _) = rss_kib(pid);
    assert!(
        ran > 0 && refused > 0,
        "the calls' bound did not show: {ran} ran, {refused} refused"
    );
    assert!(
        started.len() <= 4,
        "more tasks ran than the person's bound: {}",
        started.len()
    );
    println!(
        "flood: one person, {n_calls} calls at once: {ran} ran, {refused} refused (429), {other} other, {:.1} s; \
         {n_tasks} long calls as tasks at once: {} ran as tasks, {t_refused} refused (-32029), {t_429} refused \
         (429); server RSS {} MiB before, {} MiB after the calls, {} MiB with the tasks running",
        calls_wall.as_secs_f64(),
        started.len(),
        rss0 / 1024,
        rss_calls / 1024,
        rss_tasks / 1024
    );
    for id in &started {
        let c = rpc(
            &url,
            Some(&alice),
            "tasks/cancel",
            Some(id.as_str()),
            json!({"taskId": id}),
            true,
        )
        .await;
        assert_eq!(c.status, 200, "{}", c.body);
    }

    // 2. Unknown key ids while the issuer hangs, beside Alice's valid calls (tools/list: the gate and the
    // token's check, no cluster work).
    let valid = |n: usize| {
        let (url, tok) = (url.clone(), alice.clone());
        async move {
            let mut ms = Vec::new();
            for _ in 0..n {
                let s = std::time::Instant::now();
                let a = rpc(&url, Some(&tok), "tools/list", None, json!({}), false).await;
                assert_eq!(a.status, 200, "{}", a.body);
                ms.push(s.elapsed().as_secs_f64() * 1000.0);
            }
            ms
        }
    };
    let mut before = valid(100).await;
    tokio::time::sleep(Duration::from_secs(31).saturating_sub(fetched.elapsed())).await;
    hang.store(true, std::sync::atomic::Ordering::SeqCst);
    // Tokens of key ids the issuer never published: one signed token whose header is rewritten per id (the
    // server refuses an unknown id before it checks any signature, so each costs the flood nothing to make).
    let stranger = rsa_key("stranger");
    let signed = crate::oidc::token_with_kid(&stranger, "unknown", claims("flood"));
    let rest = signed.split_once('.').map(|(_, r)| r.to_string()).unwrap();
    let forge = move |i: usize| {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": format!("unknown-{i}")});
        format!(
            "{}.{rest}",
            base64::Engine::encode(&b64, header.to_string())
        )
    };
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // `n_kids` connections at a time, sending until the valid calls are measured.
    let flooders: Vec<_> = (0..n_kids.min(256))
        .map(|w| {
            let (url, stop, forge) = (url.clone(), stop.clone(), forge.clone());
            tokio::spawn(async move {
                let (mut refused, mut other, mut ms) = (0usize, 0usize, Vec::new());
                let mut i = w;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    let s = std::time::Instant::now();
                    let a = rpc(&url, Some(&forge(i)), "tools/list", None, json!({}), false).await;
                    ms.push(s.elapsed().as_secs_f64() * 1000.0);
                    if a.status == 401 {
                        refused += 1;
                    } else {
                        other += 1;
                    }
                    i += 256;
                }
                (refused, other, ms)
            })
        })
        .collect();
    let flood_t0 = std::time::Instant::now();
    let mut during = valid(100).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let (mut f_401, mut f_other, mut f_ms) = (0, 0, Vec::new());
    for f in flooders {
        let (r, o, ms) = f.await.unwrap();
        f_401 += r;
        f_other += o;
        f_ms.extend(ms);
    }
    let flood_wall = flood_t0.elapsed();
    hang.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(f_other, 0, "a token of an unknown key was not refused");
    println!(
        "flood: {} connections of tokens of unknown key ids, the issuer's key set hanging (60 s): {f_401} sent \
         in {:.1} s ({:.0}/s), all refused (401), answered p50 {:.0} ms p95 {:.0} ms max {:.0} ms; a valid \
         person's tools/list p50/p95 {:.0}/{:.0} ms before, {:.0}/{:.0} ms during",
        n_kids.min(256),
        flood_wall.as_secs_f64(),
        f_401 as f64 / flood_wall.as_secs_f64(),
        percentile(&mut f_ms, 0.5),
        percentile(&mut f_ms, 0.95),
        percentile(&mut f_ms, 1.0),
        percentile(&mut before, 0.5),
        percentile(&mut before, 0.95),
        percentile(&mut during, 0.5),
        percentile(&mut during, 0.95),
    );

    // 3. Sessions: one person's flood, then many people's.
    let (rss_s0, _) = rss_kib(pid);
    // Eight at a time (within the person's 16 requests in flight).
    let opener = |tok: String, n: usize| {
        let url = url.clone();
        async move {
            let open = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
            let opened: Vec<_> = (0..n)
                .map(|_| {
                    let (url, tok, open) = (url.clone(), tok.clone(), open.clone());
                    tokio::spawn(async move {
                        let _slot = open.acquire_owned().await;
                        open_session(&url, &tok, &[], "e2e-flood").await.0
                    })
                })
                .collect();
            let mut ids = Vec::new();
            for o in opened {
                ids.push(o.await.unwrap());
            }
            ids
        }
    };
    let s0 = std::time::Instant::now();
    let alice_sessions = opener(alice.clone(), n_sessions).await;
    let one_wall = s0.elapsed();
    let (rss_s1, _) = rss_kib(pid);
    let people: Vec<String> = (0..n_people)
        .map(|i| token(&key, claims(&format!("p-{i}"))))
        .collect();
    let each = n_sessions.div_ceil(n_people.max(1));
    let mut all = Vec::new();
    for t in people {
        all.push(tokio::spawn(opener(t, each)));
    }
    for a in all {
        a.await.unwrap();
    }
    let (rss_s2, hwm) = rss_kib(pid);
    let alice_auth = format!("Bearer {alice}");
    let mut forgotten = 0;
    for sid in &alice_sessions {
        let a = send(
            &url,
            &[
                ("authorization", alice_auth.as_str()),
                ("mcp-session-id", sid.as_str()),
                ("mcp-protocol-version", "2025-11-25"),
            ],
            Some(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list", "params": {}})),
        )
        .await;
        if a.status == 404 {
            forgotten += 1;
        }
    }
    assert!(
        forgotten >= n_sessions.saturating_sub(64),
        "one person's sessions were not bounded: {forgotten} of {n_sessions} forgotten"
    );
    println!(
        "flood: {n_sessions} sessions of one person ({:.1} s), then {} of {n_people} people: server RSS {} MiB \
         before, {} MiB after one person's, {} MiB after everyone's (peak {} MiB); {forgotten} of the person's \
         {n_sessions} sessions forgotten and closed to keep 64 per person",
        one_wall.as_secs_f64(),
        each * n_people,
        rss_s0 / 1024,
        rss_s1 / 1024,
        rss_s2 / 1024,
        hwm / 1024
    );
    drop(server);
}

/// One person's load: with `calls_per_person: 2`, two long calls whose probes never start hold both of
/// the person's slots for as long as their responses stream (a call's SSE stream is the call in flight,
/// not done when its headers leave), a third request gets 429 with Retry-After, another person is not
/// held up; once the clients go the gate's slots come back, and the calls keep the person's call slots until
/// they end (cancelled, with their pods deleted, or running on); sessions' standalone GET streams hold none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_persons_streaming_calls_hold_their_slots() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-http-slots");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    tb.bind_reader(User::Operator);
    let group = unique("slots");
    let stuck_group = unique("slots-stuck");
    tb.add_nodes(&[
        FakeNode::gpu(&unique("slots-0"), "dgx-h100-healthy").label("e2e-group", &group),
        FakeNode::without_kubelet(&unique("slots-stuck"), true).label("e2e-group", &stuck_group),
    ]);
    let people = Issued::start(
        tb,
        &ns,
        "scopes: [gpu-mcp]\nlimits: {calls_per_person: 2, tasks_per_person: 1}\n",
    )
    .await;
    let url = people.server.url.clone();
    let alice = people.token(User::Reader.name());
    let other = people.token(User::Operator.name());
    let stuck = format!("e2e-group={stuck_group}");
    let mut held = Vec::new();
    for _ in 0..2 {
        let (url, alice, stuck) = (url.clone(), alice.clone(), stuck.clone());
        held.push(tokio::spawn(async move {
            call(
                &url,
                &alice,
                "scan_gpu_nodes",
                json!({"label_selector": stuck}),
            )
            .await
        }));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while tb.pods(&ns).len() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the two calls' probe pods never appeared: {:?}",
            tb.pods(&ns)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let selector = format!("e2e-group={group}");
    let list = |tok: String| {
        let (url, selector) = (url.clone(), selector.clone());
        async move {
            rpc(
                &url,
                Some(&tok),
                "tools/call",
                Some("list_gpu_nodes"),
                json!({"name": "list_gpu_nodes", "arguments": {"label_selector": selector}}),
                false,
            )
            .await
        }
    };
    let third = list(alice.clone()).await;
    assert_eq!(
        third.status, 429,
        "a third request while two stream: {}",
        third.body
    );
    assert!(
        third.headers.contains_key("retry-after"),
        "{:?}",
        third.headers
    );
    assert!(third.body.contains("at most 2"), "{}", third.body);
    let theirs = list(other.clone()).await;
    assert_eq!(
        theirs.status, 200,
        "another person is not held up: {}",
        theirs.body
    );
    // The clients go: their streams end and the gate's slots come back. What happens to the calls depends on
    // when rmcp sees the hang-up: it may cancel them (each deletes its probe pod, then frees its slot) or let
    // them run on, holding the person's call slots. Either way no third call runs beside two: a call answered
    // now finds the first two ended and their pods gone; otherwise it is refused as the person's third.
    for h in held {
        h.abort();
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let after = loop {
        let again = list(alice.clone()).await;
        if again.status == 200 {
            break again;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the gate's slots never came back after the clients went: {} {}",
            again.status,
            again.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let v = after.json();
    if v["error"]["code"] == gpu_mcp_too_many_tasks() {
        assert!(
            v["error"]["message"].as_str().is_some_and(
                |m| m.contains("2 tool calls of yours are running (at most 2 per person")
            ),
            "{v}"
        );
    } else {
        assert_eq!(nodes_in(&v), Some(1), "{v}");
        let left: Vec<String> = tb
            .pods(&ns)
            .into_iter()
            .filter(|p| p.contains("slots-stuck"))
            .collect();
        assert!(
            left.is_empty(),
            "a third call was answered while the first two's probe pods remain: {left:?}"
        );
    }
    // Their probe pods go: the calls end, and their slots with them.
    tb.kubectl(&["-n", &ns, "delete", "pods", "--all", "--wait=false"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let again = list(alice.clone()).await;
        if again.status == 200 && nodes_in(&again.json()).is_some() {
            assert_eq!(nodes_in(&again.json()), Some(1), "{}", again.body);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slots never came back after the calls ended: {} {}",
            again.status,
            again.body
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A session's standalone GET stream is no call in flight: a host keeps one open for the session's life,
    // and two open sessions with theirs leave both slots to the person's calls.
    let mut streams = Vec::new();
    for _ in 0..2 {
        let (s, _) = Session25::open(&url, &alice).await;
        streams.push(standalone_stream(&s).await);
    }
    let during = list(alice.clone()).await;
    assert_eq!(
        during.status, 200,
        "a call while two sessions' GET streams are open: {}",
        during.body
    );
    drop(streams);
}

/// The session's standalone SSE stream (GET), open: its response, whose body is left to stream.
async fn standalone_stream(s: &Session25) -> hyper::Response<hyper::body::Incoming> {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let req = hyper::Request::get(&s.url)
        .header("accept", "text/event-stream")
        .header("authorization", &s.auth)
        .header("mcp-session-id", &s.sid)
        .header("mcp-protocol-version", "2025-11-25")
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(30), client.request(req))
        .await
        .expect("no answer in 30 s")
        .expect("GET");
    assert_eq!(resp.status(), 200, "the session's GET stream: {resp:?}");
    resp
}

/// The JSON-RPC code of a call refused past the task limit (launcher/src/mcp/framework/tasks.rs).
fn gpu_mcp_too_many_tasks() -> i64 {
    -32029
}
