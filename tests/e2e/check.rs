//! `k8s-gpu-mcp check` and `setup` against the real apiserver: a prepared cluster passes, and each way of
//! not being prepared is named with its fix (and, where the fix is ours, the fix makes the check pass).

use std::process::{Command, Output};

use serde_json::Value;

use crate::testbed::{FakeNode, Testbed, User, skipped, unique};
use crate::{json, stderr};

const LAUNCHER: &str = env!("CARGO_BIN_EXE_k8s-gpu-mcp");
/// An image reference only the nodes of these tests list (so "on the node" is decided by the test), by its
/// digest (what `--probe-image` should name, and what the admission policies admit).
const IMAGE_DIGEST: &str = "registry.invalid/node-probe@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
/// How a node lists it once pulled: the tag and the digest name (`+` joins one image's names in `node`).
const IMAGE_LISTED: &str = "registry.invalid/node-probe:check-e2e+registry.invalid/node-probe@sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc";
/// A base image the default delivery copies node-probe into, as a node lists it once pulled.
const DEBIAN: &str = "docker.io/library/debian:12";
const DEBIAN_DIGEST: &str = "docker.io/library/debian@sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
const DEBIAN_LISTED: &str = "docker.io/library/debian:12+docker.io/library/debian@sha256:dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
/// A tenant's image named like the Debian base, from another registry, pulled (so with a digest).
const PLANTED_LISTED: &str = "registry.example.com/library/debian:bookworm+registry.example.com/library/debian@sha256:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

fn launcher(tb: &Testbed, user: User, args: &[&str]) -> Output {
    Command::new(LAUNCHER)
        .arg("--kubeconfig")
        .arg(tb.kubeconfig(user))
        .args(args)
        .env_remove("KUBECONFIG")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run k8s-gpu-mcp")
}

/// `check --output json` for the GPU nodes labelled `group`, with `--probe-image IMAGE` unless `extra` names
/// an image; the exit status and the report.
fn check(tb: &Testbed, user: User, ns: &str, group: &str, extra: &[&str]) -> (bool, Value) {
    let mut flags = Vec::new();
    if !extra.contains(&"--probe-image") {
        flags.extend(["--probe-image", IMAGE_DIGEST]);
    }
    flags.extend(extra);
    check_exact(tb, user, ns, group, &flags)
}

/// `check --output json` with exactly these launcher flags.
fn check_exact(tb: &Testbed, user: User, ns: &str, group: &str, flags: &[&str]) -> (bool, Value) {
    let selector = format!("e2e-group={group}");
    let mut args = vec!["--namespace", ns];
    args.extend(flags);
    args.extend(["check", "--selector", &selector, "--output", "json"]);
    let out = launcher(tb, user, &args);
    let report = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        out.status.success(),
        report["ok"] == true,
        "exit status and `ok` disagree: {report}\n{}",
        stderr(&out)
    );
    (out.status.success(), report)
}

/// The check named `name` (panics when absent).
fn item<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report}"))
}

/// A string field of a check ("" when absent).
fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn failed(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

/// The shared testbed with a probe namespace bound for the reader (as deploy/ binds gpu-diagnostics), the
/// reader's cluster reads, and a node group label of its own: (testbed, namespace, group).
fn prepared(tag: &str) -> (&'static Testbed, String, String) {
    let tb = Testbed::shared();
    let ns = unique(&format!("e2e-check-{tag}"));
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    (tb, ns, unique(&format!("check-{tag}")))
}

/// The `default` ServiceAccount the testbed's absent controller-manager would create in `ns` (the
/// ServiceAccount admission plugin refuses pods without it, dry runs included).
fn default_service_account(tb: &Testbed, ns: &str) {
    tb.apply(&format!(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {ns}}}\n"
    ));
}

