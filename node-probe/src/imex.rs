//! The node's IMEX daemon, when one runs: found by its process (`proc/*/comm` = `nvidia-imex`), its
//! command service's address read from the config its command line names, and asked with the driver's
//! own `nvidia-imex-ctl` (a host binary from the driver roots, never one from a container). `-q` gives the
//! daemon's state; `-N -j` the domain's, which needs the daemon's config file (IMEX guide: "-N ... Requires
//! config file"): that is readable only for the host's own service, not for a daemon in a ComputeDomain's
//! pod, whose domain the ComputeDomain's status reports instead. Facts only; the library judges them.

use std::io::Read;
use std::net::IpAddr;
use std::path::{Component, Path};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use gpu_diag::facts::{
    FieldError, FieldErrorKind, ImexDomainFacts, ImexFacts, Reading, daemon_state_from_ctl,
};

use crate::driver_roots::{Program, Search};
use crate::host::read_text_max;

const DAEMON: &str = "nvidia-imex";
const CTL: &str = "nvidia-imex-ctl";
/// The daemon's default config (IMEX guide, "-c ... Default value is /etc/nvidia-imex/config.cfg").
const DEFAULT_CONFIG: &str = "/etc/nvidia-imex/config.cfg";
/// The command service's default port (IMEX guide, IMEX_CMD_PORT; NVIDIA's DRA driver sets the same).
const DEFAULT_CMD_PORT: u16 = 50005;
/// A daemon that does not answer in this long is reported as such: a probe answers within its deadline.
const CTL_TIMEOUT: Duration = Duration::from_secs(5);
/// The domain JSON of a few racks is tens of KiB.
const MAX_OUTPUT: u64 = 1 << 20;

/// The IMEX daemon on the host under `root`, or `None` when none runs (the common case: IMEX runs only
/// for a multi-node NVLink job).
pub fn read(root: &Path, search: &Search) -> Option<ImexFacts> {
    let pid = find_daemon(root)?;
    let proc_dir = root.join("proc").join(pid.to_string());
    let config = config_path(&proc_dir);
    let mut facts = ImexFacts {
        config: config.clone(),
        ..ImexFacts::default()
    };
    // The config is read through the daemon's own root (`proc/<pid>/root`): the host's for the service,
    // its pod's for a ComputeDomain daemon. Only three keys of it are used, each validated.
    let cmd = match read_text_max(
        &crate::host::root::path(&proc_dir.join("root"), &config),
        64 * 1024,
    ) {
        Ok(text) => command_service(&text),
        Err(e) => Err(FieldError::with_message(
            e.error,
            format!(
                "the daemon's config {config}: {}",
                e.message.unwrap_or_default()
            ),
        )),
    };
    let (ip, port) = match cmd {
        Ok(a) => a,
        Err(e) => {
            facts.daemon = Reading::Err(e.clone());
            facts.domain = Reading::Err(e);
            return Some(facts);
        }
    };
    facts.command_service = match ip {
        IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        IpAddr::V4(v4) => format!("{v4}:{port}"),
    };
    let arch = std::env::consts::ARCH;
    let Some(ctl) = search.program(CTL, arch) else {
        let e = FieldError::with_message(
            FieldErrorKind::NotFound,
            format!(
                "no {}: the driver's IMEX package is not installed on the host",
                search.described(CTL, arch, false)
            ),
        );
        facts.daemon = Reading::Err(e.clone());
        facts.domain = Reading::Err(e);
        return Some(facts);
    };
    let (ip_s, port_s) = (ip.to_string(), port.to_string());
    facts.daemon = run(&ctl, &["-i", &ip_s, &port_s, "-q"])
        .and_then(|out| {
            daemon_state_from_ctl(&out)
                .map_err(|m| FieldError::with_message(FieldErrorKind::Unknown, m))
        })
        .into();
    facts.domain = if is_host_service(root, &proc_dir, &config) {
        run(&ctl, &["-c", &config, "-N", "-j"])
            .and_then(|out| {
                ImexDomainFacts::from_ctl_json(&out)
                    .map_err(|m| FieldError::with_message(FieldErrorKind::Unknown, m))
            })
            .into()
    } else {
        Reading::Err(FieldError::with_message(
            FieldErrorKind::NotSupported,
            "the daemon runs in a pod (a ComputeDomain's): its domain view needs the pod's own config; the \
             ComputeDomain's status reports the domain",
        ))
    };
    Some(facts)
}

