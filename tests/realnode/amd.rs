//! AMD's real device plugin on the real node: ROCm/k8s-device-plugin v1.31.0.7 (built by
//! tests/testbed/amd-device-plugin.sh) reads a fake amdgpu host tree (tests/support/amdgpu_tree.rs), registers
//! `amd.com/gpu` with the real kubelet and answers its Allocate; a workload pod gets two of the GPUs, and the
//! launcher must attribute exactly those (by index and PCI address) to the pod, as the kubelet reports them.
//!
//! The fake host is visible only inside the node's mount namespace: read-only overlays put the tree's
//! `sys/{bus,class,devices,module}` over the real ones (the real entries stay visible below them), and an
//! overlay on `/dev` adds `/dev/kfd` and `/dev/dri/card<N>`/`renderD<N>`, character devices with /dev/null's
//! numbers (1:3), so runc creates them in the container and the device cgroup allows them, and a process that
//! opens them reads and writes nothing. The probe pod sees both through its host mount (`/host`). Nothing is
//! written to the machine's own /sys or /dev; the guard unmounts and removes it all, also on a failed case.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::amdgpu_tree::{Gpu, Node};
use crate::node;
use crate::testbed::{repo_root, testbed_bin};
use crate::{Ctx, mcp};

/// The resource AMD's plugin registers with naming strategy `single` (its default; cmd/k8s-device-plugin
/// main.go `getResourceList` on a homogeneous node).
const RESOURCE: &str = "amd.com/gpu";

/// The fake host's `sys` directories mounted over the node's (the tree writes under these four).
const SYS_DIRS: [&str; 4] = ["bus", "class", "devices", "module"];

/// The fake amdgpu host of one case: its tree, its overlays and the running plugin. Dropped: all undone.
struct AmdHost<'a> {
    c: &'a Ctx,
    dir: PathBuf,
    /// Mount points inside the node's namespace, in the order mounted.
    mounts: Vec<String>,
    plugin: Option<Child>,
    log: PathBuf,
}

