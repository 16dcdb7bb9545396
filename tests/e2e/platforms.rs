//! What `check` and the default delivery answer on the GPU nodes of real platforms: each Node object of
//! tests/fixtures/nodes/ (labels, taints, `status.images`, `nodeInfo` as the platform reports them; sources in
//! each file) becomes a kwok node, and the launcher is run as a new user runs it (no flags). Each test asserts
//! the base image picked, or the exact failure and the one flag that fixes it, and then runs with that flag.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};

use crate::copy::amd64_only_bin_dir;
use crate::mcp::{self, Launcher};
use crate::testbed::{Testbed, User, probe_dir, repo_root, skipped, unique};
use crate::{json, stderr};

const LAUNCHER: &str = env!("CARGO_BIN_EXE_k8s-gpu-mcp");
/// The probe image (deploy/probe-image) as an owner pins it; kwok pulls nothing, so only the reference matters.
/// In `registry.invalid/`, which the testbed's admission policies trust (as an owner's `setup --trust-image`
/// or `--probe-image` would have them).
const PROBE_IMAGE: &str = "registry.invalid/k8s-gpu-mcp/node-probe@sha256:abababababababababababababababababababababababababababababababab";

/// One platform's node in a namespace and node group of its own.
struct Platform {
    tb: &'static Testbed,
    ns: String,
    group: String,
    node: String,
}

/// Load `tests/fixtures/nodes/<file>` as a kwok node named after the platform's own node.
fn load(file: &str) -> Platform {
    let tb = Testbed::shared();
    let ns = unique("e2e-platform");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let group = unique("platform");
    let path = repo_root().join("tests/fixtures/nodes").join(file);
    let text = std::fs::read_to_string(&path).expect("fixture node");
    let mut node: Value = serde_saphyr::from_str(&text).expect("fixture node is YAML");
    let name = unique(node["metadata"]["name"].as_str().unwrap());
    node["metadata"]["name"] = name.clone().into();
    node["metadata"]["labels"]["e2e-group"] = group.clone().into();
    tb.add_node_object(node, "dgx-h100-healthy");
    Platform {
        tb,
        ns,
        group,
        node: name,
    }
}

impl Platform {
    /// `check --output json` on this node with exactly these launcher flags.
    fn check(&self, flags: &[&str]) -> (bool, Value) {
        let selector = format!("e2e-group={}", self.group);
        let out: Output = Command::new(LAUNCHER)
            .arg("--kubeconfig")
            .arg(self.tb.kubeconfig(User::Reader))
            .args(["--namespace", &self.ns])
            .args(flags)
            .args(["check", "--selector", &selector, "--output", "json"])
            .env_remove("KUBECONFIG")
            .env("RUST_LOG", "warn")
            .output()
            .expect("run k8s-gpu-mcp check");
        let report = json(&String::from_utf8_lossy(&out.stdout));
        assert_eq!(
            out.status.success(),
            report["ok"] == true,
            "{report:#}\n{}",
            stderr(&out)
        );
        (out.status.success(), report)
    }

    /// `serve` with exactly these flags (none: the default delivery, as a new user starts it).
    async fn launcher(&self, flags: &[&str]) -> Launcher {
        mcp::start_exact(
            self.tb,
            User::Reader,
            &self.ns,
            Path::new(mcp::LAUNCHER),
            flags,
            &[],
        )
        .await
    }

    fn assert_no_pods(&self) {
        if let Err(left) = self
            .tb
            .wait_no_pods(&self.ns, std::time::Duration::from_secs(120))
        {
            panic!("probe pods left in {}: {left:?}", self.ns);
        }
    }
}

/// The check named `name` (panics when absent).
fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {report:#}"))
}

fn has_row(report: &Value, name: &str) -> bool {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == name)
}

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

/// The newest `GLIBC_x.y` this tree's node-probe build asks for, as binutils reads it (the tests' own
/// reading, not the launcher's).
fn probe_glibc() -> (u32, u32) {
    let out = Command::new("objdump")
        .arg("-T")
        .arg(probe_dir().join("node-probe"))
        .output()
        .expect("run objdump (binutils)");
    String::from_utf8_lossy(&out.stdout)
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .filter_map(|w| w.strip_prefix("GLIBC_"))
        .filter_map(|v| {
            let mut p = v.split('.').map(|x| x.parse::<u32>().ok());
            Some((p.next()??, p.next()??))
        })
        .max()
        .expect("node-probe names glibc versions")
}

