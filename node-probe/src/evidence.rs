//! `node-probe evidence`: the node's own `nvidia-bug-report.sh` (safe mode, under a hard time limit) plus
//! the probe's own view (describe, the XID report with earlier boots, the raw kernel ring buffer), packed
//! as one `tar.gz` that travels base64 inside the JSON document (see `gpu_diag::evidence`).
//!
//! Nothing stays on the node: the script writes into a private directory (mode 0700) under the root it
//! runs in (it is chrooted there, so it must be inside that root), which is removed on every path.

use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use clap::Args;
use gpu_diag::contract::{ErrorKind, ProbeDocument, ProbeError, Report};
use gpu_diag::evidence::{self as ev, BugReport, EvidenceIndex, EvidenceReport, Member};

use crate::options::GlobalArgs;

#[derive(Debug, Args, Clone)]
pub struct EvidenceArgs {
    /// Cut `nvidia-bug-report.sh` (its whole process group) after this many seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = ev::DEFAULT_TIME_LIMIT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=ev::MAX_TIME_LIMIT_SECS))]
    pub time_limit: u64,
    /// Run this script (no chroot) instead of looking for the host's or the driver root's.
    #[arg(long, value_name = "PATH")]
    pub bug_report: Option<PathBuf>,
    /// Leave `nvidia-bug-report.sh` out (only the probe's own view).
    #[arg(long)]
    pub no_bug_report: bool,
}

/// The script to run: the host's (or the GPU Operator driver root's), chrooted there; or an explicit one.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub chroot: Option<PathBuf>,
    /// The program path inside the chroot (or as is, without one).
    pub program: PathBuf,
    /// `LD_LIBRARY_PATH` inside the chroot: the driver root's library directories, so the `nvidia-smi`
    /// the script runs finds its NVML where the loader's path does not reach (GKE, Talos).
    pub ld_library_path: Option<String>,
}

const SCRIPT: &str = "nvidia-bug-report.sh";

/// Find the script through the driver roots table (`crate::driver_roots`), as `nvidia-smi` is found.
pub fn find_script(root: &Path, driver_root: Option<&Path>) -> Option<Script> {
    crate::driver_roots::Search::new(root, driver_root)
        .program(SCRIPT, std::env::consts::ARCH)
        .map(|p| Script {
            chroot: p.chroot,
            program: p.program,
            ld_library_path: p.ld_library_path,
        })
}

impl Script {
    fn shown(&self) -> String {
        match &self.chroot {
            Some(d) => format!("{}{}", d.display(), self.program.display()),
            None => self.program.display().to_string(),
        }
    }
}

/// The probe's own reports that go into the archive, each a command line (a subcommand and its
/// arguments) that `cli` parses and runs with this run's shared flags (this module stays below it).
pub type RunView<'a> = &'a dyn Fn(&[&str]) -> ProbeDocument;

/// One of the probe's own reports in the archive: its member, the command line that makes it and what
/// it holds.
struct ViewMember {
    name: &'static str,
    argv: &'static [&'static str],
    what: &'static str,
}

const VIEWS: [ViewMember; 2] = [
    ViewMember {
        name: "describe.json",
        argv: &["describe"],
        what: "node-probe describe: every GPU fact, finding and the kernel-log window",
    },
    ViewMember {
        name: "xid-history.json",
        argv: &["xid", "--history"],
        what: "node-probe xid --history: XID/SXid events of this boot and earlier boots (journal, kernel text logs)",
    },
];

