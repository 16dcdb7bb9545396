//! Evidence before action on the real node (issue 27): `collect_evidence` runs the node's own
//! `nvidia-bug-report.sh` from the GPU Operator driver root, chrooted there, in a real probe pod; the archive
//! arrives on the launcher's machine byte for byte; a hung script is cut at its limit with everything it
//! started; `reset_gpu` keeps the archive before it resets, and its audit record names it.
//!
//! The driver root (the node's own /run, see node.rs) gets what a driver container's root has for these
//! scripts to run chrooted: `/bin/sh`, `sleep`, `cat` and glibc copied from this machine, and `/dev/null`
//! ([`DriverRoot`]).
//! The scripts report what they saw under `/rn-evidence` there.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::mcp::{self, has_str};
use crate::testbed::{User, unique};
use crate::{Ctx, gpu_uuid, node};

/// Where node-probe looks first in the driver root (it chroots there and runs this path).
const SCRIPT: &str = "usr/bin/nvidia-bug-report.sh";
/// The scripts' own reports, in the driver root (outside the private directory node-probe removes).
const REPORTS: &str = "rn-evidence";
/// The bug report member as NVIDIA's script writes it when the node has gzip.
const MEMBER: &str = "nvidia-bug-report.log.gz";

/// NVIDIA's interface: `--safe-mode --output-file NAME`, writing `NAME.gz`. It writes the known archive the
/// test put beside it, and records the output name it was given when its directory exists.
const WRITING_SCRIPT: &str = r#"safe=no
while [ $# -gt 0 ]; do
  case "$1" in
    --safe-mode) safe=yes ;;
    --output-file) out="$2"; shift ;;
  esac
  shift
done
[ "$safe" = yes ] || { echo "not in safe mode" >&2; exit 9; }
[ -d "${out%/*}" ] && echo "$out" > /rn-evidence/output-file
cat /rn-evidence/known.log.gz > "$out.gz" || exit 1
echo "nvidia-bug-report.sh: Complete."
"#;

/// What this module adds to the node's driver root, removed (in reverse order) on drop, also when a case
/// fails: other cases must find the driver root as realnode.sh made it.
struct DriverRoot {
    root: PathBuf,
    added: Vec<PathBuf>,
}

impl DriverRoot {
    fn new(c: &Ctx) -> DriverRoot {
        let root = c.node.host_path(node::DRIVER_ROOT);
        assert!(
            root.join("usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1")
                .is_file(),
            "no fake NVML in the node's driver root {}",
            root.display()
        );
        let mut d = DriverRoot {
            root,
            added: Vec::new(),
        };
        for dir in ["usr/bin", "usr/lib64", "tmp", REPORTS] {
            d.dir(dir);
        }
        std::fs::set_permissions(d.path("tmp"), std::fs::Permissions::from_mode(0o1777)).unwrap();
        // sh gives a background job /dev/null as its stdin (a driver container has the node's /dev).
        d.dir("dev");
        let null = d.path("dev/null");
        if !null.exists() {
            let ok = std::process::Command::new("mknod")
                .args(["-m", "666"])
                .arg(&null)
                .args(["c", "1", "3"])
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "mknod {}", null.display());
            d.added.push(null);
        }
        for (link, to) in [
            ("bin", "usr/bin"),
            ("lib", "usr/lib"),
            ("lib64", "usr/lib64"),
        ] {
            let p = d.path(link);
            if std::fs::symlink_metadata(&p).is_err() {
                std::os::unix::fs::symlink(to, &p).unwrap();
                d.added.push(p);
            }
        }
        for (from, to) in [
            ("/bin/sh", "usr/bin/sh"),
            ("/usr/bin/sleep", "usr/bin/sleep"),
            ("/usr/bin/cat", "usr/bin/cat"),
            (
                "/lib/x86_64-linux-gnu/libc.so.6",
                "usr/lib/x86_64-linux-gnu/libc.so.6",
            ),
            (
                "/lib64/ld-linux-x86-64.so.2",
                "usr/lib64/ld-linux-x86-64.so.2",
            ),
        ] {
            let bytes = std::fs::read(std::fs::canonicalize(from).unwrap()).unwrap();
            d.file(to, &bytes, 0o755);
        }
        d
    }

    fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    fn dir(&mut self, rel: &str) {
        let p = self.path(rel);
        if !p.exists() {
            std::fs::create_dir_all(&p).unwrap();
            self.added.push(p);
        }
    }

    fn file(&mut self, rel: &str, bytes: &[u8], mode: u32) {
        let p = self.path(rel);
        if !self.added.contains(&p) {
            assert!(!p.exists(), "{} is the node's own", p.display());
            self.added.push(p.clone());
        }
        std::fs::write(&p, bytes).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn script(&mut self, rel: &str, body: &str) {
        self.file(rel, format!("#!/bin/sh\n{body}").as_bytes(), 0o755);
    }

    /// Every path under the driver root but the scripts' reports (symlinks not followed).
    fn tree(&self) -> BTreeSet<String> {
        fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
            for e in std::fs::read_dir(dir).unwrap().flatten() {
                let p = e.path();
                let rel = p.strip_prefix(root).unwrap().display().to_string();
                if rel == REPORTS {
                    continue;
                }
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(root, &p, out);
                }
                out.insert(rel);
            }
        }
        let mut out = BTreeSet::new();
        walk(&self.root, &self.root, &mut out);
        out
    }
}

