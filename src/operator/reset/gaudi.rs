//! An Intel Gaudi's hard reset, through the habanalabs driver's own interface: a write to the device's
//! `hard_reset` attribute (Linux 6.12 `drivers/accel/habanalabs/common/sysfs.c:226` `hard_reset_store`,
//! write-only, any number) calls `hl_device_reset(hdev, HL_DRV_RESET_HARD)`. That reset kills every
//! process that still has the device open ("Killing user process pid=%d", `common/device.c:1461`), so
//! the preflight refuses a device with a holder of its `/dev/accel/accel<n>` (or, before Linux 6.2,
//! `/dev/hl<n>`) and one a pod is assigned. Habana's device plugin names a device by HLML's serial, which
//! the driver's sysfs does not print: a `habana.ai/gaudi` assignment the probe cannot place is unknown
//! for every Gaudi of the node, which only a person may override.
//!
//! The reset is verified from the driver's own state, re-read: the device back at its PCI address with
//! the same module id and ASIC (and serial, where HLML read one), its `status` `Operational`, and its
//! `hard_reset_cnt` grown. The driver counts a failed hard reset too (`common/device.c:2017`) and then
//! leaves the device disabled, so the count alone proves nothing. The kernel's lines are quoted:
//! "Successfully finished resetting the <BDF> device" (`common/device.c:1974`) or "<BDF> Failed to reset!
//! Device is NOT usable" (`:2015`), which blocks.

use super::request::ResetRequest;
use crate::facts::{DeviceHoldersFacts, GpuFacts, KernelLogFacts, NodeFacts, Reading};
use crate::incident::platform::clean;
use crate::operator::scan::Said;
use crate::operator::{Check, PlanStep};

/// How long the reset may take before it is judged: the driver's reset waits for its processes to die
/// and re-initialises the device's firmware, inside the launcher's probe deadline (120 s by default).
pub const RESET_TIMEOUT_SECS: u64 = 60;

/// The status the driver prints for a usable device (`status_show`, the first letter upper-cased,
/// `common/sysfs.c:305-309`, of "operational", `common/habanalabs_drv.c:468`).
pub const OPERATIONAL: &str = "Operational";

/// The attribute a hard reset is asked through, relative to the host root, for the class device
/// `accel<n>` (Linux 6.2+: the attributes sit on the PCI device, `device/`) or `hl<n>` (older kernels,
/// on the class device itself). `None` for any other name.
pub fn hard_reset_file(class_dev: &str) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(n) = class_dev.strip_prefix("accel").filter(|n| digits(n)) {
        return Some(format!("sys/class/accel/accel{n}/device/hard_reset"));
    }
    class_dev
        .strip_prefix("hl")
        .filter(|n| digits(n))
        .map(|n| format!("sys/class/habanalabs/hl{n}/hard_reset"))
}

/// The device node its processes open: `/dev/accel/accel<n>`, or `/dev/hl<n>` before Linux 6.2.
fn device_node(class_dev: &str) -> Option<String> {
    if let Some(n) = class_dev.strip_prefix("accel") {
        return Some(format!("/dev/accel/accel{n}"));
    }
    class_dev.strip_prefix("hl").map(|n| format!("/dev/hl{n}"))
}

/// How the reset is shown and recorded: its shell form (it is a write to a sysfs file, no program).
pub fn reset_argv(file: &str) -> Vec<String> {
    super::vendor::sysfs_argv(file)
}

fn bdf(g: &GpuFacts) -> Option<&str> {
    g.pci_bus_id.ok().map(String::as_str)
}

fn class_dev(g: &GpuFacts) -> Option<&str> {
    g.gaudi
        .as_ref()
        .map(|x| x.device.as_str())
        .filter(|d| hard_reset_file(d).is_some())
}

