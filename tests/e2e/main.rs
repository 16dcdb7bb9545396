//! End-to-end tests against a real kube-apiserver + etcd with kwok fake GPU nodes (tests/testbed/).
//!
//! Needs the control plane binaries: `TESTBED_BIN` (tests/run-all.sh sets it) or tests/testbed/build.sh
//! runs (cached). `SKIP_E2E=1` skips the suite; anything else missing is a failure.

#[path = "../support/oidc.rs"]
mod oidc;
mod testbed;

mod attribution;
mod check;
mod conformance;
mod copy;
mod dra;
mod exec_shapes;
mod fleet;
mod golden;
mod history;
mod hostile;
mod hosts;
mod http;
mod launcher;
mod mcp;
mod operator;
mod platform_marks;
mod platforms;
mod policies;
mod racks;
mod readings;
mod replicas;
mod run_marks;
mod tasks;
mod top;
mod vendors;
mod watch;
mod workload;

use std::time::Duration;

use serde_json::Value;
use testbed::{FakeNode, Testbed, User, skipped, unique};

/// The probe pod the syringe creates, in the shape of `kubectl debug node/N --profile=sysadmin` (the pod kubectl
/// creates for it) plus the probe's own settings: privileged, host PID, no volume, by digest; the shape the
/// admission policies (deploy/policies.yaml) admit from the launcher's users.
pub fn probe_pod_yaml(name: &str, ns: &str, node: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: {ns}
  labels: {{app.kubernetes.io/managed-by: k8s-gpu-mcp, app.kubernetes.io/name: node-probe, app.kubernetes.io/component: probe}}
spec:
  nodeName: {node}
  restartPolicy: Never
  activeDeadlineSeconds: 300
  terminationGracePeriodSeconds: 0
  automountServiceAccountToken: false
  enableServiceLinks: false
  hostPID: true
  tolerations: [{{operator: Exists}}]
  containers:
  - name: probe
    image: {image}
    imagePullPolicy: IfNotPresent
    command: [sleep, "300"]
    securityContext: {{privileged: true}}
    resources:
      requests: {{cpu: 10m, memory: 32Mi}}
      limits: {{cpu: 500m, memory: 256Mi}}
"#,
        image = crate::mcp::E2E_PROBE_IMAGE
    )
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn control_plane_serves_fake_gpu_nodes() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    eprintln!("testbed up in {:?}", tb.startup_time());
    let names: Vec<String> = (1..=3).map(|i| unique(&format!("bringup-{i}"))).collect();
    let nodes: Vec<FakeNode> = names
        .iter()
        .map(|n| FakeNode::gpu(n, "dgx-h100-healthy"))
        .collect();
    tb.add_nodes(&nodes);
    let version = json(&tb.kubectl(&["get", "--raw", "/version"]));
    assert!(
        version["gitVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.35."),
        "{version}"
    );
    for name in &names {
        let node = json(&tb.kubectl(&["get", "node", name, "-o", "json"]));
        let status = &node["status"];
        assert_eq!(status["capacity"]["nvidia.com/gpu"], "8", "{name}");
        assert_eq!(status["allocatable"]["nvidia.com/gpu"], "8", "{name}");
        assert_eq!(
            node["metadata"]["labels"]["nvidia.com/gpu.product"],
            "NVIDIA-H100-80GB-HBM3"
        );
        let ready = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .expect("Ready condition");
        assert_eq!(ready["status"], "True", "{name}: {ready}");
        // The apiserver reaches the node's kubelet (kwok) at InternalIP:daemonEndpoints port.
        assert_eq!(
            status["daemonEndpoints"]["kubeletEndpoint"]["Port"].to_string(),
            tb.var("TESTBED_KWOK_PORT")
        );
        assert!(
            status["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["type"] == "InternalIP" && a["address"] == "127.0.0.1"),
            "{name}: {}",
            status["addresses"]
        );
    }
}

/// Every manifest in deploy/ is accepted by a real apiserver (schema, RBAC rule shapes, namespace labels).
#[test]
fn deploy_manifests_pass_server_side_dry_run() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let deploy = testbed::repo_root().join("deploy");
    let mut files = Vec::new();
    let mut stack = vec![deploy.clone()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p
                .extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(
        files.len() >= 3,
        "expected deploy/ manifests (namespace, rbac, bindings), found {files:?}"
    );
    // deploy/http/config.yaml is the shared server's own configuration, not a Kubernetes object: it is read
    // by the launcher (checked in launcher/src/http/config.rs's tests and `check --http-config`).
    let not_objects = [deploy.join("http/config.yaml")];
    for f in files.iter().filter(|f| !not_objects.contains(f)) {
        let path = f.to_string_lossy();
        let out = tb.kubectl_as(
            User::Admin,
            &["apply", "--dry-run=server", "-f", &path],
            None,
        );
        assert!(
            out.status.success(),
            "{path} refused by the apiserver: {}",
            stderr(&out)
        );
        eprintln!("dry-run ok: {path}");
    }
}