/// A GPU node without a kubelet (its status stays as set) labelled `group`, listing `images`.
fn node(tb: &Testbed, group: &str, ready: bool, images: &[&str]) -> String {
    let name = unique("check-node");
    tb.add_nodes(&[FakeNode::without_kubelet(&name, ready).label("e2e-group", group)]);
    let images: Vec<Value> = images
        .iter()
        .map(|i| serde_json::json!({"names": i.split('+').collect::<Vec<_>>(), "sizeBytes": 1000}))
        .collect();
    let patch = serde_json::json!({"status": {"images": images}});
    tb.kubectl(&[
        "patch",
        "node",
        &name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
    name
}

#[test]
fn check_passes_on_a_prepared_cluster() {
    if skipped() {
        return;
    }
    let (tb, ns, group) = prepared("ok");
    let n = node(tb, &group, true, &[IMAGE_LISTED, DEBIAN_LISTED]);
    let (ok, report) = check(tb, User::Reader, &ns, &group, &[]);
    assert!(ok, "{report:#}");
    for c in report["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "ok", "{c}");
    }
    for name in [
        "kubeconfig",
        "api-server",
        "namespace",
        "permissions/k8s-gpu-mcp-reader",
        "permissions/k8s-gpu-mcp-probe",
        "gpu-nodes",
        &format!("node/{n}"),
        &format!("image/{n}"),
        "admission",
        "permissions/k8s-gpu-mcp-log-reader",
        "policies",
    ] {
        item(&report, name);
    }
    // The policies hold for the reader (the testbed applies them as `setup` writes them).
    assert!(
        text(&item(&report, "policies")["detail"]).starts_with("in force for you"),
        "{report:#}"
    );
    assert_eq!(report["user"], User::Reader.name());
    assert!(
        text(&item(&report, "api-server")["detail"]).contains("v1.35."),
        "{report}"
    );
    // Read-only mode does not ask for the operator role.
    assert!(!report.to_string().contains("k8s-gpu-mcp-operator"));

    // The text checklist: one line per check, a summary, exit 0.
    let out = launcher(
        tb,
        User::Reader,
        &[
            "--namespace",
            &ns,
            "--probe-image",
            IMAGE_DIGEST,
            "check",
            "-l",
            &format!("e2e-group={group}"),
        ],
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", stderr(&out));
    assert!(
        text.contains(&format!("[ok]   node/{n}: Ready, 8 GPUs, amd64")),
        "{text}"
    );
    assert!(text.contains("0 warnings, 0 failed"), "{text}");

    // Copy delivery streams node-probe into an image the node already has: debian is there.
    let (ok, report) = check(
        tb,
        User::Reader,
        &ns,
        &group,
        &["--probe-delivery", "copy", "--probe-image", DEBIAN_DIGEST],
    );
    assert!(ok, "{report:#}");
    assert_eq!(item(&report, &format!("image/{n}"))["status"], "ok");
    // With --driver-root: the exec policy admits the copy argv carrying it (check asks about that argv).
    let (ok, report) = check(
        tb,
        User::Reader,
        &ns,
        &group,
        &[
            "--probe-delivery",
            "copy",
            "--probe-image",
            DEBIAN_DIGEST,
            "--driver-root",
            "/opt/nvidia",
        ],
    );
    assert!(ok, "{report:#}");
    assert_eq!(item(&report, "policies")["status"], "ok", "{report:#}");
    // By tag: check warns that a tag can be re-pointed, and the admission policies refuse it (their
    // dry run names the policy and the fix).
    let (ok, report) = check(
        tb,
        User::Reader,
        &ns,
        &group,
        &["--probe-delivery", "copy", "--probe-image", DEBIAN],
    );
    assert!(!ok, "{report:#}");
    assert_eq!(failed(&report), ["admission"], "{report:#}");
    let adm = item(&report, "admission");
    assert!(
        adm["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("ValidatingAdmissionPolicy 'k8s-gpu-mcp-probe-pod'"),
        "{adm}"
    );
    assert!(
        adm["fix"]
            .as_str()
            .unwrap_or_default()
            .contains("by digest"),
        "{adm}"
    );
    let c = item(&report, &format!("image/{n}"));
    assert_eq!(c["status"], "warn", "{c}");
    assert!(
        c["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("given by tag"),
        "{c}"
    );
    assert!(
        c["fix"]
            .as_str()
            .unwrap_or_default()
            .contains("docker.io/library/debian@sha256:DIGEST"),
        "{c}"
    );
}

#[test]
fn check_names_a_missing_namespace_and_setup_apply_fixes_it() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-check-nons");
    let group = unique("check-nons");
    node(tb, &group, true, &[IMAGE_LISTED]);
    let (ok, report) = check(tb, User::Admin, &ns, &group, &[]);
    assert!(!ok);
    assert_eq!(failed(&report), ["namespace", "admission"], "{report:#}");
    let ns_check = item(&report, "namespace");
    assert!(
        text(&ns_check["detail"]).contains("does not exist"),
        "{ns_check}"
    );
    let fix = text(&ns_check["fix"]);
    assert!(
        fix.starts_with(&format!("k8s-gpu-mcp setup --apply --namespace {ns}")),
        "{fix}"
    );
    // The fix as printed (the launcher's own setup, server-side apply as admin), then the check passes.
    // --no-policies: the cluster's admission policies are the testbed's (a cluster has one set, and this
    // setup's would not trust the suite's images).
    let out = launcher(
        tb,
        User::Admin,
        &["--namespace", &ns, "setup", "--apply", "--no-policies"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let applied = String::from_utf8_lossy(&out.stdout);
    assert!(
        applied.contains(&format!("namespaces/{ns} serverside-applied")),
        "{applied}"
    );
    assert!(
        applied.contains("clusterroles/k8s-gpu-mcp-probe serverside-applied"),
        "{applied}"
    );
    default_service_account(tb, &ns);
    let (ok, report) = check(tb, User::Admin, &ns, &group, &[]);
    assert!(ok, "{report:#}");
    let labels = json(&tb.kubectl(&["get", "namespace", &ns, "-o", "json"]));
    assert_eq!(
        labels["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "privileged"
    );
}

#[test]
fn check_names_a_namespace_without_the_pod_security_label() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-check-nolabel");
    tb.kubectl(&["create", "namespace", &ns]);
    default_service_account(tb, &ns);
    let group = unique("check-nolabel");
    node(tb, &group, true, &[IMAGE_LISTED]);
    // The testbed's Pod Security default is `baseline` (as on many clusters): the dry run is refused too.
    let (ok, report) = check(tb, User::Admin, &ns, &group, &[]);
    assert!(!ok);
    assert_eq!(failed(&report), ["namespace", "admission"], "{report:#}");
    let c = item(&report, "namespace");
    assert!(
        text(&c["detail"]).contains("no pod-security.kubernetes.io/enforce label"),
        "{c}"
    );
    let fix = text(&c["fix"]);
    assert_eq!(
        fix,
        format!(
            "kubectl label namespace {ns} pod-security.kubernetes.io/enforce=privileged --overwrite"
        )
    );
    // A restrictive level is named too; the dry run shows Pod Security refusing the probe pod.
    tb.kubectl(&[
        "label",
        "namespace",
        &ns,
        "pod-security.kubernetes.io/enforce=baseline",
    ]);
    let (_, report) = check(tb, User::Admin, &ns, &group, &[]);
    assert_eq!(failed(&report), ["namespace", "admission"], "{report:#}");
    let adm = item(&report, "admission");
    assert!(text(&adm["detail"]).contains("PodSecurity"), "{adm}");
    assert_eq!(adm["fix"], fix);
    // The printed fix, run as printed.
    let args: Vec<&str> = fix.split_whitespace().skip(1).collect();
    tb.kubectl(&args);
    let (ok, report) = check(tb, User::Admin, &ns, &group, &[]);
    assert!(ok, "{report:#}");
}

#[test]
fn check_names_missing_permissions_with_the_binding_to_create() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-check-rbac");
    // The namespace is prepared (by someone else), but nobody is bound to anything.
    tb.probe_namespace(&ns, User::Reader);
    let group = unique("check-rbac");
    node(tb, &group, true, &[IMAGE_LISTED]);
    let (ok, report) = check(tb, User::Nobody, &ns, &group, &[]);
    assert!(!ok);
    let nobody = User::Nobody.name();
    assert_eq!(report["user"], nobody);
    let reader = item(&report, "permissions/k8s-gpu-mcp-reader");
    assert_eq!(reader["status"], "fail");
    assert!(
        text(&reader["detail"]).starts_with("27 of 27 permissions missing cluster-wide: get nodes"),
        "{reader}"
    );
    assert!(
        text(&reader["fix"]).contains(&format!(
            "kubectl create clusterrolebinding k8s-gpu-mcp-reader-{nobody} --clusterrole=k8s-gpu-mcp-reader --user={nobody}"
        )),
        "{reader}"
    );
    let probe = item(&report, "permissions/k8s-gpu-mcp-probe");
    assert!(
        text(&probe["detail"]).contains(&format!("missing in namespace {ns}: create pods")),
        "{probe}"
    );
    assert!(
        text(&probe["fix"]).contains(&format!(
            "kubectl create rolebinding k8s-gpu-mcp-probe-{nobody} -n {ns} --clusterrole=k8s-gpu-mcp-probe --user={nobody}"
        )),
        "{probe}"
    );
    for name in ["namespace", "gpu-nodes", "admission"] {
        assert_eq!(item(&report, name)["status"], "fail", "{name}: {report:#}");
    }
    // The reader, bound only to the probe role in another namespace, misses exactly the probe role here.
    tb.bind_reader(User::Reader);
    let other = unique("e2e-check-rbac-other");
    tb.probe_namespace(&other, User::Nobody);
    let (_, report) = check(tb, User::Reader, &other, &group, &[]);
    assert_eq!(
        item(&report, "permissions/k8s-gpu-mcp-reader")["status"],
        "ok"
    );
    assert_eq!(
        item(&report, "permissions/k8s-gpu-mcp-probe")["status"],
        "fail"
    );
}

#[test]
fn check_names_a_not_ready_gpu_node_and_a_missing_image() {
    if skipped() {
        return;
    }
    let (tb, ns, group) = prepared("nodes");
    let ready = node(tb, &group, true, &[IMAGE_LISTED]);
    let down = node(tb, &group, false, &[IMAGE_LISTED]);
    let (ok, report) = check(tb, User::Reader, &ns, &group, &[]);
    assert!(!ok);
    assert_eq!(failed(&report), [format!("node/{down}")], "{report:#}");
    let c = item(&report, &format!("node/{down}"));
    assert!(
        text(&c["detail"]).starts_with("not Ready (Ready=False"),
        "{c}"
    );
    assert_eq!(c["fix"], format!("kubectl describe node {down}"));
    // The dry run places its pod on the Ready node.
    assert!(
        text(&item(&report, "admission")["detail"]).contains(&ready),
        "{report:#}"
    );

    // Copy delivery needs an image the node already has; this one has only IMAGE.
    let group = unique("check-image");
    let n = node(tb, &group, true, &[IMAGE_LISTED]);
    let (ok, report) = check(
        tb,
        User::Reader,
        &ns,
        &group,
        &["--probe-delivery", "copy", "--probe-image", "debian:12"],
    );
    assert!(!ok);
    // The admission policies refuse the tag too.
    assert_eq!(
        failed(&report),
        [format!("image/{n}"), "admission".into()],
        "{report:#}"
    );
    let c = item(&report, &format!("image/{n}"));
    assert!(
        text(&c["fix"]).contains(&format!("kubectl get node {n} -o jsonpath=")),
        "{c}"
    );
    // Image delivery with an image the node does not list yet: a warning (the first probe pulls it); by tag
    // the admission policies refuse it.
    let (ok, report) = check(
        tb,
        User::Reader,
        &ns,
        &group,
        &["--probe-image", "debian:12"],
    );
    assert!(!ok, "{report:#}");
    assert_eq!(failed(&report), ["admission"], "{report:#}");
    assert_eq!(item(&report, &format!("image/{n}"))["status"], "warn");
}

#[test]
fn setup_prints_manifests_the_apiserver_accepts_and_host_snippets() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-setup");
    // A dry run cannot create the namespace the RoleBinding goes into.
    tb.kubectl(&["create", "namespace", &ns]);
    let out = launcher(
        tb,
        User::Admin,
        &[
            "--namespace",
            &ns,
            "--mode",
            "operator",
            "setup",
            "--user",
            "alice",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    // The whole output pipes into kubectl (the host snippets are comments).
    let dry = tb.kubectl_as(
        User::Admin,
        &["apply", "--dry-run=server", "-f", "-"],
        Some(&text),
    );
    assert!(dry.status.success(), "{}\n{text}", stderr(&dry));
    let applied = String::from_utf8_lossy(&dry.stdout);
    for obj in [
        format!("namespace/{ns}"),
        "clusterrolebinding.rbac.authorization.k8s.io/k8s-gpu-mcp-operator-user-alice".into(),
        "rolebinding.rbac.authorization.k8s.io/k8s-gpu-mcp-probe-user-alice".into(),
    ] {
        assert!(applied.contains(&obj), "{obj} not in {applied}");
    }
    let hosts = launcher(
        tb,
        User::Admin,
        &["--namespace", &ns, "setup", "--only", "hosts"],
    );
    let hosts = String::from_utf8_lossy(&hosts.stdout).into_owned();
    let exe = std::fs::canonicalize(LAUNCHER).unwrap();
    let kubeconfig = std::fs::canonicalize(tb.kubeconfig(User::Admin)).unwrap();
    let desktop: Value = json(
        hosts
            .split("\n\n")
            .next()
            .and_then(|s| s.split_once('\n'))
            .unwrap()
            .1,
    );
    let server = &desktop["mcpServers"]["k8s-gpu"];
    assert_eq!(server["command"], exe.to_str().unwrap(), "{hosts}");
    let args: Vec<&str> = server["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        args,
        [
            "serve",
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--context",
            "testbed",
            "--namespace",
            &ns
        ]
    );
    for host in [
        "Cursor (~/.cursor/mcp.json)",
        "VS Code (.vscode/mcp.json)",
        "claude mcp add",
    ] {
        assert!(hosts.contains(host), "{host}: {hosts}");
    }
}

/// A kubeconfig whose user gets its token from an exec credential plugin found on PATH: fine for the shell,
/// a warning for AI hosts (shorter PATH) with the absolute path to write instead; a failure when not found.
#[test]
fn check_names_an_exec_credential_plugin_an_ai_host_may_not_find() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    tb.bind_reader(User::Reader);
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let plugin = bin.join("fake-cred-plugin");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\necho '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{}\"}}}}'\n",
            tb.token(User::Reader)
        ),
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let kc = tb.write_kubeconfig(User::Reader, dir.path());
    let kc_s = kc.to_str().unwrap();
    let kubectl = |args: &[&str]| {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kc)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "kubectl {args:?}: {}", stderr(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let user = kubectl(&[
        "config",
        "view",
        "-o",
        "jsonpath={.contexts[0].context.user}",
    ]);
    kubectl(&["config", "unset", &format!("users.{user}.token")]);
    kubectl(&[
        "config",
        "set-credentials",
        &user,
        "--exec-command=fake-cred-plugin",
        "--exec-api-version=client.authentication.k8s.io/v1",
        "--exec-interactive-mode=Never",
    ]);
    let run = |path: &str| {
        let out = Command::new(LAUNCHER)
            .args(["--kubeconfig", kc_s, "check", "--output", "json"])
            .env_remove("KUBECONFIG")
            .env("PATH", path)
            .output()
            .unwrap();
        json(&String::from_utf8_lossy(&out.stdout))
    };
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let report = run(&path);
    let c = item(&report, "credentials");
    assert_eq!(c["status"], "warn", "{report:#}");
    assert!(
        text(&c["fix"]).starts_with(&format!("set exec.command to {}", plugin.display())),
        "{c}"
    );
    // The plugin worked: the API server saw the reader.
    assert_eq!(item(&report, "api-server")["status"], "ok", "{report:#}");
    assert_eq!(report["user"], User::Reader.name());

    // Not found at all: kube runs the plugin while building the client, so the kubeconfig fails too.
    let report = run("/usr/bin:/bin");
    let c = item(&report, "credentials");
    assert_eq!(c["status"], "fail", "{report:#}");
    assert_eq!(c["detail"], "exec plugin `fake-cred-plugin` is not on PATH");
    assert_eq!(item(&report, "kubeconfig")["status"], "fail", "{report:#}");
}

/// The default delivery (no --probe-image): node-probe is copied into an image the node already has. A node
/// with a known glibc base passes and the dry run uses that image; a node with none fails with the fix.
#[test]
fn check_default_delivery_needs_a_base_image_on_each_node() {
    if skipped() {
        return;
    }
    let (tb, ns, group) = prepared("default");
    let good = node(
        tb,
        &group,
        true,
        &[IMAGE_LISTED, DEBIAN_LISTED, PLANTED_LISTED],
    );
    let (ok, report) = check_exact(tb, User::Reader, &ns, &group, &[]);
    assert!(ok, "{report:#}");
    assert_eq!(
        item(&report, &format!("image/{good}"))["detail"],
        format!(
            "node-probe is copied into {DEBIAN} ({DEBIAN_DIGEST}), a trusted image the node lists by digest; \
             refused: registry.example.com/library/debian:bookworm (untrusted source)"
        )
    );
    let bare = node(
        tb,
        &group,
        true,
        &[
            IMAGE_LISTED,
            "registry.k8s.io/pause:3.10",
            PLANTED_LISTED,
            "docker.io/library/ubuntu:24.04",
        ],
    );
    // With no flags the bare node pulls the fallback base: check says what, from where, and passes.
    let (ok, report) = check_exact(tb, User::Reader, &ns, &group, &[]);
    assert!(ok, "{report:#}");
    let c = item(&report, &format!("image/{bare}"));
    assert!(
        text(&c["detail"]).ends_with("the first call pulls one: debian:bookworm-20260918-slim (docker.io/library/debian@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251, about 28 MB) is pulled once from Docker Hub (docker.io) (--no-pull: never pull)"),
        "{c}"
    );
    // --no-pull: the node has nothing to use, and check says what to do.
    let (ok, report) = check_exact(tb, User::Reader, &ns, &group, &["--no-pull"]);
    assert!(!ok);
    assert_eq!(failed(&report), [format!("image/{bare}")], "{report:#}");
    let c = item(&report, &format!("image/{bare}"));
    let detail = text(&c["detail"]);
    assert!(detail.starts_with("none of the node's 4 images"), "{c}");
    assert!(
        detail.contains("registry.example.com/library/debian:bookworm (untrusted source)"),
        "{c}"
    );
    assert!(
        detail.contains("docker.io/library/ubuntu:24.04 (no digest listed)"),
        "{c}"
    );
    assert!(
        text(&c["fix"]).contains("--trust-image REGISTRY/NAMESPACE/"),
        "{c}"
    );
    assert!(
        text(&c["fix"]).contains("--probe-image IMAGE@sha256:DIGEST"),
        "{c}"
    );
    // The owner vouches for its own registry: the same node passes, and only with that.
    let (ok, report) = check_exact(
        tb,
        User::Reader,
        &ns,
        &group,
        &["--trust-image", "registry.example.com/library/"],
    );
    assert!(ok, "{report:#}");
    assert!(
        text(&item(&report, &format!("image/{bare}"))["detail"])
            .contains("copied into registry.example.com/library/debian:bookworm"),
        "{report:#}"
    );
}

/// The same checklist as an MCP tool: `check_cluster` over stdio, as the AI host calls it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_cluster_tool_answers_over_mcp() {
    if skipped() {
        return;
    }
    let (tb, ns, group) = prepared("mcp");
    let n = node(tb, &group, true, &[IMAGE_LISTED]);
    let l = crate::mcp::start(tb, User::Reader, &ns, &["--probe-image", IMAGE_DIGEST]).await;
    let sc = l
        .ok(
            "check_cluster",
            serde_json::json!({"label_selector": format!("e2e-group={group}")}),
        )
        .await;
    assert_eq!(sc["ok"], true, "{sc:#}");
    assert_eq!(item(&sc, &format!("node/{n}"))["status"], "ok");
    // A NotReady node in the selection: the tool answers (not a tool error) with the failure and its fix.
    let down = node(tb, &group, false, &[IMAGE_LISTED]);
    let r = l
        .call(
            "check_cluster",
            serde_json::json!({"label_selector": format!("e2e-group={group}")}),
        )
        .await;
    let t = crate::mcp::text(&r);
    assert!(t.contains(&format!("[FAIL] node/{down}: not Ready")), "{t}");
    assert!(
        t.contains(&format!("       fix: kubectl describe node {down}")),
        "{t}"
    );
    l.stop().await;
}
