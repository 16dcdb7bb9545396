//! `node-probe xid` with the host's history: real journal files written by systemd's own
//! `systemd-journal-remote` from export format, rotated and gzip-compressed kernel text logs, and a
//! fake `/dev/kmsg` for the current boot, all under a temporary host root.
//!
//! Needs `journalctl` (systemd) and `/lib/systemd/systemd-journal-remote` (Debian's
//! systemd-journal-remote); `.ci/run` installs them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";
const CURRENT_BOOT: &str = "3c1d2b4a-0000-4000-8000-00000000c0de";
const PREVIOUS_BOOT: &str = "22222222222222222222222222222222";
const OLDER_BOOT: &str = "11111111111111111111111111111111";
const MACHINE: &str = "0123456789abcdef0123456789abcdef";

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// One kernel message in journal export format.
fn export_entry(out: &mut String, ts: f64, boot: &str, msg: &str) {
    let us = (ts * 1e6) as u64;
    out.push_str(&format!(
        "__REALTIME_TIMESTAMP={us}\n__MONOTONIC_TIMESTAMP=1\n_BOOT_ID={boot}\n_TRANSPORT=kernel\nPRIORITY=4\nSYSLOG_IDENTIFIER=kernel\n_HOSTNAME=gpu-node-5\n_MACHINE_ID={MACHINE}\nMESSAGE={msg}\n\n"
    ));
}

/// Write `export` as a journal file with systemd's own tool.
fn make_journal(export: &str, file: &Path) {
    assert!(
        Path::new(JOURNAL_REMOTE).exists(),
        "{JOURNAL_REMOTE} is missing: apt-get install systemd-journal-remote (the CI script does)"
    );
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    let mut child = Command::new(JOURNAL_REMOTE)
        .arg("-o")
        .arg(file)
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run systemd-journal-remote");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(export.as_bytes())
        .unwrap();
    assert!(
        child.wait().unwrap().success(),
        "systemd-journal-remote failed"
    );
}

fn syslog_line(ts: f64, msg: &str) -> String {
    // `Mon DD HH:MM:SS` in UTC, as rsyslog writes it (no year).
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{}", ts as i64), "+%b %e %H:%M:%S"])
        .output()
        .unwrap();
    let stamp = String::from_utf8(out.stdout).unwrap();
    format!("{} gpu-node-5 kernel: {msg}", stamp.trim_end())
}

struct Host {
    dir: tempfile::TempDir,
    boot_time: f64,
}