impl<'a> AmdHost<'a> {
    fn install(c: &'a Ctx, tree: &Node) -> AmdHost<'a> {
        let plugin_bin = build_plugin();
        let dir = c.node.dir.join("amd-host");
        let mut host = AmdHost {
            c,
            log: c.node.dir.join("amd-device-plugin.log"),
            dir: dir.clone(),
            mounts: Vec::new(),
            plugin: None,
        };
        let _ = std::fs::remove_dir_all(&dir);
        tree.write(&dir);
        // The device nodes, with /dev/null's numbers (the directory is on the host's filesystem).
        let dev = dir.join("dev");
        std::fs::create_dir_all(dev.join("dri")).expect("mkdir dev/dri");
        let mut nodes = vec![dev.join("kfd")];
        for g in &tree.gpus {
            nodes.push(dev.join(format!("dri/card{}", g.card)));
            nodes.push(dev.join(format!("dri/renderD{}", g.render)));
        }
        for n in &nodes {
            let st = Command::new("mknod")
                .args(["-m", "666"])
                .arg(n)
                .args(["c", "1", "3"])
                .status()
                .expect("run mknod");
            assert!(st.success(), "mknod {}", n.display());
        }
        for d in SYS_DIRS {
            host.overlay(&dir.join("sys").join(d), &format!("/sys/{d}"));
        }
        host.overlay(&dev, "/dev");
        let log = std::fs::File::create(&host.log).expect("create the plugin's log");
        let child = c
            .node
            .ns_command(&plugin_bin)
            .args(["-logtostderr=true", "-v=2"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start AMD's device plugin");
        host.plugin = Some(child);
        host
    }

    fn ns_ok(&self, args: &[&str]) {
        let out = self.c.node.in_ns(args);
        assert!(
            out.status.success(),
            "{args:?} in the node's namespace: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A read-only overlay of `fake` over `target` (both visible, `fake` on top), in the node's namespace.
    fn overlay(&mut self, fake: &Path, target: &str) {
        let opts = format!("lowerdir={}:{target}", fake.display());
        self.ns_ok(&["mount", "-t", "overlay", "-o", &opts, "overlay", target]);
        self.mounts.push(target.to_string());
    }

    fn plugin_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for AmdHost<'_> {
    fn drop(&mut self) {
        if let Some(mut p) = self.plugin.take() {
            // SIGTERM: the plugin stops serving and the kubelet marks its devices unhealthy.
            let _ = Command::new("kill").arg(p.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline && matches!(p.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = p.kill();
            let _ = p.wait();
        }
        for m in self.mounts.iter().rev() {
            let out = self.c.node.in_ns(&["umount", m]);
            if !out.status.success() {
                // Still busy (a container that just ended): detach it; the kernel frees it once unused.
                let _ = self.c.node.in_ns(&["umount", "-l", m]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The plugin's binary (built once, cached by version). Here the source comes from git (the module proxy
/// does not serve four-number tags; see the script).
fn build_plugin() -> PathBuf {
    let out = Command::new("bash")
        .arg(repo_root().join("tests/testbed/amd-device-plugin.sh"))
        .env("TESTBED_BIN", testbed_bin())
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/testbed/amd-device-plugin.sh");
    assert!(
        out.status.success(),
        "tests/testbed/amd-device-plugin.sh failed (its log is above)"
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
}

/// The node's allocatable `amd.com/gpu` (empty while the plugin has not registered).
fn allocatable(c: &Ctx) -> String {
    c.tb.kubectl(&[
        "get",
        "node",
        c.name(),
        "-o",
        "jsonpath={.status.allocatable.amd\\.com/gpu}",
    ])
    .trim()
    .to_string()
}

/// The device ids the kubelet reports for `pod`'s `amd.com/gpu`, from its PodResources socket.
fn kubelet_ids(c: &Ctx, pod: &str) -> Vec<String> {
    let v = c.node.pod_resources(Some((&c.wl, pod)));
    let mut ids: Vec<String> = v["pod_resources"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|ct| ct["devices"].as_array().into_iter().flatten())
        .filter(|d| d["resource_name"] == RESOURCE)
        .flat_map(|d| d["device_ids"].as_array().into_iter().flatten())
        .filter_map(|i| i.as_str().map(str::to_string))
        .collect();
    ids.sort();
    assert!(
        !ids.is_empty(),
        "the kubelet reports no {RESOURCE} for {pod}: {v:#}"
    );
    ids
}

pub async fn amds_device_plugin_gives_a_pod_gpus_the_launcher_attributes_by_pci_address(c: &Ctx) {
    let t0 = Instant::now();
    let tree = Node::new((0..4).map(Gpu::mi300x).collect());
    let host = AmdHost::install(c, &tree);
    eprintln!("amd: fake host and plugin started in {:?}", t0.elapsed());

    // The plugin registers amd.com/gpu with one device per GPU of the tree.
    let deadline = Instant::now() + Duration::from_secs(60);
    while allocatable(c) != tree.gpus.len().to_string() {
        assert!(
            Instant::now() < deadline,
            "the node's allocatable {RESOURCE} is {:?}, not {}; the plugin's log:\n{}",
            allocatable(c),
            tree.gpus.len(),
            host.plugin_log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("amd: {RESOURCE} allocatable after {:?}", t0.elapsed());

    // A workload holding /dev/kfd and every render node it was given, as a ROCm process does (KFD takes a
    // DRM fd): node-probe finds GPU processes by these open files.
    let pod = "amd-job";
    c.tb.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {pod}, namespace: {wl}}}
spec:
  nodeName: {node}
  hostNetwork: true
  automountServiceAccountToken: false
  terminationGracePeriodSeconds: 0
  containers:
  - name: main
    image: {image}
    imagePullPolicy: Never
    command: [sh, -c, 'c="sleep 3600 3<>/dev/kfd"; n=4; for f in /dev/dri/renderD*; do c="$c $n<>$f"; n=$((n+1)); done; eval exec "$c"']
    resources: {{limits: {{{RESOURCE}: 2}}}}
"#,
        wl = c.wl,
        node = c.name(),
        image = node::BASE_IMAGE,
    ));
    c.wait_workload_running(pod);

    // The kubelet's assignment: two of the plugin's ids, each a GPU's PCI address (the plugin names a GPU by
    // its directory under /sys/module/amdgpu/drivers/pci:amdgpu, internal/pkg/amdgpu GetAMDGPUs).
    let ids = kubelet_ids(c, pod);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let bdfs: Vec<&str> = tree.gpus.iter().map(|g| g.bdf.as_str()).collect();
    assert!(
        ids.iter().all(|i| bdfs.contains(&i.as_str())),
        "{ids:?} not among {bdfs:?}"
    );

    // runc made the devices the plugin's Allocate named: /dev/kfd and exactly the given GPUs' DRM nodes.
    let by_bdf = |bdf: &str| tree.gpus.iter().find(|g| g.bdf == bdf).unwrap();
    let mut want_dri: Vec<String> = ids
        .iter()
        .flat_map(|i| {
            let g = by_bdf(i);
            [format!("card{}", g.card), format!("renderD{}", g.render)]
        })
        .collect();
    want_dri.sort();
    let ls =
        c.tb.kubectl(&["-n", &c.wl, "exec", pod, "--", "ls", "/dev/dri", "/dev/kfd"]);
    let mut got_dri: Vec<String> = ls
        .lines()
        .filter(|l| l.starts_with("card") || l.starts_with("renderD"))
        .map(str::to_string)
        .collect();
    got_dri.sort();
    assert_eq!(got_dri, want_dri, "the container's devices:\n{ls}");

    let l = c.image_launcher().await;
    // The probe's GPU indices of the tree's GPUs (AMD's follow the fake NVML's NVIDIA GPUs on this node).
    let h = l.ok("get_gpu_health", json!({"node_name": c.name()})).await;
    let index_of = |bdf: &str| -> u64 {
        let found: Vec<&Value> = h["report"]["gpus"]
            .as_array()
            .expect("gpus")
            .iter()
            .filter(|g| g["pci_bus_id"] == bdf)
            .collect();
        assert_eq!(found.len(), 1, "GPU {bdf} in get_gpu_health: {h:#}");
        assert_eq!(found[0]["name"], "AMD Instinct MI300X OAM", "{h:#}");
        assert_eq!(found[0]["verdict"], "healthy", "{h:#}");
        found[0]["index"].as_u64().expect("index")
    };
    let held: Vec<u64> = ids.iter().map(|i| index_of(i)).collect();
    let free: Vec<u64> = bdfs
        .iter()
        .filter(|b| !ids.iter().any(|i| i == *b))
        .map(|b| index_of(b))
        .collect();

    // get_pod_gpu_allocation: exact, the pod's two devices located at those GPUs, the others held by no one.
    let v = l
        .ok("get_pod_gpu_allocation", json!({"node_name": c.name()}))
        .await;
    assert_eq!(v["exact"], true, "{v:#}");
    assert_eq!(v["requested_by_resource"][RESOURCE], 2, "{v:#}");
    let job = v["assignment"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["name"] == pod))
        .unwrap_or_else(|| panic!("{pod} not in {v:#}"));
    assert_eq!(job["seen_by"], "both", "{job:#}");
    let located: Vec<(Value, Value, Value)> = job["containers"][0]["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| {
            (
                d["device_id"].clone(),
                d["gpu_index"].clone(),
                d["form"].clone(),
            )
        })
        .collect();
    let want: Vec<(Value, Value, Value)> = ids
        .iter()
        .zip(&held)
        .map(|(i, x)| (json!(i), json!(x), json!("pci_bus_id")))
        .collect();
    assert_eq!(located, want, "{job:#}");
    for g in v["report"]["gpus"].as_array().expect("report.gpus") {
        let Some(x) = g["index"].as_u64() else {
            continue;
        };
        let holders: Vec<&Value> = g["allocated_to"].as_array().into_iter().flatten().collect();
        if let Some(k) = held.iter().position(|h| *h == x) {
            assert!(
                holders.len() == 1
                    && holders[0]["pod"] == pod
                    && holders[0]["resource_name"] == RESOURCE
                    && holders[0]["device_id"] == ids[k].as_str(),
                "GPU {x} should be held by {pod} as {}: {g:#}",
                ids[k]
            );
        } else if free.contains(&x) {
            assert!(holders.is_empty(), "GPU {x} should be free: {g:#}");
        }
    }
    let text = mcp::text(
        &l.call("get_pod_gpu_allocation", json!({"node_name": c.name()}))
            .await,
    );
    for (i, x) in ids.iter().zip(&held) {
        assert!(
            text.contains(&format!("{RESOURCE} {i} -> GPU {x}")),
            "{RESOURCE} {i} -> GPU {x} not in:\n{text}"
        );
    }

    // get_gpu_processes: the workload's process (it holds the render nodes) on exactly its GPUs, owned by
    // the pod; the free GPUs run nothing.
    let p = l
        .ok("get_gpu_processes", json!({"node_name": c.name()}))
        .await;
    let pid = u64::from(c.node.container_pid(&c.wl, pod));
    let mut on: Vec<u64> = p["owners"]
        .as_array()
        .expect("owners")
        .iter()
        .filter(|o| o["pod"] == pod)
        .map(|o| {
            assert_eq!(
                (o["owner"].as_str(), o["pid"].as_u64()),
                (Some("pod"), Some(pid)),
                "{o:#}"
            );
            o["gpu"].as_u64().expect("gpu")
        })
        .collect();
    on.sort_unstable();
    let mut want_on = held.clone();
    want_on.sort_unstable();
    assert_eq!(on, want_on, "{p:#}");
    for g in p["report"]["gpus"].as_array().expect("report.gpus") {
        if g["index"].as_u64().is_some_and(|x| free.contains(&x)) {
            assert_eq!(
                g["processes"],
                json!([]),
                "a free GPU runs something: {g:#}"
            );
        }
    }
    l.stop().await;
    eprintln!(
        "amd: GPUs {held:?} held by {pod} ({ids:?}), {free:?} free, after {:?}",
        t0.elapsed()
    );

    c.tb.kubectl(&[
        "-n",
        &c.wl,
        "delete",
        "pod",
        pod,
        "--grace-period=0",
        "--force",
        "--wait=true",
    ]);
    let left = c.node.wait_no_tasks(Duration::from_secs(120));
    assert!(left.is_empty(), "containerd tasks left: {left:?}");
    drop(host);
    c.assert_no_probe_pods();
    eprintln!("amd: case done in {:?}", t0.elapsed());
}
