//! `node-probe allocation` end to end: the real binary against a temporary host root holding a fake
//! kubelet (a tonic PodResources server on the unix socket), fake `/proc/<pid>` entries in each cgroup
//! layout and the kubelet's log layout. GPU facts come from the built-in scenarios (`--simulate`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gpu_diag::facts::NodeFacts;
use serde_json::Value;

#[path = "../support/fake_kubelet.rs"]
mod fake_kubelet;
use fake_kubelet::{Kubelet, Served, api, devices, pod, serve, serve_at, socket_path};

// ------------------------------------------------------------------------------------ host root

#[path = "../support/node_probe.rs"]
mod node_probe;
use node_probe::NodeProbe;

#[path = "../support/host_root.rs"]
mod host_root;
use host_root::HostRoot;

#[path = "../support/gate.rs"]
mod gate;

mod layouts;

#[path = "../support/fake_hlml.rs"]
mod fake_hlml;
#[path = "../support/gaudi_tree.rs"]
mod gaudi_tree;

/// A short root under /tmp: the PodResources socket inside must fit in a unix socket path.
fn short_root() -> HostRoot {
    HostRoot::short("al")
}

/// What these tests' nodes hold besides files.
impl HostRoot {
    /// `/proc/<pid>` of a running (or zombie) process with this cgroup file.
    fn process(&self, pid: u32, comm: &str, state: char, cgroup: &str) -> &Self {
        self.file(&format!("proc/{pid}/comm"), format!("{comm}\n"))
            .file(&format!("proc/{pid}/cmdline"), format!("{comm}\0run\0"))
            .file(&format!("proc/{pid}/cgroup"), cgroup)
            .file(
                &format!("proc/{pid}/stat"),
                format!("{pid} ({comm}) {state} 1 {pid} {pid} 0 -1 0 0 0 0 0 0 0 0 0 20 0 8 0 100000 0 0\n"),
            )
    }
    /// Host pid 1's namespaces, which a host process shares.
    fn init(&self) -> &Self {
        self.symlink("proc/1/ns/pid", "pid:[4026531836]")
            .symlink("proc/1/ns/mnt", "mnt:[4026531841]")
    }
    /// `/proc/<pid>` of a process with this command line, uid, cgroup and namespaces.
    fn cmdline_process(&self, pid: u32, argv: &[&str], uid: u32, cgroup: &str, mnt: &str) -> &Self {
        let cmdline: String = argv.iter().map(|a| format!("{a}\0")).collect();
        let comm = argv[0].rsplit('/').next().unwrap();
        self.file(&format!("proc/{pid}/cmdline"), cmdline)
            .file(&format!("proc/{pid}/comm"), format!("{comm}\n"))
            .file(
                &format!("proc/{pid}/status"),
                format!("Name:\tkubelet\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n"),
            )
            .file(&format!("proc/{pid}/cgroup"), cgroup)
            .symlink(&format!("proc/{pid}/ns/pid"), "pid:[4026531836]")
            .symlink(&format!("proc/{pid}/ns/mnt"), mnt)
    }
    /// A host kubelet: pid 1's namespaces, uid 0, its systemd unit's cgroup.
    fn host_kubelet(&self, pid: u32, argv: &[&str]) -> &Self {
        self.init().cmdline_process(
            pid,
            argv,
            0,
            "0::/system.slice/kubelet.service\n",
            "mnt:[4026531841]",
        )
    }
    /// The kubelet's log layout for one container, its directory dated `started_unix`.
    fn container_logs(
        &self,
        ns: &str,
        pod: &str,
        uid: &str,
        container: &str,
        cid: &str,
        started_unix: f64,
    ) -> &Self {
        let dir = format!("var/log/pods/{ns}_{pod}_{uid}/{container}");
        self.file(&format!("{dir}/0.log"), "").file(
            &format!("var/log/containers/{pod}_{ns}_{container}-{cid}.log"),
            "",
        );
        let t = UNIX_EPOCH + Duration::from_secs_f64(started_unix);
        std::fs::File::open(self.path().join(&dir))
            .unwrap()
            .set_modified(t)
            .unwrap();
        self
    }
}

// ------------------------------------------------------------------------------------ running it

fn probe(args: &[&str]) -> (i32, Value) {
    let run = NodeProbe::new().args(args).document();
    // What the launcher does with it: the shared contract must read it back.
    gpu_diag::contract::parse_document(run.doc.to_string().as_bytes()).unwrap();
    (run.code, run.doc)
}

fn allocation(scenario: &str, host: &HostRoot) -> Value {
    let root = host.path().to_str().unwrap();
    let (code, doc) = probe(&["--simulate", scenario, "--host-root", root, "allocation"]);
    assert_eq!(code, 0, "{doc}");
    doc["allocation"].clone()
}

fn scenario(name: &str) -> NodeFacts {
    gpu_diag::scenarios::parse(&gpu_diag::scenarios::find(name).unwrap().json()).unwrap()
}

fn uuids(f: &NodeFacts) -> Vec<String> {
    f.gpus
        .iter()
        .map(|g| g.uuid.ok().unwrap().clone())
        .collect()
}

fn process(report: &Value, pid: u64) -> &Value {
    report["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["processes"].as_array().unwrap())
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("pid {pid} in {report}"))
}

fn codes(report: &Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots/alloc"));
    s.set_prepend_module_to_snapshot(false);
    s
}

const NOW: f64 = 1795600000.0; // the scenarios' fixed clock

const UID_TRAIN: &str = "6b7c8d9e-0f1a-4b2c-8d3e-4f5a6b7c8d9e";
const UID_BOB: &str = "9c8d7e6f-5a4b-4c3d-8e2f-1a0b9c8d7e6f";
const CID_TRAIN: &str = "11e29be9bf2071d82262eb63e60faa1fef82e945bdeb40aad967cb27631a629d";
const CID_BOB: &str = "5a1f0c9e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f";

// ------------------------------------------------------------------------------------ tests

