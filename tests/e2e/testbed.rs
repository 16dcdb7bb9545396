//! Test support: a real Kubernetes control plane (etcd + kube-apiserver + kwok) on loopback.
//!
//! `tests/testbed/testbed.sh up DIR` does the work (fresh PKI, tokens, random free ports) and stays in the
//! foreground until its stdin closes. The [`Testbed`] owns that process: dropping it (also while a test
//! panics) closes the pipe and then kills the process group; when the test binary dies, even by SIGKILL,
//! the kernel closes the pipe and the script stops the components itself. One testbed is shared by the
//! tests of a binary ([`Testbed::shared`]); tests isolate themselves with their own nodes and namespaces.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

// The real-node suite loads this file and the gate twice (through the testbed and the fake NVML):
// one state-free copy each is harmless.
#[allow(clippy::duplicate_mod)]
#[path = "../support/gate.rs"]
pub mod gate;

/// `SKIP_E2E=1` is the only way to skip the end-to-end suite (outside CI: under CI=true the skip fails the
/// test, see tests/support/gate.rs); a missing control plane is a failure.
pub fn skipped() -> bool {
    if std::env::var("SKIP_E2E").as_deref() == Ok("1") {
        gate::skip("SKIP_E2E=1: end-to-end test");
        return true;
    }
    false
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("launcher crate lives in the workspace")
        .to_path_buf()
}

fn script() -> PathBuf {
    repo_root().join("tests/testbed/testbed.sh")
}

/// The directory with etcd, kube-apiserver and kwok: `TESTBED_BIN`, else `tests/testbed/build.sh` (cached
/// by version outside the repo; the first run builds for several minutes).
pub fn testbed_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("TESTBED_BIN").filter(|b| !b.is_empty()) {
            return PathBuf::from(bin);
        }
        eprintln!("TESTBED_BIN unset: running tests/testbed/build.sh (cached after the first run)");
        let out = Command::new("bash")
            .arg(repo_root().join("tests/testbed/build.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("cannot run bash tests/testbed/build.sh");
        assert!(
            out.status.success(),
            "tests/testbed/build.sh failed ({}); the end-to-end suite needs etcd, kube-apiserver and kwok \
             (set SKIP_E2E=1 to skip it deliberately)",
            out.status
        );
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    })
}

/// The directory holding a `node-probe` built from this tree (kwok exec finds it on its PATH).
pub fn probe_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let launcher = PathBuf::from(env!("CARGO_BIN_EXE_k8s-gpu-mcp"));
        let dir = launcher
            .parent()
            .expect("binary has a directory")
            .to_path_buf();
        // `cargo test -p k8s-gpu-mcp` does not build node-probe; build it (a no-op when up to date) into the
        // same target directory and profile as the launcher under test.
        let profile_release = dir.file_name().is_some_and(|n| n == "release");
        let target_dir = dir.parent().expect("target dir");
        let mut cmd = Command::new(option_env!("CARGO").unwrap_or("cargo"));
        cmd.args([
            "build",
            "--quiet",
            "-p",
            "node-probe",
            "--bin",
            "node-probe",
        ])
        .env("CARGO_TARGET_DIR", target_dir)
        // tests/soak.sh sets it for libtest's --report-time only: a build under it would not match the
        // target dir's fingerprints and rebuild every dependency.
        .env_remove("RUSTC_BOOTSTRAP")
        .current_dir(repo_root());
        if profile_release {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("cannot run cargo build -p node-probe");
        assert!(status.success(), "cargo build -p node-probe failed");
        assert!(
            dir.join("node-probe").is_file(),
            "no node-probe in {}",
            dir.display()
        );
        dir
    })
}

/// Users the testbed's token file knows. Only `Admin` is in `system:masters`; the others get exactly
/// what the tests bind to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum User {
    Admin,
    Reader,
    Operator,
    Nobody,
}

