//! The habanalabs driver's line grammar (Intel Gaudi): resets (start, done, failed, stopped), init
//! failure, heartbeat failures, firmware boot and security errors, ECC (SERR/DERR) and HBM errors, RAZWI,
//! MMU page faults, PCIe errors, CPLD shutdowns and thermal throttling. Formats from Linux 6.12's
//! `drivers/accel/habanalabs` (each with its file:line in `tests/kernel_log/habanalabs/kernel-formats.tsv`, which
//! a test renders and checks against that source); what each means lives in `kernel_log/habanalabs_catalog.rs`.
//!
//! Prefixes, as the kernel prints them: in 6.12 `hdev->dev` is the PCI device (`habanalabs_drv.c:462`,
//! `hdev->dev = hdev->drm.dev`), so `dev_err`/`dev_err_ratelimited` read `habanalabs dddd:bb:dd.f: <msg>`
//! (the PCI driver's name `HL_NAME`, `habanalabs.h:37`); the control device `hdev->dev_ctrl`
//! (`device.c:748`, class `accel`) prints `accel accel_controlD<N>: `; kernels before the accel move
//! (drivers/misc/habanalabs) printed `habanalabs hl<N>: `; `pr_err` prints `habanalabs: ` (pr_fmt,
//! `device.c:8`). Gaudi 2's events go through `gaudi2_print_event` (`gaudi2.c:7859`), which puts the
//! firmware event's name first: `habanalabs <pci>: TPC0_ECC_DERR: ECC error detected. …`.
//!
//! Total like the other grammars: any input yields "not a habanalabs line" rather than a panic, and the
//! driver's own wording must be present. Intel Gaudi 3's driver is not in Linux 6.12 (it ships out of
//! tree with Intel's software); where it reuses these common messages they read the same.

use std::sync::LazyLock;

use regex::Regex;

use super::nvidia_lines::{MAX_FIELD_CHARS, MAX_MESSAGE_CHARS, clip, clip_to};
use crate::pci::normalize_bus_id;

/// One recognised habanalabs record.
#[derive(Debug, Clone, PartialEq)]
pub struct HlLine {
    /// The event's id in the habanalabs catalog.
    pub event: &'static str,
    /// The device's PCI address, from the dev_printk prefix or the message itself.
    pub pci: Option<String>,
    /// The device as the prefix named it where that was no PCI address (`hl0`, `accel_controlD0`).
    pub device: Option<String>,
    /// Gaudi 2's firmware event name (`TPC0_ECC_DERR`), where the line carried one.
    pub source_event: Option<String>,
    /// What the line says beyond its kind: the boot error's reason, the RAZWI's initiator, the PCI link's
    /// state, the reset's reason.
    pub what: Option<String>,
    /// A fault's or an ECC error's address (hex, as printed).
    pub address: Option<String>,
    /// The message, prefix dropped, bounded.
    pub text: String,
}

/// A cheap test before the regexes: the driver's name or its control device's class leads the record.
pub fn may_be_habanalabs(text: &str) -> bool {
    text.contains("habanalabs") || text.contains("accel accel")
}

static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:habanalabs (?P<pci>[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])|habanalabs (?P<hl>hl\d{1,4})|accel (?P<accel>accel(?:_controlD)?\d{1,4})|(?P<pr>habanalabs)): (?P<msg>.*)$",
    )
    .unwrap()
});

/// Gaudi 2's event prefix: the name of the firmware event (`gaudi2_async_ids_map_extended.h`), or the
/// driver's `N/A Event` for an unnamed one.
static EVENT_NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?P<name>[A-Z][A-Z0-9_]{1,63}|N/A Event): (?P<rest>.*)$").unwrap()
});

static ECC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^ECC error detected\. address: (?P<addr>0x[0-9a-fA-F]+|0)\. Syndrome: (?:0x[0-9a-fA-F]+|0)\. wrapper id \d+\.(?: block id (?:0x[0-9a-fA-F]+|0)\.)? critical (?P<crit>[01])\.$",
    )
    .unwrap()
});

static HBM_READ: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^READ ERROR count: ECC SERR: (?P<serr>\d+), ECC DERR: (?P<derr>\d+), RD_PARITY: \d+$",
    )
    .unwrap()
});

