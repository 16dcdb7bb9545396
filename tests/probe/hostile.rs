//! node-probe on hostile node data (SECURITY.md, "The node and its tenants"): a kernel log of a million
//! attacker-chosen NVIDIA-looking lines, a journal with giant and binary fields, and a host root whose
//! `/proc` and sysfs files are huge, endless, binary, FIFOs or symlink loops. The real binary runs on
//! them; each case asserts one JSON document, no panic, a bounded report and a bounded peak memory (the
//! child's own `ru_maxrss` from `wait4`), and prints its figures. Time is printed, never asserted: only
//! memory and sizes are bounds a loaded machine cannot break at random.

#[path = "../support/fake_nvml.rs"]
mod fake_nvml;
#[path = "../support/host_history.rs"]
mod host_history;
#[path = "../support/node_probe.rs"]
mod node_probe;
use node_probe::NodeProbe;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One finished run of a child process and what it cost.
struct Measured {
    code: i32,
    stdout: Vec<u8>,
    stderr: String,
    max_rss_mib: f64,
    cpu: Duration,
    wall: Duration,
}

/// Run node-probe to its end, reaping it with `wait4` for its own resource usage.
fn measured(probe: &mut NodeProbe) -> Measured {
    let mut cmd = std::mem::take(probe).command();
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    // Reaped below with wait4 (for its rusage), not with `Child::wait`.
    #[allow(clippy::zombie_processes)]
    let mut child = cmd.spawn().expect("run node-probe");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        out.read_to_end(&mut v).unwrap();
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        err.read_to_end(&mut v).unwrap();
        v
    });
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: plain FFI calls with valid out-pointers; the child is ours and reaped exactly once here
    // (std's `Child` does not wait on drop).
    let usage = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        loop {
            let r = libc::wait4(pid, &mut status, 0, &mut ru);
            if r == pid {
                break;
            }
            let e = std::io::Error::last_os_error();
            assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "wait4: {e}");
        }
        ru
    };
    let wall = started.elapsed();
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    assert!(
        libc::WIFEXITED(status),
        "node-probe did not exit normally (status {status:#x}): killed by a signal"
    );
    Measured {
        code: libc::WEXITSTATUS(status),
        stdout: out_t.join().unwrap(),
        stderr: String::from_utf8_lossy(&err_t.join().unwrap()).into_owned(),
        // Linux reports ru_maxrss in KiB.
        max_rss_mib: usage.ru_maxrss as f64 / 1024.0,
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
        wall,
    }
}

/// The one JSON document of a run, after the checks every hostile run shares.
fn document(m: &Measured, what: &str, max_rss_mib: f64, max_doc: usize) -> Value {
    eprintln!(
        "{what}: exit {}, peak RSS {:.1} MiB, cpu {:.2} s, wall {:.2} s, document {} bytes",
        m.code,
        m.max_rss_mib,
        m.cpu.as_secs_f64(),
        m.wall.as_secs_f64(),
        m.stdout.len()
    );
    assert!(!m.stderr.contains("panicked"), "{what}: {}", m.stderr);
    let text = std::str::from_utf8(&m.stdout).expect("stdout is UTF-8");
    assert_eq!(
        text.lines().count(),
        1,
        "{what}: one document\n{}",
        m.stderr
    );
    let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
    assert!(
        m.stdout.len() <= max_doc,
        "{what}: document of {} bytes, bound {max_doc}",
        m.stdout.len()
    );
    assert!(
        m.max_rss_mib <= max_rss_mib,
        "{what}: peak RSS {:.1} MiB, bound {max_rss_mib} MiB",
        m.max_rss_mib
    );
    doc
}