impl User {
    pub fn name(self) -> &'static str {
        match self {
            User::Admin => "testbed-admin",
            User::Reader => "launcher-reader",
            User::Operator => "launcher-operator",
            User::Nobody => "launcher-nobody",
        }
    }
    fn key(self) -> &'static str {
        match self {
            User::Admin => "ADMIN",
            User::Reader => "READER",
            User::Operator => "OPERATOR",
            User::Nobody => "NOBODY",
        }
    }
}

/// Who answers for a fake node's kubelet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kubelet {
    /// kwok: pods start at once; exec runs node-probe with the node's scenario.
    Kwok,
    /// A second kwok whose `node-probe` prints garbage.
    Garbage,
    /// A third kwok whose exec'd commands find no `tee` (copy delivery into an image without tee).
    NoTee,
    /// Nobody: the node keeps the status it was created with, so pods there never start (`ready: true`)
    /// or it is NotReady (`ready: false`).
    None,
}

/// A fake GPU node with GPU Feature Discovery labels and `nvidia.com/gpu` capacity.
#[derive(Debug, Clone)]
pub struct FakeNode {
    pub name: String,
    /// Built-in scenario name or fixture path node-probe answers with on this node.
    pub scenario: Option<String>,
    pub gpus: u32,
    pub product: String,
    pub kubelet: Kubelet,
    pub ready: bool,
    pub labels: Vec<(String, String)>,
    /// `status.nodeInfo.architecture` (and the `kubernetes.io/arch` label).
    pub arch: String,
    /// `status.images`: what the node has cached (the default delivery picks from it).
    pub images: Vec<String>,
}

impl FakeNode {
    pub fn gpu(name: &str, scenario: &str) -> Self {
        FakeNode {
            name: name.into(),
            scenario: Some(scenario.into()),
            gpus: 8,
            product: "NVIDIA-H100-80GB-HBM3".into(),
            kubelet: Kubelet::Kwok,
            ready: true,
            labels: Vec::new(),
            arch: "amd64".into(),
            images: Vec::new(),
        }
    }
    pub fn without_kubelet(name: &str, ready: bool) -> Self {
        FakeNode {
            kubelet: Kubelet::None,
            ready,
            scenario: None,
            ..FakeNode::gpu(name, "")
        }
    }
    pub fn garbage(name: &str) -> Self {
        FakeNode {
            kubelet: Kubelet::Garbage,
            scenario: None,
            ..FakeNode::gpu(name, "")
        }
    }
    pub fn arch(mut self, arch: &str) -> Self {
        self.arch = arch.into();
        self
    }
    /// A node whose kubelet (the third kwok) runs exec'd commands without `tee` on PATH.
    pub fn without_tee(name: &str, scenario: &str) -> Self {
        FakeNode {
            kubelet: Kubelet::NoTee,
            ..FakeNode::gpu(name, scenario)
        }
    }
    pub fn product(mut self, product: &str) -> Self {
        self.product = product.into();
        self
    }
    /// `status.images`, one entry an image; `pulled(tag)` gives an image its tag and digest names.
    pub fn images(mut self, images: &[&str]) -> Self {
        self.images = images.iter().map(|s| s.to_string()).collect();
        self
    }
    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }
}

pub struct Testbed {
    child: Mutex<Option<Child>>,
    pub dir: PathBuf,
    env: BTreeMap<String, String>,
    map_lock: Mutex<()>,
    /// Users already bound to the reader role (one ClusterRoleBinding each, made once).
    bound: Mutex<Vec<&'static str>>,
    startup: Duration,
}

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// Whether this test binary's testbed applies the launcher's admission policies (deploy/policies.yaml).
const UNDER_POLICIES: bool = !matches!(env!("CARGO_CRATE_NAME").as_bytes(), b"realnode");