/// The syringe by hand, as the launcher's least-privilege user: privileged probe pod on a kwok node,
/// websocket exec of node-probe through the real apiserver (v5 translated to SPDY towards kwok), one JSON
/// document that answers for that node, delete, nothing left.
#[test]
fn probe_pod_exec_runs_node_probe_for_its_node() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-exec");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    // Per-node fixture files (an empty fact set is a valid scenario): the document's source names the file,
    // which proves which node's facts answered.
    let fixtures = tempfile::tempdir().unwrap();
    let nodes: Vec<FakeNode> = (1..=3)
        .map(|i| {
            let name = unique(&format!("exec-node-{i}"));
            let path = fixtures.path().join(format!("{name}.json"));
            std::fs::write(&path, "{}").unwrap();
            FakeNode::gpu(&name, path.to_str().unwrap())
        })
        .collect();
    tb.add_nodes(&nodes);
    for node in &nodes {
        let pod = unique("probe");
        let out = tb.kubectl_as(
            User::Reader,
            &["apply", "-f", "-"],
            Some(&probe_pod_yaml(&pod, &ns, &node.name)),
        );
        assert!(out.status.success(), "create as reader: {}", stderr(&out));
        let out = tb.kubectl_as(
            User::Reader,
            &[
                "-n",
                &ns,
                "wait",
                "--for=condition=Ready",
                &format!("pod/{pod}"),
                "--timeout=180s",
            ],
            None,
        );
        assert!(out.status.success(), "wait: {}", stderr(&out));
        let out = tb.kubectl_as(
            User::Reader,
            &[
                "-n",
                &ns,
                "exec",
                &pod,
                "-c",
                "probe",
                "--",
                "node-probe",
                "inventory",
                "--node-name",
                &node.name,
            ],
            None,
        );
        assert!(out.status.success(), "exec: {}", stderr(&out));
        let doc = json(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(doc["schema_version"], 1, "{doc}");
        assert_eq!(doc["probe"]["node_name"], node.name.as_str(), "{doc}");
        assert_eq!(
            doc["probe"]["source"],
            format!("simulated:{}", node.name),
            "{doc}"
        );
        let out = tb.kubectl_as(
            User::Reader,
            &[
                "-n",
                &ns,
                "delete",
                "pod",
                &pod,
                "--grace-period=0",
                "--wait=true",
            ],
            None,
        );
        assert!(out.status.success(), "delete: {}", stderr(&out));
    }
    tb.wait_no_pods(&ns, Duration::from_secs(120))
        .expect("probe pods left behind");
}

/// kwok v0.8.0 fidelity gap the launcher must cope with: a non-zero exit of the exec'd command comes back
/// as an InternalError status ("... exit status N"), not as NonZeroExitCode with an ExitCode cause as a
/// real kubelet sends (cri-streaming type-asserts k8s.io/utils/exec.ExitError; kwok wraps os/exec's).
#[test]
fn kwok_reports_nonzero_exit_as_internal_error() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-exit");
    tb.probe_namespace(&ns, User::Admin);
    let node = unique("exit-node");
    tb.add_nodes(&[FakeNode::gpu(&node, "/nonexistent/scenario.json")]);
    let pod = unique("probe");
    tb.apply(&probe_pod_yaml(&pod, &ns, &node));
    tb.kubectl(&[
        "-n",
        &ns,
        "wait",
        "--for=condition=Ready",
        &format!("pod/{pod}"),
        "--timeout=180s",
    ]);
    let out = tb.kubectl_as(
        User::Admin,
        &[
            "-n",
            &ns,
            "exec",
            &pod,
            "--",
            "node-probe",
            "health",
            "--node-name",
            &node,
        ],
        None,
    );
    assert!(!out.status.success());
    // node-probe still printed its one failure document on stdout before exiting non-zero.
    let doc = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(doc["error"]["kind"], "invalid_scenario", "{doc}");
    let err = stderr(&out);
    assert!(
        err.contains("exit status") && err.contains("Internal error"),
        "{err}"
    );
    tb.kubectl(&["-n", &ns, "delete", "pod", &pod, "--grace-period=0"]);
    tb.wait_no_pods(&ns, Duration::from_secs(120))
        .expect("probe pod left behind");
}

