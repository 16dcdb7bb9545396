//! The launcher's admission policies (deploy/policies.yaml, applied by the testbed as `setup` writes them) on the
//! real kube-apiserver, as the launcher's users (token users bound to deploy/rbac.yaml's roles): each way the
//! roles could be a root shell on a node is refused by the API server with a message naming the policy, the
//! launcher's own shapes are admitted, and the same users acting elsewhere are untouched. kwok's exec runs the
//! command on this host, so an exec that were admitted would really run.

use std::time::Duration;

use crate::testbed::{FakeNode, Testbed, User, skipped, unique};
use crate::{probe_pod_yaml, stderr};

const EVIL_IMAGE: &str = "registry.example.com/evil/shell@sha256:6666666666666666666666666666666666666666666666666666666666666666";

fn bind(tb: &Testbed, yaml: &str) {
    tb.apply(yaml);
}

/// A probe namespace for the reader and the operator, the operator role for the operator, a kwok GPU node.
fn setup(tag: &str) -> (&'static Testbed, String, String) {
    let tb = Testbed::shared();
    let ns = unique(&format!("e2e-pol-{tag}"));
    for u in [User::Reader, User::Operator] {
        tb.probe_namespace(&ns, u);
        tb.bind_reader(u);
    }
    let op = User::Operator.name();
    bind(
        tb,
        &format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: k8s-gpu-mcp-operator-{op}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: k8s-gpu-mcp-operator}}\nsubjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {op}}}]\n"
        ),
    );
    let node = unique("pol-node");
    tb.add_nodes(&[FakeNode::gpu(&node, "dgx-h100-healthy")]);
    (tb, ns, node)
}

/// Assert `out` failed with the API server naming `policy` as the one that denied it.
fn refused_by(out: &std::process::Output, policy: &str, what: &str) -> String {
    let err = stderr(out);
    assert!(!out.status.success(), "{what}: admitted\n{err}");
    assert!(
        err.contains(&format!("ValidatingAdmissionPolicy '{policy}'"))
            && err.contains("denied request"),
        "{what}: not refused by {policy}: {err}"
    );
    eprintln!("{what}: {}", err.trim());
    err
}