/// The lowest pid whose `comm` is `nvidia-imex`.
fn find_daemon(root: &Path) -> Option<u32> {
    let mut pids: Vec<u32> = std::fs::read_dir(root.join("proc"))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .collect();
    pids.sort_unstable();
    pids.into_iter().find(|pid| {
        read_text_max(&root.join(format!("proc/{pid}/comm")), 64)
            .is_ok_and(|c| c.trim_end() == DAEMON)
    })
}

/// The config the daemon's command line names with `-c`, else the default. A path with `..` or not
/// absolute is not followed (the command line is the process owner's to write).
fn config_path(proc_dir: &Path) -> String {
    let Ok(cmdline) = read_text_max(&proc_dir.join("cmdline"), 16 * 1024) else {
        return DEFAULT_CONFIG.into();
    };
    let args: Vec<&str> = cmdline.split('\0').collect();
    let given = args
        .windows(2)
        .find(|w| w[0] == "-c")
        .map(|w| w[1])
        .filter(|p| {
            let p = Path::new(p);
            p.is_absolute()
                && p.components().all(|c| !matches!(c, Component::ParentDir))
                && p.as_os_str().len() <= 256
                && !p.to_string_lossy().chars().any(char::is_control)
        });
    given.unwrap_or(DEFAULT_CONFIG).to_string()
}

/// `IMEX_CMD_ENABLED`, `IMEX_CMD_BIND_INTERFACE_IP`, `IMEX_CMD_PORT` of a daemon config (KEY=VALUE lines).
fn command_service(config: &str) -> Result<(IpAddr, u16), FieldError> {
    let value = |key: &str| {
        config
            .lines()
            .filter_map(|l| l.trim().split_once('='))
            .filter(|(k, _)| k.trim() == key)
            .map(|(_, v)| v.trim().to_string())
            .next_back()
            .unwrap_or_default()
    };
    if value("IMEX_CMD_ENABLED") != "1" {
        return Err(FieldError::with_message(
            FieldErrorKind::NotSupported,
            "the daemon's command service is off (IMEX_CMD_ENABLED is not 1 in its config)",
        ));
    }
    let bad = |what: &str, v: &str| {
        FieldError::with_message(
            FieldErrorKind::Unknown,
            format!(
                "the daemon's config has an unusable {what}: {:?}",
                v.chars().take(64).collect::<String>()
            ),
        )
    };
    let ip = match value("IMEX_CMD_BIND_INTERFACE_IP") {
        v if v.is_empty() => IpAddr::from([127, 0, 0, 1]),
        v => v
            .parse::<IpAddr>()
            .map_err(|_| bad("IMEX_CMD_BIND_INTERFACE_IP", &v))?,
    };
    let port = match value("IMEX_CMD_PORT") {
        v if v.is_empty() => DEFAULT_CMD_PORT,
        v => v
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("IMEX_CMD_PORT", &v))?,
    };
    Ok((ip, port))
}

/// Whether the daemon is the host's own service: it shares the mount namespace of the host's init
/// (`proc/1`, the probe runs with the host's pids) and its config is a root-owned file of the host. Only
/// then is its config handed to the driver's tool (`-c`): the tool reads the files a config names and may
/// echo them in its errors, and a process in a pod (whose `proc/<pid>/root` also reads `/`) is a tenant's
/// to name.
fn is_host_service(root: &Path, proc_dir: &Path, config: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let mnt = |dir: &Path| std::fs::read_link(dir.join("ns/mnt")).ok();
    let shared = matches!((mnt(proc_dir), mnt(&root.join("proc/1"))), (Some(a), Some(b)) if a == b);
    shared
        && std::fs::symlink_metadata(crate::host::root::path(root, config))
            .is_ok_and(|m| m.is_file() && m.uid() == 0)
}

