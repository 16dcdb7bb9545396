//! The team server as it runs in a cluster, on the real node: the image of deploy/server-image/build.sh
//! (this tree's launcher and node-probe) imported into containerd, a pod made from deploy/http/server.yaml's
//! Deployment template under the service account of deploy/http/rbac.yaml, and a person's first calls.
//!
//! What differs from the manifest, and why: the testbed runs no controllers (the pod is made from the
//! template, as the ReplicaSet would), its API server listens on loopback only (the pod uses the host's
//! network and is told the API server's address), its one node is the GPU node (the anti-GPU affinity is
//! dropped), and the issuer is the test's own on loopback.

use std::process::Command;
use std::time::Instant;

use serde_json::{Value, json};

use crate::Ctx;
use crate::dcgm::wait_ready_ip;
use crate::oidc::{issuer, now, rsa_key, token};
use crate::testbed::{User, repo_root, unique};

const SERVER_IMAGE: &str = "ghcr.io/k8s-gpu-mcp/launcher:realnode";

fn run_ok(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The server image of this tree, imported into the node's containerd.
fn import_server_image(c: &Ctx) {
    let bin = c.tb.dir.join("k8s-gpu-mcp-stripped");
    run_ok(
        Command::new("strip")
            .arg("-o")
            .arg(&bin)
            .arg(crate::mcp::LAUNCHER),
        "strip the launcher",
    );
    let tar = c.tb.dir.join("launcher-image.tar");
    run_ok(
        Command::new("bash")
            .arg(repo_root().join("deploy/server-image/build.sh"))
            .args(["--tag", SERVER_IMAGE, "--launcher-bin"])
            .arg(&bin)
            .arg("--probe-dir")
            .arg(&c.images.bin_dir)
            .arg("--out")
            .arg(&tar),
        "deploy/server-image/build.sh",
    );
    c.node
        .ctr(&["images", "import", "--no-unpack", tar.to_str().unwrap()]);
    let _ = std::fs::remove_file(&tar);
    let _ = std::fs::remove_file(&bin);
}

/// A 2026-07-28 request to the server, by curl (as a person would try it first).
fn rpc(url: &str, bearer: &str, method: &str, name: &str, mut params: Value) -> Value {
    params["_meta"] = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "realnode", "version": "1"},
    });
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let out = run_ok(
        Command::new("curl").args([
            "-sS",
            "--max-time",
            "120",
            "-X",
            "POST",
            url,
            "-H",
            &format!("authorization: Bearer {bearer}"),
            "-H",
            "content-type: application/json",
            "-H",
            "accept: application/json, text/event-stream",
            "-H",
            "mcp-protocol-version: 2026-07-28",
            "-H",
            &format!("mcp-method: {method}"),
            "-H",
            &format!("mcp-name: {name}"),
            "-d",
            &body.to_string(),
        ]),
        "curl",
    );
    serde_json::from_str::<Value>(&out)
        .ok()
        .or_else(|| {
            out.lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
                .find(|v| v.get("id").is_some())
        })
        .unwrap_or_else(|| panic!("no JSON-RPC answer: {out}"))
}

/// The pod the Deployment's ReplicaSet would make, with the testbed's differences (module docs).
fn server_pod(c: &Ctx, name: &str, port: u16) -> Value {
    let manifest = std::fs::read_to_string(repo_root().join("deploy/http/server.yaml")).unwrap();
    let out = c.tb.kubectl_as(
        User::Admin,
        &["create", "--dry-run=client", "-o", "json", "-f", "-"],
        Some(&manifest),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One JSON document per object.
    let deployment = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .map(|o| o.expect("kubectl's JSON"))
        .find(|o| o["kind"] == "Deployment")
        .expect("server.yaml's Deployment");
    let template = &deployment["spec"]["template"];
    let mut spec = template["spec"].clone();
    spec.as_object_mut().unwrap().remove("affinity");
    spec["nodeName"] = json!(c.name());
    spec["hostNetwork"] = json!(true);
    let server = c.tb.server().trim_start_matches("https://").to_string();
    let (host, api_port) = server.rsplit_once(':').unwrap();
    let ctr = &mut spec["containers"][0];
    ctr["image"] = json!(SERVER_IMAGE);
    ctr["imagePullPolicy"] = json!("Never");
    let args: Vec<Value> = ctr["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| match a.as_str().unwrap() {
            a if a.starts_with("--namespace=") => json!(format!("--namespace={}", c.ns)),
            a if a.starts_with("--http=") => json!(format!("--http=127.0.0.1:{port}")),
            a => json!(a),
        })
        .collect();
    ctr["args"] = json!(args);
    ctr["ports"][0]["containerPort"] = json!(port);
    let env = ctr["env"].as_array_mut().unwrap();
    env.push(json!({"name": "KUBERNETES_SERVICE_HOST", "value": host}));
    env.push(json!({"name": "KUBERNETES_SERVICE_PORT", "value": api_port}));
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "gpu-diagnostics",
                     "labels": template["metadata"]["labels"]},
        "spec": spec,
    })
}