/// Every cgroup layout a kubelet produces resolves to the pod, container and assignment.
#[test]
fn each_cgroup_layout_attributes_processes_to_pods() {
    let f = scenario("h100-zombie-process");
    let [g0, g1] = [&uuids(&f)[0], &uuids(&f)[1]];
    let u = |uid: &str| uid.replace('-', "_");
    // (layout, cgroup of pid 51022 in train-0, cgroup of pid 48213 in notebook-bob)
    let layouts: Vec<(&str, String, String)> = vec![
        (
            "v2 systemd containerd",
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{CID_TRAIN}.scope\n",
                u(UID_TRAIN)
            ),
            format!(
                "0::/kubepods.slice/kubepods-pod{}.slice/cri-containerd-{CID_BOB}.scope\n",
                u(UID_BOB)
            ),
        ),
        (
            "v2 systemd cri-o",
            format!(
                "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/crio-{CID_TRAIN}.scope\n",
                u(UID_TRAIN)
            ),
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/crio-{CID_BOB}.scope\n",
                u(UID_BOB)
            ),
        ),
        (
            "v2 cgroupfs containerd",
            format!("0::/kubepods/burstable/pod{UID_TRAIN}/{CID_TRAIN}\n"),
            format!("0::/kubepods/pod{UID_BOB}/{CID_BOB}\n"),
        ),
        (
            "v1 cgroupfs",
            format!(
                "12:memory:/kubepods/besteffort/pod{UID_TRAIN}/{CID_TRAIN}\n11:devices:/kubepods/besteffort/pod{UID_TRAIN}/{CID_TRAIN}\n1:name=systemd:/kubepods/besteffort/pod{UID_TRAIN}/{CID_TRAIN}\n"
            ),
            format!(
                "10:cpu,cpuacct:/kubepods/burstable/pod{UID_BOB}/{CID_BOB}\n4:devices:/kubepods/burstable/pod{UID_BOB}/{CID_BOB}\n"
            ),
        ),
        (
            "v1 systemd docker",
            format!(
                "11:devices:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/docker-{CID_TRAIN}.scope\n1:name=systemd:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/docker-{CID_TRAIN}.scope\n",
                u(UID_TRAIN),
                u(UID_TRAIN)
            ),
            format!(
                "4:devices:/kubepods.slice/kubepods-pod{}.slice/docker-{CID_BOB}.scope\n",
                u(UID_BOB)
            ),
        ),
        (
            "hybrid systemd containerd",
            format!(
                "4:devices:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{CID_TRAIN}.scope\n0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{CID_TRAIN}.scope\n",
                u(UID_TRAIN),
                u(UID_TRAIN)
            ),
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{CID_BOB}.scope\n",
                u(UID_BOB)
            ),
        ),
        (
            "v2 read from another cgroup namespace",
            format!(
                "0::/../../kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{CID_TRAIN}.scope\n",
                u(UID_TRAIN)
            ),
            format!("0::/../pod{UID_BOB}/{CID_BOB}\n"),
        ),
    ];
    for (layout, train_cg, bob_cg) in layouts {
        let host = short_root();
        host.process(51022, "python3", 'R', &train_cg)
            .process(48213, "jupyter", 'S', &bob_cg)
            .file("proc/uptime", "200000.00 1.00\n")
            .container_logs(
                "ml",
                "train-0",
                UID_TRAIN,
                "trainer",
                CID_TRAIN,
                NOW - 600.0,
            )
            .container_logs(
                "research",
                "notebook-bob",
                UID_BOB,
                "notebook",
                CID_BOB,
                NOW - 900.0,
            );
        let _k = serve(
            host.path(),
            Kubelet {
                pods: vec![
                    pod("ml", "train-0", &[("trainer", "nvidia.com/gpu", &[g1])]),
                    pod(
                        "research",
                        "notebook-bob",
                        &[("notebook", "nvidia.com/gpu", &[g0])],
                    ),
                ],
                allocatable: Some(vec![devices("nvidia.com/gpu", &[g0, g1])]),
            },
        );
        let r = allocation("h100-zombie-process", &host);
        assert_eq!(r["exact"], true, "{layout}: {r}");
        let train = process(&r, 51022);
        assert_eq!(train["pod"], "train-0", "{layout}: {train}");
        assert_eq!(train["namespace"], "ml", "{layout}");
        assert_eq!(train["container"], "trainer", "{layout}");
        assert_eq!(train["cgroup"]["pod_uid"], UID_TRAIN, "{layout}");
        assert_eq!(train["cgroup"]["container_id"], CID_TRAIN, "{layout}");
        assert_eq!(train["status"], "allocated", "{layout}");
        let bob = process(&r, 48213);
        assert_eq!(bob["pod"], "notebook-bob", "{layout}: {bob}");
        assert_eq!(bob["status"], "allocated", "{layout}");
        // Not in the fake /proc: gone, its 2 GiB still held.
        assert_eq!(process(&r, 39977)["status"], "process_gone", "{layout}");
        assert_eq!(codes(&r), vec!["alloc.zombie_process"], "{layout}");
        assert_eq!(r["gpus"][0]["allocatable"], true);
        assert_eq!(r["gpus"][0]["allocated_to"][0]["pod"], "notebook-bob");
        assert_eq!(r["gpus"][1]["allocated_to"][0]["container"], "trainer");
    }
}

