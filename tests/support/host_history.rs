//! A host root with history for tests: a fake `/dev/kmsg` and `/proc` for the current boot, journal
//! files written by systemd's own `systemd-journal-remote` from export format, rotated and gzipped
//! kernel text logs. Shared by the probe's history tests and the launcher's.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

pub const JOURNAL_REMOTE: &str = "/lib/systemd/systemd-journal-remote";
pub const CURRENT_BOOT: &str = "3c1d2b4a-0000-4000-8000-00000000c0de";
pub const PREVIOUS_BOOT: &str = "22222222222222222222222222222222";
pub const OLDER_BOOT: &str = "11111111111111111111111111111111";
pub const MACHINE: &str = "0123456789abcdef0123456789abcdef";

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
pub fn make_journal(export: &str, file: &Path) {
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

#[path = "host_root.rs"]
mod host_root;
use host_root::HostRoot;

/// A host root (`path`, `write`, … through `Deref`) with a boot time and this boot's kernel log.
pub struct Host {
    root: HostRoot,
    boot_time: f64,
}

impl std::ops::Deref for Host {
    type Target = HostRoot;
    fn deref(&self) -> &HostRoot {
        &self.root
    }
}

impl Host {
    /// A host root booted an hour ago, whose `/dev/kmsg` holds this boot's messages.
    pub fn new() -> Host {
        let root = HostRoot::new();
        let boot_time = (now() - 3600.0).floor();
        let h = Host { root, boot_time };
        h.write(
            "proc/sys/kernel/random/boot_id",
            format!("{CURRENT_BOOT}\n"),
        );
        h.write(
            "proc/stat",
            format!("cpu  1 2 3 4\nbtime {}\nprocesses 9\n", boot_time as i64),
        );
        h.write(
            "dev/kmsg",
            "6,1,0,-;Linux version 6.8.0-48-generic (buildd@lcy02) #48-Ubuntu SMP\n\
             6,2,5000000,-;NVRM: loading NVIDIA UNIX x86_64 Kernel Module  570.133.20\n\
             4,3,600000000,-;NVRM: Xid (PCI:0000:3b:00): 31, pid=777, name=python3, Ch 00000010, intr 00000000. MMU Fault: ENGINE GRAPHICS GPCCLIENT_T1_0 faulted @ 0x7f_00000000. Fault is of type FAULT_PDE ACCESS_TYPE_VIRT_READ\n",
        );
        h
    }

    pub fn gzip(&self, rel: &str, text: &str) {
        let p = self.write(rel.trim_end_matches(".gz"), text);
        let st = Command::new("gzip").arg("-f").arg(&p).status().unwrap();
        assert!(st.success());
    }

    /// Two earlier boots in the journal, both with the GPU at 9a:00 falling off the bus (Xid 79), plus
    /// this boot's first messages (which `/dev/kmsg` also has).
    pub fn journal_export(&self) -> String {
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
    pub fn text_logs(&self) {
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
            format!("{}\n", syslog_line(b - 700.0, "[172000.000000] NVRM: Xid (PCI:0000:9a:00): 79, pid=4321, name=python3, GPU has fallen off the bus.")),
        );
        self.write("var/log/kern.log", "");
        self.write("var/log/syslog", "");
    }
}