/// Run the driver's tool with `args`, bounded in time and output; its stdout, or what went wrong.
fn run(tool: &Program, args: &[&str]) -> Result<String, FieldError> {
    let mut cmd = Command::new(&tool.program);
    cmd.args(args)
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(l) = &tool.ld_library_path {
        cmd.env("LD_LIBRARY_PATH", l);
    }
    if let Some(dir) = tool.chroot.clone() {
        crate::hostexec::chroot(&mut cmd, dir);
    }
    let shown = format!("{CTL} {}", args.join(" "));
    let mut child = cmd.spawn().map_err(|e| {
        FieldError::with_message(FieldErrorKind::Unknown, format!("{shown}: cannot run: {e}"))
    })?;
    // Read on threads: a full pipe would block the tool before it exits.
    let pipe = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(MAX_OUTPUT).read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = pipe(child.stdout.take().map(|s| Box::new(s) as _));
    let err = pipe(child.stderr.take().map(|s| Box::new(s) as _));
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if started.elapsed() < CTL_TIMEOUT => {
                std::thread::sleep(Duration::from_millis(20))
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    match status {
        None => Err(FieldError::with_message(
            FieldErrorKind::Timeout,
            format!(
                "{shown}: no answer in {} s (the daemon hangs?)",
                CTL_TIMEOUT.as_secs()
            ),
        )),
        Some(s) if s.success() => Ok(stdout),
        Some(s) => {
            let said: String = format!("{} {}", stdout.trim(), stderr.trim())
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(300)
                .collect();
            Err(FieldError::with_message(
                FieldErrorKind::Unknown,
                format!("{shown}: exit {:?}: {said}", s.code()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;

    fn write(root: &Path, rel: &str, text: &str) -> PathBuf {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn no_daemon_no_facts() {
        let t = tempfile::tempdir().unwrap();
        write(t.path(), "proc/12/comm", "nv-fabricmanage\n");
        let s = Search::new(t.path(), None);
        assert_eq!(read(t.path(), &s), None);
    }

    #[test]
    fn the_command_service_comes_from_the_config_the_daemon_was_started_with() {
        assert_eq!(
            command_service(
                "IMEX_CMD_ENABLED=1\nIMEX_CMD_BIND_INTERFACE_IP=10.0.3.7\nIMEX_CMD_PORT=50005\n"
            )
            .unwrap(),
            (IpAddr::from([10, 0, 3, 7]), 50005)
        );
        assert_eq!(
            command_service("IMEX_CMD_ENABLED=1\nIMEX_CMD_BIND_INTERFACE_IP=\n").unwrap(),
            (IpAddr::from([127, 0, 0, 1]), DEFAULT_CMD_PORT)
        );
        let off = command_service("IMEX_CMD_ENABLED=0\n").unwrap_err();
        assert_eq!(off.error, FieldErrorKind::NotSupported);
        // A tenant's process named nvidia-imex writes what it likes: nothing but an address is taken.
        assert!(
            command_service(
                "IMEX_CMD_ENABLED=1\nIMEX_CMD_BIND_INTERFACE_IP=10.0.0.1 -N; rm -rf /\n"
            )
            .is_err()
        );
        assert!(command_service("IMEX_CMD_ENABLED=1\nIMEX_CMD_PORT=0\n").is_err());
    }

    #[test]
    fn a_config_path_with_dots_is_not_followed() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("proc/7");
        write(&p, "cmdline", "nvidia-imex\0-c\0/imexd/imexd.cfg\0");
        assert_eq!(config_path(&p), "/imexd/imexd.cfg");
        write(&p, "cmdline", "nvidia-imex\0-c\0/imexd/../../etc/shadow\0");
        assert_eq!(config_path(&p), DEFAULT_CONFIG);
        write(&p, "cmdline", "nvidia-imex\0-c\0imexd.cfg\0");
        assert_eq!(config_path(&p), DEFAULT_CONFIG);
    }

    #[test]
    fn only_a_daemon_in_the_hosts_mount_namespace_with_a_root_owned_config_is_the_hosts() {
        use std::os::unix::fs::symlink;
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        std::fs::create_dir_all(root.join("proc/1/ns")).unwrap();
        std::fs::create_dir_all(root.join("proc/7/ns")).unwrap();
        std::fs::create_dir_all(root.join("proc/8/ns")).unwrap();
        symlink("mnt:[4026531841]", root.join("proc/1/ns/mnt")).unwrap();
        symlink("mnt:[4026531841]", root.join("proc/7/ns/mnt")).unwrap();
        symlink("mnt:[4026532999]", root.join("proc/8/ns/mnt")).unwrap();
        write(root, "etc/nvidia-imex/config.cfg", "IMEX_CMD_ENABLED=1\n");
        let cfg = "/etc/nvidia-imex/config.cfg";
        let owned_by_root = std::fs::metadata(root.join(&cfg[1..]))
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
            .unwrap();
        assert_eq!(
            is_host_service(root, &root.join("proc/7"), cfg),
            owned_by_root
        );
        // A pod's process (another mount namespace) naming a host file is never the host's service.
        assert!(!is_host_service(root, &root.join("proc/8"), cfg));
        assert!(!is_host_service(root, &root.join("proc/8"), "/etc/shadow"));
        // No such file, or no namespace link to compare: not the host's.
        assert!(!is_host_service(
            root,
            &root.join("proc/7"),
            "/etc/nvidia-imex/none.cfg"
        ));
        assert!(!is_host_service(root, &root.join("proc/9"), cfg));
    }

    /// The whole path on a host root whose driver has a stand-in `nvidia-imex-ctl` (a script answering as
    /// the tool does); the probe runs it unchrooted here (root `/`-less layout: the table's host row).
    #[test]
    fn a_daemon_in_a_pod_is_asked_for_its_state_and_the_domain_is_left_to_its_compute_domain() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        write(root, "proc/4242/comm", "nvidia-imex\n");
        write(
            root,
            "proc/4242/cmdline",
            "nvidia-imex\0-c\0/imexd/imexd.cfg\0",
        );
        write(
            root,
            "proc/4242/root/imexd/imexd.cfg",
            "IMEX_CMD_ENABLED=1\nIMEX_CMD_BIND_INTERFACE_IP=10.0.3.7\nIMEX_CMD_PORT=50005\n",
        );
        let ctl = write(
            root,
            "usr/bin/nvidia-imex-ctl",
            "#!/bin/sh\n[ \"$*\" = \"-i 10.0.3.7 50005 -q\" ] && { echo WAITING_FOR_PEERS; exit 0; }\necho \"bad args: $*\" >&2; exit 3\n",
        );
        std::fs::set_permissions(&ctl, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut s = Search::new(root, None);
        s.host_files = false;
        let Some(tool) = s.program(CTL, std::env::consts::ARCH) else {
            // The table's host row names /usr/bin on every architecture this runs on.
            panic!("{}", s.described(CTL, std::env::consts::ARCH, false));
        };
        // The stand-in runs as it is (no chroot: a test is not root everywhere).
        let tool = Program {
            chroot: None,
            program: root.join(tool.program.strip_prefix("/").unwrap()),
            ..tool
        };
        assert_eq!(
            run(&tool, &["-i", "10.0.3.7", "50005", "-q"])
                .unwrap()
                .trim(),
            "WAITING_FOR_PEERS"
        );
        let e = run(&tool, &["-N"]).unwrap_err();
        assert!(e.message.unwrap().contains("exit Some(3): bad args: -N"));
        // `read` finds the daemon and its address; the tool itself is chrooted there, so only its
        // location and the domain's verdict are checked through `read`.
        let f = read(root, &s).unwrap();
        assert_eq!(f.config, "/imexd/imexd.cfg");
        assert_eq!(f.command_service, "10.0.3.7:50005");
        assert_eq!(
            f.domain.err().unwrap().error,
            FieldErrorKind::NotSupported,
            "a daemon in a pod: its domain is its ComputeDomain's to report"
        );
    }
}