/// The findings: memory held outside any pod, by a pod the GPU was not assigned to, in a deleted pod, in
/// an exited container, by a zombie; and an assigned GPU with nothing on it.
#[test]
fn misuse_findings_end_to_end() {
    let f = scenario("h100-zombie-process");
    let [g0, g1] = [&uuids(&f)[0], &uuids(&f)[1]];
    let gone_uid = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let host = short_root();
    host.process(
        48213,
        "sshd-job",
        'S',
        "0::/user.slice/user-1000.slice/session-4.scope\n",
    )
    // train-0 holds GPU 0 only, but its process runs on GPU 1.
    .process(
        51022,
        "python3",
        'R',
        &format!("0::/kubepods/burstable/pod{UID_TRAIN}/{CID_TRAIN}\n"),
    )
    // A pod the kubelet no longer knows (no log directory).
    .process(
        39977,
        "python3",
        'S',
        &format!("0::/kubepods/burstable/pod{gone_uid}/{CID_BOB}\n"),
    )
    .file("proc/uptime", "200000.00 1.00\n")
    .container_logs(
        "ml",
        "train-0",
        UID_TRAIN,
        "trainer",
        CID_TRAIN,
        NOW - 7200.0,
    );
    let _k = serve(
        host.path(),
        Kubelet {
            pods: vec![pod(
                "ml",
                "train-0",
                &[("trainer", "nvidia.com/gpu", &[g0])],
            )],
            allocatable: Some(vec![devices("nvidia.com/gpu", &[g0, g1])]),
        },
    );
    let r = allocation("h100-zombie-process", &host);
    assert_eq!(process(&r, 48213)["status"], "outside_pod");
    assert_eq!(process(&r, 51022)["status"], "not_allocated");
    assert_eq!(process(&r, 39977)["status"], "pod_gone");
    assert_eq!(
        codes(&r),
        vec![
            "alloc.process_outside_pod",
            "alloc.process_in_exited_container",
            "alloc.allocated_idle",
            "alloc.process_not_allocated"
        ]
    );
    // GPU 0 is train-0's for two hours, and none of its processes run there.
    let idle = &r["findings"][2];
    assert_eq!(idle["gpu"], 0);
    assert!(
        idle["summary"].as_str().unwrap().contains("ml/train-0"),
        "{idle}"
    );

    // Same pod, but the process's container is not one the kubelet runs: an exited container.
    let host = short_root();
    host.process(
        51022,
        "python3",
        'R',
        &format!("0::/kubepods/burstable/pod{UID_TRAIN}/{CID_BOB}\n"),
    )
    .process(
        48213,
        "python3",
        'Z',
        &format!("0::/kubepods/burstable/pod{UID_TRAIN}/{CID_TRAIN}\n"),
    )
    .container_logs("ml", "train-0", UID_TRAIN, "trainer", CID_TRAIN, NOW - 60.0);
    let _k = serve(
        host.path(),
        Kubelet {
            pods: vec![pod(
                "ml",
                "train-0",
                &[("trainer", "nvidia.com/gpu", &[g0, g1])],
            )],
            allocatable: None,
        },
    );
    let r = allocation("h100-zombie-process", &host);
    assert_eq!(process(&r, 51022)["status"], "container_exited");
    assert_eq!(process(&r, 48213)["status"], "zombie");
    assert_eq!(process(&r, 48213)["pod"], "train-0");
    // A kubelet before 1.21: List answers, GetAllocatableResources does not; still exact.
    assert_eq!(r["exact"], true);
    assert_eq!(r["allocatable"]["error"], "not_supported");
    assert!(r["gpus"][0].get("allocatable").is_none());
    assert_eq!(
        codes(&r),
        vec![
            "alloc.zombie_process",
            "alloc.zombie_process",
            "alloc.process_in_exited_container"
        ]
    );
}

/// Without a reachable kubelet the document still succeeds: not exact, with why, processes still
/// attributed through their cgroups.
#[test]
fn unreachable_kubelet_is_inline() {
    let host = short_root();
    host.process(
        51022,
        "python3",
        'R',
        &format!("0::/kubepods/burstable/pod{UID_TRAIN}/{CID_TRAIN}\n"),
    )
    .container_logs("ml", "train-0", UID_TRAIN, "trainer", CID_TRAIN, NOW - 60.0);
    let r = allocation("h100-zombie-process", &host);
    assert_eq!(r["exact"], false);
    assert!(
        r["why"].as_str().unwrap().contains("socket is not there"),
        "{r}"
    );
    let p = process(&r, 51022);
    assert_eq!(
        (p["pod"].as_str(), p["status"].as_str()),
        (Some("train-0"), Some("unverified"))
    );
    assert!(r["pods"].as_array().unwrap().is_empty());

    // A stale socket: the file is there, nobody listens.
    let sock = socket_path(host.path());
    std::fs::create_dir_all(sock.parent().unwrap()).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
    let started = SystemTime::now();
    let r = allocation("h100-zombie-process", &host);
    assert!(started.elapsed().unwrap() < Duration::from_secs(8));
    assert_eq!(r["exact"], false);
    assert!(r["why"].as_str().unwrap().contains("refused"), "{r}");

    // A socket that is not a socket.
    std::fs::remove_file(&sock).unwrap();
    std::fs::write(&sock, "not a socket").unwrap();
    let r = allocation("h100-zombie-process", &host);
    assert_eq!(r["exact"], false, "{r}");
    assert!(r["why"].as_str().is_some());
}

/// The built-in zombie scenario carries its kubelet facts: the reviewed report.
#[test]
fn zombie_scenario_snapshot() {
    let (code, doc) = probe(&["--simulate", "h100-zombie-process", "allocation"]);
    assert_eq!(code, 0);
    let r = &doc["allocation"];
    assert_eq!(r["exact"], true);
    assert_eq!(
        codes(r),
        vec![
            "alloc.zombie_process",
            "alloc.zombie_process",
            "alloc.allocated_idle"
        ]
    );
    settings().bind(|| insta::assert_json_snapshot!("zombie_scenario", r));

    let (_, doc) = probe(&["--simulate", "a100-mig", "allocation"]);
    let r = &doc["allocation"];
    assert!(codes(r).is_empty(), "{r}");
    assert_eq!(process(r, 3312)["pod"], "llama-0");
    assert_eq!(process(r, 4410)["status"], "allocated");
    settings().bind(|| insta::assert_json_snapshot!("a100_mig_scenario", r));
}

