//! The real node under test: `tests/testbed/realnode.sh up DIR`, owned like the testbed (its stdin is ours;
//! closing it, or this process dying, tears the node down), and the images it imports.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::fake_nvml;
use crate::testbed::{Testbed, probe_dir, repo_root, sha256_file, testbed_bin};

/// The probe image, built by deploy/probe-image/build.sh from this tree's node-probe.
pub const PROBE_IMAGE: &str = "testbed.invalid/node-probe:test";
/// A plain Debian base, as a node has from other workloads (sh, coreutils, sleep..., no node-probe).
pub const BASE_IMAGE: &str = "docker.io/library/debian:bookworm";
/// A tenant's image named like the Debian base, from another registry; its tools leave [`PLANTED_MARK`].
pub const PLANTED_IMAGE: &str = "registry.example.com/library/debian:bookworm";
/// Where the planted image's tools write when they run in a hostPID probe pod: the node's
/// /var/lib/kubelet, which is `<node dir>/kubelet` here.
pub const PLANTED_MARK: &str = "kubelet/k8s-gpu-mcp-planted";
pub const NOSHELL_IMAGE: &str = "testbed.invalid/noshell:1";
pub const MUSL_IMAGE: &str = "testbed.invalid/musl:1";
pub const NOSLEEP_IMAGE: &str = "testbed.invalid/nosleep:1";
const PAUSE_IMAGE: &str = "testbed.invalid/pause:1";
/// glibc, sleep and the fake libnvidia-ml where the container toolkit injects the driver's.
pub const GPU_WORKLOAD_IMAGE: &str = "testbed.invalid/gpu-workload:1";
/// NVIDIA's DCGM image as the testbed has it (realnode.sh `images`): the Debian base with the fake dcgmi,
/// whose settings come from the node's `/run/fake-dcgmi.env` ([`RealNode::set_fake_dcgmi`]).
pub const DCGM_IMAGE: &str = "nvcr.io/nvidia/cloud-native/dcgm:4.6.0-1-testbed";

/// The GPU Operator's driver root on the node (its own /run: nothing else on the machine sees it).
pub const DRIVER_ROOT: &str = "/run/nvidia/driver";
/// Where the fake NVML lives on the node (the GPU Operator's driver root), and its settings beside it.
const NVML_DIR: &str = "/run/nvidia/driver/usr/lib/x86_64-linux-gnu";
/// The fake NVML on the node, which a GPU workload gets bound read-only as the container toolkit does.
pub const NODE_NVML_LIB: &str = "/run/nvidia/driver/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1";

pub struct Images {
    pub archives: Vec<PathBuf>,
    /// Copy delivery's build directory: node-probe-linux-amd64 (this tree's node-probe, stripped).
    pub bin_dir: PathBuf,
}