impl Host {
    /// A host root booted an hour ago, whose `/dev/kmsg` holds this boot's messages.
    fn new() -> Host {
        let dir = tempfile::tempdir().unwrap();
        let boot_time = (now() - 3600.0).floor();
        let h = Host { dir, boot_time };
        h.write(
            "proc/sys/kernel/random/boot_id",
            &format!("{CURRENT_BOOT}\n"),
        );
        h.write(
            "proc/stat",
            &format!("cpu  1 2 3 4\nbtime {}\nprocesses 9\n", boot_time as i64),
        );
        h.write(
            "dev/kmsg",
            "6,1,0,-;Linux version 6.8.0-48-generic (buildd@lcy02) #48-Ubuntu SMP\n\
             6,2,5000000,-;NVRM: loading NVIDIA UNIX x86_64 Kernel Module  570.133.20\n\
             4,3,600000000,-;NVRM: Xid (PCI:0000:3b:00): 31, pid=777, name=python3, Ch 00000010, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f_00000000. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ\n",
        );
        h
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn gzip(&self, rel: &str, text: &str) {
        let p = self.write(rel.trim_end_matches(".gz"), text);
        let st = Command::new("gzip").arg("-f").arg(&p).status().unwrap();
        assert!(st.success());
    }

    /// Two earlier boots in the journal, both with the GPU at 9a:00 falling off the bus (Xid 79), plus
    /// this boot's first messages (which `/dev/kmsg` also has).
    fn journal_export(&self) -> String {
        let b = self.boot_time;
        let mut e = String::new();
        let older = b - 4.0 * 86400.0;
        export_entry(
            &mut e,
            older,
            OLDER_BOOT,
            "Linux version 6.8.0-45-generic (buildd@lcy02) #45-Ubuntu SMP",
        );
        export_entry(
            &mut e,
            older + 3600.0,
            OLDER_BOOT,
            "NVRM: Xid (PCI:0000:9a:00): 79, pid=1234, name=python3, GPU has fallen off the bus.",
        );
        let prev = b - 2.0 * 86400.0;
        export_entry(
            &mut e,
            prev,
            PREVIOUS_BOOT,
            "Linux version 6.8.0-48-generic (buildd@lcy02) #48-Ubuntu SMP",
        );
        export_entry(
            &mut e,
            prev + 60.0,
            PREVIOUS_BOOT,
            "NVRM: Xid (PCI:0000:3b:00): 13, pid=42, name=python3, Graphics SM Warp Exception on (GPC 1, TPC 2, SM 0): Out Of Range Address",
        );
        export_entry(
            &mut e,
            b - 700.0,
            PREVIOUS_BOOT,
            "NVRM: Xid (PCI:0000:9a:00): 79, pid=4321, name=python3, GPU has fallen off the bus.",
        );
        export_entry(
            &mut e,
            b - 600.0,
            PREVIOUS_BOOT,
            "reboot: Restarting system",
        );
        let cur = CURRENT_BOOT.replace('-', "");
        export_entry(
            &mut e,
            b,
            &cur,
            "Linux version 6.8.0-48-generic (buildd@lcy02) #48-Ubuntu SMP",
        );
        export_entry(
            &mut e,
            b + 600.0,
            &cur,
            "NVRM: Xid (PCI:0000:3b:00): 31, pid=777, name=python3, Ch 00000010, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f_00000000. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ",
        );
        e
    }

    /// Text logs reaching further back than the journal: a boot six days ago in a rotated, gzipped
    /// file, and lines the journal also has in the newer files.
    fn text_logs(&self) {
        let b = self.boot_time;
        let old = b - 6.0 * 86400.0;
        self.gzip(
            "var/log/kern.log.2.gz",
            &format!(
                "{}\n{}\n",
                syslog_line(old, "[    0.000000] Linux version 6.8.0-40-generic (buildd@lcy02) #40-Ubuntu SMP"),
                syslog_line(old + 100.0, "[  100.000000] NVRM: Xid (PCI:0000:9a:00): 48, pid=99, name=python3, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0."),
            ),
        );
        self.write(
            "var/log/kern.log.1",
            &format!("{}\n", syslog_line(b - 700.0, "[172000.000000] NVRM: Xid (PCI:0000:9a:00): 79, pid=4321, name=python3, GPU has fallen off the bus.")),
        );
        self.write("var/log/kern.log", "");
        self.write("var/log/syslog", "");
    }

    fn xid(&self, args: &[&str]) -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_node-probe"))
            .arg("--host-root")
            .arg(self.path())
            .arg("xid")
            .args(args)
            .output()
            .expect("run node-probe");
        let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}): {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert!(out.status.success(), "{doc}");
        doc["xid"].clone()
    }
}

fn source<'a>(h: &'a Value, path: &str) -> &'a Value {
    h["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["path"] == path)
        .unwrap_or_else(|| panic!("no source {path}: {h:#}"))
}

fn finding<'a>(r: &'a Value, code: &str) -> &'a Value {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["code"] == code)
        .unwrap_or_else(|| panic!("no finding {code}: {:#}", r["findings"]))
}

