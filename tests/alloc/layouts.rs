//! node-probe reading a node the way a probe pod does: through `/proc/<pid>/root` of a process living in
//! a host tree, from a root of its own (a private mount namespace) whose `/run` and `/srv` hold decoys at
//! the paths the host's absolute links name. A reader that lets an absolute link resolve in its own root
//! reads the decoy (or nothing) and the test fails. One host tree per platform layout, each from its public
//! source (../shared/reference/dra-and-hosts.md part 2, the keys [Sn] below).

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use super::*;

const CLAIM: &str = "7e1d2c3b-4a5f-4e6d-8c7b-9a0f1e2d3c4b";
const DECOY: &str = "dec0dec0-0000-4000-8000-00000000dec0";

/// A platform's root-level links, as its own packages make them.
struct Layout {
    name: &'static str,
    source: &'static str,
    /// `/var/run`'s target.
    var_run: &'static str,
    /// `/var/lib/kubelet`'s target, where the kubelet root was moved to a data disk.
    kubelet: Option<&'static str>,
    /// Merged `/usr`: (link, target) pairs.
    usr: &'static [(&'static str, &'static str)],
}

const UBUNTU_USR: &[(&str, &str)] = &[
    ("bin", "usr/bin"),
    ("lib", "usr/lib"),
    ("lib64", "usr/lib64"),
];

const LAYOUTS: &[Layout] = &[
    Layout {
        name: "Ubuntu 22.04 / 24.04",
        source: "[S29] debootstrap merged-usr `ln -s usr/$dir`; [S30] base-files postinst `migrate_directory /var/run /run`",
        var_run: "/run",
        kubelet: None,
        usr: UBUNTU_USR,
    },
    Layout {
        name: "RHEL 9 / UBI 9",
        source: "[S31] EL filesystem.spec: `ln -snf ../run var/run`, usr-merged relative links",
        var_run: "../run",
        kubelet: None,
        usr: UBUNTU_USR,
    },
    Layout {
        name: "Amazon Linux 2023",
        source: "[S31] Fedora-derived filesystem package (not confirmed from AL2023's own sources); [S37] its local disks are bind mounts, not links",
        var_run: "../run",
        kubelet: None,
        usr: UBUNTU_USR,
    },
    Layout {
        name: "Bottlerocket",
        source: "[S32] filesystem.spec `./usr/bin` links, /usr -> ./x86_64-bottlerocket-linux-gnu/sys-root/usr; systemd patch 9001 `L+ /var/run - - - - /run`",
        var_run: "/run",
        kubelet: None,
        usr: &[
            ("usr", "./x86_64-bottlerocket-linux-gnu/sys-root/usr"),
            ("bin", "./usr/bin"),
            ("lib", "./x86_64-bottlerocket-linux-gnu/sys-root/usr/lib"),
        ],
    },
    Layout {
        name: "COS",
        source: "[S38] /var from the stateful partition; its /var/run link is not in the sources read: systemd's default `L /var/run - - - - ../run` [S36]",
        var_run: "../run",
        kubelet: None,
        usr: &[],
    },
    Layout {
        name: "Talos",
        source: "[S33] siderolabs/pkgs fhs: bin -> usr/bin, lib -> usr/lib; [S34] machined makes /var/run -> /run on EPHEMERAL",
        var_run: "/run",
        kubelet: None,
        usr: &[("bin", "usr/bin"), ("lib", "usr/lib")],
    },
    Layout {
        name: "a kubelet root moved to a data disk by a link",
        source: "custom nodes ([S9] --root-dir moves pods/, plugins_registry/ and pod-resources/ together)",
        var_run: "/run",
        kubelet: Some("/srv/kubelet"),
        usr: UBUNTU_USR,
    },
];

/// A child whose root is `tree` (chroot, then waits for its signal): its `/proc/<pid>/root` is the host
/// root a probe pod would see. Only async-signal-safe calls run between fork and the wait.
struct Living(libc::pid_t);