/// Each device-id form the kubelet may report, located on the a100-mig node (GPU 0: two MIG 3g.40gb
/// instances, GI 1 and 2; GPU 1: whole).
#[test]
fn device_id_forms() {
    let f = scenario("a100-mig");
    let gpu = uuids(&f);
    let mig: Vec<String> = f.gpus[0]
        .mig_devices
        .iter()
        .map(|m| m.uuid.ok().unwrap().clone())
        .collect();
    let legacy = format!("MIG-{}/2/0", gpu[0]);
    let forms: Vec<(&str, &str, String)> = vec![
        ("gpu_uuid", "nvidia.com/gpu", gpu[1].clone()),
        (
            "gpu_uuid_replica",
            "nvidia.com/gpu.shared",
            format!("{}::3", gpu[1]),
        ),
        ("mig_uuid", "nvidia.com/mig-3g.40gb", mig[0].clone()),
        (
            "mig_uuid_sharing",
            "nvidia.com/mig-3g.40gb",
            format!("{}::1", mig[1]),
        ),
        ("mig_legacy", "nvidia.com/mig-3g.40gb", legacy),
        ("gke_gpu", "nvidia.com/gpu", "nvidia1".into()),
        ("gke_mig", "nvidia.com/gpu", "nvidia0/gi1".into()),
        ("gke_mig_vgpu", "nvidia.com/gpu", "nvidia0/gi2/vgpu3".into()),
        ("index", "nvidia.com/gpu", "1".into()),
        ("index_mig", "nvidia.com/gpu", "0:1".into()),
        (
            "unknown_gpu",
            "nvidia.com/gpu",
            "GPU-00000000-1111-2222-3333-444444444444".into(),
        ),
        ("malformed", "nvidia.com/gpu", "gpu#7".into()),
    ];
    for (name, resource, id) in forms {
        let host = short_root();
        let _k = serve(
            host.path(),
            Kubelet {
                pods: vec![
                    pod("team", "job-0", &[("main", resource, &[id.as_str()])]),
                    // Non-GPU resources are not GPU allocations.
                    pod("net", "router", &[("r", "rdma/hca", &["mlx5_0"])]),
                ],
                allocatable: Some(vec![devices(resource, &[id.as_str()])]),
            },
        );
        let r = allocation("a100-mig", &host);
        assert_eq!(r["exact"], true, "{name}");
        assert_eq!(r["pods"].as_array().unwrap().len(), 1, "{name}");
        let d = &r["pods"][0]["containers"][0]["devices"][0];
        let located = d.get("gpu_index").is_some();
        assert_eq!(
            located,
            !matches!(name, "unknown_gpu" | "malformed"),
            "{name}: {d}"
        );
        let found = codes(&r).contains(&"alloc.device_not_found".to_string());
        assert_eq!(found, !located, "{name}");
        settings().bind(|| insta::assert_json_snapshot!(format!("device_id_{name}"), d));
    }
}

// ------------------------------------------------------------------------------------ kubelet roots

/// One GPU pod, named so the report shows which kubelet answered.
fn kubelet_with(pod_name: &str) -> Kubelet {
    let f = scenario("h100-zombie-process");
    let id = uuids(&f)[0].clone();
    Kubelet {
        pods: vec![pod(
            "ml",
            pod_name,
            &[("main", "nvidia.com/gpu", &[id.as_str()])],
        )],
        allocatable: Some(vec![devices("nvidia.com/gpu", &[id.as_str()])]),
    }
}

/// The PodResources socket under each distribution's kubelet root: the defaults (found by their socket)
/// and roots named on a host kubelet's command line in each wrapper's spelling. Sources beside
/// `KUBELET_ROOTS` in node-probe/src/podresources.rs.
#[test]
fn the_kubelet_root_of_each_layout() {
    let layouts: &[(&str, &str, &[&str])] = &[
        ("kubeadm, EKS, GKE, AKS, k3s, RKE2", "var/lib/kubelet", &[]),
        ("microk8s", "var/snap/microk8s/common/var/lib/kubelet", &[]),
        ("k0s", "var/lib/k0s/kubelet", &[]),
        (
            "kubelet --root-dir",
            "data/kubelet",
            &[
                "/usr/bin/kubelet",
                "--config=/var/lib/kubelet/config.yaml",
                "--root-dir",
                "/data/kubelet",
            ],
        ),
        (
            "kubelet --root-dir=",
            "data/k8s",
            &["/usr/bin/kubelet", "--root-dir=/data/k8s", "--v=2"],
        ),
        (
            "k0s worker --kubelet-root-dir",
            "mnt/k0s",
            &[
                "/usr/local/bin/k0s",
                "worker",
                "--kubelet-root-dir=/mnt/k0s",
            ],
        ),
        (
            "k3s agent --kubelet-arg root-dir=",
            "srv/kubelet",
            &[
                "/usr/local/bin/k3s",
                "agent",
                "--kubelet-arg",
                "root-dir=/srv/kubelet",
            ],
        ),
    ];
    for (layout, dir, argv) in layouts {
        let host = short_root();
        if !argv.is_empty() {
            host.host_kubelet(700, argv);
            std::fs::create_dir_all(host.path().join(dir)).unwrap();
        }
        let sock = host.path().join(dir).join("pod-resources/kubelet.sock");
        let _k = serve_at(sock, kubelet_with("job-0"));
        let r = allocation("h100-zombie-process", &host);
        assert_eq!(r["exact"], true, "{layout}: {r}");
        assert_eq!(
            r["kubelet_socket"],
            format!("{dir}/pod-resources/kubelet.sock"),
            "{layout}"
        );
        assert!(r["pods"].to_string().contains("job-0"), "{layout}: {r}");
    }
}

/// Without a kubelet anywhere, the inline error names every place looked at.
#[test]
fn no_kubelet_says_where_it_looked() {
    let host = short_root();
    let r = allocation("h100-zombie-process", &host);
    assert_eq!(r["exact"], false);
    let why = r["why"].as_str().unwrap();
    for place in [
        "/var/lib/kubelet",
        "/var/snap/microk8s/common/var/lib/kubelet",
        "/var/lib/k0s/kubelet",
    ] {
        assert!(why.contains(place), "lacks {place}: {why}");
    }
}