/// The Gaudi preflight after `gpu_found` (and the pin): the driver's interface, its status, the
/// holders of its device node and the pods assigned it.
pub fn preflight(facts: &NodeFacts, g: &GpuFacts, req: &ResetRequest) -> Vec<Check> {
    let mut checks = Vec::new();
    let (Some(dev), Some(b)) = (class_dev(g), bdf(g)) else {
        checks.push(Check::block(
            "gpu_vendor",
            format!(
                "GPU {} is an Intel Gaudi whose habanalabs class device or PCI address was not read: its \
                 `hard_reset` file cannot be named. Intel's way: `hl-smi -r` on the node, after stopping \
                 its workloads",
                g.index
            ),
        ));
        return checks;
    };
    checks.push(Check::pass(
        "gpu_vendor",
        format!(
            "GPU {} is an Intel Gaudi ({dev} at {b}): reset through the habanalabs driver's own `hard_reset` \
             file, which kills any process still on the device",
            g.index
        ),
    ));
    checks.push(check_status(g));
    checks.extend(check_hung(g));
    checks.push(super::device_node::check(
        facts,
        g,
        &device_node(dev).unwrap_or_default(),
        req,
        "The driver's hard reset kills them",
        Some(HL_SMI),
    ));
    checks.extend(super::assigned::check_assignment(
        facts,
        g.index,
        req.override_unknown,
    ));
    if let Some(tool) = &req.tool {
        checks.push(match tool {
            Ok(t) => Check::pass("reset_tool", format!("will run `{t}`")),
            Err(why) => Check::block("reset_tool", why.clone()),
        });
    }
    checks
}

/// A device whose sysfs reads did not answer in time (its firmware hung, as the reader's error says):
/// the hard reset's store asks no firmware, so it is the remedy, named by discovery's identity.
fn check_hung(g: &GpuFacts) -> Option<Check> {
    let e = g.handle_error.as_ref()?;
    Some(Check::warn(
        "gaudi_firmware",
        format!(
            "the device's sysfs reads did not answer ({}): its firmware may be hung, which Intel's hard \
             reset is for (the `hard_reset` store asks no firmware). The device is named by its class \
             device and PCI address as discovered; its result is judged from the status read back",
            e.message.as_deref().map_or_else(
                || crate::analysis::error_name(e.error).to_string(),
                |m| clean(m, 160)
            )
        ),
    ))
}

/// A device already in a reset, or still being created, is left to the driver.
fn check_status(g: &GpuFacts) -> Check {
    const NAME: &str = "gaudi_status";
    let status = g.gaudi.as_ref().map(|x| &x.status);
    match status.and_then(|s| s.ok()).map(String::as_str) {
        Some(OPERATIONAL) => Check::pass(NAME, "the driver reads the device `Operational`"),
        Some(s @ ("In reset" | "In reset after device release" | "In device creation")) => {
            Check::block(
                NAME,
                format!(
                    "the driver reads the device `{s}`: it is resetting or initialising it already. Wait \
                     and read its status again (get_gpu_health); a device that stays there needs the node \
                     drained and rebooted"
                ),
            )
        }
        Some(s) => Check::pass(
            NAME,
            format!(
                "the driver reads the device `{}`: a hard reset is the driver's remedy",
                clean(s, 40)
            ),
        ),
        None => Check::warn(
            NAME,
            "the device's `status` was not read: the reset's result is judged from it afterwards",
        ),
    }
}

/// Intel's own monitor, named beside a holder: it holds the device as any tenant would.
const HL_SMI: (&str, &str) = ("hl-smi", "Intel's hl-smi, monitoring");

/// What the holder scan says of Gaudi `g` (its device node named from its class device).
pub(crate) fn said_on(
    facts: &NodeFacts,
    scan: &DeviceHoldersFacts,
    g: &GpuFacts,
    self_pid: Option<u32>,
) -> Said {
    let Some(node) = class_dev(g).and_then(device_node) else {
        return Said::Unknown(vec![
            "the device's habanalabs class device was not read, so its device node cannot be named"
                .into(),
        ]);
    };
    super::device_node::said_on(facts, scan, &node, self_pid, Some(HL_SMI))
}

pub fn steps(g: &GpuFacts) -> Vec<PlanStep> {
    let file = class_dev(g)
        .and_then(hard_reset_file)
        .unwrap_or_else(|| "sys/class/accel/accel<n>/device/hard_reset".into());
    vec![
        PlanStep::new(
            "reset",
            format!(
                "{} (the habanalabs driver's hard reset: it kills any process still on the device and \
                 re-initialises its firmware; up to {RESET_TIMEOUT_SECS} s)",
                reset_argv(&file).join(" ")
            ),
        ),
        PlanStep::new(
            "verify",
            "re-read the device from sysfs until its status reads Operational and its hard_reset_cnt has \
             grown, at the same PCI address with the same module id and ASIC; the kernel's reset lines \
             quoted",
        ),
    ]
}