/// Pod Security admission is on (cluster default `baseline`): the privileged probe pod is refused in a
/// namespace without `pod-security.kubernetes.io/enforce: privileged`, even for cluster-admin.
#[test]
fn pod_security_refuses_probe_outside_privileged_namespace() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-psa");
    tb.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {ns}}}\n"
    ));
    let out = tb.kubectl_as(
        User::Admin,
        &["apply", "-f", "-"],
        Some(&probe_pod_yaml("probe", &ns, "any-node")),
    );
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("violates PodSecurity"), "{err}");
    assert!(err.contains("privileged"), "{err}");
}

/// The launcher's users get only what RBAC grants: no binding, nothing; the prober role works only in its
/// namespace; websocket exec needs `create` on pods/exec (Kubernetes 1.35).
#[test]
fn rbac_is_enforced_for_launcher_users() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-rbac");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let node = unique("rbac-node");
    tb.add_nodes(&[FakeNode::gpu(&node, "dgx-h100-healthy")]);

    let out = tb.kubectl_as(User::Nobody, &["get", "nodes"], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("forbidden"), "{}", stderr(&out));
    let out = tb.kubectl_as(
        User::Nobody,
        &["apply", "-f", "-"],
        Some(&probe_pod_yaml("probe", &ns, &node)),
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("forbidden"), "{}", stderr(&out));

    // The reader can read nodes cluster-wide but not create pods outside its probe namespace, nor touch nodes.
    let out = tb.kubectl_as(User::Reader, &["get", "node", &node], None);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tb.kubectl_as(
        User::Reader,
        &["auth", "can-i", "create", "pods", "-n", "default"],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");
    let out = tb.kubectl_as(User::Reader, &["auth", "can-i", "patch", "nodes"], None);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "no");
    let out = tb.kubectl_as(
        User::Reader,
        &[
            "auth",
            "can-i",
            "create",
            "pods",
            "--subresource=exec",
            "-n",
            &ns,
        ],
        None,
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "yes");

    // exec with only `get` on pods/exec is refused on 1.35 (websocket upgrade is authorized as create).
    let pod = unique("probe");
    tb.apply(&probe_pod_yaml(&pod, &ns, &node));
    tb.apply(&format!(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {{name: exec-get-only, namespace: {ns}}}
rules:
- {{apiGroups: [""], resources: [pods], verbs: [get, list]}}
- {{apiGroups: [""], resources: [pods/exec], verbs: [get]}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: exec-get-only, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: exec-get-only}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: launcher-nobody}}]
"#
    ));
    tb.kubectl(&[
        "-n",
        &ns,
        "wait",
        "--for=condition=Ready",
        &format!("pod/{pod}"),
        "--timeout=180s",
    ]);
    let out = tb.kubectl_as(User::Nobody, &["-n", &ns, "exec", &pod, "--", "true"], None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("cannot create resource \"pods/exec\""),
        "{}",
        stderr(&out)
    );
    tb.kubectl(&["-n", &ns, "delete", "pod", &pod, "--grace-period=0"]);
    tb.wait_no_pods(&ns, Duration::from_secs(120))
        .expect("pod left behind");
}

/// Two kwok processes share the apiserver, each managing the nodes its annotation selects (recipe variant
/// B, verified): the second one's `node-probe` prints garbage, for the launcher's bad-output path.
#[test]
fn second_kwok_answers_for_its_own_nodes() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-garbage");
    tb.probe_namespace(&ns, User::Admin);
    let node = unique("garbage-node");
    tb.add_nodes(&[FakeNode::garbage(&node)]);
    let n = json(&tb.kubectl(&["get", "node", &node, "-o", "json"]));
    assert_eq!(
        n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"].to_string(),
        tb.var("TESTBED_KWOK_GARBAGE_PORT")
    );
    let pod = unique("probe");
    tb.apply(&probe_pod_yaml(&pod, &ns, &node));
    tb.kubectl(&[
        "-n",
        &ns,
        "wait",
        "--for=condition=Ready",
        &format!("pod/{pod}"),
        "--timeout=180s",
    ]);
    let out = tb.kubectl(&["-n", &ns, "exec", &pod, "--", "node-probe", "health"]);
    assert!(out.contains("this is not JSON"), "{out}");
    tb.kubectl(&["-n", &ns, "delete", "pod", &pod, "--grace-period=0"]);
    tb.wait_no_pods(&ns, Duration::from_secs(120))
        .expect("probe pod left behind");
}