/// A small deterministic generator (xorshift64*): the same hostile log on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One attacker-chosen line that looks like the NVIDIA driver's: random PCI ids (valid and not),
/// codes (known, unknown, overflowing), pids, names, envelopes, invalid UTF-8 and NULs.
fn hostile_line(r: &mut Rng, i: u64, out: &mut Vec<u8>) {
    let pci = match r.below(4) {
        0 => format!(
            "PCI:{:04x}:{:02x}:{:02x}",
            r.below(0x10000),
            r.below(256),
            r.below(32)
        ),
        1 => format!("PCI:0000:{:02x}:00", r.below(256)),
        2 => format!(
            "{:04x}:{:02x}:{:02x}.{}",
            r.below(4),
            r.below(256),
            r.below(32),
            r.below(8)
        ),
        _ => "PCI:zz:\u{1F4A3}:\u{0}".to_string(),
    };
    let code = match r.below(5) {
        0 => r.next().to_string(),
        1 => (r.below(160)).to_string(),
        2 => ["13", "31", "48", "79", "94", "95", "119", "154"][r.below(8) as usize].to_string(),
        3 => format!("-{}", r.below(1000)),
        _ => (r.below(u32::MAX as u64)).to_string(),
    };
    let name_len = if i.is_multiple_of(10_000) {
        60_000
    } else {
        r.below(40) as usize
    };
    let name: String = (0..name_len)
        .map(|k| (b'a' + ((k as u64 + i) % 26) as u8) as char)
        .collect();
    let text = match r.below(7) {
        0 => format!(
            "NVRM: Xid ({pci}): {code}, pid={}, name={name}, Ch {:08x}",
            r.next(),
            r.below(1 << 32)
        ),
        1 => format!(
            "NVRM: Xid ({pci}): 154, GPU recovery action changed from 0x{:x} (None) to 0x{:x} (Reboot)",
            r.below(9),
            r.next()
        ),
        2 => format!(
            "NVRM: GPU at {pci}: GPU-{:016x}-{:016x}",
            r.next(),
            r.next()
        ),
        3 => format!("NVRM: GPU at {pci}: GPU has fallen off the bus."),
        4 => format!(
            "nvidia-nvswitch{}: SXid ({pci}.0): {code}, Non-fatal, Link {} egress non-posted PRIV error",
            r.below(64),
            r.below(1 << 20)
        ),
        5 => format!(
            "NVRM: Xid ({pci}): 13, pid={}, name={name}, Graphics SM Warp Exception on (GPC {}, TPC {}, SM {}): Out Of Range Address",
            r.below(1 << 22),
            r.next(),
            r.next(),
            r.next()
        ),
        _ => format!(
            "NVRM: Xid ({pci}): 31, pid={}, name={name}, Ch {:08x}, intr 00000000. MMU Fault: ENGINE GRAPHICS faulted @ 0x{:x}",
            r.next(),
            r.below(1 << 32),
            r.next()
        ),
    };
    match r.below(4) {
        0 => {
            out.extend_from_slice(format!("[{:>5}.{:06}] {text}", i / 10, i % 1_000_000).as_bytes())
        }
        1 => out.extend_from_slice(format!("4,{i},{},-;{text}", i * 1000).as_bytes()),
        2 => out.extend_from_slice(
            format!(
                "Nov 22 10:{:02}:{:02} gpu-node-5 kernel: {text}",
                (i / 60) % 60,
                i % 60
            )
            .as_bytes(),
        ),
        _ => out.extend_from_slice(text.as_bytes()),
    }
    if r.below(50) == 0 {
        // Invalid UTF-8, a NUL, a lone continuation byte.
        out.extend_from_slice(b" \xff\xfe\x00\x80 tail");
    }
    if r.below(100) == 0 {
        out.extend_from_slice(b"\n   continuation line of the record");
    }
    out.push(b'\n');
}

#[test]
fn a_million_hostile_nvidia_lines_in_bounded_memory() {
    const LINES: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kern.log");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let mut line = Vec::new();
    for i in 0..LINES {
        line.clear();
        hostile_line(&mut r, i, &mut line);
        w.write_all(&line).unwrap();
    }
    // And a last "line" of 16 MiB without a newline.
    w.write_all(b"NVRM: Xid (PCI:0000:3b:00): 79, ").unwrap();
    w.write_all(&vec![b'A'; 16 << 20]).unwrap();
    w.flush().unwrap();
    drop(w);
    let size = std::fs::metadata(&path).unwrap().len();

    let m = measured(NodeProbe::new().args(["xid", "--log-file"]).arg(&path));
    eprintln!("log: {LINES} lines + one of 16 MiB, {} MiB", size >> 20);
    // Measured: ~40 MiB peak; the file is over 100 MiB, so holding it or per-line state would show.
    let doc = document(&m, "xid --log-file (1M hostile lines)", 256.0, 4 << 20);
    assert_eq!(m.code, 0, "{}", m.stderr);
    let x = &doc["xid"];
    let log = &x["log"];
    assert!(log["lines"].as_u64().unwrap() >= LINES, "{log}");
    // Far more distinct (PCI, kind, code) groups than a node has: the rest are counted, not tracked.
    let not_analyzed = log["events_not_analyzed"].as_u64().unwrap_or(0);
    assert!(not_analyzed > 100_000, "{log}");
    let gpus = x["gpus"].as_array().unwrap().len();
    let events = x["events"].as_array().unwrap().len();
    assert!(gpus <= 256, "{gpus} GPUs in the report");
    assert!(events <= 4 * 256 + 500, "{events} events listed");
    // Every string in the report is bounded (names, messages, evidence).
    let longest = longest_string(&doc);
    assert!(
        longest <= 8 * 1024,
        "a string of {longest} bytes in the report"
    );
}