impl Images {
    /// The image archives (cached by realnode.sh outside the repo) plus the probe image of this tree.
    pub fn build(tb: &Testbed) -> Images {
        let cache = std::env::var_os("TESTBED_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
                    .join(".cache/k8s-gpu-mcp-testbed")
            })
            .join("images");
        let out = run_ok(
            Command::new("bash")
                .arg(repo_root().join("tests/testbed/realnode.sh"))
                .arg("images")
                .arg(&cache),
            "realnode.sh images",
        );
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let bin_dir = tb.dir.join("realnode-bins");
        std::fs::create_dir_all(&bin_dir).unwrap();
        let stripped = bin_dir.join("node-probe-linux-amd64");
        run_ok(
            Command::new("strip")
                .arg("-o")
                .arg(&stripped)
                .arg(probe_dir().join("node-probe")),
            "strip node-probe",
        );
        let probe_tar = tb.dir.join("probe-image.tar");
        run_ok(
            Command::new("bash")
                .arg(repo_root().join("deploy/probe-image/build.sh"))
                .args(["--tag", PROBE_IMAGE, "--probe-bin"])
                .arg(&stripped)
                .arg("--out")
                .arg(&probe_tar),
            "deploy/probe-image/build.sh",
        );
        // A GPU workload's image as the NVIDIA container toolkit leaves it: the driver's libnvidia-ml
        // injected into the container (here the fake one), which ephemeral mode loads through /proc/<pid>/root.
        let lib = fake_nvml::fake_lib().expect("the real node needs the fake NVML (a C compiler)");
        let workload_tar = tb.dir.join("gpu-workload-image.tar");
        let libc = std::fs::canonicalize("/lib/x86_64-linux-gnu/libc.so.6").unwrap();
        let ld = std::fs::canonicalize("/lib64/ld-linux-x86-64.so.2").unwrap();
        run_ok(
            Command::new("python3")
                .arg(repo_root().join("deploy/probe-image/mkimage.py"))
                .args(["--tag", GPU_WORKLOAD_IMAGE, "--out"])
                .arg(&workload_tar)
                .args([
                    "--symlink",
                    "bin:usr/bin",
                    "--symlink",
                    "lib:usr/lib",
                    "--symlink",
                    "lib64:usr/lib64",
                    "--file",
                    "/usr/bin/sleep:/usr/bin/sleep:0755",
                    "--symlink",
                    "usr/lib64/ld-linux-x86-64.so.2:/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                ])
                .arg("--file")
                .arg(format!(
                    "{}:/usr/lib/x86_64-linux-gnu/libc.so.6:0755",
                    libc.display()
                ))
                .arg("--file")
                .arg(format!(
                    "{}:/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2:0755",
                    ld.display()
                ))
                .arg("--file")
                .arg(format!(
                    "{}:/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1:0755",
                    lib.display()
                )),
            "mkimage gpu-workload",
        );
        let mut archives: Vec<PathBuf> = [
            "pause", "debian", "planted", "noshell", "musl", "nosleep", "dcgm",
        ]
        .iter()
        .map(|n| dir.join(format!("{n}.tar")))
        .collect();
        archives.push(probe_tar);
        archives.push(workload_tar);
        Images { archives, bin_dir }
    }
}

fn run_ok(cmd: &mut Command, what: &str) -> Output {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(out.status.success(), "{what} failed ({})", out.status);
    out
}

pub struct RealNode {
    pub name: String,
    /// The node's own cgroup root (in every hierarchy); also names its bridge (`tb` + the same suffix).
    pub cgroup_root: String,
    pub dir: PathBuf,
    ns_pid: String,
    sock: String,
    child: Mutex<Option<(Child, ChildStdin)>>,
}

impl RealNode {
    pub fn start(tb: &Testbed, images: &Images) -> RealNode {
        Self::start_with(tb, images, false)
    }