impl Drop for DriverRoot {
    fn drop(&mut self) {
        for p in self.added.iter().rev() {
            let _ = match std::fs::symlink_metadata(p) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(p),
                _ => std::fs::remove_file(p),
            };
        }
    }
}

/// Entries node-probe would make in this machine's /tmp (the host root's, had the script been the host's).
fn private_dirs_in_tmp() -> BTreeSet<String> {
    std::fs::read_dir("/tmp")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("k8s-gpu-mcp-evidence."))
        .collect()
}

/// A log of megabytes that do not compress (xorshift), after a line naming this run, and its gzip: the
/// archive then carries megabytes through the real exec stream.
fn known_bug_report(marker: &str) -> (Vec<u8>, Vec<u8>) {
    let mut log =
        format!("nvidia-bug-report.sh output of the real-node test {marker}\n").into_bytes();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while log.len() < 3 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        log.extend_from_slice(&x.to_le_bytes());
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&log).unwrap();
    (log, gz.finish().unwrap())
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// The archive the answer names, checked against the answer's size and digest; its members in order.
fn archive_on_disk(e: &Value, evidence_dir: &Path) -> (PathBuf, Vec<(String, Vec<u8>)>) {
    let name = e["name"].as_str().expect("evidence name");
    assert_eq!(e["dir"], evidence_dir.display().to_string(), "{e:#}");
    let path = evidence_dir.join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    let digest = sha256_hex(&bytes);
    assert_eq!(e["bytes"], bytes.len() as u64, "size of {}", path.display());
    assert_eq!(e["sha256"], digest.as_str(), "digest of {}", path.display());
    assert!(
        name.contains(&digest[..12]),
        "{name} does not name its digest"
    );
    // Private to the launcher's user.
    let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
    assert_eq!(mode(&path), 0o600, "{}", path.display());
    assert_eq!(mode(evidence_dir), 0o700, "{}", evidence_dir.display());
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(bytes.as_slice()));
    let members = tar
        .entries()
        .expect("a tar.gz")
        .map(|m| {
            let mut m = m.expect("a tar member");
            let name = m.path().unwrap().display().to_string();
            let mut b = Vec::new();
            m.read_to_end(&mut b).expect("a whole member");
            (name, b)
        })
        .collect();
    (path, members)
}

fn member<'a>(members: &'a [(String, Vec<u8>)], name: &str) -> &'a [u8] {
    members
        .iter()
        .find(|m| m.0 == name)
        .map(|m| m.1.as_slice())
        .unwrap_or_else(|| panic!("no {name} in the archive"))
}