impl Testbed {
    /// The testbed shared by every test of this binary, started on first use.
    pub fn shared() -> &'static Testbed {
        static TB: OnceLock<Testbed> = OnceLock::new();
        TB.get_or_init(Testbed::start)
    }

    /// A testbed of one's own; stopped when dropped.
    pub fn start() -> Testbed {
        let bin = testbed_bin();
        let probe = probe_dir();
        sweep_stale_runs();
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("k8s-gpu-mcp-e2e-{}-{n}", std::process::id()));
        let log = dir.with_extension("log");
        let _ = std::fs::remove_dir_all(&dir);
        let started = Instant::now();
        let mut cmd = Command::new("bash");
        cmd.arg(script())
            .arg("up")
            .arg(&dir)
            .env("TESTBED_BIN", bin)
            .env("TESTBED_PROBE_DIR", probe)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("create testbed log"));
        // Own process group: Drop can kill the script and every component at once.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd.spawn().expect("cannot start tests/testbed/testbed.sh");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if line.starts_with("testbed ready") {
                    let _ = tx.send(());
                }
            }
        });
        if rx.recv_timeout(Duration::from_secs(180)).is_err() {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("the testbed did not come up within 180 s:\n{log}");
        }
        let text = std::fs::read_to_string(dir.join("env")).expect("testbed env file");
        let env = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.trim_matches('\'').to_string()))
            .collect();
        let tb = Testbed {
            child: Mutex::new(Some(child)),
            dir,
            env,
            map_lock: Mutex::new(()),
            bound: Mutex::new(Vec::new()),
            startup: started.elapsed(),
        };
        // The namespace, roles and admission policies under test are deploy/'s own, as the launcher's `setup`
        // writes them: the launcher's users get nothing else, and every e2e test runs under the policies. The
        // real-node suite names its images by tag (imported into containerd by tag; the policies need digests),
        // so it gets the namespace and roles only. The `default` ServiceAccount is what the absent
        // controller-manager would create.
        if UNDER_POLICIES {
            tb.apply(&tb.policies_manifests());
        } else {
            for f in ["deploy/00-namespace.yaml", "deploy/rbac.yaml"] {
                tb.apply(&std::fs::read_to_string(repo_root().join(f)).expect(f));
            }
        }
        tb.apply(
            "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: default, namespace: gpu-diagnostics}\n",
        );
        tb
    }

    /// `k8s-gpu-mcp setup --only manifests` as the suite's cluster owner runs it: the images the tests name
    /// (`registry.invalid/`, where nothing is pulled: kwok runs no containers) are trusted, and both node-probe
    /// builds the tests stream in (this tree's, and the stripped copy of [`Testbed::stripped_probe_dir`]) are
    /// listed. Tests that run `setup --apply` themselves pass `--no-policies`: a cluster has one set.
    pub fn policies_manifests(&self) -> String {
        let out = Command::new(env!("CARGO_BIN_EXE_k8s-gpu-mcp"))
            .args(["--kubeconfig", "/nonexistent/kubeconfig"])
            .args(["--trust-image", "registry.invalid/"])
            .arg("--probe-bin-dir")
            .arg(probe_dir())
            .args(["setup", "--only", "manifests"])
            .env_remove("KUBECONFIG")
            .output()
            .expect("run k8s-gpu-mcp setup");
        assert!(
            out.status.success(),
            "setup --only manifests: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let yaml = String::from_utf8(out.stdout).expect("UTF-8 manifests");
        let stripped = self.stripped_probe_dir().join("node-probe-linux-amd64");
        let sum = sha256_file(&stripped);
        // packaging/test-release.sh runs the copy test on an unpacked release archive: its builds are the
        // release's, which its owner's `setup` would list.
        let mut listed = format!("'{sum}', ");
        if let Some(dir) = std::env::var_os("K8S_GPU_MCP_RELEASE_DIR") {
            for arch in ["amd64", "arm64"] {
                let build = PathBuf::from(&dir).join(format!("probes/node-probe-linux-{arch}"));
                if build.is_file() {
                    listed.push_str(&format!("'{}', ", sha256_file(&build)));
                }
            }
        }
        let mut patched = String::new();
        let mut next = false;
        for line in yaml.lines() {
            if next && line.trim_start().starts_with("expression: \"[") {
                next = false;
                let line = line.replacen("expression: \"[", &format!("expression: \"[{listed}"), 1);
                patched.push_str(&line.replace(", ]", "]"));
                patched.push('\n');
                continue;
            }
            next = line.trim() == "- name: probeBuilds";
            patched.push_str(line);
            patched.push('\n');
        }
        assert!(
            patched.contains(&sum),
            "no probeBuilds variable in:\n{yaml}"
        );
        patched
    }

    /// A directory holding only `node-probe-linux-amd64`: this tree's node-probe, stripped (the debug build is
    /// ~95 MB with debug info; stripped it streams in a fraction of the time). Inside the testbed's directory,
    /// removed with it.
    pub fn stripped_probe_dir(&self) -> PathBuf {
        let dir = self.dir.join("probe-bins-amd64");
        let out = dir.join("node-probe-linux-amd64");
        if !out.is_file() {
            std::fs::create_dir_all(&dir).unwrap();
            let t = Instant::now();
            let tmp = dir.join(".node-probe.tmp");
            let st = Command::new("strip")
                .arg("-o")
                .arg(&tmp)
                .arg(probe_dir().join("node-probe"))
                .status()
                .expect("run strip (binutils)");
            assert!(st.success(), "strip node-probe failed");
            std::fs::rename(&tmp, &out).unwrap();
            eprintln!(
                "stripped node-probe to {} bytes in {:?}",
                std::fs::metadata(&out).unwrap().len(),
                t.elapsed()
            );
        }
        dir
    }

    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    pub fn var(&self, key: &str) -> &str {
        self.env
            .get(key)
            .unwrap_or_else(|| panic!("testbed env has no {key}"))
    }

    pub fn server(&self) -> &str {
        self.var("TESTBED_SERVER")
    }

    pub fn token(&self, user: User) -> &str {
        self.var(&format!("TESTBED_{}_TOKEN", user.key()))
    }

    /// A kubeconfig (one context, `testbed`) for `user`.
    pub fn kubeconfig(&self, user: User) -> PathBuf {
        PathBuf::from(self.var(&format!("TESTBED_{}_KUBECONFIG", user.key())))
    }

    /// Write a fresh kubeconfig for `user` into `dir` (tests that want their own file).
    pub fn write_kubeconfig(&self, user: User, dir: &Path) -> PathBuf {
        let path = dir.join(format!("{}.kubeconfig", user.name()));
        std::fs::copy(self.kubeconfig(user), &path).expect("copy kubeconfig");
        path
    }

    /// Run the image's kubectl as `user`, with optional stdin.
    pub fn kubectl_as(&self, user: User, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(self.kubeconfig(user))
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("cannot run kubectl");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("piped stdin");
            pipe.write_all(input.as_bytes())
                .expect("write kubectl stdin");
        }
        child.wait_with_output().expect("kubectl output")
    }

    /// kubectl as admin; panics with kubectl's stderr when it fails.
    pub fn kubectl(&self, args: &[&str]) -> String {
        let out = self.kubectl_as(User::Admin, args, None);
        assert!(
            out.status.success(),
            "kubectl {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl apply -f -` as admin. Tests run in parallel: two applies of the same object can race
    /// (AlreadyExists, or a conflict on update), which a retry resolves.
    pub fn apply(&self, yaml: &str) {
        let mut attempt = 0;
        loop {
            let out = self.kubectl_as(User::Admin, &["apply", "-f", "-"], Some(yaml));
            if out.status.success() {
                return;
            }
            let err = String::from_utf8_lossy(&out.stderr);
            let race = err.contains("AlreadyExists")
                || err.contains("already exists")
                || err.contains("the object has been modified");
            attempt += 1;
            assert!(race && attempt < 5, "kubectl apply failed: {err}\n{yaml}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Create fake nodes, route their probes to their scenarios, and wait until kwok has made the managed
    /// ones Ready.
    pub fn add_nodes(&self, nodes: &[FakeNode]) {
        let mut yaml = String::new();
        for node in nodes {
            let mut cmd = Command::new("bash");
            cmd.arg(script())
                .args(["node", &node.name, ""])
                .arg(format!("gpus={}", node.gpus))
                .arg(format!("product={}", node.product))
                .arg(format!(
                    "managed={}",
                    match node.kubelet {
                        Kubelet::Kwok => "fake",
                        Kubelet::Garbage => "garbage",
                        Kubelet::NoTee => "notee",
                        Kubelet::None => "none",
                    }
                ))
                .args(node.labels.iter().map(|(k, v)| format!("label={k}={v}")))
                .arg(format!(
                    "ready={}",
                    if node.ready { "True" } else { "False" }
                ))
                .arg(format!("arch={}", node.arch))
                .args(
                    (!node.images.is_empty()).then(|| format!("images={}", node.images.join(","))),
                )
                .env("TESTBED_KWOK_PORT", self.var("TESTBED_KWOK_PORT"))
                .env_remove("TESTBED_DIR");
            let out = cmd.output().expect("testbed.sh node");
            assert!(
                out.status.success(),
                "testbed.sh node: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            yaml.push_str(&String::from_utf8_lossy(&out.stdout));
        }
        {
            // One writer at a time; readers (node-probe) see either file thanks to the rename.
            let _guard = self.map_lock.lock().unwrap_or_else(|e| e.into_inner());
            let path = PathBuf::from(self.var("TESTBED_SCENARIO_MAP"));
            let mut map: BTreeMap<String, String> =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("scenario map"))
                    .expect("scenario map is JSON");
            for node in nodes {
                if let Some(s) = &node.scenario {
                    map.insert(node.name.clone(), s.clone());
                }
            }
            let tmp = path.with_extension(format!("tmp{}", SEQ.fetch_add(1, Ordering::Relaxed)));
            std::fs::write(&tmp, serde_json::to_string_pretty(&map).unwrap()).expect("write map");
            std::fs::rename(&tmp, &path).expect("rename map");
        }
        self.apply(&yaml);
        let managed: Vec<String> = nodes
            .iter()
            .filter(|n| n.kubelet != Kubelet::None)
            .map(|n| format!("node/{}", n.name))
            .collect();
        if !managed.is_empty() {
            let mut args = vec!["wait", "--for=condition=Ready", "--timeout=180s"];
            args.extend(managed.iter().map(String::as_str));
            self.kubectl(&args);
        }
    }

    /// Create a node from a whole Node object (a platform fixture, tests/fixtures/nodes/) managed by kwok
    /// and answering with `scenario`: its labels, taints, images and nodeInfo as given; the name, kwok's
    /// annotation and loopback addresses (so the API server reaches kwok's kubelet) are set here. Waits
    /// until kwok has made it Ready.
    pub fn add_node_object(&self, mut node: serde_json::Value, scenario: &str) {
        let name = node["metadata"]["name"]
            .as_str()
            .expect("node has a name")
            .to_string();
        node["metadata"]["annotations"]["kwok.x-k8s.io/node"] = "fake".into();
        node["metadata"]["annotations"]["node.alpha.kubernetes.io/ttl"] = "0".into();
        node["metadata"]["labels"]["kubernetes.io/hostname"] = name.clone().into();
        node["status"]["addresses"] = serde_json::json!([
            {"type": "InternalIP", "address": "127.0.0.1"},
            {"type": "Hostname", "address": name},
        ]);
        {
            let _guard = self.map_lock.lock().unwrap_or_else(|e| e.into_inner());
            let path = PathBuf::from(self.var("TESTBED_SCENARIO_MAP"));
            let mut map: BTreeMap<String, String> =
                serde_json::from_str(&std::fs::read_to_string(&path).expect("scenario map"))
                    .expect("scenario map is JSON");
            map.insert(name.clone(), scenario.to_string());
            let tmp = path.with_extension(format!("tmp{}", SEQ.fetch_add(1, Ordering::Relaxed)));
            std::fs::write(&tmp, serde_json::to_string_pretty(&map).unwrap()).expect("write map");
            std::fs::rename(&tmp, &path).expect("rename map");
        }
        self.apply(&node.to_string());
        self.kubectl(&[
            "wait",
            "--for=condition=Ready",
            "--timeout=180s",
            &format!("node/{name}"),
        ]);
    }

    /// Create a probe namespace the way deploy/ does (Pod Security `privileged`), with the `default`
    /// ServiceAccount the absent controller-manager would create, and bind deploy/'s `k8s-gpu-mcp-probe` role
    /// to `user` there (as deploy/bindings-example.yaml does for gpu-diagnostics).
    pub fn probe_namespace(&self, ns: &str, user: User) {
        let user = user.name();
        self.apply(&format!(
            r#"apiVersion: v1
kind: Namespace
metadata:
  name: {ns}
  labels:
    pod-security.kubernetes.io/enforce: privileged
    pod-security.kubernetes.io/warn: privileged
    pod-security.kubernetes.io/audit: privileged
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: default, namespace: {ns}}}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {{name: k8s-gpu-mcp-probe-{user}, namespace: {ns}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: k8s-gpu-mcp-probe}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {user}}}]
"#
        ));
    }

    /// Grant `user` deploy/'s cluster-wide read role (nodes, pods).
    pub fn bind_reader(&self, user: User) {
        let mut bound = self.bound.lock().unwrap_or_else(|e| e.into_inner());
        if bound.contains(&user.name()) {
            return;
        }
        bound.push(user.name());
        let name = user.name();
        self.apply(&format!(
            r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: k8s-gpu-mcp-reader-{name}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: k8s-gpu-mcp-reader}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {name}}}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: k8s-gpu-mcp-log-reader-{name}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: k8s-gpu-mcp-log-reader}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {name}}}]