    /// `disk_pressure`: a node whose kubelet reports DiskPressure (and admits only critical pods).
    pub fn start_with(tb: &Testbed, images: &Images, disk_pressure: bool) -> RealNode {
        let lib = fake_nvml::fake_lib().expect("the real node needs the fake NVML (a C compiler)");
        let name = crate::testbed::unique(if disk_pressure { "real-dp" } else { "real" });
        let dir = tb.dir.join(&name);
        let archives: Vec<String> = images
            .archives
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let mut child = Command::new("bash")
            .arg(repo_root().join("tests/testbed/realnode.sh"))
            .arg("up")
            .arg(&dir)
            .env("TESTBED_DIR", &tb.dir)
            .env("TESTBED_BIN", testbed_bin())
            .env("REALNODE_NAME", &name)
            .env("REALNODE_IMAGES", archives.join(" "))
            .env("REALNODE_PAUSE_IMAGE", PAUSE_IMAGE)
            .env("REALNODE_FAKE_NVML", lib)
            // The harder case: `/` is a private mount (no systemd), so the probe must not ask for
            // mount propagation.
            .env("REALNODE_PRIVATE_ROOT", "1")
            .env(
                "REALNODE_DISK_PRESSURE",
                if disk_pressure { "1" } else { "0" },
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start tests/testbed/realnode.sh");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next().and_then(Result::ok).unwrap_or_default();
        assert!(
            ready.starts_with("realnode ready"),
            "realnode.sh did not come up (its log is above): {ready:?}"
        );
        let env = std::fs::read_to_string(dir.join("env")).expect("realnode env");
        let get = |k: &str| {
            env.lines()
                .find_map(|l| l.strip_prefix(&format!("{k}=")))
                .map(|v| v.trim_matches('\'').to_string())
                .unwrap_or_else(|| panic!("{k} missing in realnode env"))
        };
        RealNode {
            cgroup_root: get("REALNODE_CGROUP_ROOT"),
            name: get("REALNODE_NAME"),
            ns_pid: get("REALNODE_NS_PID"),
            sock: get("REALNODE_SOCK"),
            dir,
            child: Mutex::new(Some((child, stdin))),
        }
    }

    /// Restarts the node's kubelet with its flags and `flags` after them (none: as it started), returning once
    /// it serves device-plugin registration again. Pods keep running; the device plugin registers again by
    /// itself, the DRA plugin through the kubelet's plugin watcher.
    pub fn restart_kubelet(&self, flags: &[&str]) {
        let out = Command::new("bash")
            .arg(repo_root().join("tests/testbed/realnode.sh"))
            .arg("kubelet")
            .arg(&self.dir)
            .args(flags)
            .output()
            .expect("run realnode.sh kubelet");
        assert!(
            out.status.success(),
            "restart the kubelet with {flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The DRA plugin's device taints (tests/testbed/dra-plugin `-taints-file`): lines
    /// `<device> <key>[=<value>]:<effect>`; empty: none. The plugin republishes its slice within a second.
    pub fn set_dra_taints(&self, lines: &str) {
        std::fs::write(self.dir.join("dra-taints"), lines).expect("write dra-taints");
    }

    /// The fake dcgmi's settings in the DCGM test image (`FAKE_DCGMI_*` lines of shell assignments, see
    /// tests/fake-dcgm/dcgmi; fixtures are under /opt/fake-dcgmi in the image); empty: none.
    pub fn set_fake_dcgmi(&self, lines: &str) {
        std::fs::write(self.host_path("/run/fake-dcgmi.env"), lines).expect("write fake-dcgmi.env");
    }

    /// A path as the node sees it (its mount namespace, as `/proc/1/root` is for probe pods), from here.
    pub fn host_path(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.ns_pid)).join(path.trim_start_matches('/'))
    }

    /// `program` in the node's mount namespace, to spawn (a long-running node component such as a device
    /// plugin).
    pub fn ns_command(&self, program: &Path) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-F", "-t", &self.ns_pid, "-m", "--"])
            .arg(program);
        cmd
    }

    /// Unmounts `path` in the node's mount namespace. In its PID namespace too: util-linux's umount reads
    /// `/proc/self/mountinfo` for an overlay, and the node's /proc (`--mount-proc`) has no `self` for a
    /// process outside it ("umount failed: No such file or directory").
    pub fn umount(&self, path: &str, lazy: bool) -> Output {
        let mut cmd = Command::new("nsenter");
        cmd.args(["-t", &self.ns_pid, "-m", "-p", "--", "umount"]);
        if lazy {
            cmd.arg("-l");
        }
        cmd.arg(path).output().expect("run nsenter umount")
    }

    /// A command inside the node's mount namespace.
    pub fn in_ns(&self, args: &[&str]) -> Output {
        Command::new("nsenter")
            .args(["-F", "-t", &self.ns_pid, "-m", "--"])
            .args(args)
            .output()
            .expect("run nsenter")
    }