/// The length of the longest string in `v` (its start on stderr when it is long, to find its source).
fn longest_string(v: &Value) -> usize {
    fn walk<'a>(v: &'a Value, best: &mut &'a str) {
        match v {
            Value::String(s) if s.len() > best.len() => *best = s,
            Value::Array(a) => a.iter().for_each(|x| walk(x, best)),
            Value::Object(o) => o.values().for_each(|x| walk(x, best)),
            _ => {}
        }
    }
    let mut best = "";
    walk(v, &mut best);
    if best.len() > 8 * 1024 {
        eprintln!("longest string: {:.200}", best);
    }
    best.len()
}

/// A journal entry in export format with a field given as binary (length-prefixed), as
/// systemd-journal-remote reads it.
fn binary_field(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(&(value.len() as u64).to_le_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

#[test]
fn a_journal_with_giant_and_binary_fields_is_bounded() {
    assert!(
        Path::new(host_history::JOURNAL_REMOTE).exists(),
        "{} is missing: apt-get install systemd-journal-remote (the CI script does)",
        host_history::JOURNAL_REMOTE
    );
    use host_history::{CURRENT_BOOT, Host, MACHINE, PREVIOUS_BOOT};
    let h = Host::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let ts = |ago: f64| ((now - ago) * 1e6) as u64;
    let mut e: Vec<u8> = Vec::new();
    let head = |e: &mut Vec<u8>, us: u64, boot: &str| {
        e.extend_from_slice(
            format!(
                "__REALTIME_TIMESTAMP={us}\n__MONOTONIC_TIMESTAMP=1\n_BOOT_ID={boot}\n_TRANSPORT=kernel\nSYSLOG_IDENTIFIER=kernel\n_MACHINE_ID={MACHINE}\n"
            )
            .as_bytes(),
        );
    };
    // 1: a MESSAGE of 8 MiB that starts like an Xid.
    head(&mut e, ts(3.0 * 86400.0), PREVIOUS_BOOT);
    let mut giant = b"NVRM: Xid (PCI:0000:3b:00): 79, pid=1, name=".to_vec();
    giant.extend(std::iter::repeat_n(b'x', 8 << 20));
    binary_field(&mut e, "MESSAGE", &giant);
    e.push(b'\n');
    // 2: a binary MESSAGE (NULs, invalid UTF-8) around a real Xid, and a thousand extra fields of 4 KiB.
    head(&mut e, ts(2.0 * 86400.0), PREVIOUS_BOOT);
    binary_field(
        &mut e,
        "MESSAGE",
        b"NVRM: Xid (PCI:0000:3b:00): 48, \x00\xff\xfe DBE \x80",
    );
    for k in 0..1000 {
        e.extend_from_slice(format!("FIELD_{k}={}\n", "y".repeat(4096)).as_bytes());
    }
    e.push(b'\n');
    // 3: ten thousand ordinary entries with a 3 KiB message each.
    for k in 0..10_000u64 {
        head(&mut e, ts(86400.0) + k, PREVIOUS_BOOT);
        e.extend_from_slice(
            format!(
                "MESSAGE=NVRM: Xid (PCI:0000:3b:00): 13, pid={k}, name={}\n\n",
                "z".repeat(3000)
            )
            .as_bytes(),
        );
    }
    let _ = CURRENT_BOOT;
    let file = h
        .path()
        .join(format!("var/log/journal/{MACHINE}/system.journal"));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let mut child = Command::new(host_history::JOURNAL_REMOTE)
        .arg("-o")
        .arg(&file)
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&e).unwrap();
    assert!(
        child.wait().unwrap().success(),
        "systemd-journal-remote failed"
    );
    let journal_mib = std::fs::metadata(&file).unwrap().len() >> 20;

    let m = measured(
        NodeProbe::new()
            .host_root(h.path())
            .args(["xid", "--since", "7d"]),
    );
    eprintln!("journal: {journal_mib} MiB");
    let doc = document(&m, "xid --since 7d (hostile journal)", 256.0, 4 << 20);
    assert_eq!(m.code, 0, "{}", m.stderr);
    let hist = &doc["xid"]["history"];
    let src = hist["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "journal")
        .unwrap_or_else(|| panic!("no journal source: {hist}"));
    assert_eq!(src["status"], "read", "{src}");
    // The 10,000 ordinary entries and the binary one were read; the 8 MiB one was not held whole.
    assert!(src["entries"].as_u64().unwrap() >= 10_000, "{src}");
    assert!(longest_string(&doc) <= 8 * 1024);
}

/// A fake host root for the fake NVML (its GPU 0 at bus 1b runs pid 4242) whose files are hostile.
fn hostile_root(dir: &Path) {
    let file = |rel: &str, contents: &[u8]| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, contents).unwrap();
    };
    let sparse = |rel: &str, len: u64| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::File::create(&p).unwrap().set_len(len).unwrap();
    };
    let link = |rel: &str, target: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, p).unwrap();
    };
    let fifo = |rel: &str| {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    };
    // Identity: NULs and invalid UTF-8, an endless file, a 1 GiB sparse file.
    file("etc/hostname", b"gpu-\x00node\xff\xfe-5\n");
    link("proc/sys/kernel/random/boot_id", "/dev/zero");
    sparse("proc/sys/kernel/osrelease", 1 << 30);
    sparse("proc/stat", 1 << 30);
    link("proc/uptime", "/dev/urandom");
    file(
        "sys/devices/system/cpu/possible",
        "0-60000,".repeat(4000).as_bytes(),
    );
    // The GPU process: an endless cmdline, a 1 GiB cgroup, a FIFO for stat, a symlink loop for comm.
    let mut cmdline = b"python3\0train.py\0".to_vec();
    cmdline.extend(std::iter::repeat_n(b'A', 2 << 20));
    file("proc/4242/cmdline", &cmdline);
    sparse("proc/4242/cgroup", 1 << 30);
    fifo("proc/4242/stat");
    link("proc/4242/comm", "comm");
    // Services: comm files that never end.
    link("proc/77/comm", "/dev/zero");
    link("proc/78/comm", "../78/comm");
    // PCIe AER and NUMA: FIFOs, endless and binary files.
    fifo("sys/bus/pci/devices/0000:1b:00.0/aer_dev_correctable");
    link(
        "sys/bus/pci/devices/0000:1b:00.0/aer_dev_nonfatal",
        "/dev/zero",
    );
    file(
        "sys/bus/pci/devices/0000:1b:00.0/aer_dev_fatal",
        b"TOTAL_ERR_FATAL \xff\x00\n",
    );
    sparse("sys/bus/pci/devices/0000:c3:00.0/numa_node", 1 << 30);
    // An RDMA device whose attributes are endless and whose counters directory is huge.
    let dev = "sys/devices/pci0000:00/0000:00:01.0/infiniband/mlx5_0";
    link(
        "sys/class/infiniband/mlx5_0",
        &format!("../../{}", dev.trim_start_matches("sys/")),
    );
    link(&format!("{dev}/hca_type"), "/dev/zero");
    sparse(&format!("{dev}/fw_ver"), 1 << 30);
    link(&format!("{dev}/ports/1/state"), "/dev/zero");
    link(&format!("{dev}/ports/1/rate"), "rate");
    file(&format!("{dev}/ports/1/link_layer"), b"InfiniBand\n");
    for k in 0..5000 {
        file(&format!("{dev}/ports/1/counters/c{k}"), b"1\n");
    }
    link(&format!("{dev}/ports/1/counters/endless"), "/dev/zero");
}

