//! `node-probe xid` with the host's history: real journal files written by systemd's own
//! `systemd-journal-remote` from export format, rotated and gzip-compressed kernel text logs, and a
//! fake `/dev/kmsg` for the current boot, all under a temporary host root.
//!
//! Needs `journalctl` (systemd) and `/lib/systemd/systemd-journal-remote` (Debian's
//! systemd-journal-remote); `.ci/run` installs them.

#[path = "../support/host_history.rs"]
mod host_history;
#[path = "../support/node_probe.rs"]
mod node_probe;

use host_history::*;
use node_probe::NodeProbe;
use serde_json::Value;

fn xid(h: &Host, args: &[&str]) -> Value {
    let run = NodeProbe::new()
        .host_root(h.path())
        .arg("xid")
        .args(args)
        .document();
    assert_eq!(run.code, 0, "{}", run.doc);
    run.doc["xid"].clone()
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
    let r = xid(&h, &["--since", "7d"]);
    let hist = &r["history"];

    // Sources: what was read, what was skipped, how far back each goes.
    let j = source(hist, &format!("/var/log/journal/{MACHINE}"));
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
            // Named as every tool names the event (the kernel-log family's title).
            .contains("Xid 79 ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS (GPU has fallen off the bus) on 0000:9a:00.0"),
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
    let today = xid(&h, &[]);
    assert!(
        today.get("history").is_none(),
        "no history without a window before this boot"
    );
    let r = xid(&h, &["--since", "7d"]);
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
    let r = xid(&h, &["--history"]);
    let hist = &r["history"];
    let j = source(hist, &format!("/run/log/journal/{MACHINE}"));
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
    let r = xid(&h, &["--history"]);
    let s = source(&r["history"], "/var/log/kern.log.3.gz");
    assert_eq!(s["status"], "corrupt", "{s:#}");
    assert!(s["message"].as_str().unwrap().contains("damaged"), "{s:#}");
}