    /// The kubelet's PodResources answer, read on the node by tests/testbed/podresources-list (as JSON
    /// with the proto's field names): List, or Get of `(namespace, pod)`.
    pub fn pod_resources(&self, pod: Option<(&str, &str)>) -> serde_json::Value {
        // build.sh names the tool by its source's digest (realnode.sh's `up` built it).
        let src = repo_root().join("tests/testbed/podresources-list/main.go");
        let bin = testbed_bin().join(format!("podresources-list-{}", &sha256_file(&src)[..16]));
        let bin = bin.to_string_lossy();
        let mut argv = vec![bin.as_ref()];
        if let Some((ns, name)) = pod {
            argv.extend(["-namespace", ns, "-pod", name]);
        }
        let out = self.in_ns(&argv);
        assert!(
            out.status.success(),
            "podresources-list {argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "podresources-list printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    pub fn ctr(&self, args: &[&str]) -> String {
        let mut argv = vec!["ctr", "-a", &self.sock, "-n", "k8s.io"];
        argv.extend_from_slice(args);
        let out = self.in_ns(&argv);
        assert!(
            out.status.success(),
            "ctr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The ids of containerd's tasks on the node.
    pub fn tasks(&self) -> Vec<String> {
        self.ctr(&["tasks", "ls", "-q"])
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect()
    }

    pub fn wait_no_tasks(&self, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let t = self.tasks();
            if t.is_empty() || Instant::now() > deadline {
                return t;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// The host PID of a workload pod's first container, from containerd (what NVML reports).
    pub fn container_pid(&self, ns: &str, pod: &str) -> u32 {
        let id = Command::new("kubectl")
            .args(["get", "pod", "-n", ns, pod, "-o"])
            .arg("jsonpath={.status.containerStatuses[0].containerID}")
            .env("KUBECONFIG", self.admin_kubeconfig())
            .output()
            .expect("kubectl");
        let id = String::from_utf8_lossy(&id.stdout);
        let id = id.trim().trim_start_matches("containerd://").to_string();
        assert!(!id.is_empty(), "no container id for {ns}/{pod}");
        let list = self.ctr(&["tasks", "ls"]);
        list.lines()
            .find_map(|l| {
                let mut f = l.split_whitespace();
                (f.next() == Some(id.as_str()))
                    .then(|| f.next().and_then(|p| p.parse().ok()))
                    .flatten()
            })
            .unwrap_or_else(|| panic!("task {id} not in:\n{list}"))
    }

    fn admin_kubeconfig(&self) -> PathBuf {
        self.dir
            .parent()
            .expect("node dir is in the testbed dir")
            .join("admin.kubeconfig")
    }

    /// A fake NVML setting (read from a file beside the library, since the probe pod's environment is not
    /// ours to set).
    pub fn set_fake_nvml(&self, name: &str, value: &str) {
        let out = self.in_ns(&[
            "sh",
            "-c",
            &format!("printf '%s\\n' '{value}' > {NVML_DIR}/{name}"),
        ]);
        assert!(out.status.success(), "set {name}: {out:?}");
    }

    pub fn clear_fake_nvml(&self, name: &str) {
        let _ = self.in_ns(&["rm", "-f", &format!("{NVML_DIR}/{name}")]);
    }

    /// Tear the node down (also on drop) and wait for the script to finish.
    pub fn stop(&self) {
        let taken = self.child.lock().unwrap().take();
        if let Some((mut child, stdin)) = taken {
            drop(stdin);
            let deadline = Instant::now() + Duration::from_secs(90);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RealNode {
    fn drop(&mut self) {
        self.stop();
    }
}

impl RealNode {
    /// What a stopped node may not leave behind: its directory, its cgroups, its bridge, its processes.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        if self.dir.exists() {
            left.push(format!("directory {}", self.dir.display()));
        }
        if let Ok(hiers) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in hiers.flatten() {
                let d = h.path().join(&self.cgroup_root);
                if d.exists() {
                    left.push(format!("cgroup {}", d.display()));
                }
            }
        }
        let bridge = self.cgroup_root.replace("testbed-", "tb");
        if Path::new("/sys/class/net").join(&bridge).exists() {
            left.push(format!("bridge {bridge}"));
        }
        let dir = self.dir.to_string_lossy().into_owned();
        // Unreadable, /proc would report no process left behind: a check that could not fail.
        for p in std::fs::read_dir("/proc").expect("/proc").flatten() {
            if let Ok(cmd) = std::fs::read(p.path().join("cmdline"))
                && String::from_utf8_lossy(&cmd).contains(&dir)
            {
                left.push(format!("process {}", p.file_name().to_string_lossy()));
            }
        }
        left
    }
}