static HBM_BEAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Beat\d ECC (?P<kind>SERR|DERR): DM: (?:0x[0-9a-fA-F]+|0), Syndrome: (?:0x[0-9a-fA-F]+|0)$")
        .unwrap()
});

static HBM_SEI: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^System (?P<crit>Critical|Non-critical) Error Interrupt - HBM\(\d+\) MC\(\d+\) MC_CH\(\d+\) MC_PC\(\d+\)\. Error cause: (?P<cause>.+)$",
    )
    .unwrap()
});

static RAZWI_RR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<who>[A-Za-z0-9_]+)-RAZWI SHARED RR (?:HBW (?:WR|RD) error, address (?P<addr>0x[0-9a-fA-F]+|0), Initiator coordinates 0x[0-9a-fA-F]+|LBW (?:WR|RD) error, mstr_if 0x[0-9a-fA-F]+, captured address 0x[0-9a-fA-F]+ Initiator coordinates 0x[0-9a-fA-F]+)$",
    )
    .unwrap()
});

static RAZWI_PSOC: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^PSOC (?:[HL]BW A[RW] RAZWI: (?P<who>.+), address \(aligned to 128 byte\): 0x(?P<addr>[0-9a-fA-F]+)|RAZWI interrupt: (?:Mask \d+, AR \d+, AW \d+, AXUSER_L 0x[0-9a-fA-F]+ AXUSER_H 0x[0-9a-fA-F]+|invalid razwi info \(0x[0-9a-fA-F]+\)))$",
    )
    .unwrap()
});

static PAGE_FAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:(?P<mmu>PMMU|MMU) page fault on va (?P<va>0x[0-9a-fA-F]+|0)|HMMU page fault on va range (?P<lo>0x[0-9a-fA-F]+|0) - (?:0x[0-9a-fA-F]+|0)|(?P<acc>PMMU|HMMU|MMU) access error on va (?P<ava>0x[0-9a-fA-F]+|0))$",
    )
    .unwrap()
});

static BOOT_ERROR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Device boot (?P<kind>error|warning) - (?P<why>.+)$").unwrap());

static RESET_DONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Successfully finished resetting the (?P<pci>\S+) device$").unwrap()
});

static RESET_FAILED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(?P<pci>\S+) Failed to reset! Device is NOT usable$").unwrap());

static RESET_STOPPED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?P<pci>\S+) (?P<why>Failed to kill all open processes|Consecutive fatal errors), stopping hard reset$",
    )
    .unwrap()
});

static INIT_FAILED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Failed to initialize accel\d+\. Device (?P<pci>\S+) is NOT usable!$").unwrap()
});

static ADDED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Successfully added device (?P<pci>\S+) to habanalabs driver$").unwrap()
});

static HEARTBEAT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Device heartbeat failed! PCI link is (?P<link>healthy|broken)$").unwrap()
});

static CPLD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^CPLD shutdown (?P<kind>event|cause), reset reason: (?P<why>0x[0-9a-fA-F]+|0)$")
        .unwrap()
});

static PCIE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:pcie p2p transaction terminated due to security, req_id\(0x[0-9a-fA-F]+\)|pcie msi-x gen denied due to vector num check failure, vec\(0x[0-9a-fA-F]+\))$",
    )
    .unwrap()
});

static KILLING: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^Killing user process pid=\d+$").unwrap());

fn pci_of(s: &str) -> Option<String> {
    normalize_bus_id(s)
}