/// A tenant's process named `kubelet` with `--root-dir` pointing at a socket the tenant serves must not
/// move the probe off the host kubelet: it is in a container (its own mount namespace, a pod cgroup), or
/// not root; or it names a path that climbs out.
#[test]
fn a_tenant_kubelet_process_does_not_redirect_the_probe() {
    let tenant_dir = "var/lib/kubelet/pods/abc/volumes/kubernetes.io~empty-dir/x";
    let variants: &[(&str, u32, &str, &str, &str)] = &[
        (
            "own mount namespace",
            0,
            "0::/system.slice/x.service\n",
            "mnt:[4026532999]",
            "/",
        ),
        (
            "in a pod's cgroup",
            0,
            "0::/kubepods.slice/kubepods-pod1.slice/cri-containerd-1.scope\n",
            "mnt:[4026531841]",
            "/",
        ),
        (
            "not root",
            1000,
            "0::/user.slice\n",
            "mnt:[4026531841]",
            "/",
        ),
        (
            "a root dir that climbs",
            0,
            "0::/system.slice/kubelet.service\n",
            "mnt:[4026531841]",
            "/var/lib/kubelet/../../../",
        ),
    ];
    for (what, uid, cgroup, mnt, prefix) in variants {
        let host = short_root();
        host.init();
        let _real = serve(host.path(), kubelet_with("real-job"));
        let root_dir = format!("{prefix}{tenant_dir}");
        host.cmdline_process(
            4242,
            &["/usr/bin/kubelet", &format!("--root-dir={root_dir}")],
            *uid,
            cgroup,
            mnt,
        );
        std::fs::create_dir_all(host.path().join(tenant_dir)).unwrap();
        let _fake = serve_at(
            host.path()
                .join(tenant_dir)
                .join("pod-resources/kubelet.sock"),
            kubelet_with("tenant-job"),
        );
        let r = allocation("h100-zombie-process", &host);
        assert_eq!(
            r["kubelet_socket"], "var/lib/kubelet/pod-resources/kubelet.sock",
            "{what}: {r}"
        );
        assert!(!r.to_string().contains("tenant-job"), "{what}: {r}");
        assert!(r["pods"].to_string().contains("real-job"), "{what}");
    }
}

// ------------------------------------------------------------------------------------ DRA

const CLAIM_REPORTED: &str = "dab5ab50-d59a-42a6-af16-cfd4628c0f7a";
const CLAIM_UNREPORTED: &str = "0c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5";

/// A container's DRA claim as the kubelet reports it, NVIDIA-style CDI ids and all.
fn claimed(container: &str, claim: &str, uid: &str, devices: &[&str]) -> api::ContainerResources {
    api::ContainerResources {
        name: container.into(),
        devices: vec![],
        dynamic_resources: vec![api::DynamicResource {
            claim_name: claim.into(),
            claim_namespace: "ml".into(),
            claim_resources: devices
                .iter()
                .map(|d| api::ClaimResource {
                    cdi_devices: vec![api::CdiDevice {
                        name: format!("k8s.gpu.nvidia.com/claim={uid}-{d}"),
                    }],
                    driver_name: "gpu.nvidia.com".into(),
                    pool_name: "gb-node-7".into(),
                    device_name: (*d).into(),
                })
                .collect(),
        }],
    }
}

/// A DRA node: NVIDIA's driver registered with the kubelet, device minors that are not the NVML indices
/// (as the driver's `/proc/driver/nvidia/gpus/<bdf>/information` says), one claim the kubelet reports, one
/// prepared claim it does not, and a device-plugin pod given a GPU a claim also holds.
fn dra_node(f: &NodeFacts) -> HostRoot {
    let host = short_root();
    for g in &f.gpus {
        let bdf = gpu_diag::pci::normalize_bus_id(g.pci_bus_id.ok().unwrap()).unwrap();
        host.file(
            &format!("proc/driver/nvidia/gpus/{bdf}/information"),
            format!(
                "Model: \t\t NVIDIA H100 80GB HBM3\nDevice Minor: \t {}\n",
                7 - g.index
            ),
        );
    }
    let reg = host.path().join("var/lib/kubelet/plugins_registry");
    std::fs::create_dir_all(&reg).unwrap();
    std::mem::forget(
        std::os::unix::net::UnixListener::bind(reg.join("gpu.nvidia.com-reg.sock")).unwrap(),
    );
    for (dir, uid, dev) in [
        ("etc/cdi", CLAIM_REPORTED, "gpu-7"),
        ("var/run/cdi", CLAIM_UNREPORTED, "gpu-2"),
    ] {
        host.file(
            &format!("{dir}/k8s.gpu.nvidia.com-claim_{uid}.yaml"),
            format!("cdiVersion: 0.5.0\nkind: k8s.gpu.nvidia.com/claim\ndevices:\n- name: {uid}-{dev}\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia{}\n", &dev[4..]),
        );
    }
    host
}