/// The server's image and pod template on the real kubelet: it starts as a non-root user on a read-only root
/// file system, reads its configuration, passes its readiness probe, and answers a person's first calls as
/// that person (a probe pod on the node, made through the server's impersonation, by copy delivery of the
/// node-probe inside the image); another token gets 401. Stopped, it leaves no probe pod.
pub async fn the_team_servers_image_answers_a_persons_first_call(c: &Ctx) {
    let t0 = Instant::now();
    import_server_image(c);
    let imported = t0.elapsed();
    let root = repo_root();
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    c.tb.apply(&read("deploy/00-namespace.yaml"));
    c.tb.apply(&read("deploy/http/rbac.yaml"));
    // The service account token's volume needs the cluster's CA in the namespace (the controller manager
    // publishes it; the testbed runs none).
    let ca = std::fs::read_to_string(c.tb.var("TESTBED_CA")).unwrap();
    c.tb.apply(
        &serde_json::to_string(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "kube-root-ca.crt", "namespace": "gpu-diagnostics"},
            "data": {"ca.crt": ca},
        }))
        .unwrap(),
    );
    let key = rsa_key("rn");
    let iss = issuer(vec![key.jwk.clone()]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/mcp");
    let config = format!(
        "url: {url}\nissuer: {iss}\nuser_claim: preferred_username\nreplicas:\n  selector: \
         {{app.kubernetes.io/name: k8s-gpu-mcp, app.kubernetes.io/component: http-server}}\n  port: {port}\n"
    );
    c.tb.apply(
        &serde_json::to_string(&json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "k8s-gpu-mcp-server", "namespace": "gpu-diagnostics"},
            "data": {"config.yaml": config},
        }))
        .unwrap(),
    );
    let pod = unique("k8s-gpu-mcp-server");
    c.tb.apply(&serde_json::to_string(&server_pod(c, &pod, port)).unwrap());
    let t1 = Instant::now();
    let logs = || {
        c.tb.kubectl_as(
            User::Admin,
            &["-n", "gpu-diagnostics", "logs", &pod, "--tail=40"],
            None,
        )
    };
    let ready = std::panic::catch_unwind(|| wait_ready_ip(c, "gpu-diagnostics", &pod));
    if ready.is_err() {
        let l = logs();
        panic!(
            "the server pod never became ready: {}{}\n{}",
            String::from_utf8_lossy(&l.stdout),
            String::from_utf8_lossy(&l.stderr),
            c.tb.kubectl(&["-n", "gpu-diagnostics", "get", "pod", &pod, "-o", "yaml"])
        );
    }
    let started = t1.elapsed();

    let claims = |user: &str| {
        json!({"iss": iss, "aud": url, "sub": format!("sub-{user}"), "exp": now() + 600,
               "iat": now(), "preferred_username": user})
    };
    let alice = token(&key, claims(User::Reader.name()));
    // A person of the issuer with no binding at all (the suite's other cases bind its fixed users).
    let stranger = unique("rn-stranger");
    let bob = token(&key, claims(&stranger));
    let node = c.name().to_string();
    let t2 = Instant::now();
    let inv = rpc(
        &url,
        &alice,
        "tools/call",
        "get_gpu_inventory",
        json!({"name": "get_gpu_inventory", "arguments": {"node_name": node}}),
    );
    let first = t2.elapsed();
    let text = inv.to_string();
    let l = logs();
    let log = String::from_utf8_lossy(&l.stdout).into_owned();
    assert!(
        inv["result"]["isError"] != json!(true) && text.contains(&crate::gpu_uuid(3)),
        "alice's first call: {inv}\n{log}"
    );
    // Bob has no rights: the API server refuses his call, as him.
    let refused = rpc(
        &url,
        &bob,
        "tools/call",
        "get_gpu_inventory",
        json!({"name": "get_gpu_inventory", "arguments": {"node_name": node}}),
    );
    assert!(
        refused.to_string().contains(&stranger)
            && !refused.to_string().contains(&crate::gpu_uuid(3)),
        "bob: {refused}"
    );
    // A token of another issuer's key reaches nothing.
    let forged = token(&rsa_key("rn"), claims(User::Reader.name()));
    let status = run_ok(
        Command::new("curl").args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            &url,
            "-H",
            &format!("authorization: Bearer {forged}"),
            "-H",
            "content-type: application/json",
            "-d",
            "{}",
        ]),
        "curl",
    );
    assert_eq!(status, "401");
    c.assert_no_probe_pods();
    c.tb.kubectl(&[
        "-n",
        "gpu-diagnostics",
        "delete",
        "pod",
        &pod,
        "--wait=true",
    ]);
    c.tb.kubectl(&[
        "-n",
        "gpu-diagnostics",
        "delete",
        "configmap",
        "k8s-gpu-mcp-server",
    ]);
    eprintln!(
        "team server on the real node: image built and imported in {imported:?}, pod ready in {started:?}, \
         first call (a probe pod as the person) {first:?}; its log:\n{log}"
    );
}