/// A strategic-merge PATCH of `path` as `user`, sent straight to the API server (kubectl 1.32's `patch
/// --subresource ephemeralcontainers` is refused by kubectl itself against an API server before 1.32); the
/// answer as kubectl's would be: failed with the server's message on stderr for a status of 300 or more.
fn patch_as(tb: &Testbed, user: User, path: &str, body: &str) -> std::process::Output {
    use std::os::unix::process::ExitStatusExt;
    let out = std::process::Command::new("curl")
        .args(["-sS", "-X", "PATCH", "--cacert", tb.var("TESTBED_CA")])
        .args(["-H", &format!("Authorization: Bearer {}", tb.token(user))])
        .args(["-H", "Content-Type: application/strategic-merge-patch+json"])
        .args(["--data-binary", body, "-w", "\n%{http_code}"])
        .arg(format!("{}{path}", tb.server()))
        .output()
        .expect("run curl");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (answer, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    let ok = out.status.success() && code.trim().starts_with('2');
    std::process::Output {
        status: std::process::ExitStatus::from_raw(if ok { 0 } else { 256 }),
        stdout: if ok {
            answer.as_bytes().to_vec()
        } else {
            Vec::new()
        },
        stderr: if ok {
            out.stderr
        } else {
            format!("{answer}{}", String::from_utf8_lossy(&out.stderr)).into_bytes()
        },
    }
}

fn wait_ready(tb: &Testbed, ns: &str, pod: &str) {
    tb.kubectl(&[
        "-n",
        ns,
        "wait",
        "--for=condition=Ready",
        &format!("pod/{pod}"),
        "--timeout=180s",
    ]);
}

/// The delivery script as the launcher sends it (the exec policy compares it word for word; a unit test of
/// launcher/src/readiness/policies.rs proves deploy/policies.yaml holds delivery.rs's).
fn delivery_script() -> String {
    policy_script("deliveryScript")
}

/// A script of the exec policy, as the launcher sends it (the launcher's unit tests hold the policy's copies to
/// its own: `readiness::policies`).
pub(crate) fn policy_script(name: &str) -> String {
    let text =
        std::fs::read_to_string(crate::testbed::repo_root().join("deploy/policies.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text).unwrap();
    let exec = docs
        .iter()
        .find(|d| {
            d["metadata"]["name"] == "k8s-gpu-mcp-probe-exec"
                && d["kind"] == "ValidatingAdmissionPolicy"
        })
        .unwrap();
    let expr = exec["spec"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap()["expression"]
        .as_str()
        .unwrap();
    expr.strip_prefix("r'''")
        .and_then(|s| s.strip_suffix("'''"))
        .unwrap()
        .to_string()
}

#[test]
fn probe_pods_and_execs_of_another_shape_are_refused_by_the_policies() {
    if skipped() {
        return;
    }
    let (tb, ns, node) = setup("pod");
    let base = probe_pod_yaml("PODNAME", &ns, &node);
    let create = |user: User, yaml: &str| tb.kubectl_as(user, &["apply", "-f", "-"], Some(yaml));

    // A privileged pod of another image, and of another command, as the launcher's reader.
    let evil = base
        .replace("PODNAME", &unique("evil-image"))
        .replace(crate::mcp::E2E_PROBE_IMAGE, EVIL_IMAGE);
    refused_by(
        &create(User::Reader, &evil),
        "k8s-gpu-mcp-probe-pod",
        "pod of another image",
    );
    let by_tag = base.replace("PODNAME", &unique("by-tag")).replace(
        crate::mcp::E2E_PROBE_IMAGE,
        "registry.invalid/k8s-gpu-mcp/node-probe:e2e",
    );
    refused_by(
        &create(User::Reader, &by_tag),
        "k8s-gpu-mcp-probe-pod",
        "pod by tag",
    );
    let shell = base.replace("PODNAME", &unique("evil-cmd")).replace(
        "command: [sleep, \"300\"]",
        "command: [sh, -c, \"id; sleep 300\"]",
    );
    refused_by(
        &create(User::Reader, &shell),
        "k8s-gpu-mcp-probe-pod",
        "pod of another command",
    );
    let host = base.replace("PODNAME", &unique("evil-vol")).replace(
        "    resources:",
        "    volumeMounts: [{name: host, mountPath: /host}]\n    resources:",
    ) + "  volumes: [{name: host, hostPath: {path: /}}]\n";
    refused_by(
        &create(User::Reader, &host),
        "k8s-gpu-mcp-probe-pod",
        "pod with the host's / mounted",
    );
    let preload = base.replace("PODNAME", &unique("evil-env")).replace(
        "    resources:",
        "    env: [{name: LD_PRELOAD, value: /proc/1/root/tmp/x.so}]\n    resources:",
    );
    refused_by(
        &create(User::Reader, &preload),
        "k8s-gpu-mcp-probe-pod",
        "pod with LD_PRELOAD",
    );
    let unpinned = base
        .replace("PODNAME", &unique("unpinned"))
        .replace(&format!("  nodeName: {node}\n"), "");
    refused_by(
        &create(User::Reader, &unpinned),
        "k8s-gpu-mcp-probe-pod",
        "pod not pinned to a node",
    );

    // The probe's own shape is admitted; execs into it only in the launcher's argv.
    let pod = unique("probe");
    let out = create(User::Reader, &base.replace("PODNAME", &pod));
    assert!(out.status.success(), "the probe's shape: {}", stderr(&out));
    wait_ready(tb, &ns, &pod);
    let exec = |user: User, container: &str, argv: &[&str]| {
        let mut args = vec![
            "-n",
            ns.as_str(),
            "exec",
            pod.as_str(),
            "-c",
            container,
            "--",
        ];
        args.extend(argv);
        tb.kubectl_as(user, &args, None)
    };
    let marker = tb.dir.join(unique("policy-marker"));
    let m = marker.display().to_string();
    let touch = format!("touch {m}");
    refused_by(
        &exec(User::Reader, "probe", &["sh", "-c", &touch]),
        "k8s-gpu-mcp-probe-exec",
        "exec of sh",
    );
    refused_by(
        &exec(
            User::Reader,
            "probe",
            &[
                "node-probe",
                "--nvml-lib",
                &m,
                "health",
                "--node-name",
                &node,
            ],
        ),
        "k8s-gpu-mcp-probe-exec",
        "node-probe with --nvml-lib",
    );
    refused_by(
        &exec(
            User::Reader,
            "probe",
            &[
                "node-probe",
                "evidence",
                "--bug-report",
                &m,
                "--node-name",
                &node,
            ],
        ),
        "k8s-gpu-mcp-probe-exec",
        "node-probe evidence with --bug-report",
    );
    refused_by(
        &exec(
            User::Reader,
            "probe",
            &[
                "node-probe",
                "kill",
                "--pid",
                "1",
                "--grace-seconds",
                "1",
                "--node-name",
                &node,
            ],
        ),
        "k8s-gpu-mcp-probe-exec",
        "kill without the operator role",
    );
    // The delivery script, word for word, with a binary the owner did not list: it would run any bytes.
    let script = delivery_script();
    let zeros = "0".repeat(64);
    refused_by(
        &exec(
            User::Reader,
            "probe",
            &[
                "sh",
                "-c",
                &script,
                "sh",
                "10",
                "0",
                &zeros,
                "",
                "health",
                "--node-name",
                &node,
            ],
        ),
        "k8s-gpu-mcp-probe-exec",
        "delivery script with an unlisted build",
    );
    // The stop of a cancelled DCGM or RVS run (launcher/src/probe/stop_first.rs): word for word with one of
    // their two pid files and a wait in seconds; another file, another wait or an edited script is refused.
    let stop = policy_script("stopScript");
    let stop = stop.as_str();
    let edited = format!("{stop}touch {m}\n");
    for (argv, what) in [
        (
            vec!["sh", "-c", stop, "sh", "/etc/passwd", "1"],
            "the stop with another pid file",
        ),
        (
            vec![
                "sh",
                "-c",
                stop,
                "sh",
                "/tmp/k8s-gpu-mcp-rvs-diag.pid.x",
                "1",
            ],
            "the stop with a pid file beside RVS's",
        ),
        (
            vec![
                "sh",
                "-c",
                stop,
                "sh",
                "/tmp/k8s-gpu-mcp-rvs-diag.pid",
                "99999",
            ],
            "the RVS stop with a wait of four digits",
        ),
        (
            vec![
                "sh",
                "-c",
                &edited,
                "sh",
                "/tmp/k8s-gpu-mcp-rvs-diag.pid",
                "1",
            ],
            "an edited stop script with RVS's pid file",
        ),
        (
            vec![
                "sh",
                "-c",
                stop,
                "sh",
                "/tmp/k8s-gpu-mcp-dcgm-diag.pid",
                "1;reboot",
            ],
            "the stop with a wait that is no number",
        ),
        (
            vec![
                "sh",
                "-c",
                &edited,
                "sh",
                "/tmp/k8s-gpu-mcp-dcgm-diag.pid",
                "1",
            ],
            "an edited stop script",
        ),
    ] {
        refused_by(
            &exec(User::Reader, "probe", &argv),
            "k8s-gpu-mcp-probe-exec",
            what,
        );
    }
    let out = exec(
        User::Reader,
        "probe",
        &[
            "sh",
            "-c",
            stop,
            "sh",
            "/tmp/k8s-gpu-mcp-dcgm-diag.pid",
            "1",
        ],
    );
    assert!(
        out.status.success() && !stderr(&out).contains("denied request"),
        "the launcher's stop of a DCGM run: {}",
        stderr(&out)
    );
    let out = exec(
        User::Reader,
        "probe",
        &["sh", "-c", stop, "sh", "/tmp/k8s-gpu-mcp-rvs-diag.pid", "1"],
    );
    assert!(
        out.status.success() && !stderr(&out).contains("denied request"),
        "the launcher's stop of an RVS run: {}",
        stderr(&out)
    );
    // `--api-claims` (the API server's DRA claims, issue 54) only on allocation and reset, only in its
    // grammar: no other characters, no other command, no extra flag after it.
    for (argv, what) in [
        (
            vec![
                "node-probe",
                "allocation",
                "--api-claims",
                "ml/c=gpu.nvidia.com/gpu-0;id",
                "--node-name",
                &node,
            ],
            "--api-claims with a character outside its grammar",
        ),
        (
            vec![
                "node-probe",
                "allocation",
                "--api-claims",
                "ML/C=gpu.nvidia.com/gpu-0",
                "--node-name",
                &node,
            ],
            "--api-claims in upper case",
        ),
        (
            vec![
                "node-probe",
                "health",
                "--api-claims",
                "none",
                "--node-name",
                &node,
            ],
            "--api-claims on another command",
        ),
        (
            vec![
                "node-probe",
                "allocation",
                "--api-claims",
                "none",
                "--fixture",
                &m,
                "--node-name",
                &node,
            ],
            "--api-claims followed by another flag",
        ),
        (
            vec![
                "node-probe",
                "reset",
                "--gpu",
                "0",
                "--api-claims",
                "none",
                "--node-name",
                &node,
            ],
            "reset with --api-claims without the operator role",
        ),
        // dcgm-diag (issue 56): level 1 only for the reader, GPUs and tests in their grammar, no --dcgmi.
        (
            vec![
                "node-probe",
                "dcgm-diag",
                "--level",
                "2",
                "--gpus",
                "0",
                "--node-name",
                &node,
            ],
            "dcgm-diag level 2 without the operator role",
        ),
        (
            vec![
                "node-probe",
                "dcgm-diag",
                "--tests",
                "software",
                "--gpus",
                "0",
                "--node-name",
                &node,
            ],
            "dcgm-diag named tests without the operator role",
        ),
        (
            vec![
                "node-probe",
                "dcgm-diag",
                "--level",
                "1",
                "--gpus",
                "0;1",
                "--node-name",
                &node,
            ],
            "dcgm-diag --gpus outside its grammar",
        ),
        (
            vec![
                "node-probe",
                "dcgm-diag",
                "--level",
                "1",
                "--gpus",
                "0",
                "--dcgmi",
                &m,
                "--node-name",
                &node,
            ],
            "dcgm-diag with --dcgmi",
        ),
        // --engine (the GPU Operator's host engine): an IP address and port, never a name that could be
        // made to point anywhere, and only once.
        (
            vec![
                "node-probe",
                "dcgm-diag",
                "--level",
                "1",
                "--gpus",
                "0",
                "--engine",
                "evil.example.com:5555",
                "--node-name",
                &node,
            ],
            "dcgm-diag --engine with a name",
        ),
        (
            vec![
                "node-probe",
                "dcgm-diag",
                "--level",
                "1",
                "--gpus",
                "0",
                "--engine",
                "10.0.0.1:5555",
                "--nvml-lib",
                "/tmp/x",
                "--node-name",
                &node,
            ],
            "dcgm-diag --engine followed by another flag",
        ),
        // A well-formed engine address from a reader: directing node-probe at a host engine (whose answer
        // decides pass or fail) is the operator role's alone (issue 62).
        (
            vec![
                "node-probe",
                "dcgm-diag",
                "--level",
                "1",
                "--gpus",
                "0",
                "--engine",
                "10.0.0.1:5555",
                "--node-name",
                &node,
            ],
            "dcgm-diag --engine from a reader",
        ),
        // rvs-diag (issue 63): level 1 and the read-only recipes for the reader, GPU indices only, no --rvs.
        (
            vec![
                "node-probe",
                "rvs-diag",
                "--level",
                "2",
                "--gpus",
                "0",
                "--node-name",
                &node,
            ],
            "rvs-diag level 2 without the operator role",
        ),
        (
            vec![
                "node-probe",
                "rvs-diag",
                "--tests",
                "gst_single",
                "--gpus",
                "0",
                "--node-name",
                &node,
            ],
            "rvs-diag gst_single (loads the GPUs) without the operator role",
        ),
        (
            vec![
                "node-probe",
                "rvs-diag",
                "--tests",
                "../../etc/passwd",
                "--gpus",
                "0",
                "--node-name",
                &node,
            ],
            "rvs-diag with a recipe outside RVS's names",
        ),
        (
            vec![
                "node-probe",
                "rvs-diag",
                "--level",
                "1",
                "--gpus",
                "GPU-11111111-2222-3333-4444-555555555555",
                "--node-name",
                &node,
            ],
            "rvs-diag --gpus by UUID",
        ),
        (
            vec![
                "node-probe",
                "rvs-diag",
                "--level",
                "1",
                "--gpus",
                "0;id",
                "--node-name",
                &node,
            ],
            "rvs-diag --gpus outside its grammar",
        ),
        (
            vec![
                "node-probe",
                "rvs-diag",
                "--level",
                "1",
                "--gpus",
                "0",
                "--rvs",
                "/tmp/rvs",
                "--node-name",
                &node,
            ],
            "rvs-diag with --rvs",
        ),
        (
            vec![
                "node-probe",
                "rvs-diag",
                "--level",
                "1",
                "--gpus",
                "0",
                "--conf-dir",
                "/tmp",
                "--node-name",
                &node,
            ],
            "rvs-diag with --conf-dir",
        ),
        (
            vec![
                "node-probe",
                "rvs-diag",
                "--level",
                "1",
                "--gpus",
                "0",
                "--pid-file",
                "/etc/passwd",
                "--node-name",
                &node,
            ],
            "rvs-diag --pid-file elsewhere than the launcher's",
        ),
        (
            vec![
                "node-probe",
                "rvs-diag",
                "--level",
                "1",
                "--gpus",
                "0",
                "--engine",
                "10.0.0.1:5555",
                "--node-name",
                &node,
            ],
            "rvs-diag with dcgm-diag's --engine",
        ),
    ] {
        refused_by(
            &exec(User::Reader, "probe", &argv),
            "k8s-gpu-mcp-probe-exec",
            what,
        );
    }
    let long = format!("ml/c=gpu.nvidia.com/gpu-0>{}", "p".repeat(16_400));
    refused_by(
        &exec(
            User::Reader,
            "probe",
            &[
                "node-probe",
                "allocation",
                "--api-claims",
                &long,
                "--node-name",
                &node,
            ],
        ),
        "k8s-gpu-mcp-probe-exec",
        "--api-claims over 16384 bytes",
    );
    assert!(!marker.exists(), "a refused exec ran");
    // The launcher's allocation with the API server's claims is admitted.
    let claims = gpu_diag::command::Request::Allocation {
        api_claims: Some(
            "ml/train-0-gpu=gpu.nvidia.com/gpu-1>train-0:0d3c4b1e-1111-4222-8333-444455556666"
                .into(),
        ),
    }
    .argv();
    let mut argv: Vec<&str> = vec!["node-probe"];
    argv.extend(claims.iter().map(String::as_str));
    argv.extend(["--node-name", node.as_str()]);
    let out = exec(User::Reader, "probe", &argv);
    assert!(
        out.status.success(),
        "allocation --api-claims: {}",
        stderr(&out)
    );
    // The launcher's dcgm-diag at level 1 (issue 56), with every optional flag, is admitted for the operator
    // (a reader's, without --engine, below); node-probe answers one document (this host has no GPU: an NVML
    // error, or not run).
    let diag = gpu_diag::command::Request::DcgmDiag {
        run: gpu_diag::dcgm::request::DiagRun::Level(1),
        gpus: vec![],
        timeout_secs: Some(90),
        api_claims: Some("none".into()),
        engine: Some(gpu_diag::dcgm::request::Engine::parse("10.244.1.7:5555,heartbeat").unwrap()),
    }
    .argv();
    assert!(diag.len() == 13, "every optional flag: {diag:?}");
    let mut argv: Vec<&str> = vec!["node-probe"];
    argv.extend(diag.iter().map(String::as_str));
    argv.extend(["--node-name", node.as_str()]);
    let out = exec(User::Operator, "probe", &argv);
    assert!(
        !stderr(&out).contains("denied request"),
        "dcgm-diag level 1 with --engine by the operator: {}",
        stderr(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"schema_version\""));
    let reader_diag = gpu_diag::command::Request::DcgmDiag {
        run: gpu_diag::dcgm::request::DiagRun::Level(1),
        gpus: vec![],
        timeout_secs: Some(90),
        api_claims: Some("none".into()),
        engine: None,
    }
    .argv();
    let mut argv: Vec<&str> = vec!["node-probe"];
    argv.extend(reader_diag.iter().map(String::as_str));
    argv.extend(["--node-name", node.as_str()]);
    let out = exec(User::Reader, "probe", &argv);
    assert!(
        !stderr(&out).contains("denied request"),
        "dcgm-diag level 1 by a reader: {}",
        stderr(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"schema_version\""));
    // Level 2 on named GPUs, as the launcher sends it: the operator's.
    let level2 = gpu_diag::command::Request::DcgmDiag {
        run: gpu_diag::dcgm::request::DiagRun::Level(2),
        gpus: gpu_diag::dcgm::request::parse_gpus("0,1").unwrap(),
        timeout_secs: None,
        api_claims: None,
        engine: None,
    }
    .argv();
    let mut argv: Vec<&str> = vec!["node-probe"];
    argv.extend(level2.iter().map(String::as_str));
    argv.extend(["--node-name", node.as_str()]);
    let out = exec(User::Operator, "probe", &argv);
    assert!(
        !stderr(&out).contains("denied request"),
        "dcgm-diag level 2 by the operator: {}",
        stderr(&out)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("\"schema_version\""),
        "dcgm-diag level 2 by the operator did not run: {}",
        stderr(&out)
    );
    // The launcher's rvs-diag at level 1 (issue 63), with every optional flag, is admitted for a reader, and
    // a recipe that loads the GPUs for the operator; node-probe answers one document (no AMD GPU here).
    let rvs = gpu_diag::command::Request::RvsDiag {
        run: gpu_diag::rvs::request::RvsRun::Level(1),
        gpus: vec![],
        timeout_secs: Some(90),
        api_claims: Some("none".into()),
    }
    .argv();
    assert!(rvs.len() == 11, "every optional flag: {rvs:?}");
    let mut argv: Vec<&str> = vec!["node-probe"];
    argv.extend(rvs.iter().map(String::as_str));
    argv.extend(["--node-name", node.as_str()]);
    let out = exec(User::Reader, "probe", &argv);
    assert!(
        !stderr(&out).contains("denied request"),
        "rvs-diag level 1 by a reader: {}",
        stderr(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"schema_version\""));
    let gst = gpu_diag::command::Request::RvsDiag {
        run: gpu_diag::rvs::request::RvsRun::Recipe("gst_single"),
        gpus: gpu_diag::rvs::request::parse_gpus("0,1").unwrap(),
        timeout_secs: None,
        api_claims: None,
    }
    .argv();
    let mut argv: Vec<&str> = vec!["node-probe"];
    argv.extend(gst.iter().map(String::as_str));
    argv.extend(["--node-name", node.as_str()]);
    let out = exec(User::Operator, "probe", &argv);
    assert!(
        !stderr(&out).contains("denied request"),
        "rvs-diag gst_single by the operator: {}",
        stderr(&out)
    );
    // The launcher's watch (issue 65) is admitted for a reader and answers; the same words with a flag of
    // another command, out of order or outside their grammar are refused.
    let watch = gpu_diag::command::Request::Watch {
        seconds: 1,
        interval_ms: 500,
        start_at_ms: Some(1_795_600_000_000),
        gpus: vec![0, 1],
    }
    .argv();
    let mut argv: Vec<&str> = vec!["node-probe"];
    argv.extend(watch.iter().map(String::as_str));
    argv.extend(["--node-name", node.as_str()]);
    let out = exec(User::Reader, "probe", &argv);
    assert!(
        !stderr(&out).contains("denied request"),
        "watch by a reader: {}",
        stderr(&out)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"schema_version\""));
    let with = |i: usize, word: &str| -> Vec<String> {
        let mut v: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        v[i] = word.to_string();
        v
    };
    for (bad, what) in [
        (with(9, "0;id"), "watch --gpus outside its grammar"),
        (with(3, "99999"), "watch --seconds past its grammar"),
        (
            with(6, "--fixture"),
            "watch with another flag in place of --start-at-ms",
        ),
        (with(5, "/tmp/x"), "watch with a path for --interval-ms"),
        (
            with(10, "--fixture"),
            "watch with another flag in place of --stream",
        ),
        (
            argv.iter()
                .filter(|a| **a != "--stream")
                .map(|s| s.to_string())
                .collect(),
            "watch without --stream (one shape is admitted)",
        ),
    ] {
        let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
        refused_by(
            &exec(User::Reader, "probe", &bad),
            "k8s-gpu-mcp-probe-exec",
            what,
        );
    }
    let mut longer: Vec<&str> = argv[..argv.len() - 2].to_vec();
    longer.extend(["--host-root", "/tmp", "--node-name", node.as_str()]);
    refused_by(
        &exec(User::Reader, "probe", &longer),
        "k8s-gpu-mcp-probe-exec",
        "watch with --host-root",
    );
    // The launcher's own argv is admitted and answers.
    let out = exec(
        User::Reader,
        "probe",
        &["node-probe", "health", "--node-name", &node],
    );
    assert!(out.status.success(), "node-probe health: {}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"schema_version\""));
    // Whoever may delete the policies (the testbed's admin) is exempt.
    let out = tb.kubectl_as(
        User::Admin,
        &[
            "-n", &ns, "exec", &pod, "-c", "probe", "--", "sh", "-c", "true",
        ],
        None,
    );
    assert!(out.status.success(), "admin exec: {}", stderr(&out));
    tb.kubectl(&["-n", &ns, "delete", "pod", &pod, "--grace-period=0"]);
    tb.wait_no_pods(&ns, Duration::from_secs(120))
        .expect("probe pod left");

    // The same user elsewhere (a namespace where a role of their own lets them create pods): untouched.
    let own = unique("e2e-pol-own");
    tb.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {own}}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {own}}}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {{name: pods, namespace: {own}}}\nrules: [{{apiGroups: [''], resources: [pods], verbs: [create, get, delete]}}]\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: pods, namespace: {own}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: Role, name: pods}}\nsubjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {}}}]\n",
        User::Reader.name()
    ));
    let plain = format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: mine, namespace: {own}}}\nspec:\n  nodeName: {node}\n  containers: [{{name: app, image: 'registry.example.com/app:latest', command: [sh, -c, 'sleep 60']}}]\n"
    );
    let out = create(User::Reader, &plain);
    assert!(out.status.success(), "own pod elsewhere: {}", stderr(&out));
    tb.kubectl(&[
        "-n",
        &own,
        "delete",
        "pod",
        "mine",
        "--grace-period=0",
        "--wait=false",
    ]);
}

