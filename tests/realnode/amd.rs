//! AMD's real device plugin on the real node: ROCm/k8s-device-plugin v1.31.0.7 (built by
//! tests/testbed/amd-device-plugin.sh) reads a fake amdgpu host tree (tests/support/amdgpu_tree.rs), registers
//! `amd.com/gpu` with the real kubelet and answers its Allocate; a workload pod gets two of the GPUs, and the
//! launcher must attribute exactly those (by index and PCI address) to the pod, as the kubelet reports them.
//! Twice: naming strategy `single` (`amd.com/gpu`, one per GPU) and `mixed` on a CPX host (`amd.com/cpx_nps4`,
//! one per compute partition, most named `amdgpu_xcp_<n>`).
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
    fn install(c: &'a Ctx, tree: &Node, args: &[&str], plugin_bin: PathBuf) -> AmdHost<'a> {
        // A directory of this install's own: a second case's overlays never name the first one's tree.
        let dir = c.node.dir.join(crate::testbed::unique("amd-host"));
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
        // Every DRM node the tree's GPUs and partitions have (`<device>/drm/card<N>`, `renderD<N>`).
        let mut nodes = vec![dev.join("kfd")];
        let mut drm_dirs: Vec<PathBuf> = tree
            .gpus
            .iter()
            .map(|g| dir.join(g.dir()).join("drm"))
            .collect();
        drm_dirs.extend(
            std::fs::read_dir(dir.join("sys/devices/platform"))
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().join("drm")),
        );
        for d in drm_dirs {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                nodes.push(dev.join("dri").join(e.file_name()));
            }
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
            .args(args)
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

    /// What the plugin sees of the fake host from the node's namespace (for a failure's message).
    fn view(&self) -> String {
        let out = self.c.node.in_ns(&[
            "sh",
            "-c",
            "ls /sys/module/amdgpu/drivers/pci:amdgpu/ /sys/bus/pci/drivers/amdgpu/ 2>&1 | head -20; \
             grep overlay /proc/1/mountinfo",
        ]);
        String::from_utf8_lossy(&out.stdout).into_owned()
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
            let out = self.c.node.umount(m, false);
            if !out.status.success() {
                eprintln!(
                    "amd: umount {m}: {}; detaching it",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                // Still busy (a container that just ended): detach it; the kernel frees it once unused.
                let out = self.c.node.umount(m, true);
                if !out.status.success() {
                    eprintln!(
                        "amd: umount -l {m}: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    );
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The plugin's binary (built once, cached by version), or None where no source of it is reachable. The
/// source comes from git (the module proxy does not serve four-number tags; see the script), and a machine
/// that reaches only the package registries has none: the cases then say they did not run, even under CI,
/// because what is missing is a test dependency outside the registries, not a part of the product.
fn build_plugin() -> Option<PathBuf> {
    let out = Command::new("bash")
        .arg(repo_root().join("tests/testbed/amd-device-plugin.sh"))
        .env("TESTBED_BIN", testbed_bin())
        .stderr(Stdio::inherit())
        .output()
        .expect("run tests/testbed/amd-device-plugin.sh");
    if out.status.code() == Some(3) {
        eprintln!(
            "NOT RUN: AMD's device plugin cases: no source of ROCm/k8s-device-plugin is reachable from this \
             machine (tests/testbed/amd-device-plugin.sh; AMD_DEVICE_PLUGIN_GIT names a clone)"
        );
        return None;
    }
    assert!(
        out.status.success(),
        "tests/testbed/amd-device-plugin.sh failed (its log is above)"
    );
    Some(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// The node's allocatable `resource` (empty while the plugin has not registered it).
fn allocatable(c: &Ctx, resource: &str) -> String {
    let path = format!(
        "jsonpath={{.status.allocatable.{}}}",
        resource.replace('.', "\\.")
    );
    c.tb.kubectl(&["get", "node", c.name(), "-o", &path])
        .trim()
        .to_string()
}

/// The device ids the kubelet reports for `pod`'s `resource`, from its PodResources socket.
fn kubelet_ids(c: &Ctx, pod: &str, resource: &str) -> Vec<String> {
    let v = c.node.pod_resources(Some((&c.wl, pod)));
    let mut ids: Vec<String> = v["pod_resources"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|ct| ct["devices"].as_array().into_iter().flatten())
        .filter(|d| d["resource_name"] == resource)
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
    // Naming strategy `single` (the default): one `amd.com/gpu` per GPU, named by its PCI address.
    let tree = Node::new((0..4).map(Gpu::mi300x).collect());
    plugin_pod_attributed(c, &tree, &[], RESOURCE).await;
}

pub async fn amds_device_plugin_in_mixed_mode_gives_a_pod_cpx_partitions_of_their_gpus(c: &Ctx) {
    // Naming strategy `mixed` on eight MI300X in CPX/NPS4: one `amd.com/cpx_nps4` per compute partition, the
    // first of a GPU named by its PCI address and the others by their platform device (`amdgpu_xcp_<n>`).
    let tree = Node::mi300x_cpx();
    plugin_pod_attributed(
        c,
        &tree,
        &["-resource_naming_strategy=mixed"],
        "amd.com/cpx_nps4",
    )
    .await;
}

/// One of the plugin's devices, read from the fake host as the plugin reads it: its DRM nodes and the PCI
/// address of its GPU (a partition's render node is a KFD node's `drm_render_minor`, whose `unique_id` is its
/// GPU's).
fn device_of(dir: &Path, tree: &Node, id: &str) -> (String, Vec<String>) {
    let drm_dir = if id.starts_with("amdgpu_xcp_") {
        dir.join("sys/devices/platform").join(id).join("drm")
    } else {
        let g = tree.gpus.iter().find(|g| g.bdf == id);
        dir.join(
            g.unwrap_or_else(|| panic!("{id} is no GPU of the tree"))
                .dir(),
        )
        .join("drm")
    };
    let mut drm: Vec<String> = std::fs::read_dir(&drm_dir)
        .unwrap_or_else(|e| panic!("{}: {e}", drm_dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    drm.sort();
    let render = drm
        .iter()
        .find_map(|n| n.strip_prefix("renderD"))
        .unwrap_or_else(|| panic!("{id} has no render node"))
        .to_string();
    let kfd = dir.join("sys/class/kfd/kfd/topology/nodes");
    let unique_id = std::fs::read_dir(&kfd)
        .expect("KFD nodes")
        .flatten()
        .filter_map(|n| std::fs::read_to_string(n.path().join("properties")).ok())
        .find(|p| p.lines().any(|l| l == format!("drm_render_minor {render}")))
        .and_then(|p| {
            p.lines()
                .find_map(|l| l.strip_prefix("unique_id ").map(str::to_string))
        })
        .unwrap_or_else(|| panic!("no KFD node has render minor {render}"));
    let g = tree
        .gpus
        .iter()
        .find(|g| g.unique_id.to_string() == unique_id)
        .unwrap_or_else(|| panic!("no GPU has unique_id {unique_id}"));
    (g.bdf.clone(), drm)
}

/// AMD's plugin (with `args`) on `tree`: it registers `resource` with one device per compute partition, a
/// pod gets two, and the launcher attributes exactly those to the pod, at their GPUs.
async fn plugin_pod_attributed(c: &Ctx, tree: &Node, args: &[&str], resource: &str) {
    let Some(plugin_bin) = build_plugin() else {
        return;
    };
    let t0 = Instant::now();
    let host = AmdHost::install(c, tree, args, plugin_bin);
    eprintln!("amd: fake host and plugin started in {:?}", t0.elapsed());

    let count = (tree.gpus.len() as u32 * tree.partitions).to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while allocatable(c, resource) != count {
        assert!(
            Instant::now() < deadline,
            "the node's allocatable {resource} is {:?}, not {count}; the plugin's log:\n{}\nthe node's view:\n{}",
            allocatable(c, resource),
            host.plugin_log(),
            host.view()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("amd: {resource} allocatable after {:?}", t0.elapsed());

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
    resources: {{limits: {{{resource}: 2}}}}
"#,
        wl = c.wl,
        node = c.name(),
        image = node::BASE_IMAGE,
    ));
    c.wait_workload_running(pod);

    // The kubelet's assignment: two of the plugin's ids (internal/pkg/amdgpu GetAMDGPUs names a GPU by its
    // directory under /sys/module/amdgpu/drivers/pci:amdgpu, a partition by its amdgpu_xcp_<n>).
    let ids = kubelet_ids(c, pod, resource);
    assert_eq!(ids.len(), 2, "{ids:?}");
    let devices: Vec<(String, Vec<String>)> =
        ids.iter().map(|i| device_of(&host.dir, tree, i)).collect();

    // runc made the devices the plugin's Allocate named: /dev/kfd and exactly the given devices' DRM nodes.
    let mut want_dri: Vec<String> = devices.iter().flat_map(|d| d.1.clone()).collect();
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
    assert!(ls.contains("/dev/kfd"), "{ls}");

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
    let at: Vec<u64> = devices.iter().map(|d| index_of(&d.0)).collect();
    let mut held = at.clone();
    held.sort_unstable();
    held.dedup();
    let free: Vec<u64> = tree
        .gpus
        .iter()
        .map(|g| index_of(&g.bdf))
        .filter(|x| !held.contains(x))
        .collect();

    // get_pod_gpu_allocation: exact, the pod's two devices located at their GPUs, the others held by no one.
    let v = l
        .ok("get_pod_gpu_allocation", json!({"node_name": c.name()}))
        .await;
    assert_eq!(v["exact"], true, "{v:#}");
    assert_eq!(v["requested_by_resource"][resource], 2, "{v:#}");
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
        .zip(&at)
        .map(|(i, x)| {
            let form = if i.starts_with("amdgpu_xcp_") {
                "amd_partition"
            } else {
                "pci_bus_id"
            };
            (json!(i), json!(x), json!(form))
        })
        .collect();
    // The kubelet's order, not ours: compared as sets.
    let (mut located, mut want) = (located, want);
    located.sort_by_key(|d| d.0.to_string());
    want.sort_by_key(|d| d.0.to_string());
    assert_eq!(located, want, "{job:#}");
    for g in v["report"]["gpus"].as_array().expect("report.gpus") {
        let Some(x) = g["index"].as_u64() else {
            continue;
        };
        let mut holders: Vec<String> = g["allocated_to"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|h| {
                assert!(
                    h["pod"] == pod && h["resource_name"] == resource,
                    "GPU {x} held by another: {g:#}"
                );
                h["device_id"].as_str().unwrap_or_default().to_string()
            })
            .collect();
        holders.sort();
        let mut want: Vec<String> = ids
            .iter()
            .zip(&at)
            .filter(|(_, a)| **a == x)
            .map(|(i, _)| i.clone())
            .collect();
        want.sort();
        if held.contains(&x) || free.contains(&x) {
            assert_eq!(holders, want, "GPU {x}'s holders: {g:#}");
        }
    }
    let text = mcp::text(
        &l.call("get_pod_gpu_allocation", json!({"node_name": c.name()}))
            .await,
    );
    for (i, x) in ids.iter().zip(&at) {
        assert!(
            text.contains(&format!("{resource} {i} -> GPU {x}")),
            "{resource} {i} -> GPU {x} not in:\n{text}"
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
    on.dedup();
    assert_eq!(on, held, "{p:#}");
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
        "amd: {resource} {ids:?} at GPUs {at:?} held by {pod}, {free:?} free, after {:?}",
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
    // Undone: no overlay of a fake host is left in the node's namespace (a later case would stack on it).
    let mounts = c.node.in_ns(&["cat", "/proc/1/mountinfo"]);
    let mounts = String::from_utf8_lossy(&mounts.stdout);
    assert!(
        mounts.contains(" / ") && !mounts.contains("amd-host"),
        "the fake host's overlays are still mounted:\n{mounts}"
    );
    c.assert_no_probe_pods();
    eprintln!("amd: case done in {:?}", t0.elapsed());
}