/// GPUs given through DRA claims are held: the report names the pod, the claim and the GPU (joined by
/// minor, not index), says which claims the kubelet left out, flags a GPU handed out twice, and a reset
/// of any held GPU is refused while a free one passes that check.
#[test]
fn dra_claims_hold_their_gpus() {
    let f = scenario("dgx-h100-healthy");
    let gpu = uuids(&f);
    let host = dra_node(&f);
    let _k = serve(
        host.path(),
        Kubelet {
            pods: vec![
                api::PodResources {
                    name: "train-0".into(),
                    namespace: "ml".into(),
                    containers: vec![claimed(
                        "main",
                        "train-gpus",
                        CLAIM_REPORTED,
                        &["gpu-7", "gpu-6"],
                    )],
                },
                pod(
                    "legacy",
                    "old-job",
                    &[("main", "nvidia.com/gpu", &[gpu[1].as_str()])],
                ),
            ],
            allocatable: Some(vec![devices("nvidia.com/gpu", &[gpu[1].as_str()])]),
        },
    );
    let r = allocation("dgx-h100-healthy", &host);
    assert_eq!(r["exact"], true, "{r}");
    let d = &r["pods"][0]["containers"][0]["devices"];
    assert_eq!(r["pods"][0]["name"], "train-0", "{r}");
    // gpu-7 is minor 7, which is NVML GPU 0 here.
    assert_eq!(
        (d[0]["device_id"].as_str(), d[0]["gpu_index"].as_u64()),
        (Some("gpu-7"), Some(0)),
        "{d}"
    );
    assert_eq!(d[0]["gpu_uuid"], gpu[0].as_str());
    assert_eq!(d[0]["resource"]["kind"], "claim");
    assert_eq!(d[0]["claim"]["name"], "train-gpus");
    assert_eq!(d[1]["gpu_index"], 1);
    let holders = |i: usize| r["gpus"][i]["allocated_to"].as_array().unwrap().clone();
    assert_eq!(holders(0)[0]["claim"], "ml/train-gpus");
    assert_eq!(
        holders(1).len(),
        2,
        "device plugin and claim: {}",
        r["gpus"][1]
    );
    assert!(holders(2).is_empty());
    assert_eq!(
        r["gpus"][5]["unreported_claims"][0], CLAIM_UNREPORTED,
        "{}",
        r["gpus"][5]
    );
    assert_eq!(r["dra"]["registered"][0], "gpu.nvidia.com");
    assert_eq!(r["dra"]["claims_reported"], 1);
    assert!(
        r["dra"]["partial"]
            .as_str()
            .unwrap()
            .contains("missing from the kubelet's answer")
    );
    // The device plugin lists only GPU 1: the others are the DRA driver's, not "unallocatable".
    assert_eq!(r["gpus"][1]["allocatable"], true);
    assert!(
        r["gpus"][3].get("allocatable").is_none(),
        "{}",
        r["gpus"][3]
    );
    let c = codes(&r);
    assert!(c.contains(&"alloc.dra_claims_unreported".into()), "{c:?}");
    assert!(c.contains(&"alloc.gpu_allocated_twice".into()), "{c:?}");
    assert!(!c.contains(&"alloc.device_not_found".into()), "{c:?}");

    let reset = |g: &str| {
        let root = host.path().to_str().unwrap();
        let (_, doc) = probe(&[
            "--simulate",
            "dgx-h100-healthy",
            "--host-root",
            root,
            "reset",
            "--gpu",
            g,
            "--dry-run",
        ]);
        let check = doc["reset"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "not_assigned_to_a_pod")
            .cloned()
            .unwrap_or_else(|| panic!("{doc}"));
        (doc["reset"]["allowed"].clone(), check)
    };
    let (allowed, check) = reset("0");
    assert_eq!(
        (allowed, check["status"].as_str()),
        (Value::Bool(false), Some("block"))
    );
    assert!(
        check["evidence"]
            .as_str()
            .unwrap()
            .contains("ml/train-0 (container main) holds gpu.nvidia.com device"),
        "{check}"
    );
    let (_, check) = reset("5");
    assert_eq!(check["status"], "block");
    assert!(
        check["evidence"]
            .as_str()
            .unwrap()
            .contains(CLAIM_UNREPORTED),
        "{check}"
    );
    let (_, check) = reset("3");
    assert_eq!(check["status"], "pass", "{check}");
}

/// A node of `h100-zombie-process` with NVIDIA's DRA driver registered, train-0's process (PID 51022) on
/// its GPU, GPU minors 7 - index, and a kubelet that lists train-0 with no device and no DRA claim.
fn dra_node_kubelet_silent() -> (HostRoot, Served) {
    let f = scenario("h100-zombie-process");
    let host = short_root();
    for g in &f.gpus {
        let bdf = gpu_diag::pci::normalize_bus_id(g.pci_bus_id.ok().unwrap()).unwrap();
        host.file(
            &format!("proc/driver/nvidia/gpus/{bdf}/information"),
            format!(
                "Model: \t\t NVIDIA H100 80GB HBM3\nDevice Minor: \t {}\n",
                7 - g.index
            ),
        );
    }
    let reg = host.path().join("var/lib/kubelet/plugins_registry");
    std::fs::create_dir_all(&reg).unwrap();
    std::mem::forget(
        std::os::unix::net::UnixListener::bind(reg.join("gpu.nvidia.com-reg.sock")).unwrap(),
    );
    host.process(
        51022,
        "python3",
        'R',
        &format!("0::/kubepods/burstable/pod{UID_TRAIN}/{CID_TRAIN}\n"),
    )
    .file("proc/uptime", "200000.00 1.00\n")
    .container_logs(
        "ml",
        "train-0",
        UID_TRAIN,
        "trainer",
        CID_TRAIN,
        NOW - 7200.0,
    );
    let k = serve(
        host.path(),
        Kubelet {
            pods: vec![pod(
                "ml",
                "train-0",
                &[("trainer", "example.com/none", &[])],
            )],
            allocatable: Some(vec![]),
        },
    );
    (host, k)
}

/// The safety case of a DRA node whose kubelet reports no claims (KubeletPodResourcesDynamicResources off)
/// and whose driver wrote no per-claim CDI spec (NVIDIA's before v25.12 for a plain GPU claim): the job's own
/// process on its claimed GPU is not accused of a bypass, the answer says attribution is incomplete and why,
/// and a reset of any GPU, busy or idle, is refused with the fix.
#[test]
fn a_claim_nothing_names_makes_attribution_incomplete_and_blocks_every_reset() {
    let (host, _k) = dra_node_kubelet_silent();
    let r = allocation("h100-zombie-process", &host);
    assert_eq!(r["exact"], false, "{r}");
    assert!(
        r["why"]
            .as_str()
            .unwrap_or_default()
            .contains("KubeletPodResourcesDynamicResources"),
        "{r}"
    );
    // train-0's process runs on a GPU no source assigned to it: unverified, not a bypass.
    assert_eq!(process(&r, 51022)["status"], "unverified", "{r}");
    let c = codes(&r);
    assert!(c.contains(&"alloc.dra_claims_unnamed".into()), "{c:?}");
    assert!(!c.contains(&"alloc.process_not_allocated".into()), "{c:?}");
    let root = host.path().to_str().unwrap();
    for g in ["0", "1"] {
        let (_, doc) = probe(&[
            "--simulate",
            "h100-zombie-process",
            "--host-root",
            root,
            "reset",
            "--gpu",
            g,
            "--dry-run",
        ]);
        let check = doc["reset"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "not_assigned_to_a_pod")
            .cloned()
            .unwrap_or_else(|| panic!("{doc}"));
        assert_eq!(doc["reset"]["allowed"], false, "{doc}");
        assert_eq!(check["status"], "block", "{check}");
        let ev = check["evidence"].as_str().unwrap();
        assert!(
            ev.contains("turn on the kubelet's KubeletPodResourcesDynamicResources"),
            "{check}"
        );
        // Refused for unknown holders alone: a person may override it, and the check says which sources.
        assert!(ev.contains("override"), "{check}");
        assert!(
            check["unknown_sources"]
                .as_array()
                .is_some_and(|u| u.iter().any(|s| s == "kubelet PodResources (DRA claims)")),
            "{check}"
        );
    }
}