/// The launcher's `--driver-root` (issue 44): admitted only as the launcher passes it (`--driver-root DIR` just
/// before `--node-name`, DIR an absolute host path without `.`/`..`, not under /proc, /sys or /dev), so it
/// cannot climb out of the host root, reach a container's root through /proc, or carry another flag.
#[test]
fn driver_root_is_admitted_only_in_the_launchers_shape() {
    if skipped() {
        return;
    }
    let (tb, ns, node) = setup("drv");
    let pod = unique("probe");
    let yaml = probe_pod_yaml(&pod, &ns, &node);
    let out = tb.kubectl_as(User::Reader, &["apply", "-f", "-"], Some(&yaml));
    assert!(out.status.success(), "the probe's shape: {}", stderr(&out));
    wait_ready(tb, &ns, &pod);
    let exec = |argv: &[&str]| {
        let mut args = vec!["-n", ns.as_str(), "exec", pod.as_str(), "-c", "probe", "--"];
        args.extend(argv);
        tb.kubectl_as(User::Reader, &args, None)
    };
    let marker = tb.dir.join(unique("driver-root-marker"));
    let m = marker.display().to_string();
    let policy = "k8s-gpu-mcp-probe-exec";
    let with_root = |root: &str| -> Vec<String> {
        [
            "node-probe",
            "health",
            "--driver-root",
            root,
            "--node-name",
            &node,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let long = format!("/opt/{}", "a".repeat(1100));
    for (root, what) in [
        ("opt/nvidia", "a relative driver root"),
        ("/opt/../../etc", "a driver root with .."),
        ("/opt/nvidia/..", "a driver root ending in .."),
        ("/opt/./nvidia", "a driver root with a . component"),
        (
            "/proc/1/root/usr/lib64",
            "a driver root outside the host root (/proc/1/root)",
        ),
        ("/sys/fs/x", "a driver root under /sys"),
        ("/", "the host root itself"),
        ("//opt", "a driver root with an empty component"),
        (long.as_str(), "a driver root over 1024 bytes"),
        (
            &format!("/opt --nvml-lib={m}"),
            "a driver root with a space and a flag",
        ),
        (
            &format!("/opt\n--nvml-lib={m}"),
            "a driver root with a newline",
        ),
    ] {
        let argv = with_root(root);
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        let err = refused_by(&exec(&argv), policy, what);
        assert!(
            err.contains("--driver-root names a directory on the host"),
            "{what}: refused by another rule: {err}"
        );
    }
    // Smuggled: another flag after the root, a second root, the root elsewhere in the argv, a flag as DIR.
    for (argv, what) in [
        (
            vec![
                "node-probe",
                "health",
                "--driver-root",
                "/opt/nvidia",
                "--nvml-lib",
                &m,
                "--node-name",
                &node,
            ],
            "an extra flag after --driver-root",
        ),
        (
            vec![
                "node-probe",
                "health",
                "--driver-root",
                "/opt/nvidia",
                &m,
                "--node-name",
                &node,
            ],
            "an extra argument after --driver-root",
        ),
        (
            vec![
                "node-probe",
                "health",
                "--driver-root",
                "/opt/a",
                "--driver-root",
                "/opt/b",
                "--node-name",
                &node,
            ],
            "two driver roots",
        ),
        (
            vec![
                "node-probe",
                "--driver-root",
                "/opt/nvidia",
                "health",
                "--node-name",
                &node,
            ],
            "--driver-root before the command",
        ),
        (
            vec![
                "node-probe",
                "health",
                "--driver-root",
                "--nvml-lib",
                &m,
                "--node-name",
                &node,
            ],
            "a flag as the driver root",
        ),
        (
            vec![
                "node-probe",
                "kill",
                "--pid",
                "1",
                "--grace-seconds",
                "1",
                "--driver-root",
                "/opt/nvidia",
                "--node-name",
                &node,
            ],
            "kill without the operator role, with a driver root",
        ),
    ] {
        refused_by(&exec(&argv), policy, what);
    }
    assert!(!marker.exists(), "a refused exec ran");
    // The launcher's own form is admitted and node-probe answers with it, for a plain command and one with
    // its own flag.
    for argv in [
        vec![
            "node-probe",
            "health",
            "--driver-root",
            "/opt/nvidia/lib64",
            "--node-name",
            &node,
        ],
        vec![
            "node-probe",
            "xid",
            "--since",
            "2h",
            "--driver-root",
            "/run/nvidia-v2_1+x",
            "--node-name",
            &node,
        ],
    ] {
        let out = exec(&argv);
        assert!(out.status.success(), "{argv:?}: {}", stderr(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"schema_version\""));
    }
    tb.kubectl(&["-n", &ns, "delete", "pod", &pod, "--grace-period=0"]);
    tb.wait_no_pods(&ns, Duration::from_secs(120))
        .expect("probe pod left");
}

#[test]
fn ephemeral_containers_and_workload_execs_of_another_shape_are_refused() {
    if skipped() {
        return;
    }
    let (tb, _ns, node) = setup("eph");
    let work = unique("e2e-pol-work");
    tb.apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: {work}, labels: {{pod-security.kubernetes.io/enforce: privileged}}}}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {{name: default, namespace: {work}}}\n"
    ));
    let workload = |ns: &str| {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: trainer, namespace: {ns}}}\nspec:\n  nodeName: {node}\n  tolerations: [{{operator: Exists}}]\n  containers: [{{name: main, image: 'registry.example.com/train@sha256:{}', command: [sleep, '600']}}]\n",
            "7".repeat(64)
        )
    };
    tb.apply(&workload(&work));
    wait_ready(tb, &work, "trainer");
    // Privileged as the probe is, except in kube-system, whose Pod Security level (baseline) would refuse it
    // before the policies are asked.
    let patch = |ns: &str, name: &str, image: &str, command: &str| {
        let privileged = if ns == "kube-system" { "false" } else { "true" };
        let body = format!(
            r#"{{"spec":{{"ephemeralContainers":[{{"name":"{name}","image":"{image}","command":{command},"targetContainerName":"main","securityContext":{{"privileged":{privileged}}}}}]}}}}"#
        );
        patch_as(
            tb,
            User::Operator,
            &format!("/api/v1/namespaces/{ns}/pods/trainer/ephemeralcontainers"),
            &body,
        )
    };
    let probe = crate::mcp::E2E_PROBE_IMAGE;
    refused_by(
        &patch(
            &work,
            &unique("node-probe"),
            EVIL_IMAGE,
            r#"["sleep","60"]"#,
        ),
        "k8s-gpu-mcp-ephemeral-container",
        "ephemeral container of another image",
    );
    refused_by(
        &patch(&work, &unique("node-probe"), probe, r#"["sh","-c","id"]"#),
        "k8s-gpu-mcp-ephemeral-container",
        "ephemeral container of another command",
    );
    refused_by(
        &patch(&work, "debugger", probe, r#"["sleep","60"]"#),
        "k8s-gpu-mcp-ephemeral-container",
        "ephemeral container not named node-probe-",
    );
    // The launcher's shape is admitted.
    let added = unique("node-probe");
    let out = patch(&work, &added, probe, r#"["sleep","60"]"#);
    assert!(
        out.status.success(),
        "probe-shaped ephemeral container: {}",
        stderr(&out)
    );

    // Exec into a workload container the launcher did not add, even with node-probe's argv.
    let exec = |ns: &str, container: &str| {
        tb.kubectl_as(
            User::Operator,
            &[
                "-n",
                ns,
                "exec",
                "trainer",
                "-c",
                container,
                "--",
                "node-probe",
                "health",
                "--node-name",
                &node,
            ],
            None,
        )
    };
    refused_by(
        &exec(&work, "main"),
        "k8s-gpu-mcp-probe-exec",
        "exec into the workload's own container",
    );
    let out = tb.kubectl_as(
        User::Operator,
        &[
            "-n", &work, "exec", "trainer", "-c", &added, "--", "sh", "-c", "id",
        ],
        None,
    );
    refused_by(
        &out,
        "k8s-gpu-mcp-probe-exec",
        "exec of sh into the launcher's ephemeral container",
    );
    // The launcher's --driver-root in the ephemeral container: admitted in its form, refused climbing.
    let probe_exec = |root: &str| {
        tb.kubectl_as(
            User::Operator,
            &[
                "-n",
                &work,
                "exec",
                "trainer",
                "-c",
                &added,
                "--",
                "node-probe",
                "health",
                "--driver-root",
                root,
                "--node-name",
                &node,
            ],
            None,
        )
    };
    refused_by(
        &probe_exec("/opt/../proc/1/root"),
        "k8s-gpu-mcp-probe-exec",
        "a climbing driver root in the launcher's ephemeral container",
    );
    let out = probe_exec("/opt/nvidia");
    assert!(
        !stderr(&out).contains("ValidatingAdmissionPolicy"),
        "the launcher's driver root refused in its ephemeral container: {}",
        stderr(&out)
    );

    // The same in kube-system: refused whatever the shape.
    tb.apply(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: kube-system}\n",
    );
    tb.apply(&workload("kube-system"));
    wait_ready(tb, "kube-system", "trainer");
    refused_by(
        &patch(
            "kube-system",
            &unique("node-probe"),
            probe,
            r#"["sleep","60"]"#,
        ),
        "k8s-gpu-mcp-ephemeral-container",
        "probe-shaped ephemeral container in kube-system",
    );
    refused_by(
        &exec("kube-system", "main"),
        "k8s-gpu-mcp-probe-exec",
        "exec in kube-system",
    );
    tb.kubectl(&[
        "-n",
        "kube-system",
        "delete",
        "pod",
        "trainer",
        "--grace-period=0",
        "--wait=false",
    ]);
    tb.kubectl(&[
        "-n",
        &work,
        "delete",
        "pod",
        "trainer",
        "--grace-period=0",
        "--wait=false",
    ]);
}

/// `check` proves the policies for the user it runs as: in force for the launcher's reader; for a user bound to
/// roles without the marker (deploy/rbac.yaml before the policies) it says in one line what is not enforced,
/// and the permission line names the missing marker.
#[test]
fn check_says_whether_the_policies_hold_for_its_user() {
    if skipped() {
        return;
    }
    let (tb, ns, node) = setup("check");
    let check = |user: User, ns: &str| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_k8s-gpu-mcp"))
            .arg("--kubeconfig")
            .arg(tb.kubeconfig(user))
            .args([
                "--namespace",
                ns,
                "--probe-image",
                crate::mcp::E2E_PROBE_IMAGE,
            ])
            .args([
                "check",
                "--selector",
                &format!("kubernetes.io/hostname={node}"),
                "--output",
                "json",
            ])
            .env_remove("KUBECONFIG")
            .env("RUST_LOG", "warn")
            .output()
            .expect("run k8s-gpu-mcp check");
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("check output ({e}): {}", stderr(&out)));
        let item = |name: &str| {
            report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["name"] == name)
                .cloned()
                .unwrap_or_else(|| panic!("no {name} in {report:#}"))
        };
        (
            item("policies"),
            item("permissions/k8s-gpu-mcp-probe"),
            report.clone(),
        )
    };
    let (p, _, report) = check(User::Reader, &ns);
    assert_eq!(p["status"], "ok", "{report:#}");
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("k8s-gpu-mcp-probe-exec"),
        "{p}"
    );

    // The probe role as it was before the marker, bound to another user in a namespace of its own.
    let old = unique("e2e-pol-old");
    let nobody = User::Nobody.name();
    let rbac =
        std::fs::read_to_string(crate::testbed::repo_root().join("deploy/rbac.yaml")).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(&rbac).unwrap();
    let mut role = docs
        .into_iter()
        .find(|d| d["metadata"]["name"] == "k8s-gpu-mcp-probe")
        .unwrap();
    role["metadata"]["name"] = format!("{old}-probe").into();
    let rules: Vec<serde_json::Value> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["apiGroups"][0] != "k8s-gpu-mcp.io")
        .cloned()
        .collect();
    role["rules"] = rules.into();
    tb.apply(&serde_json::to_string(&role).unwrap());
    tb.probe_namespace(&old, User::Admin);
    tb.apply(&format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: old-probe, namespace: {old}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {old}-probe}}\nsubjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {nobody}}}]\n"
    ));
    let (p, perm, report) = check(User::Nobody, &old);
    assert_eq!(p["status"], "warn", "{report:#}");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("not in force for you") && detail.contains("root shell on every GPU node"),
        "{p}"
    );
    assert!(
        perm["detail"]
            .as_str()
            .unwrap()
            .contains("hold probe-role.k8s-gpu-mcp.io"),
        "{perm}"
    );
    eprintln!("check without the marker: {detail}");
}