/// The fallback base as the launcher names it (launcher/src/probe/fallback_base.rs), from `repository`.
/// Written out here, not imported: the test holds the digest the docs cite
/// (docker-library/repo-info, repos/debian/remote/bookworm-20260918-slim.md).
fn fallback(repository: &str) -> String {
    format!("{repository}@sha256:3783cc01769c7b2b1b83a5c5ad96c815348e28ed7da68e2e3687004faa906251")
}

/// A managed platform's node lists no trusted glibc base (only the platform's system images, distroless or
/// imported by tag). With no flags, `check` passes and says what the first call pulls and from where; the
/// call runs in that base, pulled by digest (kwok pulls nothing: what is asserted is the pod's image and
/// pull policy, and that the admission policies of deploy/ admit it). `--no-pull` keeps the error that
/// names the flags, and `--probe-image` still works.
async fn pulls_the_fallback_base(
    p: &Platform,
    images: usize,
    refused: &str,
    base: &str,
    registry: &str,
) {
    let image_row = format!("image/{}", p.node);
    let (ok, report) = p.check(&[]);
    assert!(ok, "{report:#}");
    let c = row(&report, &image_row);
    assert_eq!(c["status"], "ok", "{c}");
    assert_eq!(
        text(&c["detail"]),
        format!(
            "none of the node's {images} images is a trusted glibc base listed by digest{refused}; the first call pulls one: debian:bookworm-20260918-slim ({base}, about 28 MB) is pulled once from {registry} (--no-pull: never pull)"
        ),
        "{c}"
    );
    let probe = row(&report, &format!("probe/{}", p.node));
    assert_eq!(probe["status"], "ok", "{probe}");
    assert!(
        text(&probe["detail"]).contains("debian:bookworm-20260918-slim has glibc 2.36"),
        "{probe}"
    );
    // The admission dry run (deploy/'s policies, applied in this testbed) ran with the fallback base.
    assert_eq!(row(&report, "admission")["status"], "ok", "{report:#}");
    // The call: copied into the fallback base, which the pod names by digest and may pull.
    let l = p.launcher(&[]).await;
    let v = l.ok("get_gpu_health", json!({"node_name": p.node})).await;
    assert_eq!(v["run"]["probe"]["node_name"], p.node.as_str(), "{v}");
    let log = l.stderr();
    assert!(log.contains("pulling the fallback base by digest"), "{log}");
    assert!(log.contains(&format!("image={base}")), "{log}");
    l.stop().await;
    p.assert_no_pods();
    // --no-pull: the error of a node with no base, naming the flags, before any pod.
    let (ok, report) = p.check(&["--no-pull"]);
    assert!(!ok, "{report:#}");
    assert_eq!(
        failed(&report),
        std::slice::from_ref(&image_row),
        "{report:#}"
    );
    let c = row(&report, &image_row);
    assert_eq!(
        text(&c["detail"]),
        format!(
            "none of the node's {images} images is a glibc base with sh and tar from a trusted source, listed by digest{refused}"
        ),
        "{c}"
    );
    assert!(text(&c["fix"]).starts_with("leave out --no-pull"), "{c}");
    assert!(
        text(&c["fix"]).contains("--probe-image IMAGE@sha256:DIGEST"),
        "{c}"
    );
    let l = p.launcher(&["--no-pull"]).await;
    let e = l.err("get_gpu_health", json!({"node_name": p.node})).await;
    assert!(
        e.contains(&format!(
            "node {} has no image node-probe can be copied into",
            p.node
        )),
        "{e}"
    );
    assert!(e.contains("Pass --probe-image IMAGE@sha256:DIGEST"), "{e}");
    assert!(
        e.contains("--no-pull is set: without it the node pulls debian:bookworm-20260918-slim"),
        "{e}"
    );
    l.stop().await;
    p.assert_no_pods();
    // The probe image by digest still works as it did (image delivery: the node pulls it).
    let (ok, report) = p.check(&["--probe-image", PROBE_IMAGE]);
    assert!(ok, "{report:#}");
    assert_eq!(row(&report, &image_row)["status"], "warn", "{report:#}");
    let l = p.launcher(&["--probe-image", PROBE_IMAGE]).await;
    let v = l.ok("get_gpu_health", json!({"node_name": p.node})).await;
    assert_eq!(v["run"]["probe"]["node_name"], p.node.as_str(), "{v}");
    assert!(
        !l.stderr().contains("probe delivery: copy"),
        "{}",
        l.stderr()
    );
    l.stop().await;
    p.assert_no_pods();
}