"#
        ));
    }

    /// Names of the pods in `ns`.
    pub fn pods(&self, ns: &str) -> Vec<String> {
        self.kubectl(&["-n", ns, "get", "pods", "-o", "name"])
            .lines()
            .map(|l| l.trim_start_matches("pod/").to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }

    /// Wait until `ns` holds no pod; the pods still there after `timeout` are the error.
    pub fn wait_no_pods(&self, ns: &str, timeout: Duration) -> Result<(), Vec<String>> {
        let deadline = Instant::now() + timeout;
        loop {
            let pods = self.pods(ns);
            if pods.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(pods);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The apiserver's `apiserver_request_total` counters summed by (verb, resource, subresource).
    pub fn request_counts(&self) -> BTreeMap<String, u64> {
        let metrics = self.kubectl(&["get", "--raw", "/metrics"]);
        let mut counts = BTreeMap::new();
        for line in metrics.lines() {
            let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let label = |k: &str| {
                labels
                    .split(',')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=\"")))
                    .map(|v| v.trim_end_matches('"').to_string())
                    .unwrap_or_default()
            };
            let key = format!(
                "{} {}{}",
                label("verb"),
                label("resource"),
                match label("subresource").as_str() {
                    "" => String::new(),
                    s => format!("/{s}"),
                }
            );
            *counts.entry(key).or_insert(0) += value.trim().parse::<f64>().unwrap_or(0.0) as u64;
        }
        counts
    }
}