fn gpu_count(r: &Value, pci: &str, code: u64) -> u64 {
    r["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["pci_bus_id"] == pci)
        .flat_map(|g| g["xids"].as_array().unwrap().clone())
        .filter(|c| c["code"] == code)
        .map(|c| c["count"].as_u64().unwrap())
        .sum()
}

#[test]
fn since_7d_reads_journal_and_text_logs_across_boots() {
    let h = Host::new();
    make_journal(
        &h.journal_export(),
        &h.path()
            .join(format!("var/log/journal/{MACHINE}/system.journal")),
    );
    h.text_logs();
    let r = h.xid(&["--since", "7d"]);
    let hist = &r["history"];

    // Sources: what was read, what was skipped, how far back each goes.
    let j = source(hist, "/var/log/journal");
    assert_eq!(j["status"], "read", "{j}");
    assert!(j["entries"].as_u64().unwrap() >= 6, "{j}");
    assert!(j["first"].is_string());
    assert_eq!(source(hist, "/run/log/journal")["status"], "missing");
    let gz = source(hist, "/var/log/kern.log.2.gz");
    assert_eq!(gz["status"], "read", "{gz}");
    assert_eq!(gz["entries"], 2, "{gz}");
    // kern.log.1 lies inside the journal's span: its line is the journal's, not taken twice.
    assert_eq!(source(hist, "/var/log/kern.log.1")["entries"], 0);
    assert_eq!(source(hist, "/var/log/syslog")["status"], "skipped");

    // Boots: the text log's, the two journal ones and the current one, oldest first.
    let boots = hist["boots"].as_array().unwrap();
    let ids: Vec<&Value> = boots.iter().map(|b| &b["boot_id"]).collect();
    assert_eq!(boots.len(), 4, "{boots:#?}");
    assert!(ids[0].is_null());
    assert_eq!(ids[1], OLDER_BOOT);
    assert_eq!(ids[2], PREVIOUS_BOOT);
    assert_eq!(boots[3]["current"], true);
    assert_eq!(hist["reboots_in_window"], 4);
    assert!(hist["note"].is_null());
    assert!(
        boots[2]["last_serious_event"]
            .as_str()
            .unwrap()
            .contains("Xid 79 on 0000:9a:00.0"),
        "{:#}",
        boots[2]
    );

    // How the previous boot ended, and the GPU that does it again: an RMA candidate.
    let prev = finding(&r, "history.previous_boot");
    let s = prev["summary"].as_str().unwrap();
    assert!(
        s.contains("Xid 79") && s.contains("0000:9a:00.0") && s.contains(PREVIOUS_BOOT),
        "{s}"
    );
    let rma = finding(&r, "history.repeat_offender");
    assert_eq!(rma["severity"], "critical");
    assert_eq!(rma["action"]["kind"], "rma");
    assert!(
        rma["summary"]
            .as_str()
            .unwrap()
            .contains("3 different boots"),
        "{rma:#}"
    );

    // The current boot is analysed as before: its Xid 31 once, though the journal has it too.
    assert_eq!(gpu_count(&r, "0000:3b:00.0", 31), 1);
    // Earlier boots' events are history, not this boot's per-GPU counts.
    assert_eq!(gpu_count(&r, "0000:9a:00.0", 79), 0);
    assert_eq!(gpu_count(&r, "0000:3b:00.0", 13), 0);
    assert_eq!(hist["events"], 4);
}

#[test]
fn no_history_answers_as_today_and_says_so() {
    let h = Host::new();
    let today = h.xid(&[]);
    assert!(
        today.get("history").is_none(),
        "no history without a window before this boot"
    );
    let r = h.xid(&["--since", "7d"]);
    assert_eq!(r["events"], today["events"]);
    assert_eq!(r["gpus"], today["gpus"]);
    let hist = &r["history"];
    assert!(
        hist["note"].as_str().unwrap().contains("no history found"),
        "{hist:#}"
    );
    assert_eq!(source(hist, "/var/log/journal")["status"], "missing");
    assert_eq!(source(hist, "/var/log")["status"], "missing");
    assert!(
        !r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["code"].as_str().unwrap().starts_with("history."))
    );
}

#[test]
fn volatile_journal_and_corrupt_tail() {
    let h = Host::new();
    let dir = h.path().join(format!("run/log/journal/{MACHINE}"));
    let file = dir.join("system.journal");
    make_journal(&h.journal_export(), &file);
    let good = std::fs::read(&file).unwrap();
    let used = good.iter().rposition(|b| *b != 0).unwrap() + 1;
    // A crash mid-write: the last bytes written are garbage (the entries before them still count) ...
    let mut bytes = good.clone();
    for b in &mut bytes[used - 200..used] {
        *b = 0xa5;
    }
    std::fs::write(&file, &bytes).unwrap();
    // ... and an older file cut short, which journalctl refuses and says so.
    std::fs::write(dir.join("system@0001.journal~"), &good[..used * 3 / 4]).unwrap();
    let r = h.xid(&["--history"]);
    let hist = &r["history"];
    let j = source(hist, "/run/log/journal");
    assert_eq!(j["status"], "partial", "{j:#}");
    assert!(
        j["message"].as_str().unwrap().contains("truncated"),
        "{j:#}"
    );
    assert!(j["entries"].as_u64().unwrap() >= 5, "{j:#}");
    let prev = finding(&r, "history.previous_boot");
    assert!(prev["summary"].as_str().unwrap().contains("0000:9a:00.0"));
}

#[test]
fn unreadable_gzip_is_reported_not_fatal() {
    let h = Host::new();
    h.write("var/log/kern.log.3.gz", "this is not gzip\n");
    h.write("var/log/kern.log", "");
    let r = h.xid(&["--history"]);
    let s = source(&r["history"], "/var/log/kern.log.3.gz");
    assert_eq!(s["status"], "corrupt", "{s:#}");
    assert!(s["message"].as_str().unwrap().contains("damaged"), "{s:#}");
}
