//! The habanalabs (Intel Gaudi) grammar against the kernel's own format strings
//! (`tests/kernel_log/habanalabs/kernel-formats.tsv`): each message is rendered as Linux 6.12 prints it (printf
//! arguments, the dev_printk / gaudi2_print_event / pr_fmt prefix) and the analysis must report the listed
//! event on the listed device, or nothing for a look-alike. Where the kernel tree is present each format
//! must still stand verbatim at its cited line, and each firmware event name in the Gaudi 2 event table,
//! so a reworded message fails here rather than silently going unread.

use std::path::{Path, PathBuf};

use gpu_diag::facts::{GpuFacts, GpuVendor, KernelLogFacts, NodeFacts, Reading};
use gpu_diag::kernel_log::report::{DecodedDetail, EventKind, analyze};
use gpu_diag::options::AnalysisOptions;

#[path = "../support/gate.rs"]
mod gate;
#[path = "../support/kernel_formats.rs"]
mod harness;

use harness::{Misread, args, dmesg, opt, printf};

/// The device the rendered lines name, and a second one so attribution has a choice.
const PCI: &str = "0000:19:00.0";
const OTHER: &str = "0000:b3:00.0";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/kernel_log/habanalabs")
}

/// A node with two Gaudi devices.
fn node(lines: Vec<String>) -> NodeFacts {
    let mut f = NodeFacts::default();
    f.host.boot_time_unix = Reading::Ok(1_795_247_940.0);
    f.host.now_unix = Reading::Ok(1_795_862_400.0);
    f.gpus = [OTHER, PCI]
        .iter()
        .enumerate()
        .map(|(i, b)| GpuFacts {
            index: i as u32,
            vendor: GpuVendor::Intel,
            name: Reading::Ok("Intel Gaudi 2".into()),
            pci_bus_id: Reading::Ok((*b).to_string()),
            ..GpuFacts::default()
        })
        .collect();
    f.kernel_log = Reading::Ok(KernelLogFacts {
        origin: "test".into(),
        lines,
        truncated: false,
    });
    f
}

struct Row {
    kernel: String,
    cite: String,
    call: String,
    fw_event: Option<String>,
    format: String,
    args: Vec<String>,
    event: Option<String>,
    device: Option<String>,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(dir().join("kernel-formats.tsv")).unwrap();
    harness::rows(&text, 8)
        .into_iter()
        .map(|c| Row {
            kernel: c[0].into(),
            cite: c[1].into(),
            call: c[2].into(),
            fw_event: opt(c[3]),
            format: c[4].into(),
            // `PCI` stands for the device's address, which the rendered prefix names too.
            args: args(c[5])
                .into_iter()
                .map(|a| if a == "PCI" { PCI.into() } else { a })
                .collect(),
            event: opt(c[6]),
            device: opt(c[7]),
        })
        .collect()
}

/// The lines the kernel prints for a row, behind a dmesg timestamp, each with the device it names by
/// its prefix (None: the prefix names none).
fn printed(r: &Row) -> Vec<(String, bool)> {
    let msg = printf(&r.format, &r.args);
    let bodies = match r.call.as_str() {
        "dev_err"
        | "dev_err_ratelimited"
        | "dev_info"
        | "dev_info_ratelimited"
        | "dev_warn"
        | "dev_notice"
        | "dev_crit"
        | "dev_dbg" => vec![
            (format!("habanalabs {PCI}: {msg}"), true),
            // drivers/misc/habanalabs (before Linux 6.2): hdev->dev was the `hl<N>` char device.
            (format!("habanalabs hl1: {msg}"), false),
        ],
        "gaudi2_print_event" => {
            let name = r
                .fw_event
                .as_deref()
                .expect("gaudi2_print_event names its event");
            vec![(format!("habanalabs {PCI}: {name}: {msg}"), true)]
        }
        "pr_err" => vec![(format!("habanalabs: {msg}"), false)],
        other => panic!("call {other} has no prefix here"),
    };
    bodies
        .into_iter()
        .map(|(b, dev)| (dmesg(&b), dev))
        .collect()
}

