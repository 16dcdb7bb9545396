//! The amdgpu grammar against the kernel's own format strings (`tests/kernel_log/amdgpu/kernel-formats.tsv`):
//! each message is rendered as the kernel prints it (printf arguments, the dev_printk/DRM/pr_fmt prefix)
//! and the analysis must report the listed event on the listed GPU, or nothing for a look-alike. Where the
//! kernel tree is present, each format must still stand verbatim at its cited line, so a reworded message
//! fails here rather than silently going unread.

use std::path::PathBuf;

use gpu_diag::kernel_log::report::{DecodedDetail, analyze};
use gpu_diag::options::AnalysisOptions;

use super::{dir, node};

#[path = "../support/kernel_formats.rs"]
mod harness;

use harness::{Misread, args, dmesg, opt, printf};

/// The PCI id the rendered dev_printk lines carry.
const PCI: &str = "0000:c1:00.0";

struct Row {
    kernel: String,
    cite: String,
    call: String,
    func: String,
    format: String,
    args: Vec<String>,
    event: Option<String>,
    gpu: Option<String>,
}

fn rows() -> Vec<Row> {
    let text = std::fs::read_to_string(dir().join("kernel-formats.tsv")).unwrap();
    harness::rows(&text, 8)
        .into_iter()
        .map(|c| Row {
            kernel: c[0].into(),
            cite: c[1].into(),
            call: c[2].into(),
            func: c[3].into(),
            format: c[4].into(),
            args: args(c[5]),
            event: opt(c[6]),
            gpu: opt(c[7]).map(|g| if g == "dev" { PCI.to_string() } else { g }),
        })
        .collect()
}

/// The line(s) the kernel prints for a row, behind a dmesg timestamp.
fn printed(r: &Row) -> Vec<String> {
    let msg = printf(&r.format, &r.args);
    let bodies = match r.call.as_str() {
        // amdgpu.h's dev_fmt adds `amdgpu: `; a Linux 7.0 log shows the device prefix alone.
        // Later kernels move such calls to drm_err/drm_info(adev_to_drm(adev), …), which print through
        // the same dev_printk with `[drm] ` (`[drm] *ERROR* `) first (include/drm/drm_print.h
        // `__drm_printk`): the device and the event must not change.
        "dev_err" | "dev_info" | "dev_warn" => vec![
            format!("amdgpu {PCI}: amdgpu: {msg}"),
            format!("amdgpu {PCI}: {msg}"),
            format!("amdgpu {PCI}: [drm] {msg}"),
            format!("amdgpu {PCI}: [drm] *ERROR* {msg}"),
        ],
        "drm_error" => vec![format!("[drm:{} [amdgpu]] *ERROR* {msg}", r.func)],
        "drm_warn" | "drm_info" => vec![format!("[drm] {msg}")],
        "pr_err" => vec![format!("amdgpu: {msg}")],
        "printk" => vec![msg],
        // FreeBSD's drm-kmod: linuxkpi's dev_printk is device_printf, the newbus name `drmn<unit>: `.
        "drmkmod" => vec![format!("drmn0: {msg}")],
        other => panic!("call {other} has no prefix here"),
    };
    bodies.iter().map(|b| dmesg(b)).collect()
}

#[test]
fn kernel_formats_read_as_the_listed_events() {
    let rows = rows();
    assert!(rows.len() >= 60, "{}", rows.len());
    let mut misread = Misread::default();
    for r in &rows {
        for line in printed(r) {
            misread.line();
            let facts = node(&[PCI], vec![line.clone()]);
            let rep = analyze(&facts, &AnalysisOptions::default());
            if let Some(off) = harness::one_judgment(&facts) {
                misread.push(format!(
                    "{} {}: {line:?} judged twice: {off}",
                    r.kernel, r.cite
                ));
            }
            let got: Vec<(Option<&str>, Option<&str>)> = rep
                .events
                .iter()
                .zip(&rep.event_details)
                .map(|(e, d)| {
                    let id = match &d.decoded {
                        Some(DecodedDetail::Amdgpu { event, .. }) => Some(event.as_str()),
                        _ => None,
                    };
                    (id, e.pci_bus_id.as_deref())
                })
                .collect();
            // Every reported id has its catalog entry (a mnemonic), so it has a severity and an action.
            if let Some(e) = rep.events.iter().find(|e| e.mnemonic.is_none()) {
                misread.push(format!(
                    "{} {}: {line:?} has no catalog entry: {e:?}",
                    r.kernel, r.cite
                ));
            }
            let want: Vec<(Option<&str>, Option<&str>)> = r
                .event
                .as_deref()
                .map(|e| (Some(e), r.gpu.as_deref()))
                .into_iter()
                .collect();
            misread.compare(&format!("{} {}", r.kernel, r.cite), &line, want, got);
        }
    }
    misread.assert_none();
}

/// Where each kernel tree is: its env var, else the cache directory the fetch scripts fill.
fn tree(kernel: &str) -> Option<PathBuf> {
    match kernel {
        "6.12" => harness::tree("K8S_GPU_MCP_LINUX_6_12", "linux-source-6.12"),
        "6.1" => harness::tree("K8S_GPU_MCP_LINUX_6_1", "linux-source-6.1"),
        _ => None,
    }
}

#[test]
fn kernel_formats_stand_verbatim_in_the_source() {
    let rows = rows();
    for kernel in ["6.12", "6.1"] {
        let Some(root) = tree(kernel).filter(|r| r.join("drivers/gpu/drm/amd").is_dir()) else {
            let fetch = if kernel == "6.1" {
                "tests/truth/fetch-linux-6.1.sh"
            } else {
                "tests/truth/fetch-upstream.sh"
            };
            super::gate::skip(&format!(
                "no Linux {kernel} tree at {} (set K8S_GPU_MCP_LINUX_{} or run {fetch}): the formats in \
                 kernel-formats.tsv were not checked against it",
                tree(kernel).map_or_else(|| "(no cache dir)".into(), |p| p.display().to_string()),
                kernel.replace('.', "_")
            ));
            continue;
        };
        let mut checked = 0;
        for r in rows.iter().filter(|r| r.kernel == kernel) {
            harness::assert_verbatim(kernel, &root, &r.cite, &r.format, "kernel-formats.tsv");
            checked += 1;
        }
        assert!(checked > 0, "no rows for Linux {kernel}");
        eprintln!(
            "Linux {kernel} at {}: {checked} formats verbatim",
            root.display()
        );
    }
}