const DOCKER_HUB: &str = "Docker Hub (docker.io)";
const GKE_MIRROR: &str =
    "Google's Docker Hub mirror (mirror.gcr.io, which GKE nodes try first), else Docker Hub";
const ECR_PUBLIC: &str = "ECR Public (public.ecr.aws, AWS's copy of the Docker Official Images)";

/// GKE on COS: Google's system images (distroless, by digest) and the driver installer preloaded by tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gke_cos_node_pulls_the_fallback_base_with_no_flags() {
    if skipped() {
        return;
    }
    let p = load("gke-cos.yaml");
    let base = fallback("docker.io/library/debian");
    pulls_the_fallback_base(&p, 6, "", &base, GKE_MIRROR).await;
}

/// EKS, AL2023 NVIDIA AMI: AWS's add-on images (minimal, from AWS's ECR account) and the device plugin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_al2023_node_pulls_the_fallback_base_with_no_flags() {
    if skipped() {
        return;
    }
    let p = load("eks-al2023.yaml");
    let base = fallback("public.ecr.aws/docker/library/debian");
    pulls_the_fallback_base(&p, 4, "", &base, ECR_PUBLIC).await;
}

/// EKS, Bottlerocket NVIDIA variant: the OS's own pause image is named and refused as unusable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eks_bottlerocket_node_pulls_the_fallback_base_with_no_flags() {
    if skipped() {
        return;
    }
    let p = load("eks-bottlerocket.yaml");
    let base = fallback("public.ecr.aws/docker/library/debian");
    pulls_the_fallback_base(
        &p,
        3,
        "; refused: localhost/kubernetes/pause:0.1.0 (known not to work (no shell or no glibc))",
        &base,
        ECR_PUBLIC,
    )
    .await;
}

/// AKS, Ubuntu GPU pool tainted sku=gpu:NoSchedule: Microsoft's system images only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aks_ubuntu_node_pulls_the_fallback_base_with_no_flags() {
    if skipped() {
        return;
    }
    let p = load("aks-ubuntu.yaml");
    let base = fallback("docker.io/library/debian");
    pulls_the_fallback_base(&p, 3, "", &base, DOCKER_HUB).await;
}

/// OpenShift with the GPU Operator: OLM pulls the operator's images by digest only. NVIDIA's CUDA base
/// (the DCGM exporter's init container there) ranks before the driver images and is picked, its glibc
/// cannot be told from a digest (a warning), OpenShift is recognised from the node's label, and the call
/// runs in that image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openshift_node_copies_into_the_operators_cuda_image_by_digest() {
    if skipped() {
        return;
    }
    let p = load("openshift-gpu-operator.yaml");
    let driver = "nvcr.io/nvidia/cuda@sha256:b3b340847db9abd0c39703278f5638d3e65e1369e9a526a19b3138d5a6563527";
    let (ok, report) = p.check(&[]);
    assert!(ok, "{report:#}");
    assert_eq!(
        text(&row(&report, &format!("image/{}", p.node))["detail"]),
        format!(
            "node-probe is copied into {driver} ({driver}), a trusted image the node lists by digest"
        )
    );
    let probe = row(&report, &format!("probe/{}", p.node));
    assert_eq!(probe["status"], "warn", "{probe}");
    assert!(
        text(&probe["detail"]).ends_with(&format!(
            "the glibc of {driver} cannot be told from its name"
        )),
        "{probe}"
    );
    let os = row(&report, "openshift");
    assert_eq!(os["status"], "ok", "{os}");
    assert!(
        text(&os["detail"]).starts_with(&format!(
            "OpenShift (node {} has node.openshift.io/os_id=rhcos)",
            p.node
        )),
        "{os}"
    );
    let bins = amd64_only_bin_dir(p.tb).to_str().unwrap().to_string();
    let l = p.launcher(&["--probe-bin-dir", &bins]).await;
    let v = l.ok("get_gpu_health", json!({"node_name": p.node})).await;
    assert_eq!(v["run"]["probe"]["node_name"], p.node.as_str(), "{v}");
    let log = l.stderr();
    assert!(log.contains(&format!("image={driver}")), "{log}");
    l.stop().await;
    p.assert_no_pods();
}