fn member_json(members: &[(String, Vec<u8>)], name: &str) -> Value {
    serde_json::from_slice(member(members, name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The answer's index is the archive's own `index.json`: the same bug report and members.
fn index_matches(e: &Value, members: &[(String, Vec<u8>)]) {
    let index = member_json(members, "index.json");
    assert_eq!(index["bug_report"], e["bug_report"]);
    assert_eq!(index["members"], e["members"]);
    let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
    let listed: Vec<&str> = index["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names[1..], listed[..], "index.json lists the other members");
}

/// The script ran chrooted into the driver root as the probe pod sees it (the host's init's root).
fn ran_in_the_driver_root(bug: &Value) {
    let argv: Vec<&str> = bug["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(
        argv[..5],
        [
            "chroot",
            "/proc/1/root/run/nvidia/driver",
            "/usr/bin/nvidia-bug-report.sh",
            "--safe-mode",
            "--output-file"
        ],
        "{bug:#}"
    );
    assert!(
        bug["script"]
            .as_str()
            .is_some_and(|s| s.ends_with("/run/nvidia/driver/usr/bin/nvidia-bug-report.sh")),
        "{bug:#}"
    );
}

/// The driver root as before the call, with no private directory left in its /tmp or in this machine's.
fn nothing_left(drv: &DriverRoot, before: &BTreeSet<String>, tmp_before: &BTreeSet<String>) {
    let now = drv.tree();
    assert_eq!(
        now.difference(before).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "left in the node's driver root"
    );
    assert_eq!(&now, before, "the node's driver root changed");
    assert_eq!(
        std::fs::read_dir(drv.path("tmp")).unwrap().count(),
        0,
        "the driver root's /tmp is not empty"
    );
    assert_eq!(
        &private_dirs_in_tmp(),
        tmp_before,
        "a private directory was left in /tmp"
    );
}

pub async fn collect_evidence_runs_the_nodes_bug_report_and_leaves_nothing(c: &Ctx) {
    let marker = unique("rnevidence");
    let (log, gz) = known_bug_report(&marker);
    let mut drv = DriverRoot::new(c);
    drv.file(&format!("{REPORTS}/known.log.gz"), &gz, 0o644);
    drv.script(SCRIPT, WRITING_SCRIPT);
    // A line of this case in the real kernel log (a userspace write, so no event): the archive keeps the
    // raw ring, and its kmsg.txt must hold it.
    std::fs::write(
        "/dev/kmsg",
        format!(
            "<4>NVRM: Xid (PCI:0000:1b:00): 79, pid=4244, name={marker}, GPU has fallen off the bus.\n"
        ),
    )
    .expect("write /dev/kmsg (root)");
    let before = drv.tree();
    let tmp_before = private_dirs_in_tmp();
    // The launcher's archives go here, never to the home directory; it makes the directory itself.
    let out = tempfile::tempdir().unwrap();
    let evidence_dir = out.path().join("evidence");
    let l = c
        .launcher(&[
            "--probe-image",
            node::PROBE_IMAGE,
            "--evidence-dir",
            evidence_dir.to_str().unwrap(),
        ])
        .await;
    let t = Instant::now();
    let r = l
        .call("collect_evidence", json!({"node_name": c.name()}))
        .await;
    let took = t.elapsed();
    let text = mcp::text(&r);
    assert_ne!(r.is_error, Some(true), "{text}\n{}", l.stderr());
    let v = r.structured_content.clone().unwrap_or(Value::Null);
    l.stop().await;
    c.assert_no_probe_pods();

    let e = &v["evidence"];
    let bug = &e["bug_report"];
    assert_eq!(bug["status"], "collected", "{text}");
    assert_eq!(bug["exit_code"], 0, "{bug:#}");
    assert_eq!(bug["member"], MEMBER, "{bug:#}");
    assert!(has_str(bug, "Complete."), "{bug:#}");
    ran_in_the_driver_root(bug);
    assert!(text.contains("nvidia-bug-report.sh: collected"), "{text}");

    let (path, members) = archive_on_disk(e, &evidence_dir);
    let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "index.json",
            "describe.json",
            "xid-history.json",
            "kmsg.txt",
            MEMBER
        ]
    );
    index_matches(e, &members);
    // The script's archive byte for byte, and the log inside it.
    let got = member(&members, MEMBER);
    assert!(got == gz.as_slice(), "the bug report changed on the way");
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(got)
        .read_to_end(&mut unpacked)
        .unwrap();
    assert!(unpacked == log, "the bug report's log changed on the way");
    // The probe's own view: the fake NVML through the driver root, and the real kernel log.
    assert!(
        has_str(&member_json(&members, "describe.json"), &gpu_uuid(0)),
        "describe.json has no fake-NVML GPU"
    );
    assert!(
        String::from_utf8_lossy(member(&members, "kmsg.txt")).contains(&marker),
        "kmsg.txt lacks this case's Xid line"
    );

    // The private directory the script wrote into existed while it ran (the script says so) and is gone.
    let given = std::fs::read_to_string(drv.path(format!("{REPORTS}/output-file")))
        .expect("the script did not see its output directory");
    let given = Path::new(given.trim());
    assert_eq!(given.file_name().unwrap(), "nvidia-bug-report.log");
    let private = given.parent().unwrap();
    assert!(
        private.starts_with("/tmp")
            && private
                .to_string_lossy()
                .starts_with("/tmp/k8s-gpu-mcp-evidence."),
        "{}",
        private.display()
    );
    assert!(
        !drv.path(private.strip_prefix("/").unwrap()).exists(),
        "{} left on the node",
        private.display()
    );
    nothing_left(&drv, &before, &tmp_before);
    eprintln!(
        "collect_evidence on the real node: {} bytes ({} of bug report) in {took:?} (probe run {} ms, \
         script {} ms); {}",
        e["bytes"],
        gz.len(),
        v["run"]["total_millis"],
        bug["elapsed_ms"],
        path.display()
    );
}

/// A process of this machine: its state, process group and command line, as /proc shows them here.
struct Proc {
    pid: u32,
    state: char,
    pgrp: u32,
    cmdline: String,
}

impl Proc {
    fn alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X')
    }
}

fn procs() -> Vec<Proc> {
    // An unreadable /proc would read as "no process left": the checks built on it could not fail.
    let dir = std::fs::read_dir("/proc").expect("/proc");
    dir.flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // After `(comm)`: state, ppid, pgrp.
            let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            Some(Proc {
                pid,
                state: rest.first()?.chars().next()?,
                pgrp: rest.get(2)?.parse().ok()?,
                cmdline: String::from_utf8_lossy(&cmdline).replace('\0', " "),
            })
        })
        .collect()
}