pub fn run(
    g: &GlobalArgs,
    a: &EvidenceArgs,
    view: RunView<'_>,
) -> Result<ProbeDocument, ProbeError> {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let root = g
        .host_root
        .clone()
        .unwrap_or_else(crate::source::default_host_root);
    let mut notes = Vec::new();
    let mut members: Vec<(Member, Vec<u8>)> = Vec::new();

    // The probe's own view first: it is quick and survives a script that hangs.
    let mut meta = None;
    for ViewMember { name, argv, what } in VIEWS {
        let doc = view(argv);
        if let ProbeDocument::Success { probe, .. } = &doc
            && meta.is_none()
        {
            meta = probe.clone();
        }
        if let ProbeDocument::Failure { error, .. } = &doc {
            notes.push(format!("{name}: {}", error.message));
        }
        let bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        members.push((member(name, &bytes, what), bytes));
    }
    if g.simulate.is_none() && g.fixture.is_none() {
        let mut text = String::new();
        match crate::kmsg::stream_kmsg(&root, &mut |l| {
            if text.len() < 4 << 20 {
                text.push_str(l);
                text.push('\n');
            }
        }) {
            Ok(lost) => {
                if lost {
                    notes.push("kmsg.txt: records were overwritten while reading".into());
                }
                let bytes = text.into_bytes();
                members.push((
                    member(
                        "kmsg.txt",
                        &bytes,
                        "the raw kernel ring buffer (/dev/kmsg records), up to 4 MiB",
                    ),
                    bytes,
                ));
            }
            Err(e) => notes.push(format!(
                "kmsg.txt: cannot read the kernel ring buffer: {:?} {}",
                e.error,
                e.message.unwrap_or_default()
            )),
        }
    }

    let simulated = g.simulate.is_some() || g.fixture.is_some();
    let script = if a.no_bug_report || (simulated && a.bug_report.is_none()) {
        None
    } else if let Some(p) = &a.bug_report {
        if !p.is_file() {
            return Err(ProbeError::new(
                ErrorKind::Usage,
                format!("--bug-report {} is not a file", p.display()),
            ));
        }
        Some(Script {
            chroot: None,
            // It runs in its private directory: a relative path must not change meaning.
            program: std::path::absolute(p).unwrap_or_else(|_| p.clone()),
            ld_library_path: None,
        })
    } else {
        find_script(&root, g.driver_root.as_deref())
    };
    let budget = ev::MAX_ARCHIVE_BYTES.saturating_sub(members.iter().map(|m| m.1.len()).sum());
    let (bug, out) = match &script {
        None => (
            BugReport {
                status: "absent".into(),
                script: None,
                argv: vec![],
                exit_code: None,
                time_limit_secs: a.time_limit,
                elapsed_ms: 0,
                member: None,
                output_tail: String::new(),
                detail: if a.no_bug_report {
                    "nvidia-bug-report.sh was not asked for".into()
                } else if simulated {
                    // The machine the simulation runs on is not the simulated node.
                    "a simulated node has no nvidia-bug-report.sh to run; the archive holds the probe's \
                     own view only"
                        .into()
                } else {
                    format!(
                        "no {} (a driver root elsewhere is named with {} DIR); the archive holds the \
                         probe's own view only",
                        crate::driver_roots::Search::new(&root, g.driver_root.as_deref())
                            .described(SCRIPT, std::env::consts::ARCH, false),
                        crate::driver_roots::DRIVER_ROOT_FLAG
                    )
                },
            },
            None,
        ),
        Some(s) => run_script(s, Duration::from_secs(a.time_limit), budget),
    };
    if let Some(bytes) = out {
        let name = bug.member.as_deref().unwrap_or(OUTPUT_GZ);
        members.push((
            member(
                name,
                &bytes,
                "nvidia-bug-report.sh --safe-mode output, as the script wrote it",
            ),
            bytes,
        ));
    }
    let index = EvidenceIndex {
        format: "k8s-gpu-mcp-evidence/1".into(),
        node: g
            .node_name
            .clone()
            .or_else(|| meta.as_ref().and_then(|m| m.node_name.clone())),
        collected_at_unix: started,
        bug_report: bug,
        members: members.iter().map(|m| m.0.clone()).collect(),
        notes,
    };
    let archive = pack(&index, &members).map_err(|e| {
        ProbeError::new(
            ErrorKind::Internal,
            format!("cannot pack the evidence archive: {e}"),
        )
    })?;
    Ok(ProbeDocument::success(
        meta,
        Report::Evidence(Box::new(EvidenceReport {
            index,
            archive_base64: base64::engine::general_purpose::STANDARD.encode(archive),
        })),
    ))
}

