//! Two replicas of `serve --http` behind one Service address without session affinity (issue 55): each
//! names itself in the ids of its tasks and sessions, a request that reaches the other replica is forwarded
//! to it, and a stopped replica's task is answered plainly.
//!
//! The replicas are two launcher processes on two loopback addresses (127.0.0.2 and 127.0.0.3, one port);
//! their pods are Pod objects on the real API server whose status says where they serve, as a kubelet's
//! would (the testbed runs no controllers or kubelet for them). Each request goes to the replica a
//! round-robin Service would pick, with the Service's `Host`. The replicas find each other with the server's
//! own identity and deploy/http/rbac.yaml's Role.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::{Answer, issuer, now, open_session, rpc_with, rsa_key, send, start_with, token};
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};

/// A replica's pod as the API server holds it once its kubelet reports it running and ready at `ip`.
fn replica_pod(tb: &Testbed, ns: &str, name: &str, labels: &str, ip: &str) {
    tb.apply(&format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: {ns}, labels: {labels}}}\n\
         spec:\n  automountServiceAccountToken: false\n  containers: [{{name: server, image: \
         ghcr.io/k8s-gpu-mcp/launcher:v0.1.0}}]\n"
    ));
    let status = json!({"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                        "conditions": [{"type": "Ready", "status": "True"}]}});
    tb.kubectl(&[
        "-n",
        ns,
        "patch",
        "pod",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &status.to_string(),
    ]);
}

/// The Role and RoleBinding of deploy/http/rbac.yaml (reading the replicas' pods), for namespace `ns`.
fn replicas_role(tb: &Testbed, ns: &str) {
    let rbac =
        std::fs::read_to_string(crate::testbed::repo_root().join("deploy/http/rbac.yaml")).unwrap();
    let role: Vec<&str> = rbac
        .split("\n---\n")
        .filter(|d| d.contains("name: k8s-gpu-mcp-server-replicas"))
        .collect();
    assert_eq!(
        role.len(),
        2,
        "rbac.yaml: the replicas' Role and RoleBinding"
    );
    // Only the objects' own namespace moves; the subject stays the server's account in gpu-diagnostics.
    let docs = role
        .iter()
        .map(|d| {
            d.replace(
                "\n  namespace: gpu-diagnostics\n",
                &format!("\n  namespace: {ns}\n"),
            )
        })
        .collect::<Vec<_>>()
        .join("\n---\n");
    tb.apply(&docs);
}

fn error_of(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_forward_what_the_other_holds_and_a_stopped_ones_task_says_so() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-replicas");
    // Alice is the operator (operator mode: confirmations), Bob has no rights.
    tb.probe_namespace(&ns, User::Operator);
    tb.bind_reader(User::Operator);
    crate::operator::bind_operator(tb, User::Operator);
    let group = unique("replicas");
    let healthy = unique("replicas-0");
    tb.add_nodes(&[FakeNode::gpu(&healthy, "dgx-h100-healthy").label("e2e-group", &group)]);
    let stuck_group = unique("replicas-stuck");
    tb.add_nodes(&[
        FakeNode::without_kubelet(&unique("replicas-stuck"), true).label("e2e-group", &stuck_group)
    ]);

    // The replicas' namespace, their pods, and an impostor: a pod of that namespace without their labels.
    let srv = unique("mcp-srv");
    tb.kubectl(&["create", "namespace", &srv]);
    tb.kubectl(&["-n", &srv, "create", "serviceaccount", "default"]);
    replicas_role(tb, &srv);
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.2:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let impostor_hits = Arc::new(AtomicUsize::new(0));
    {
        let l = tokio::net::TcpListener::bind(format!("127.0.0.4:{port}"))
            .await
            .expect("the impostor's address");
        let hits = impostor_hits.clone();
        tokio::spawn(async move {
            while l.accept().await.is_ok() {
                hits.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    let labels = format!("{{app.kubernetes.io/name: k8s-gpu-mcp, e2e-replicas: {group}}}");
    let (pod_a, pod_b, impostor) = (unique("srv-a"), unique("srv-b"), unique("srv-x"));
    replica_pod(tb, &srv, &pod_a, &labels, "127.0.0.2");
    replica_pod(tb, &srv, &pod_b, &labels, "127.0.0.3");
    replica_pod(
        tb,
        &srv,
        &impostor,
        &format!("{{app.kubernetes.io/name: tenant, e2e-replicas: {group}}}"),
        "127.0.0.4",
    );

    let key = rsa_key("k1");
    let iss = issuer(vec![key.jwk.clone()]).await;
    let service = format!("127.0.0.1:{port}");
    let audience = format!("http://{service}/mcp");
    let config = format!(
        "url: {audience}\nissuer: {iss}\nuser_claim: preferred_username\nreplicas:\n  selector: \
         {labels}\n  port: {port}\n  namespace: {srv}\n"
    );
    let a = start_with(
        tb,
        &ns,
        &config,
        &format!("127.0.0.2:{port}"),
        &["--mode", "operator"],
        &[("POD_NAME", &pod_a)],
    );
    let b = start_with(
        tb,
        &ns,
        &config,
        &format!("127.0.0.3:{port}"),
        &["--mode", "operator"],
        &[("POD_NAME", &pod_b)],
    );
    let (via_a, via_b) = (a.url.clone(), b.url.clone());
    let claims = |user: &str| {
        json!({"iss": iss, "aud": audience, "sub": format!("sub-{user}"), "exp": now() + 600,
               "iat": now(), "preferred_username": user})
    };
    let alice = token(&key, claims(User::Operator.name()));
    let bob = token(&key, claims(User::Nobody.name()));
    let host = [("host", service.as_str())];
    let on_task = |url: String, tok: String, method: &'static str, id: String| async move {
        rpc_with(
            &url,
            &host,
            Some(&tok),
            method,
            Some(&id),
            json!({"taskId": id}),
            true,
        )
        .await
    };

    // A task started on replica A (a scan whose probe never starts: it runs until cancelled).
    let started = rpc_with(
        &via_a,
        &host,
        Some(&alice),
        "tools/call",
        Some("scan_gpu_nodes"),
        json!({"name": "scan_gpu_nodes", "arguments": {"label_selector": format!("e2e-group={stuck_group}")}}),
        true,
    )
    .await
    .json();
    let id = started["result"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no task: {started}"))
        .to_string();
    assert!(
        id.starts_with(&format!("{pod_a}.")),
        "the task id names its replica: {id}"
    );

    // Read through replica B: forwarded to A.
    let t0 = Instant::now();
    let got = on_task(via_b.clone(), alice.clone(), "tasks/get", id.clone()).await;
    let forwarded = t0.elapsed();
    assert_eq!(got.status, 200, "{}", got.body);
    let got = got.json();
    assert_eq!(got["result"]["taskId"], id.as_str(), "{got}");
    assert_eq!(got["result"]["status"], "working", "{got}");
    // Another person through B: A's answer, no such task of theirs.
    let theirs = on_task(via_b.clone(), bob.clone(), "tasks/get", id.clone())
        .await
        .json();
    assert!(error_of(&theirs).contains("no task"), "bob: {theirs}");
    // Ids naming a pod that is no replica (the impostor, a name never created): answered by B, nothing
    // connected to.
    let inner = id.rsplit_once('.').unwrap().1;
    for other in [impostor.clone(), unique("srv-none")] {
        let forged = format!("{other}.{inner}");
        let v = on_task(via_b.clone(), alice.clone(), "tasks/get", forged.clone())
            .await
            .json();
        let e = error_of(&v);
        assert!(
            e.contains(&format!("started on replica {other}")) && e.contains("has stopped"),
            "{forged}: {v}"
        );
    }
    assert_eq!(
        impostor_hits.load(Ordering::SeqCst),
        0,
        "a request was forwarded to a pod without the replicas' labels"
    );

    // A 2025-11-25 session opened on A, used through B.
    let alice_auth = format!("Bearer {alice}");
    let bob_auth = format!("Bearer {bob}");
    let (sid, _) = open_session(&via_a, &alice, &host, "e2e-replicas").await;
    assert!(sid.starts_with(&format!("{pod_a}.")), "session id {sid}");
    let in_session = |url: String, auth: String, body: Value| {
        let sid = sid.clone();
        async move {
            send(
                &url,
                &[
                    ("authorization", auth.as_str()),
                    ("mcp-session-id", sid.as_str()),
                    ("mcp-protocol-version", "2025-11-25"),
                    host[0],
                ],
                Some(body),
            )
            .await
        }
    };
    let n = in_session(
        via_b.clone(),
        alice_auth.clone(),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(n.status, 202, "{}", n.body);
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                      "params": {"name": "list_gpu_nodes", "arguments": {"label_selector": format!("e2e-group={group}")}}});
    let l = in_session(via_b.clone(), alice_auth.clone(), list.clone()).await;
    assert_eq!(l.status, 200, "{}", l.body);
    assert_eq!(
        l.json()["result"]["structuredContent"]["nodes"]
            .as_array()
            .map(Vec::len),
        Some(1),
        "{}",
        l.body
    );
    let stolen = in_session(via_b.clone(), bob_auth.clone(), list.clone()).await;
    assert_eq!(
        stolen.status, 404,
        "bob on alice's session: {}",
        stolen.body
    );

    // A 2025-11-25 task (issue 62): created in Alice's session on A, reached by its id through a session of
    // hers on B, at either replica (B forwards it to A; A answers a request of B's session itself); Bob's
    // session on B finds no task of his.
    let (sid_b, _) = open_session(&via_b, &alice, &host, "e2e-replicas-b").await;
    assert!(
        sid_b.starts_with(&format!("{pod_b}.")),
        "session id {sid_b}"
    );
    let (bob_sid, _) = open_session(&via_b, &bob, &host, "e2e-replicas-bob").await;
    let in_25 = |url: String, auth: String, sid: String, method: &'static str, params: Value| async move {
        send(
            &url,
            &[
                ("authorization", auth.as_str()),
                ("mcp-session-id", sid.as_str()),
                ("mcp-protocol-version", "2025-11-25"),
                host[0],
            ],
            Some(json!({"jsonrpc": "2.0", "id": 25, "method": method, "params": params})),
        )
        .await
    };
    for (who, s) in [(&alice_auth, &sid_b), (&bob_auth, &bob_sid)] {
        let n = in_25(
            via_b.clone(),
            who.clone(),
            s.clone(),
            "notifications/initialized",
            json!({}),
        )
        .await;
        assert!(n.status == 202 || n.status == 200, "{}", n.body);
    }
    let created = in_25(
        via_a.clone(),
        alice_auth.clone(),
        sid.clone(),
        "tools/call",
        json!({"name": "scan_gpu_nodes", "arguments": {"label_selector": format!("e2e-group={group}")},
               "task": {"ttl": 60000}}),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    let created = created.json();
    let id25 = created["result"]["task"]["taskId"]
        .as_str()
        .unwrap_or_else(|| panic!("no 2025-11-25 task: {created}"))
        .to_string();
    assert!(id25.starts_with(&format!("{pod_a}.")), "task id {id25}");
    let t0 = Instant::now();
    let result = in_25(
        via_b.clone(),
        alice_auth.clone(),
        sid_b.clone(),
        "tasks/result",
        json!({"taskId": id25}),
    )
    .await;
    let forwarded_25 = t0.elapsed();
    assert_eq!(result.status, 200, "{}", result.body);
    let result = result.json();
    assert_eq!(
        result["result"]["_meta"]["io.modelcontextprotocol/related-task"]["taskId"],
        id25.as_str(),
        "tasks/result through B's session: {result}"
    );
    assert_eq!(
        result["result"]["structuredContent"]["nodes_total"], 1,
        "{result}"
    );
    for url in [via_a.clone(), via_b.clone()] {
        let got = in_25(
            url.clone(),
            alice_auth.clone(),
            sid_b.clone(),
            "tasks/get",
            json!({"taskId": id25}),
        )
        .await
        .json();
        assert_eq!(
            got["result"]["status"], "completed",
            "tasks/get via {url}: {got}"
        );
        // Cancel reaches the task, which has ended: its replica's own answer.
        let cancel = in_25(
            url.clone(),
            alice_auth.clone(),
            sid_b.clone(),
            "tasks/cancel",
            json!({"taskId": id25}),
        )
        .await
        .json();
        assert!(
            error_of(&cancel).contains("has ended"),
            "tasks/cancel via {url}: {cancel}"
        );
    }
    for method in ["tasks/get", "tasks/result", "tasks/cancel"] {
        let theirs = in_25(
            via_b.clone(),
            bob_auth.clone(),
            bob_sid.clone(),
            method,
            json!({"taskId": id25}),
        )
        .await
        .json();
        assert!(
            error_of(&theirs).contains("no task") && theirs.get("result").is_none(),
            "bob's {method} on alice's task: {theirs}"
        );
    }
    // Alice's token on Bob's session, naming her task: the task is hers, but the session is not, and a task
    // request through it is still only ever answered for the token's person.
    let hers = in_25(
        via_b.clone(),
        alice_auth.clone(),
        bob_sid.clone(),
        "tasks/get",
        json!({"taskId": id25}),
    )
    .await
    .json();
    assert_eq!(hers["result"]["taskId"], id25.as_str(), "{hers}");

    // An operator action's confirmation (2026-07-28 input request) asked by A, answered through B: the
    // retry is forwarded to A, where the confirmation waits. Bob's retry with Alice's requestState is
    // refused and leaves it hers.
    let cordon = |url: String, tok: String, state: Option<String>| {
        let node = healthy.clone();
        async move {
            let mut params = json!({"name": "cordon_gpu_node",
                                    "arguments": {"node_name": node, "reason": "e2e replicas"}});
            if let Some(s) = state {
                params["requestState"] = json!(s);
                params["inputResponses"] =
                    json!({"confirm": {"action": "accept", "content": {"approve": true}}});
            }
            params["_meta"] = json!({
                "io.modelcontextprotocol/protocolVersion": "2026-07-28",
                "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
                "io.modelcontextprotocol/clientInfo": {"name": "e2e-replicas", "version": "1"},
            });
            let auth = format!("Bearer {tok}");
            send(
                &url,
                &[
                    ("authorization", auth.as_str()),
                    ("mcp-protocol-version", "2026-07-28"),
                    ("mcp-method", "tools/call"),
                    ("mcp-name", "cordon_gpu_node"),
                    host[0],
                ],
                Some(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params})),
            )
            .await
            .json()
        }
    };
    let unschedulable = || {
        let n: Value =
            serde_json::from_str(&tb.kubectl(&["get", "node", &healthy, "-o", "json"])).unwrap();
        n["spec"]["unschedulable"] == json!(true)
    };
    let asked = cordon(via_a.clone(), alice.clone(), None).await;
    let state = asked["result"]["requestState"]
        .as_str()
        .unwrap_or_else(|| panic!("no input request: {asked}"))
        .to_string();
    assert!(
        state.starts_with(&format!("{pod_a}.")),
        "requestState {state}"
    );
    let stolen = cordon(via_b.clone(), bob.clone(), Some(state.clone())).await;
    assert!(
        stolen.to_string().contains("requestState is unknown"),
        "bob answered alice's confirmation: {stolen}"
    );
    assert!(!unschedulable(), "bob's retry cordoned the node");
    let done = cordon(via_b.clone(), alice.clone(), Some(state.clone())).await;
    assert!(
        done["result"]["isError"] != json!(true) && unschedulable(),
        "alice's confirmation through B: {done}"
    );
    // The audit names Alice, not the server: in the answer, and on the Node's Event (created as her).
    let alice_name = User::Operator.name();
    assert_eq!(
        done["result"]["structuredContent"]["audit"]["user"], alice_name,
        "{done}"
    );
    let evs = crate::operator::events(tb, &healthy);
    let ev = evs
        .iter()
        .find(|e| e["action"] == "cordon_gpu_node")
        .unwrap_or_else(|| panic!("no cordon Event: {evs:#?}"));
    assert!(
        ev["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("user={alice_name}")),
        "{ev}"
    );

    // Replica A stops mid-task (SIGTERM): its task is cancelled and its probe pod deleted before it exits.
    let deadline = Instant::now() + Duration::from_secs(60);
    while tb.pods(&ns).is_empty() {
        assert!(
            Instant::now() < deadline,
            "the task's probe pod never appeared"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(a);
    assert_eq!(
        tb.pods(&ns),
        Vec::<String>::new(),
        "the stopped replica left a probe pod"
    );
    // Its pod still reads ready (its kubelet has not reported yet): the forward fails, and says so.
    let v = on_task(via_b.clone(), alice.clone(), "tasks/get", id.clone()).await;
    assert_eq!(v.status, 502, "{}", v.body);
    assert!(
        v.body.contains(&pod_a) && v.body.contains("did not answer"),
        "{}",
        v.body
    );
    // Its pod gone, as once the kubelet and the ReplicaSet are done: B answers where the task lived.
    tb.kubectl(&["-n", &srv, "delete", "pod", &pod_a, "--wait=true"]);
    let v = on_task(via_b.clone(), alice.clone(), "tasks/get", id.clone())
        .await
        .json();
    let e = error_of(&v);
    assert!(
        e.contains(&format!("started on replica {pod_a}"))
            && e.contains("has stopped")
            && e.contains("start the call again"),
        "{v}"
    );
    // Its 2025-11-25 task, asked through Alice's live session on B: B answers where it lived.
    let v = in_25(
        via_b.clone(),
        alice_auth.clone(),
        sid_b.clone(),
        "tasks/get",
        json!({"taskId": id25}),
    )
    .await
    .json();
    let e = error_of(&v);
    assert!(
        e.contains(&format!("started on replica {pod_a}")) && e.contains("has stopped"),
        "{v}"
    );
    let gone: Answer = in_session(via_b.clone(), alice_auth.clone(), list).await;
    assert_eq!(gone.status, 404, "{}", gone.body);
    assert!(gone.body.contains("open a new session"), "{}", gone.body);
    drop(b);
    eprintln!("replicas: tasks/get forwarded from B to A in {forwarded:?}");
    eprintln!(
        "replicas: a 2025-11-25 tasks/result through B's session answered by A in {forwarded_25:?}"
    );
}

/// The manifests of docs/team-server.md as the API server takes them (server-side dry run), and the server's
/// pod within the `restricted` Pod Security profile: dry-run into a namespace that warns on it, no warning.
#[test]
fn the_server_manifests_are_accepted_and_the_pod_is_restricted() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let root = crate::testbed::repo_root();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    tb.apply(&read("deploy/00-namespace.yaml"));
    let all = [
        "deploy/rbac.yaml",
        "deploy/http/rbac.yaml",
        "deploy/http/server.yaml",
    ]
    .map(read)
    .join("\n---\n");
    let dry = tb.kubectl_as(
        User::Admin,
        &["apply", "--dry-run=server", "-f", "-"],
        Some(&all),
    );
    let out = String::from_utf8_lossy(&dry.stdout);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    for obj in [
        "deployment.apps/k8s-gpu-mcp-server",
        "service/k8s-gpu-mcp-server",
        "configmap/k8s-gpu-mcp-server",
        "role.rbac.authorization.k8s.io/k8s-gpu-mcp-server-replicas",
    ] {
        assert!(out.contains(obj), "{obj} not in {out}");
    }
    let ns = unique("e2e-restricted");
    tb.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n  labels:\n    \
         pod-security.kubernetes.io/warn: restricted\n"
    ));
    let server = read("deploy/http/server.yaml")
        .replace("namespace: gpu-diagnostics", &format!("namespace: {ns}"));
    let dry = tb.kubectl_as(
        User::Admin,
        &["apply", "--dry-run=server", "-f", "-"],
        Some(&server),
    );
    let err = String::from_utf8_lossy(&dry.stderr);
    assert!(dry.status.success(), "{err}");
    assert!(
        !err.contains("PodSecurity"),
        "the server's pod is outside the restricted profile: {err}"
    );
}
