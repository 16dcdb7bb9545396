//! The NVIDIA Xid/SXid grammar against the driver's own print formats (`tests/kernel_log/nvidia/
//! open-gpu-kernel-formats.tsv`, taken from NVIDIA/open-gpu-kernel-modules at the commit it names: no
//! package registry serves that source). Each format is printed with printf-style arguments, behind a
//! dmesg timestamp, and the analysis must decode the kind, the number, the PCI address, the process, the
//! MIG attribution, the root-cause Xid and the SXid's device, link and fatality the row lists.

use gpu_diag::facts::{KernelLogFacts, NodeFacts, Reading};
use gpu_diag::kernel_log::contract::{DecodedDetail, EventKind};
use gpu_diag::kernel_log::report::analyze;
use gpu_diag::options::AnalysisOptions;

#[path = "../support/kernel_formats.rs"]
mod harness;

use harness::{Misread, args, dmesg, opt, printf};

const TSV: &str = include_str!("nvidia/open-gpu-kernel-formats.tsv");

fn node(lines: Vec<String>) -> NodeFacts {
    let mut f = NodeFacts::default();
    f.host.boot_time_unix = Reading::Ok(1_795_247_940.0);
    f.host.now_unix = Reading::Ok(1_795_262_400.0);
    f.kernel_log = Reading::Ok(KernelLogFacts {
        origin: "kmsg".into(),
        lines,
        truncated: false,
    });
    f
}

#[test]
fn open_gpu_kernel_module_formats_decode_as_printed() {
    let rows = harness::rows(TSV, 14);
    assert!(rows.len() >= 8, "{} rows", rows.len());
    let mut misread = Misread::default();
    for c in &rows {
        let num = |s: &str| opt(s).map(|v| v.parse::<u32>().expect("a number"));
        let line = dmesg(&printf(c[1], &args(c[2])));
        misread.line();
        let rep = analyze(&node(vec![line.clone()]), &AnalysisOptions::default());
        let [e] = rep.events.as_slice() else {
            misread.push(format!(
                "{}: {line:?} gave {} events",
                c[0],
                rep.events.len()
            ));
            continue;
        };
        let d = &rep.event_details[0];
        let kind = match c[3] {
            "xid" => EventKind::Xid,
            "sxid" => EventKind::Sxid,
            other => panic!("kind {other}"),
        };
        let sxid = match &d.decoded {
            Some(DecodedDetail::Sxid {
                device,
                fatal,
                link,
            }) => Some((device.clone(), *link, *fatal)),
            _ => None,
        };
        let want_sxid = (kind == EventKind::Sxid)
            .then(|| (opt(c[11]), num(c[12]), opt(c[13]).map(|f| f == "true")));
        let got = (
            e.kind,
            e.code,
            e.pci_bus_id.clone(),
            e.pid,
            e.process_name.clone(),
            e.gpu_instance_id,
            e.compute_instance_id,
            d.caused_by_xid,
            sxid,
        );
        let want = (
            kind,
            num(c[4]),
            opt(c[5]),
            num(c[6]),
            opt(c[7]),
            num(c[8]),
            num(c[9]),
            num(c[10]),
            want_sxid,
        );
        misread.compare(c[0], &line, want, got);
    }
    misread.assert_none();
}

/// Every catalog Xid, printed as the driver prints it (`nvErrorLog_va`'s `Xid (PCI:%s): %d, ...`, the
/// table's first row) on the GPU the node has there: each tool that names it gives it one severity and one
/// action (`harness::one_judgment`).
#[test]
fn every_catalog_xid_is_judged_once_across_tools() {
    use gpu_diag::facts::{GpuFacts, GpuVendor};
    let mut misread = Misread::default();
    for e in gpu_diag::kernel_log::nvidia_catalog::entries() {
        let code = e.code;
        let line = dmesg(&format!(
            "NVRM: Xid (PCI:0000:3b:00): {code}, pid=1234, name=python, Ch 00000008"
        ));
        misread.line();
        let mut f = node(vec![line.clone()]);
        f.gpus = vec![GpuFacts {
            index: 0,
            vendor: GpuVendor::Nvidia,
            name: Reading::Ok("NVIDIA H100 80GB HBM3".into()),
            pci_bus_id: Reading::Ok("00000000:3B:00.0".into()),
            ..GpuFacts::default()
        }];
        if let Some(off) = harness::one_judgment(&f) {
            misread.push(format!("Xid {code}: {line:?} judged twice: {off}"));
        }
    }
    misread.assert_none();
}