fn member(name: &str, bytes: &[u8], what: &str) -> Member {
    Member {
        name: name.into(),
        bytes: bytes.len() as u64,
        description: what.into(),
    }
}

/// `index.json` first, then the members, as one gzip'd tar.
pub fn pack(index: &EvidenceIndex, members: &[(Member, Vec<u8>)]) -> std::io::Result<Vec<u8>> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let idx = serde_json::to_vec_pretty(index).map_err(std::io::Error::other)?;
    let mtime = index.collected_at_unix as u64;
    for (name, bytes) in std::iter::once((ev::INDEX_NAME, &idx))
        .chain(members.iter().map(|(m, b)| (m.name.as_str(), b)))
    {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(mtime);
        h.set_cksum();
        tar.append_data(&mut h, name, bytes.as_slice())?;
    }
    tar.into_inner()?.finish()
}

/// A private directory for the script's output inside the root it runs in.
fn private_dir(tmp: &Path) -> std::io::Result<PathBuf> {
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let dir = tmp.join(format!(
        "k8s-gpu-mcp-evidence.{}.{nonce:x}",
        std::process::id()
    ));
    std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(dir)
}

/// Run the script under the limit; its archive bytes when it wrote one within `budget`.
fn run_script(s: &Script, limit: Duration, budget: usize) -> (BugReport, Option<Vec<u8>>) {
    let base = match &s.chroot {
        Some(r) => r.join("tmp"),
        None => std::env::temp_dir(),
    };
    let mut bug = BugReport {
        status: "failed".into(),
        script: Some(s.shown()),
        argv: vec![],
        exit_code: None,
        time_limit_secs: limit.as_secs(),
        elapsed_ms: 0,
        member: None,
        output_tail: String::new(),
        detail: String::new(),
    };
    let dir = match private_dir(&base) {
        Ok(d) => d,
        Err(e) => {
            bug.detail = format!(
                "cannot make a private directory under {} for the script's output: {e}",
                base.display()
            );
            return (bug, None);
        }
    };
    let result = run_in(s, &dir, limit, budget, &mut bug);
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        bug.detail
            .push_str(&format!("; cannot remove {}: {e}", dir.display()));
    }
    (bug, result)
}

/// The output name given to the script, and what it writes when it compresses.
const OUTPUT: &str = "nvidia-bug-report.log";
const OUTPUT_GZ: &str = "nvidia-bug-report.log.gz";