/// What the analysis made of one line: (catalog id, PCI address).
fn read(
    line: &str,
) -> (
    Vec<(String, Option<String>)>,
    gpu_diag::kernel_log::report::XidReport,
) {
    let rep = analyze(&node(vec![line.to_string()]), &AnalysisOptions::default());
    let got = rep
        .events
        .iter()
        .zip(&rep.event_details)
        .filter(|(e, _)| e.kind == EventKind::Habanalabs)
        .map(|(e, d)| {
            let id = match &d.decoded {
                Some(DecodedDetail::Habanalabs { event, .. }) => event.clone(),
                other => panic!("a habanalabs event decoded as {other:?}"),
            };
            (id, e.pci_bus_id.clone())
        })
        .collect();
    (got, rep)
}

#[test]
fn kernel_formats_read_as_the_listed_events_on_the_device() {
    let rows = rows();
    assert!(rows.len() >= 60, "{}", rows.len());
    let mut misread = Misread::default();
    for r in &rows {
        for (line, prefix_names_device) in printed(r) {
            misread.line();
            let (got, rep) = read(&line);
            if let Some(off) = harness::one_judgment(&node(vec![line.clone()])) {
                misread.push(format!("{}: {line:?} judged twice: {off}", r.cite));
            }
            if rep.events.len() != got.len() {
                misread.push(format!(
                    "{}: {line:?} read as another vendor's: {:?}",
                    r.cite, rep.events
                ));
            }
            // Every reported event has its catalog entry, so a severity and an action in Intel's words.
            for (e, d) in rep.events.iter().zip(&rep.event_details) {
                if e.mnemonic.is_none() || d.severity.is_none() || d.action.is_none() {
                    misread.push(format!(
                        "{}: {line:?} has no catalog entry or class: {e:?} {d:?}",
                        r.cite
                    ));
                }
            }
            let device = match r.device.as_deref() {
                Some("dev") if prefix_names_device => Some(PCI.to_string()),
                Some("msg") => Some(PCI.to_string()),
                _ => None,
            };
            let want: Vec<(String, Option<String>)> = r
                .event
                .iter()
                .map(|e| (e.clone(), device.clone()))
                .collect();
            misread.compare(&r.cite, &line, want, got);
        }
    }
    misread.assert_none();
}

#[test]
fn the_device_in_the_prefix_is_the_one_attributed() {
    // The second device of the node, not the first: attribution follows the prefix's PCI address.
    let (got, rep) =
        read("[ 5.0] habanalabs 0000:19:00.0: Device heartbeat failed! PCI link is broken");
    assert_eq!(
        got,
        vec![("heartbeat_failed".to_string(), Some(PCI.to_string()))]
    );
    let f = rep
        .findings
        .iter()
        .find(|f| f.code == "habanalabs.heartbeat")
        .unwrap_or_else(|| panic!("{:#?}", rep.findings));
    assert_eq!(f.gpu, Some(1), "{f:?}");
    assert_eq!(f.severity, gpu_diag::finding::Severity::Critical);
    // The link broken: the device fell off the bus, which a reset cannot reach.
    assert_eq!(
        f.action.kind,
        gpu_diag::finding::ActionKind::CheckMechanicals,
        "{f:?}"
    );
    // A DERR's action names Intel's reset on that device.
    let (_, rep) = read(
        "[ 6.0] habanalabs 0000:b3:00.0: HBM_0_MC0_ECC_DERR: ECC error detected. address: 0x1f00. Syndrome: 0x3. wrapper id 2. block id 0x10. critical 1.",
    );
    let f = rep
        .findings
        .iter()
        .find(|f| f.code == "habanalabs.ecc_derr")
        .unwrap();
    assert_eq!(f.gpu, Some(0));
    assert!(
        f.action.detail.contains("hl-smi -r -i 0000:b3:00.0"),
        "{f:?}"
    );
}