/// A DGX kubeadm node with the GPU Operator: the only trusted base it lists by digest is the operator's
/// driver image on Ubuntu 20.04 (glibc 2.31). A node-probe build that needs a newer glibc is never tried
/// there: the fallback base (glibc 2.36) is pulled instead, and `check` says so. With `--no-pull`, `check`
/// fails on `probe/<node>` with the release build (glibc 2.28) as the fix, and the call is refused before
/// any pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dgx_gpu_operator_node_with_an_ubuntu_20_04_driver_image() {
    if skipped() {
        return;
    }
    let p = load("dgx-kubeadm-gpu-operator.yaml");
    let driver = "nvcr.io/nvidia/driver:525.60.13-ubuntu20.04";
    let need = probe_glibc();
    assert!(
        need <= (2, 36),
        "this tree's node-probe needs glibc {need:?}"
    );
    let probe_row = format!("probe/{}", p.node);
    let bins = amd64_only_bin_dir(p.tb).to_str().unwrap().to_string();
    let (ok, report) = p.check(&["--probe-bin-dir", &bins]);
    assert!(!has_row(&report, "openshift"), "{report:#}");
    assert!(ok, "{report:#}");
    let probe = row(&report, &probe_row);
    assert_eq!(probe["status"], "ok", "{probe}");
    let l = p.launcher(&["--probe-bin-dir", &bins]).await;
    let v = l.ok("get_gpu_health", json!({"node_name": p.node})).await;
    assert_eq!(v["run"]["probe"]["node_name"], p.node.as_str(), "{v}");
    let log = l.stderr();
    l.stop().await;
    p.assert_no_pods();
    if need <= (2, 31) {
        // A build for an old glibc (the release build): the driver image is used.
        assert!(log.contains("image=nvcr.io/nvidia/driver@sha256:"), "{log}");
        return;
    }
    let too_old = format!(
        "{driver} (glibc 2.31 from ubuntu20.04 in its name; node-probe needs {}.{})",
        need.0, need.1
    );
    assert!(
        text(&probe["detail"]).ends_with(&format!(
            "debian:bookworm-20260918-slim has glibc 2.36 (debian bookworm); not tried, too old: {too_old}; the fallback base, pulled once (see image/{})",
            p.node
        )),
        "{probe}"
    );
    assert!(
        log.contains(&format!("image={}", fallback("docker.io/library/debian"))),
        "{log}"
    );
    // --no-pull: the build is the fix.
    let (ok, report) = p.check(&["--probe-bin-dir", &bins, "--no-pull"]);
    assert!(!ok, "{report:#}");
    assert_eq!(
        failed(&report),
        std::slice::from_ref(&probe_row),
        "{report:#}"
    );
    let probe = row(&report, &probe_row);
    assert!(
        text(&probe["detail"]).ends_with(&format!(
            "every trusted base the node lists is older; not tried, too old: {too_old}"
        )),
        "{probe}"
    );
    assert!(
        text(&probe["fix"]).contains("glibc 2.28")
            && text(&probe["fix"]).contains("--probe-bin-dir DIR"),
        "{probe}"
    );
    let l = p.launcher(&["--probe-bin-dir", &bins, "--no-pull"]).await;
    let e = l.err("get_gpu_health", json!({"node_name": p.node})).await;
    assert!(e.contains(&too_old), "{e}");
    l.stop().await;
    p.assert_no_pods();
}