fn run_in(
    s: &Script,
    dir: &Path,
    limit: Duration,
    budget: usize,
    bug: &mut BugReport,
) -> Option<Vec<u8>> {
    // The path as the script sees it (inside its chroot).
    let inside = match &s.chroot {
        Some(root) => Path::new("/").join(dir.strip_prefix(root).unwrap_or(dir)),
        None => dir.to_path_buf(),
    };
    // NVIDIA's script appends `.gz` to the name it is given when it can compress (gzip on the node), and
    // writes the name as is when it cannot: give it the base name and take whichever it wrote. Found on a
    // real H100 with the driver's own script; a name ending in `.gz` became `….gz.gz`.
    let out_inside = inside.join(OUTPUT);
    let written = [OUTPUT_GZ, OUTPUT];
    let log_here = dir.join("script-output.txt");
    let args = [
        "--safe-mode".to_string(),
        "--output-file".to_string(),
        out_inside.display().to_string(),
    ];
    bug.argv = match &s.chroot {
        Some(r) => vec!["chroot".into(), r.display().to_string()],
        None => vec![],
    };
    bug.argv.push(s.program.display().to_string());
    bug.argv.extend(args.iter().cloned());
    let log = match std::fs::File::create(&log_here) {
        Ok(f) => f,
        Err(e) => {
            bug.detail = format!("cannot create {}: {e}", log_here.display());
            return None;
        }
    };
    let mut cmd = Command::new(&s.program);
    cmd.args(&args)
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .current_dir(if s.chroot.is_some() {
            Path::new("/")
        } else {
            dir
        })
        .stdin(Stdio::null())
        .envs(s.ld_library_path.iter().map(|l| ("LD_LIBRARY_PATH", l)))
        .stdout(log.try_clone().map(Stdio::from).unwrap_or(Stdio::null()))
        .stderr(Stdio::from(log))
        // Its own process group: the cut kills everything it started (nvidia-smi, lspci, ...).
        .process_group(0);
    if let Some(root) = s.chroot.clone() {
        crate::hostexec::chroot(&mut cmd, root);
    }
    let started = Instant::now();
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            bug.detail = format!("cannot run {}: {e}", s.shown());
            return None;
        }
    };
    let pgid = child.id() as i32;
    let mut timed_out = false;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if started.elapsed() >= limit => {
                timed_out = true;
                kill_group(pgid);
                // A process stuck in the kernel (a hung GPU) may not die at once: wait a bounded time.
                let grace = Instant::now();
                break loop {
                    match child.try_wait() {
                        Ok(Some(st)) => break Some(st),
                        Ok(None) if grace.elapsed() < Duration::from_secs(5) => {
                            std::thread::sleep(Duration::from_millis(50))
                        }
                        _ => break None,
                    }
                };
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(_) => break None,
        }
    };
    // Whatever the script left running in its group goes too (it may have backgrounded a helper).
    kill_group(pgid);
    bug.elapsed_ms = started.elapsed().as_millis() as u64;
    bug.exit_code = status.and_then(|s| s.code());
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(&log_here) {
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        text = String::from_utf8_lossy(&buf).into_owned();
    }
    bug.output_tail = ev::tail(text.trim_end(), 2000);
    let found = written
        .iter()
        .find_map(|n| Some((*n, std::fs::metadata(dir.join(n)).ok()?.len())));
    let size = found.map(|f| f.1);
    let ok = status.is_some_and(|s| s.success());
    bug.status = ev::bug_report_status(true, timed_out, ok, size.is_some()).into();
    if timed_out {
        bug.detail = format!(
            "nvidia-bug-report.sh was cut at its {} s limit (process group killed{}): a hung GPU or \
             driver often makes it stall; the archive holds the probe's own view",
            limit.as_secs(),
            if status.is_none() {
                "; a process did not exit within 5 s, likely stuck in the kernel"
            } else {
                ""
            }
        );
        return None;
    }
    match size {
        None => {
            bug.detail = format!(
                "nvidia-bug-report.sh exited with {:?} without writing its output",
                bug.exit_code
            );
            None
        }
        Some(n) if n as usize > budget => {
            bug.status = "too_large".into();
            bug.detail = format!(
                "nvidia-bug-report.sh wrote {n} bytes, more than the {budget} bytes left in the archive's \
                 bound; run it on the node by hand"
            );
            None
        }
        Some(_) => match std::fs::read(dir.join(found.map_or(OUTPUT_GZ, |f| f.0))) {
            Ok(b) => {
                bug.member = found.map(|f| f.0.to_string());
                bug.detail = if ok {
                    format!("collected in {:.1} s", bug.elapsed_ms as f64 / 1000.0)
                } else {
                    format!("wrote its output but exited with {:?}", bug.exit_code)
                };
                Some(b)
            }
            Err(e) => {
                bug.detail = format!("cannot read its output: {e}");
                None
            }
        },
    }
}

fn kill_group(pgid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_is_found_under_the_driver_root_then_on_the_host() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(find_script(d.path(), None), None);
        let host = d.path().join("usr/bin");
        std::fs::create_dir_all(&host).unwrap();
        std::fs::write(host.join("nvidia-bug-report.sh"), "#!/bin/sh\n").unwrap();
        assert_eq!(
            find_script(d.path(), None).unwrap().chroot,
            Some(d.path().to_path_buf())
        );
        let drv = d.path().join("run/nvidia/driver/usr/bin");
        std::fs::create_dir_all(&drv).unwrap();
        std::fs::write(drv.join("nvidia-bug-report.sh"), "#!/bin/sh\n").unwrap();
        assert_eq!(
            find_script(d.path(), None),
            Some(Script {
                chroot: Some(d.path().join("run/nvidia/driver")),
                program: "/usr/bin/nvidia-bug-report.sh".into(),
                ld_library_path: None,
            })
        );
    }
}