/// A DRA node whose kubelet is restarting (its PodResources socket does not answer; the fixture's node has
/// two GPUs), the job's claimed GPU idle (no process of its own on it is needed), the API server naming the
/// claim: a reset of every GPU is refused. The claimed one names its claim and cannot be overridden; the others name the silent
/// kubelet as the source no one could replace, with its fix, and can be overridden only by a person.
#[test]
fn a_restarting_kubelet_refuses_every_reset_on_a_dra_node() {
    let f = scenario("h100-zombie-process");
    let (host, k) = dra_node_kubelet_silent();
    drop(k);
    let root = host.path().to_str().unwrap();
    assert!(f.gpus.len() >= 2, "the claimed GPU and at least one other");
    let claimed = 1u32;
    let claims = format!(
        "ml/train-0-gpu-x1=gpu.nvidia.com/gpu-{}>train-0:{UID_TRAIN}",
        7 - claimed
    );
    for g in &f.gpus {
        let gpu = g.index.to_string();
        let (_, doc) = probe(&[
            "--simulate",
            "h100-zombie-process",
            "--host-root",
            root,
            "reset",
            "--gpu",
            &gpu,
            "--dry-run",
            "--api-claims",
            &claims,
        ]);
        assert_eq!(doc["reset"]["allowed"], false, "GPU {gpu}: {doc}");
        let check = doc["reset"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "not_assigned_to_a_pod")
            .cloned()
            .unwrap_or_else(|| panic!("{doc}"));
        let ev = check["evidence"].as_str().unwrap();
        assert_eq!(check["status"], "block", "{check}");
        if g.index == claimed {
            assert!(
                ev.contains("DRA claim ml/train-0-gpu-x1 (reserved for ml/train-0)"),
                "{check}"
            );
            assert!(
                check.get("unknown_sources").is_none(),
                "a named holder is not overridable: {check}"
            );
        } else {
            assert!(ev.contains("PodResources did not answer"), "{check}");
            assert!(ev.contains("restart the kubelet"), "{check}");
            assert_eq!(
                check["unknown_sources"],
                serde_json::json!(["kubelet PodResources (device plugins)"]),
                "{check}"
            );
        }
    }
}

/// The kubelet names no DRA claim and the driver wrote no per-claim spec, but the launcher read the API
/// server's ResourceClaims on the node (`--api-claims`): they name the holders. The job's own process on
/// its claimed GPU is allocated (joined by minor, not index), a process of another pod on that GPU is a
/// bypass again, the claimed GPU's reset is refused naming the pod, a free GPU's passes, and an empty list
/// from the API server ("none") frees every GPU.
#[test]
fn the_api_servers_claims_name_what_the_kubelet_does_not() {
    let f = scenario("h100-zombie-process");
    let (host, _k) = dra_node_kubelet_silent();
    let root = host.path().to_str().unwrap();
    let run = |claims: &str, cmd: &[&str]| {
        let mut argv = vec!["--simulate", "h100-zombie-process", "--host-root", root];
        argv.extend(cmd);
        argv.extend(["--api-claims", claims]);
        probe(&argv).1
    };
    // Where train-0's process runs, as NVML indexes it, and the GPU's minor.
    let before = allocation("h100-zombie-process", &host);
    let idx = before["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| {
            g["processes"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["pid"] == 51022)
        })
        .map(|g| g["index"].as_u64().unwrap() as u32)
        .unwrap_or_else(|| panic!("{before}"));
    let other = f.gpus.iter().map(|g| g.index).find(|&i| i != idx).unwrap();
    let claims = format!(
        "ml/train-0-gpu-x1=gpu.nvidia.com/gpu-{}>train-0:{UID_TRAIN}",
        7 - idx
    );

    let r = run(&claims, &["allocation"])["allocation"].clone();
    assert_eq!(r["exact"], true, "{r}");
    assert_eq!(r["dra"]["claims_from_api_server"], 1, "{r}");
    assert!(r["dra"].get("unnamed").is_none(), "{r}");
    assert_eq!(process(&r, 51022)["status"], "allocated", "{r}");
    let holder = &r["gpus"][idx as usize]["allocated_to"][0];
    assert_eq!(
        (holder["pod"].as_str(), holder["claim"].as_str()),
        (Some("train-0"), Some("ml/train-0-gpu-x1")),
        "{r}"
    );
    assert!(!codes(&r).contains(&"alloc.dra_claims_unnamed".into()));

    // The same claim on another GPU: train-0's process now uses a GPU it does not hold.
    let elsewhere = format!(
        "ml/train-0-gpu-x1=gpu.nvidia.com/gpu-{}>train-0:{UID_TRAIN}",
        7 - other
    );
    let r = run(&elsewhere, &["allocation"])["allocation"].clone();
    assert_eq!(process(&r, 51022)["status"], "not_allocated", "{r}");
    assert!(codes(&r).contains(&"alloc.process_not_allocated".into()));

    let check = |claims: &str, gpu: u32| {
        let g = gpu.to_string();
        let doc = run(claims, &["reset", "--gpu", &g, "--dry-run"]);
        doc["reset"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == "not_assigned_to_a_pod")
            .cloned()
            .unwrap_or_else(|| panic!("{doc}"))
    };
    let held = check(&claims, idx);
    assert_eq!(held["status"], "block", "{held}");
    let ev = held["evidence"].as_str().unwrap();
    assert!(
        ev.contains("ml/train-0") && ev.contains("API server ResourceClaims: DRA claim"),
        "{held}"
    );
    assert_eq!(check(&claims, other)["status"], "pass");
    assert_eq!(check("none", idx)["status"], "pass");
    // A claim the API server reserved for no pod still holds its GPU.
    let stale = format!("ml/left-over=gpu.nvidia.com/gpu-{}", 7 - idx);
    assert_eq!(check(&stale, idx)["status"], "block");
    // A device whose minor no GPU has holds an unknown GPU: every reset is refused.
    assert_eq!(
        check("ml/c=gpu.nvidia.com/gpu-99>p:u", other)["status"],
        "block"
    );
}