/// An arm64 GH200 node tainted NoExecute, with only the launcher's own (amd64) build at hand: `check`
/// names the missing build, where to put it and the release archive; the call is refused before any pod;
/// with an arm64 build in the directory `--probe-bin-dir` names, the row passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gh200_arm64_node_needs_an_arm64_build() {
    if skipped() {
        return;
    }
    let p = load("gh200-arm64.yaml");
    let (ok, report) = p.check(&[]);
    assert!(!ok, "{report:#}");
    let name = format!("probe/{}", p.node);
    assert_eq!(failed(&report), std::slice::from_ref(&name), "{report:#}");
    let c = row(&report, &name);
    let exe_dir = Path::new(LAUNCHER).parent().unwrap().display().to_string();
    assert!(
        text(&c["detail"]).starts_with(&format!(
            "no node-probe for linux/arm64 (node {}): looked for {exe_dir}/node-probe-linux-arm64, {exe_dir}/arm64/node-probe",
            p.node
        )),
        "{c}"
    );
    assert_eq!(
        text(&c["fix"]),
        format!(
            "put node-probe-linux-arm64 in {exe_dir} (or name its directory with --probe-bin-dir DIR), or download the release archive, which holds the amd64 and arm64 builds"
        )
    );
    assert!(
        text(&row(&report, &format!("node/{}", p.node))["detail"]).ends_with("arm64"),
        "{report:#}"
    );
    let l = p.launcher(&[]).await;
    let e = l.err("get_gpu_health", json!({"node_name": p.node})).await;
    assert!(
        e.contains("no node-probe build for architecture `arm64`"),
        "{e}"
    );
    l.stop().await;
    p.assert_no_pods();
    // The fix: a directory with the arm64 build (here only its ELF header: what the lookup checks).
    let dir = tempfile::tempdir().unwrap();
    let mut elf = vec![0u8; 64];
    elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
    elf[0x12] = 0xb7;
    std::fs::write(dir.path().join("node-probe-linux-arm64"), &elf).unwrap();
    let (_, report) = p.check(&["--probe-bin-dir", dir.path().to_str().unwrap()]);
    let c = row(&report, &name);
    assert_eq!(c["status"], "ok", "{c}");
    assert!(
        text(&c["detail"]).contains("node-probe-linux-arm64 for linux/arm64"),
        "{c}"
    );
}

/// OpenShift: `setup` prints the Role and RoleBinding that let the probe namespace's `default` service
/// account use the `privileged` SCC; the API server accepts them (RBAC takes a rule for a group it does not
/// serve, so the same manifests apply anywhere), and `--apply` creates them.
#[test]
fn setup_grants_the_probe_service_account_the_privileged_scc() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-scc");
    // --no-policies: the suite's cluster has one set of admission policies, the testbed's (its trust list
    // names the tests' images); applying the default set here would refuse every other test's probe.
    let out = Command::new(LAUNCHER)
        .arg("--kubeconfig")
        .arg(tb.kubeconfig(User::Admin))
        .args([
            "--namespace",
            &ns,
            "setup",
            "--only",
            "manifests",
            "--no-policies",
        ])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let yaml = String::from_utf8_lossy(&out.stdout).into_owned();
    let out = Command::new(LAUNCHER)
        .arg("--kubeconfig")
        .arg(tb.kubeconfig(User::Admin))
        .args(["--namespace", &ns, "setup", "--apply", "--no-policies"])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let applied = String::from_utf8_lossy(&out.stdout);
    assert!(
        applied.contains("roles/k8s-gpu-mcp-probe-scc serverside-applied")
            && applied.contains("rolebindings/k8s-gpu-mcp-probe-scc serverside-applied"),
        "{applied}\n{yaml}"
    );
    let role = json(&tb.kubectl(&[
        "-n",
        &ns,
        "get",
        "role",
        "k8s-gpu-mcp-probe-scc",
        "-o",
        "json",
    ]));
    assert_eq!(
        role["rules"],
        json!([{
            "apiGroups": ["security.openshift.io"],
            "resources": ["securitycontextconstraints"],
            "resourceNames": ["privileged"],
            "verbs": ["use"],
        }])
    );
    let binding = json(&tb.kubectl(&[
        "-n",
        &ns,
        "get",
        "rolebinding",
        "k8s-gpu-mcp-probe-scc",
        "-o",
        "json",
    ]));
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": "default", "namespace": ns}])
    );
    // The service account may now `use` the SCC: the API server's own authorizer says so.
    let review = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": format!("system:serviceaccount:{ns}:default"),
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}")],
            "resourceAttributes": {
                "group": "security.openshift.io",
                "resource": "securitycontextconstraints",
                "name": "privileged",
                "verb": "use",
                "namespace": ns,
            },
        },
    });
    let out = tb.kubectl_as(
        User::Admin,
        &["create", "-o", "json", "-f", "-"],
        Some(&review.to_string()),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let answer = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(answer["status"]["allowed"], true, "{answer:#}");
}