impl Living {
    fn in_tree(tree: &Path) -> Living {
        let dir = std::ffi::CString::new(tree.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: the child calls only chroot, chdir, pause and _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            unsafe {
                if libc::chroot(dir.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0 {
                    libc::_exit(1);
                }
                loop {
                    libc::pause();
                }
            }
        }
        // The chroot has happened once the process's root is no longer ours.
        let root = format!("/proc/{pid}/root");
        for _ in 0..500 {
            if std::fs::read_link(&root).is_ok_and(|r| r == Path::new("/")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Living(pid)
    }
}

impl Drop for Living {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

fn spec(uid: &str, dev: &str) -> String {
    format!(
        "cdiVersion: 0.5.0\nkind: k8s.gpu.nvidia.com/claim\ndevices:\n- name: {uid}-{dev}\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n"
    )
}

/// A host tree of `l`'s layout: its links, the kubelet's socket (served) and plugin registry under the
/// kubelet root, NVIDIA's claim spec under `/var/run/cdi` as the driver's chart puts it, a pod's logs.
fn host_tree(l: &Layout) -> (HostRoot, Served) {
    let host = HostRoot::short("ly");
    let r = host.path();
    for dir in [
        "run",
        "var/lib",
        "var/log/pods",
        "var/log/containers",
        "srv",
        "usr/bin",
        "usr/lib",
    ] {
        std::fs::create_dir_all(r.join(dir)).unwrap();
    }
    for (link, target) in l.usr {
        if *link == "usr" {
            let real = r.join(target.trim_start_matches("./"));
            std::fs::create_dir_all(real.join("bin")).unwrap();
            std::fs::create_dir_all(real.join("lib")).unwrap();
            std::fs::remove_dir_all(r.join("usr")).unwrap();
        }
        symlink(target, r.join(link)).unwrap();
    }
    symlink(l.var_run, r.join("var/run")).unwrap();
    let kubelet_dir = match l.kubelet {
        Some(t) => {
            std::fs::create_dir_all(r.join(t.trim_start_matches('/'))).unwrap();
            symlink(t, r.join("var/lib/kubelet")).unwrap();
            r.join(t.trim_start_matches('/'))
        }
        None => r.join("var/lib/kubelet"),
    };
    let reg = kubelet_dir.join("plugins_registry");
    std::fs::create_dir_all(&reg).unwrap();
    std::mem::forget(
        std::os::unix::net::UnixListener::bind(reg.join("gpu.nvidia.com-reg.sock")).unwrap(),
    );
    std::fs::create_dir_all(r.join("run/cdi")).unwrap();
    std::fs::write(
        r.join(format!("run/cdi/k8s.gpu.nvidia.com-claim_{CLAIM}.yaml")),
        spec(CLAIM, "gpu-1"),
    )
    .unwrap();
    host.container_logs("ml", "train-0", UID_TRAIN, "trainer", CID_TRAIN, NOW - 60.0);
    let served = serve_at(
        kubelet_dir.join("pod-resources/kubelet.sock"),
        Kubelet {
            pods: vec![pod(
                "ml",
                "train-0",
                &[("trainer", "example.com/none", &[])],
            )],
            allocatable: Some(vec![]),
        },
    );
    (host, served)
}

/// node-probe `allocation` in a private mount namespace whose own `/run` and `/srv` are tmpfs holding
/// decoys, reading the host through `/proc/<pid>/root`.
fn probe_from_own_root(host_root: &str) -> Value {
    let bin = env!("CARGO_BIN_EXE_node-probe");
    let setup = format!(
        "set -e; mount -t tmpfs decoy /run; mount -t tmpfs decoy /srv; \
         mkdir -p /run/cdi /srv/kubelet/plugins_registry; \
         printf '%s' \"$DECOY_SPEC\" > /run/cdi/k8s.gpu.nvidia.com-claim_{DECOY}.yaml; \
         exec \"$0\" \"$@\""
    );
    let out = Command::new("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &setup,
            bin,
        ])
        .args([
            "--simulate",
            "dgx-h100-healthy",
            "--host-root",
            host_root,
            "allocation",
        ])
        .env("DECOY_SPEC", spec(DECOY, "gpu-2"))
        .output()
        .unwrap();
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    doc["allocation"].clone()
}

#[test]
fn every_reader_resolves_inside_the_host_root_in_each_layout() {
    if unsafe { libc::geteuid() } != 0 {
        return super::gate::skip("needs root: mount namespaces and chroot");
    }
    for l in LAYOUTS {
        let (host, _kubelet) = host_tree(l);
        let living = Living::in_tree(host.path());
        let root = format!("/proc/{}/root", living.0);
        let r = probe_from_own_root(&root);
        let at = format!("{} ({})", l.name, l.source);
        // The kubelet's socket under its (possibly moved) root: answered.
        assert_eq!(r["exact"], true, "{at}: {r}");
        // The plugin registry under the same root.
        assert_eq!(
            r["dra"]["registered"],
            serde_json::json!(["gpu.nvidia.com"]),
            "{at}: {r}"
        );
        // NVIDIA's claim spec in /var/run/cdi, whatever /var/run links to: the host's, not the decoy.
        let claims: Vec<&str> = r["dra"]["unreported_claims"]
            .as_array()
            .unwrap_or_else(|| panic!("{at}: {r}"))
            .iter()
            .filter_map(|c| c["claim_uid"].as_str())
            .collect();
        assert!(claims.contains(&CLAIM), "{at}: {r}");
        assert!(
            !claims.contains(&DECOY),
            "{at}: read the probe's own /run: {r}"
        );
    }
}