#[test]
fn look_alike_lines_are_not_events() {
    for line in [
        // Another driver's device with the same words.
        "[ 1.0] mlx5_core 0000:19:00.0: Going to reset device",
        "[ 1.0] amdgpu 0000:19:00.0: amdgpu: Device heartbeat failed! PCI link is broken",
        // The driver's name without its prefix shape, or words around the message.
        "[ 1.0] habanalabs 0000:19:00.0 Going to reset device",
        "[ 1.0] habanalabs 0000:19:00.0: Going to reset device soon",
        "[ 1.0] habanalabs 0000:19:00.0: Device heartbeat failed! PCI link is unknown",
        "[ 1.0] habanalabs 0000:19:00.0: ECC error detected. address: 0x10. Syndrome: 0x3. wrapper id 2. critical 1.",
        "[ 1.0] habanalabs 0000:19:00.0: TPC0_QM: ECC error detected. address: 0x10",
        "[ 1.0] habanalabs 0000:19:00.0: TPC0_QM: 123",
        "[ 1.0] habanalabs: Going to reset device",
        "[ 1.0] habanalabs 0000:19:00.0: READ ERROR count: ECC SERR: x, ECC DERR: 1, RD_PARITY: 0",
        "[ 1.0] habanalabs 0000:19:00.0: Device boot error -",
        "[ 1.0] someuser: habanalabs 0000:19:00.0: Going to reset device",
    ] {
        let (got, rep) = read(line);
        assert!(
            got.is_empty() && rep.events.is_empty(),
            "{line:?} read as {:?}",
            rep.events
        );
    }
}

/// Where the Linux 6.12 tree is: its env var, else the cache directory tests/truth/fetch-upstream.sh fills.
fn tree() -> Option<PathBuf> {
    harness::tree("K8S_GPU_MCP_LINUX_6_12", "linux-source-6.12")
}

#[test]
fn kernel_formats_stand_verbatim_in_the_source() {
    let Some(root) = tree().filter(|r| r.join("drivers/accel/habanalabs").is_dir()) else {
        gate::skip(&format!(
            "no Linux 6.12 tree with drivers/accel/habanalabs at {} (set K8S_GPU_MCP_LINUX_6_12 or run \
             tests/truth/fetch-upstream.sh): the formats in habanalabs/kernel-formats.tsv were not checked",
            tree().map_or_else(|| "(no cache dir)".into(), |p| p.display().to_string())
        ));
        return;
    };
    let mut checked = 0;
    for r in rows().iter().filter(|r| r.kernel == "6.12") {
        harness::assert_verbatim(
            "6.12",
            &root,
            &r.cite,
            &r.format,
            "habanalabs/kernel-formats.tsv",
        );
        checked += 1;
    }
    // The prefix gaudi2_print_event puts before every Gaudi 2 event message, and each event name the
    // table uses, as the driver's event table spells it.
    for cite in [
        "drivers/accel/habanalabs/gaudi2/gaudi2.c:7870",
        "drivers/accel/habanalabs/gaudi2/gaudi2.c:7874",
    ] {
        assert!(
            harness::line_at(&root, cite).contains(r#""%s: %pV\n""#),
            "{cite}"
        );
    }
    let names = std::fs::read_to_string(
        root.join("drivers/accel/habanalabs/include/gaudi2/gaudi2_async_ids_map_extended.h"),
    )
    .unwrap();
    for n in rows().iter().filter_map(|r| r.fw_event.as_deref()) {
        assert!(
            names.contains(&format!(".name = \"{n}\"")),
            "no Gaudi 2 event named {n}"
        );
    }
    // The prefixes: hdev->dev is the PCI device and the PCI driver is named HL_NAME, "habanalabs".
    let drv =
        std::fs::read_to_string(root.join("drivers/accel/habanalabs/common/habanalabs_drv.c"))
            .unwrap();
    assert!(
        drv.contains("hdev->dev = hdev->drm.dev;"),
        "hdev->dev is no longer the PCI device"
    );
    let h =
        std::fs::read_to_string(root.join("drivers/accel/habanalabs/common/habanalabs.h")).unwrap();
    assert!(
        h.contains("#define HL_NAME\t\t\t\t\"habanalabs\""),
        "HL_NAME changed"
    );
    eprintln!(
        "Linux 6.12 at {}: {checked} habanalabs formats verbatim",
        root.display()
    );
}