pub async fn collect_evidence_cuts_a_hung_bug_report_at_its_limit_with_all_it_started(c: &Ctx) {
    const LIMIT: u64 = 5;
    // A number no other process on this machine has in its command line: the hung processes carry it.
    let marker = (1_000_000_000
        + SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            % 1_000_000_000)
        .to_string();
    let mut drv = DriverRoot::new(c);
    // It hangs in `sleep`, with a child that hangs too. The child watches the script: were only the script
    // killed, not its process group, the child would outlive it and write `survived` (before the probe pod
    // is deleted, which would kill it as well and hide the difference).
    drv.script(
        SCRIPT,
        &format!(
            "sh -c 'while kill -0 \"$1\" 2>/dev/null; do sleep 0.05; done; echo survived > /{REPORTS}/survived' \
             hung-{marker} $$ &\n\
             echo 'Running nvidia-smi (hung {marker})'\n\
             sleep {marker}\n"
        ),
    );
    let before = drv.tree();
    let tmp_before = private_dirs_in_tmp();
    let out = tempfile::tempdir().unwrap();
    let evidence_dir = out.path().join("evidence");
    let l = c
        .launcher(&[
            "--probe-image",
            node::PROBE_IMAGE,
            "--evidence-dir",
            evidence_dir.to_str().unwrap(),
        ])
        .await;
    let t = Instant::now();
    let (r, seen, took, after) = {
        let call = l.call(
            "collect_evidence",
            json!({"node_name": c.name(), "time_limit_secs": LIMIT}),
        );
        tokio::pin!(call);
        // While the call runs: the script's processes as this machine sees them (the sleep, the child).
        let mut seen: Vec<Proc> = Vec::new();
        let r = loop {
            tokio::select! {
                r = &mut call => break r,
                _ = tokio::time::sleep(Duration::from_millis(50)) => {
                    let now: Vec<Proc> = procs()
                        .into_iter()
                        .filter(|p| p.alive() && p.cmdline.contains(&marker))
                        .collect();
                    if now.len() > seen.len() {
                        seen = now;
                    }
                }
            }
        };
        // Right at the answer, before anything else could end them.
        (r, seen, t.elapsed(), procs())
    };
    let text = mcp::text(&r);
    assert_ne!(r.is_error, Some(true), "{text}\n{}", l.stderr());
    let v = r.structured_content.clone().unwrap_or(Value::Null);
    l.stop().await;
    c.assert_no_probe_pods();

    assert!(
        seen.len() >= 2,
        "the hung script's processes were never seen running: {:?}",
        seen.iter().map(|p| &p.cmdline).collect::<Vec<_>>()
    );
    // One process group, led by the script itself.
    let group = seen[0].pgrp;
    assert!(
        seen.iter().all(|p| p.pgrp == group),
        "not one process group"
    );
    assert_ne!(group, 0);
    let left: Vec<String> = after
        .iter()
        .filter(|p| p.alive() && (p.cmdline.contains(&marker) || p.pgrp == group))
        .map(|p| format!("{} {}", p.pid, p.cmdline))
        .collect();
    assert!(left.is_empty(), "the hung script left processes: {left:?}");
    assert!(
        !drv.path(format!("{REPORTS}/survived")).exists(),
        "a child of the script outlived it: only the script was killed, not its process group"
    );

    let e = &v["evidence"];
    let bug = &e["bug_report"];
    assert_eq!(bug["status"], "timed_out", "{text}");
    assert_eq!(bug["time_limit_secs"], LIMIT, "{bug:#}");
    assert!(
        has_str(
            bug,
            &format!("cut at its {LIMIT} s limit (process group killed)")
        ),
        "{bug:#}"
    );
    assert!(
        has_str(bug, &format!("Running nvidia-smi (hung {marker})")),
        "{bug:#}"
    );
    assert!(text.contains("nvidia-bug-report.sh: timed_out"), "{text}");
    ran_in_the_driver_root(bug);
    // Cut at the limit: not before it, and within the 5 s the probe gives a process stuck in the kernel.
    let elapsed = bug["elapsed_ms"].as_u64().unwrap();
    assert!(
        (LIMIT * 1000..LIMIT * 1000 + 5_000).contains(&elapsed),
        "cut after {elapsed} ms"
    );
    // The call answers in about the limit (a pod start and the rest of the collection), not the 1000+ s the
    // script would sleep.
    assert!(
        took < Duration::from_secs(LIMIT + 60),
        "answered in {took:?}"
    );

    // The rest of the archive still arrives.
    let (_, members) = archive_on_disk(e, &evidence_dir);
    let names: Vec<&str> = members.iter().map(|m| m.0.as_str()).collect();
    assert_eq!(
        names,
        [
            "index.json",
            "describe.json",
            "xid-history.json",
            "kmsg.txt"
        ]
    );
    index_matches(e, &members);
    nothing_left(&drv, &before, &tmp_before);
    eprintln!(
        "hung nvidia-bug-report.sh: limit {LIMIT} s, cut after {elapsed} ms, call answered in {took:?}; \
         {} processes of its group seen running, none left",
        seen.len()
    );
}