/// Hex SHA-256 of a file (sha256sum, as the delivery script computes it).
pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// One line of a container's log: its RFC 3339 time and its text (one line, no newline).
pub type LogLine = (String, String);

/// A container's log as kwok serves it: its current run and, for a restarted container, its previous one.
#[derive(Debug, Clone)]
pub struct PodLog {
    pub pod: String,
    pub container: String,
    pub current: Vec<LogLine>,
    pub previous: Option<Vec<LogLine>>,
}

/// `lines` in the CRI log format kwok reads (`<time> <stream> F <text>`).
fn cri_log(lines: &[LogLine]) -> String {
    let mut out = String::new();
    for (t, l) in lines {
        debug_assert!(!l.contains('\n'), "one line: {l}");
        out.push_str(t);
        out.push_str(" stderr F ");
        out.push_str(l);
        out.push('\n');
    }
    out
}

impl Testbed {
    /// Have kwok serve these pods' logs in `ns` (the pods are on kwok's nodes): CRI-format files under the
    /// testbed's directory and one kwok `Logs` object per pod naming them. Returns the bytes written once the
    /// API server serves the last pod's log (kwok's informer sees the objects in the order they were made).
    pub fn serve_pod_logs(&self, ns: &str, logs: &[PodLog]) -> u64 {
        let dir = self.dir.join("pod-logs").join(ns);
        std::fs::create_dir_all(&dir).expect("pod log dir");
        let mut yaml = String::new();
        let mut bytes = 0u64;
        for l in logs {
            let current = dir.join(format!("{}.{}.log", l.pod, l.container));
            let text = cri_log(&l.current);
            bytes += text.len() as u64;
            std::fs::write(&current, text).expect("write pod log");
            let previous = match &l.previous {
                Some(lines) => {
                    let p = dir.join(format!("{}.{}.previous.log", l.pod, l.container));
                    let text = cri_log(lines);
                    bytes += text.len() as u64;
                    std::fs::write(&p, text).expect("write previous pod log");
                    format!("\n    previousLogsFile: {}", p.display())
                }
                None => String::new(),
            };
            yaml.push_str(&format!(
                "apiVersion: kwok.x-k8s.io/v1alpha1\nkind: Logs\nmetadata: {{name: {pod}, namespace: {ns}}}\nspec:\n  logs:\n  - containers: [{c}]\n    logsFile: {f}{previous}\n---\n",
                pod = l.pod,
                c = l.container,
                f = current.display(),
            ));
        }
        self.apply(&yaml);
        if let Some(last) = logs.last() {
            let path = format!(
                "/api/v1/namespaces/{ns}/pods/{}/log?container={}&tailLines=1",
                last.pod, last.container
            );
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                let out = self.kubectl_as(User::Admin, &["get", "--raw", &path], None);
                if out.status.success() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "kwok does not serve {ns}/{}'s log: {}",
                    last.pod,
                    String::from_utf8_lossy(&out.stderr)
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        bytes
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        let Some(mut child) = self.child.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        // Closing stdin asks the script to stop its components; then make sure of it.
        drop(child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(self.dir.with_extension("log"));
    }
}

/// Remove the run directories and logs of test processes that no longer exist (a shared testbed's
/// script removes its directory itself, but its log stays for post-mortems until the next run).
fn sweep_stale_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix("k8s-gpu-mcp-e2e-") else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// A name no other test uses (tests share one testbed). The sequence is zero-padded so names sort in the
/// order they were made: the API server lists by name as text, and a test that makes a good node and then a
/// bad one may rely on the first (`check` dry-runs the probe pod on the first Ready node it lists).
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{:05}",
        std::process::id() % 10000,
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// How a node lists an image pulled from a registry: its tag and its digest name (a stand-in digest derived
/// from the tag), joined by '+' for `FakeNode::images`.
pub fn pulled(tag: &str) -> String {
    use std::hash::{Hash, Hasher};
    let repo = match tag.rfind(':') {
        Some(i) if !tag[i..].contains('/') => &tag[..i],
        _ => tag,
    };
    let hex: String = (0..4u8)
        .map(|i| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (i, tag).hash(&mut h);
            format!("{:016x}", h.finish())
        })
        .collect();
    format!("{tag}+{repo}@sha256:{hex}")
}