/// Whether `after` shows the reset over (well or not): the device's count grown, or its status no longer
/// a reset's. The prober re-reads until this is true or its time is up.
pub fn settled(before: &GpuFacts, after: &NodeFacts) -> bool {
    let Some(a) = find(before, after) else {
        return false;
    };
    let count = |g: &GpuFacts| g.gaudi.as_ref().and_then(|x| x.hard_reset_count.get());
    let status = a.gaudi.as_ref().and_then(|x| x.status.ok().cloned());
    let grown = match (count(before), count(a)) {
        (Some(b), Some(n)) => n > b,
        // The count was not read before (the device's sysfs did not answer): its status alone tells.
        (None, Some(_)) => before.handle_error.is_some(),
        _ => false,
    };
    grown && status.as_deref().is_some_and(|s| !s.starts_with("In "))
}

fn find<'a>(before: &GpuFacts, after: &'a NodeFacts) -> Option<&'a GpuFacts> {
    let b = bdf(before)?;
    after
        .gpus
        .iter()
        .find(|a| a.vendor == crate::facts::GpuVendor::Intel && bdf(a) == Some(b))
}

/// Judge the device as re-read after the reset, and the kernel's lines since `log_before`.
pub fn verify(
    before: &GpuFacts,
    after: &NodeFacts,
    log_before: Option<&KernelLogFacts>,
    log_after: &Reading<KernelLogFacts>,
) -> Vec<Check> {
    let b = bdf(before).unwrap_or("?");
    let Some(a) = find(before, after) else {
        return vec![Check::block(
            "gpu_back",
            format!(
                "GPU {} ({b}) is not in the habanalabs driver's sysfs after the reset: drain the node and \
                 power-cycle it",
                before.index
            ),
        )];
    };
    let gx = |g: &GpuFacts| g.gaudi.clone().unwrap_or_default();
    let (was, now) = (gx(before), gx(a));
    let mut out = Vec::new();
    out.push(match now.status.ok().map(String::as_str) {
        Some(OPERATIONAL) => Check::pass(
            "gpu_back",
            format!(
                "GPU {} ({b}) reads `Operational` after the reset",
                before.index
            ),
        ),
        Some(s) => Check::block(
            "gpu_back",
            format!(
                "GPU {} ({b}) reads `{}` after the reset, not `Operational`: the device is not usable. \
                 Drain the node and reboot it; if it stays so, it is an RMA case for Intel",
                before.index,
                clean(s, 40)
            ),
        ),
        None => Check::block(
            "gpu_back",
            format!(
                "GPU {} ({b})'s status could not be read after the reset: that it is usable is not verified",
                before.index
            ),
        ),
    });
    out.push(
        match (was.hard_reset_count.get(), now.hard_reset_count.get()) {
            (Some(x), Some(y)) if y > x => Check::pass(
                "reset_counted",
                format!("the driver counted the hard reset: hard_reset_cnt {x} -> {y}"),
            ),
            (Some(x), Some(y)) => Check::block(
                "reset_counted",
                format!(
                    "the driver counted no hard reset: hard_reset_cnt {y} (was {x}): the reset is not \
                     verified"
                ),
            ),
            // Not read before (the device's sysfs did not answer: a hung firmware, for which the hard
            // reset is the remedy), read after: the count proves nothing alone, the status read back
            // `Operational` and the kernel's lines judge it.
            (None, Some(y)) if before.handle_error.is_some() => Check::warn(
                "reset_counted",
                format!(
                    "hard_reset_cnt {y} after the reset; it was not read before (the device's sysfs did not \
                     answer), so the count alone cannot show the reset: the status read back and the kernel's \
                     lines judge it"
                ),
            ),
            _ => Check::block(
                "reset_counted",
                "hard_reset_cnt could not be read before and after: that the driver reset the device is not \
                 verified",
            ),
        },
    );
    let mut same = Vec::new();
    let mut differs = Vec::new();
    let mut cmp = |what: &str, x: Option<String>, y: Option<String>| match (x, y) {
        (Some(x), Some(y)) if x == y => same.push(format!("{what} {x}")),
        (Some(x), Some(y)) => differs.push(format!("{what} {y} (was {x})")),
        (Some(x), None) => differs.push(format!("{what} unreadable (was {x})")),
        _ => {}
    };
    cmp(
        "module id",
        was.module_id.get().map(|m| m.to_string()),
        now.module_id.get().map(|m| m.to_string()),
    );
    cmp(
        "ASIC",
        was.device_type.ok().cloned(),
        now.device_type.ok().cloned(),
    );
    let serial_before = before.serial.ok().cloned();
    let serial_read = serial_before.is_some();
    cmp("serial", serial_before, a.serial.ok().cloned());
    out.push(if differs.is_empty() {
        Check::pass(
            "same_device",
            format!(
                "the same device: {}{}",
                same.join(", "),
                if serial_read {
                    ""
                } else {
                    " (its serial was not read: the driver's sysfs prints none)"
                }
            ),
        )
    } else {
        Check::block(
            "same_device",
            format!(
                "GPU {} ({b}) came back as another device: {}",
                before.index,
                differs.join(", ")
            ),
        )
    });
    out.push(check_kernel_log(b, log_before, log_after));
    out
}