/// What one record says, if it is a habanalabs line this grammar knows.
pub fn parse_habanalabs(text: &str) -> Option<HlLine> {
    // A record is one line; a multi-line one (continuations joined) is read by its first line.
    let first = text.lines().next()?.trim();
    if first.len() > MAX_MESSAGE_CHARS {
        return None;
    }
    let c = PREFIX.captures(first)?;
    let prefix_pci = c.name("pci").and_then(|m| pci_of(m.as_str()));
    let device = c
        .name("hl")
        .or_else(|| c.name("accel"))
        .map(|m| m.as_str().to_string());
    let pr_only = c.name("pr").is_some();
    let msg = c.name("msg")?.as_str().trim_end();

    let mut line = HlLine {
        event: "",
        pci: prefix_pci,
        device,
        source_event: None,
        what: None,
        address: None,
        text: clip(msg),
    };
    // `pr_err` names no device in its prefix: only its own init-failure message is an event.
    if pr_only {
        let m = INIT_FAILED.captures(msg)?;
        line.event = "init_failed";
        line.pci = pci_of(&m["pci"]);
        return Some(line);
    }

    // Gaudi 2's firmware events carry their name first.
    let (name, body) = match EVENT_NAME.captures(msg) {
        Some(m) => (
            Some(m.name("name")?.as_str()),
            m.name("rest").map_or("", |r| r.as_str()),
        ),
        None => (None, msg),
    };
    if let Some(n) = name {
        if let Some(m) = ECC.captures(body) {
            let critical = &m["crit"] == "1";
            // The event's name says SERR or DERR (`*_ECC_DERR`, `PCIE_CORE_DERR`); a name that says
            // neither is judged by the line's own `critical` flag.
            let derr = n.ends_with("DERR") || (!n.ends_with("SERR") && critical);
            line.event = if derr { "ecc_derr" } else { "ecc_serr" };
            line.source_event = Some(clip_to(n, MAX_FIELD_CHARS));
            line.address = Some(m["addr"].to_string());
            return Some(line);
        }
        if let Some(m) = HBM_SEI.captures(body) {
            line.event = if &m["crit"] == "Critical" {
                "hbm_sei_critical"
            } else {
                "hbm_sei"
            };
            line.source_event = Some(clip_to(n, MAX_FIELD_CHARS));
            line.what = Some(clip_to(&m["cause"], MAX_FIELD_CHARS));
            return Some(line);
        }
        if PCIE.is_match(body) {
            line.event = "pcie_error";
            line.source_event = Some(clip_to(n, MAX_FIELD_CHARS));
            return Some(line);
        }
        // Other firmware events (engine errors, QMAN errors, …) are not claimed: their wording is the
        // cause table of each block, too wide to claim line by line here.
        return None;
    }

    if let Some(m) = HBM_READ.captures(msg) {
        let derr: u64 = m["derr"].parse().unwrap_or(0);
        let serr: u64 = m["serr"].parse().unwrap_or(0);
        line.event = if derr > 0 {
            "hbm_ecc_derr"
        } else if serr > 0 {
            "hbm_ecc_serr"
        } else {
            "hbm_read_error"
        };
        return Some(line);
    }
    if let Some(m) = HBM_BEAT.captures(msg) {
        line.event = if &m["kind"] == "DERR" {
            "hbm_beat_derr"
        } else {
            "hbm_beat_serr"
        };
        return Some(line);
    }
    if let Some(m) = RAZWI_RR.captures(msg) {
        line.event = "razwi";
        line.what = Some(clip_to(&m["who"], MAX_FIELD_CHARS));
        line.address = m.name("addr").map(|a| a.as_str().to_string());
        return Some(line);
    }
    if let Some(m) = RAZWI_PSOC.captures(msg) {
        line.event = "razwi";
        line.what = m.name("who").map(|w| clip_to(w.as_str(), MAX_FIELD_CHARS));
        line.address = m.name("addr").map(|a| format!("0x{}", a.as_str()));
        return Some(line);
    }
    if let Some(m) = PAGE_FAULT.captures(msg) {
        line.event = "mmu_page_fault";
        line.what = Some(
            m.name("mmu")
                .or_else(|| m.name("acc"))
                .map_or("HMMU", |x| x.as_str())
                .to_string(),
        );
        line.address = m
            .name("va")
            .or_else(|| m.name("lo"))
            .or_else(|| m.name("ava"))
            .map(|a| a.as_str().to_string());
        return Some(line);
    }
    if let Some(m) = BOOT_ERROR.captures(msg) {
        let why = &m["why"];
        line.event = if why.starts_with("security") {
            if &m["kind"] == "warning" {
                "fw_security_not_ready"
            } else {
                "fw_security_error"
            }
        } else if &m["kind"] == "error" {
            "fw_boot_error"
        } else {
            "fw_boot_warning"
        };
        line.what = Some(clip_to(why, MAX_FIELD_CHARS));
        return Some(line);
    }
    if let Some(m) = RESET_DONE.captures(msg) {
        line.event = "reset_done";
        line.pci = line.pci.or_else(|| pci_of(&m["pci"]));
        return Some(line);
    }
    if let Some(m) = RESET_FAILED.captures(msg) {
        line.event = "reset_failed";
        line.pci = line.pci.or_else(|| pci_of(&m["pci"]));
        return Some(line);
    }
    if let Some(m) = RESET_STOPPED.captures(msg) {
        line.event = "reset_stopped";
        line.pci = line.pci.or_else(|| pci_of(&m["pci"]));
        line.what = Some(m["why"].to_string());
        return Some(line);
    }
    if let Some(m) = ADDED.captures(msg) {
        line.event = "device_added";
        line.pci = line.pci.or_else(|| pci_of(&m["pci"]));
        return Some(line);
    }
    if let Some(m) = HEARTBEAT.captures(msg) {
        line.event = "heartbeat_failed";
        line.what = Some(format!("PCI link {}", &m["link"]));
        return Some(line);
    }
    if let Some(m) = CPLD.captures(msg) {
        line.event = if &m["kind"] == "event" {
            "cpld_shutdown"
        } else {
            "cpld_shutdown_cause"
        };
        line.what = Some(m["why"].to_string());
        return Some(line);
    }
    if KILLING.is_match(msg) {
        line.event = "process_killed";
        return Some(line);
    }
    line.event = match msg {
        "Going to reset device" => "reset_start",
        "Performing hard reset scheduled during compute reset" => "reset_start",
        "Failed to do compute reset" | "Failed to reset device after user release" => {
            "compute_reset_failed"
        }
        "EQ heartbeat event was not received!" => "eq_heartbeat_missed",
        "FW reported EQ fault during heartbeat" => "fw_eq_fault",
        "Clock throttling due to overheating" => "thermal_throttle",
        "Thermal envelop is safe, back to optimal clock" => "thermal_safe",
        _ => return None,
    };
    if line.event == "reset_start" && msg.starts_with("Performing") {
        line.what = Some("scheduled during compute reset".into());
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_name_the_device() {
        let l = parse_habanalabs("habanalabs 0000:19:00.0: Going to reset device").unwrap();
        assert_eq!(
            (l.event, l.pci.as_deref()),
            ("reset_start", Some("0000:19:00.0"))
        );
        let l = parse_habanalabs("habanalabs hl3: Going to reset device").unwrap();
        assert_eq!((l.pci, l.device.as_deref()), (None, Some("hl3")));
        let l = parse_habanalabs(
            "habanalabs: Failed to initialize accel2. Device 0000:b3:00.0 is NOT usable!",
        )
        .unwrap();
        assert_eq!(
            (l.event, l.pci.as_deref()),
            ("init_failed", Some("0000:b3:00.0"))
        );
        // pr_fmt's prefix alone makes no other event.
        assert!(parse_habanalabs("habanalabs: Going to reset device").is_none());
    }

    #[test]
    fn ecc_names_say_serr_or_derr() {
        let d = parse_habanalabs("habanalabs 0000:19:00.0: HBM_0_MC0_ECC_DERR: ECC error detected. address: 0x1f00. Syndrome: 0x3. wrapper id 2. block id 0x10. critical 0.").unwrap();
        assert_eq!(d.event, "ecc_derr");
        assert_eq!(d.source_event.as_deref(), Some("HBM_0_MC0_ECC_DERR"));
        let s = parse_habanalabs("habanalabs 0000:19:00.0: TPC0_ECC_SERR: ECC error detected. address: 0x1f00. Syndrome: 0x3. wrapper id 2. critical 0.").unwrap();
        assert_eq!(s.event, "ecc_serr");
        let n = parse_habanalabs("habanalabs 0000:19:00.0: N/A Event: ECC error detected. address: 0x1f00. Syndrome: 0x3. wrapper id 2. critical 1.").unwrap();
        assert_eq!(n.event, "ecc_derr");
    }

    #[test]
    fn garbage_and_huge_lines_are_not_events() {
        assert!(parse_habanalabs("").is_none());
        assert!(parse_habanalabs("habanalabs").is_none());
        let long = format!("habanalabs 0000:19:00.0: {}", "A".repeat(100_000));
        assert!(parse_habanalabs(&long).is_none());
        assert!(parse_habanalabs("habanalabs 0000:19:00.0: Going to reset device now").is_none());
    }
}