#[test]
fn hostile_proc_and_sysfs_files_are_read_bounded() {
    let Some(lib) = fake_nvml::fake_lib() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    hostile_root(dir.path());
    for command in ["facts", "health", "topology", "processes"] {
        let m = measured(
            NodeProbe::new()
                .arg("--nvml-lib")
                .arg(lib)
                .host_root(dir.path())
                .args(["--nic-interval-ms", "0", command]),
        );
        let doc = document(
            &m,
            &format!("{command} (hostile host root)"),
            128.0,
            1 << 20,
        );
        assert!(
            doc.get(command).is_some() || doc.get("error").is_some(),
            "{command}: {doc}"
        );
        let longest = longest_string(&doc);
        assert!(
            longest <= 8 * 1024,
            "{command}: a string of {longest} bytes"
        );
        if command == "facts" {
            let f = &doc["facts"];
            let p = f["host_processes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|p| p["pid"] == 4242)
                .unwrap_or_else(|| panic!("pid 4242 not read: {f}"));
            // The endless cmdline is cut and says so; the 1 GiB cgroup is refused inline.
            let cmdline = p["cmdline"].as_str().unwrap_or_else(|| panic!("{p}"));
            assert!(
                cmdline.starts_with("python3 train.py AAAA"),
                "{cmdline:.60}"
            );
            assert!(
                cmdline.len() <= 4100 && cmdline.ends_with('…'),
                "{}",
                cmdline.len()
            );
            assert!(p["cgroup"]["error"].is_string(), "{p}");
            assert!(f["host"]["boot_id"]["error"].is_string(), "{}", f["host"]);
        }
    }
}