/// At most this many kernel lines are quoted.
const MAX_QUOTED: usize = 8;

/// The habanalabs lines about `bdf` since the reset, quoted: a failure line blocks; none (or an
/// unreadable log) warns, since the driver's own status and count judge the reset.
fn check_kernel_log(
    bdf: &str,
    before: Option<&KernelLogFacts>,
    after: &Reading<KernelLogFacts>,
) -> Check {
    const NAME: &str = "kernel_log_reset";
    let after = match after {
        Reading::Ok(a) => a,
        Reading::Err(e) => {
            return Check::warn(
                NAME,
                format!(
                    "the kernel log could not be read after the reset ({}): the driver's status and count \
                     alone judge it",
                    crate::analysis::error_name(e.error)
                ),
            );
        }
    };
    let prefix = format!("habanalabs {bdf}: ");
    let mut quoted = Vec::new();
    let mut failed = false;
    let mut done = false;
    for text in super::kernel_lines::since(before, after) {
        let Some(said) = text.find(&prefix).map(|i| &text[i + prefix.len()..]) else {
            continue;
        };
        if said.contains("Failed to reset! Device is NOT usable") {
            failed = true;
        } else if said.starts_with("Successfully finished resetting the") {
            done = true;
        } else if !(said.contains("Hard-Reset requested")
            || said.starts_with("Going to reset device")
            || said.starts_with("Killing user process"))
        {
            continue;
        }
        if quoted.len() < MAX_QUOTED {
            quoted.push(format!("\"{}\"", clean(said.trim_end(), 120)));
        }
    }
    let lines = quoted.join(", ");
    if failed {
        Check::block(
            NAME,
            format!(
                "the kernel logged a failed reset: {lines}. The driver leaves the device disabled: drain the \
                 node and reboot it"
            ),
        )
    } else if done {
        Check::pass(NAME, format!("the kernel logged: {lines}"))
    } else if quoted.is_empty() {
        Check::warn(
            NAME,
            format!("the kernel log since the reset shows no habanalabs reset line for {bdf}"),
        )
    } else {
        Check::warn(
            NAME,
            format!("the kernel logged no success line for {bdf}, only: {lines}"),
        )
    }
}

#[cfg(test)]
mod tests;

/// Intel Gaudi behind the reset's seam.
pub struct Gaudi;

impl super::vendor::ResetVendor for Gaudi {
    fn preflight(&self, facts: &NodeFacts, g: &GpuFacts, req: &ResetRequest) -> Vec<Check> {
        preflight(facts, g, req)
    }
    fn steps(&self, _: &NodeFacts, g: &GpuFacts) -> Vec<PlanStep> {
        steps(g)
    }
    fn holders(
        &self,
        facts: &NodeFacts,
        scan: &DeviceHoldersFacts,
        g: &GpuFacts,
        self_pid: Option<u32>,
    ) -> Option<Said> {
        Some(said_on(facts, scan, g, self_pid))
    }
    fn sysfs(&self) -> Option<&dyn super::vendor::SysfsReset> {
        Some(self)
    }
}

impl super::vendor::SysfsReset for Gaudi {
    fn file(&self, g: &GpuFacts) -> Result<String, String> {
        let dev = g.gaudi.as_ref().map(|x| x.device.as_str()).unwrap_or("");
        hard_reset_file(dev).ok_or_else(|| {
            format!(
                "GPU {}'s habanalabs class device (`{}`) is not one whose reset file can be named",
                g.index,
                dev.escape_debug()
            )
        })
    }
    fn missing(&self) -> &'static str {
        "this driver offers no hard reset through sysfs; use Intel's `hl-smi -r` on the node"
    }
    fn timeout_secs(&self) -> u64 {
        RESET_TIMEOUT_SECS
    }
    fn settled(&self, before: &GpuFacts, after: &NodeFacts, _: std::time::Duration) -> bool {
        settled(before, after)
    }
    fn verify(
        &self,
        before: &GpuFacts,
        after: &NodeFacts,
        log_before: Option<&KernelLogFacts>,
        log_after: &Reading<KernelLogFacts>,
    ) -> Vec<Check> {
        verify(before, after, log_before, log_after)
    }
}