/// A claim the node's CDI spec and the API server both show is one claim, not two: where the API server's
/// claim gives every GPU of the spec to a pod it names, the spec is not "unreported" and no "pods are not
/// named" note follows; a spec of a GPU no API claim names still is.
#[test]
fn a_cdi_spec_of_a_claim_the_api_server_names_is_that_claim() {
    let (host, _k) = dra_node_kubelet_silent();
    let spec = |uid: &str, dev: &str| {
        format!(
            "cdiVersion: 0.5.0\nkind: k8s.gpu.nvidia.com/claim\ndevices:\n- name: {uid}-{dev}\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n"
        )
    };
    let named = "1a2b3c4d-0000-4000-8000-00000000000a";
    let alone = "1a2b3c4d-0000-4000-8000-00000000000b";
    // GPU 0 has minor 7, GPU 1 minor 6 (dra_node_kubelet_silent).
    host.file(
        &format!("etc/cdi/k8s.gpu.nvidia.com-claim_{named}.yaml"),
        spec(named, "gpu-7"),
    );
    host.file(
        &format!("etc/cdi/k8s.gpu.nvidia.com-claim_{alone}.yaml"),
        spec(alone, "gpu-6"),
    );
    let root = host.path().to_str().unwrap();
    let claims = format!("ml/train-0-gpu=gpu.nvidia.com/gpu-7>train-0:{UID_TRAIN}");
    let (code, doc) = probe(&[
        "--simulate",
        "h100-zombie-process",
        "--host-root",
        root,
        "allocation",
        "--api-claims",
        &claims,
    ]);
    assert_eq!(code, 0, "{doc}");
    let r = &doc["allocation"];
    assert_eq!(r["dra"]["claims_from_api_server"], 1, "{r}");
    let unreported: Vec<&str> = r["dra"]["unreported_claims"]
        .as_array()
        .unwrap_or_else(|| panic!("{r}"))
        .iter()
        .filter_map(|u| u["claim_uid"].as_str())
        .collect();
    assert_eq!(unreported, vec![alone], "{r}");
    assert!(
        r["dra"]["partial"]
            .as_str()
            .is_some_and(|p| p.starts_with("1 GPU claim(s)")),
        "{r}"
    );
}

// ------------------------------------------------------------------------------------ Gaudi by serial

/// Habana's device plugin names each `habana.ai/gaudi` device by its HLML serial. On a Gaudi host tree
/// (no scenario: node-probe reads the habanalabs sysfs) with the stand-in libhlml, the serials node-probe
/// reads through it attribute the pod to its device exactly; the same node without the library cannot
/// (sysfs has no serial) and says so.
#[test]
fn gaudi_pods_are_attributed_exactly_by_the_hlml_serial() {
    use gaudi_tree::{Device, Node};
    let devs: Vec<Device> = (0..4).map(Device::gaudi2).collect();
    let serial = |i: usize| format!("AN{:08}", 420 + i);
    let node = |with_lib: bool| -> Option<HostRoot> {
        let host = short_root();
        host.file("proc/uptime", "3600.0 7000.0\n")
            .file("etc/hostname", "gaudi-node-1\n");
        Node::new(devs.clone()).write(host.path());
        if with_lib {
            // In the library's own order, not sysfs's.
            let conf: String = [3usize, 1, 0, 2]
                .iter()
                .map(|&i| {
                    fake_hlml::device(&devs[i].bdf, &serial(i), devs[i].module_id, [0; 4], false)
                })
                .collect();
            fake_hlml::install(host.path(), &conf)?;
        }
        Some(host)
    };
    let kubelet = || Kubelet {
        pods: vec![pod(
            "ml",
            "train",
            &[("main", "habana.ai/gaudi", &[serial(2).as_str()])],
        )],
        allocatable: Some(vec![devices(
            "habana.ai/gaudi",
            &(0..4)
                .map(serial)
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        )]),
    };
    let run = |host: &HostRoot| -> Value {
        let root = host.path().to_str().unwrap();
        let (code, doc) = probe(&[
            "--nvml-lib",
            "/nonexistent/libnvidia-ml.so.1",
            "--host-root",
            root,
            "allocation",
        ]);
        assert_eq!(code, 0, "{doc}");
        doc["allocation"].clone()
    };

    let Some(host) = node(true) else {
        return;
    };
    let _k = serve(host.path(), kubelet());
    let r = run(&host);
    assert_eq!(r["exact"], true, "{r:#}");
    let d = &r["pods"][0]["containers"][0]["devices"][0];
    assert_eq!(d["form"], "serial", "{d}");
    assert_eq!(d["gpu_index"], 2, "the device at {}: {d}", devs[2].bdf);
    assert!(
        !codes(&r).contains(&"alloc.device_not_found".to_string()),
        "{r:#}"
    );

    let host = node(false).unwrap();
    let _k = serve(host.path(), kubelet());
    let r = run(&host);
    assert_eq!(r["exact"], false, "{r:#}");
    assert!(
        r["why"]
            .as_str()
            .unwrap_or_default()
            .contains("HLML serial"),
        "{r:#}"
    );
    let d = &r["pods"][0]["containers"][0]["devices"][0];
    assert!(d.get("gpu_index").is_none(), "{d}");
}