/// The operator's role (deploy/rbac.yaml) and a probe namespace binding, as the e2e operator tests bind them.
pub fn bind_operator(c: &Ctx) {
    let name = User::Operator.name();
    c.tb.apply(&format!(
        r#"apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {{name: k8s-gpu-mcp-operator-{name}}}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: k8s-gpu-mcp-operator}}
subjects: [{{apiGroup: rbac.authorization.k8s.io, kind: User, name: {name}}}]
"#
    ));
    c.tb.probe_namespace(&c.ns, User::Operator);
    c.tb.bind_reader(User::Operator);
}

/// `reset_gpu` on the fake NVML's GPU 3, whose driver asks for a reset (recovery action 1). The fake
/// nvidia-smi in the driver root clears that when it resets the GPU and logs the call, so the archive shows
/// the GPU as it was before the reset only if it was collected first.
pub async fn reset_gpu_keeps_the_evidence_first_and_the_audit_names_it(c: &Ctx) {
    let marker = unique("rnreset");
    let (_, gz) = known_bug_report(&marker);
    let mut drv = DriverRoot::new(c);
    drv.file(&format!("{REPORTS}/known.log.gz"), &gz, 0o644);
    drv.script(SCRIPT, WRITING_SCRIPT);
    drv.script(
        "usr/bin/nvidia-smi",
        &format!(
            "echo \"$*\" >> /{REPORTS}/nvidia-smi.log\n\
             case \"$*\" in\n\
             \"-r -i 3\") echo 3:0 > /usr/lib/x86_64-linux-gnu/FAKE_NVML_RECOVERY_ACTION\n\
             echo 'GPU 00000000:C3:00.0 was successfully reset.' ;;\n\
             *) echo \"unexpected arguments: $*\" >&2; exit 2 ;;\n\
             esac\n"
        ),
    );
    // Beside the fake NVML, which reads its settings there (see node.rs).
    drv.file(
        "usr/lib/x86_64-linux-gnu/FAKE_NVML_RECOVERY_ACTION",
        b"3:1\n",
        0o644,
    );
    bind_operator(c);
    let before = drv.tree();
    let tmp_before = private_dirs_in_tmp();
    let out = tempfile::tempdir().unwrap();
    let evidence_dir = out.path().join("evidence");
    let l = mcp::start(
        c.tb,
        User::Operator,
        &c.ns,
        &[
            "--mode",
            "operator",
            "--probe-image",
            node::PROBE_IMAGE,
            "--evidence-dir",
            evidence_dir.to_str().unwrap(),
        ],
    )
    .await;
    let n = c.name();
    let v = l
        .ok(
            "reset_gpu",
            json!({"node_name": n, "gpu": "3", "confirm": format!("{n}/gpu/3")}),
        )
        .await;
    let log = l.stderr();
    l.stop().await;
    c.assert_no_probe_pods();

    // The reset ran once, through the driver root's nvidia-smi, and the GPU came back without the request.
    assert_eq!(v["result"], "done", "{v:#}");
    let report = &v["report"];
    let check = |list: &Value, name: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|c| c["check"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no check {name}: {report:#}"))
    };
    assert_eq!(
        check(&report["checks"], "recovery_action")["evidence"],
        "the driver asks: GPU Reset Required (recovery action 1)"
    );
    let oc = &report["outcome"];
    assert_eq!(oc["verified"], true, "{report:#}");
    assert_eq!(
        check(&oc["verification"], "recovery_action_none")["status"],
        "pass"
    );
    assert_eq!(oc["commands"].as_array().map(Vec::len), Some(1), "{oc:#}");
    assert_eq!(oc["commands"][0]["exit_code"], 0, "{oc:#}");
    let smi_log = drv.path(format!("{REPORTS}/nvidia-smi.log"));
    assert_eq!(
        std::fs::read_to_string(&smi_log).unwrap_or_default(),
        "-r -i 3\n"
    );
    let reset_at = std::fs::metadata(&smi_log).unwrap().modified().unwrap();

    // The archive was on disk before nvidia-smi ran, and shows the GPU as it was before the reset.
    let e = &v["evidence"];
    assert_eq!(e["bug_report"]["status"], "collected", "{e:#}");
    let (path, members) = archive_on_disk(e, &evidence_dir);
    let archived_at = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert!(
        archived_at < reset_at,
        "the archive ({archived_at:?}) is not older than the reset ({reset_at:?})"
    );
    assert!(member(&members, MEMBER) == gz.as_slice());
    let describe = member_json(&members, "describe.json");
    let gpu3 = describe["describe"]["health"]["gpus"]
        .as_array()
        .and_then(|g| g.iter().find(|g| g["index"] == 3))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        gpu3["recovery_action"], "gpu_reset",
        "the archive does not show GPU 3 before its reset: {gpu3:#}"
    );

    nothing_left(&drv, &before, &tmp_before);

    // The audit record names the archive and its digest: the stderr line and the Node's Event.
    let name = e["name"].as_str().unwrap();
    let names_it = format!("evidence {name} sha256:{}", e["sha256"].as_str().unwrap());
    let audit: Vec<Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|l| l.get("audit").cloned())
        .filter(|a| a["action"] == "reset_gpu")
        .collect();
    assert_eq!(audit.len(), 1, "{log}");
    assert_eq!(audit[0]["result"], "done");
    assert!(has_str(&audit[0]["message"], &names_it), "{:#}", audit[0]);
    let event_name = v["audit"]["event"].as_str().expect("an Event");
    let event: Value = serde_json::from_str(
        &c.tb
            .kubectl(&["-n", "default", "get", "event", event_name, "-o", "json"]),
    )
    .unwrap();
    assert_eq!(event["involvedObject"]["name"], n, "{event:#}");
    assert!(has_str(&event["message"], &names_it), "{event:#}");
    assert!(
        has_str(&event["message"], "action=reset_gpu") && has_str(&event["message"], "result=done"),
        "{event:#}"
    );
    eprintln!(
        "reset_gpu: archive {} ({} bytes) written {:?} before the reset",
        name,
        e["bytes"],
        reset_at.duration_since(archived_at).unwrap_or_default()
    );
}
