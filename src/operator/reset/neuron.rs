//! An AWS Neuron device's reset, through the neuron driver's own `reset` attribute
//! (aws-neuron/aws-neuron-driver fca19f7, `neuron_cdev.c:2979-2993`, mode 0600): a write of anything
//! queues a reset of the whole device (`nr_start_ncs(..., NEURON_RESET_REQUEST_ALL)`), but only when no
//! process holds `/dev/neuron<N>` open (`open_count == 0`); otherwise the write is silently ignored.
//! So the preflight refuses a device with a holder, and the reset is never judged from the state
//! alone: an ignored write leaves a ready device reading ready.
//!
//! The reset is verified from the driver's own counters and state, read again: each NeuronCore's
//! `reset_req_count` grows as the request is queued, inside the write (`neuron_reset.c:267-278`, where
//! the state turns `0`, in reset); the reset thread then sets `1`, ready, or `2`, invalid, with
//! `reset_fail_count` grown (`:117-172`). The driver's `no_reset` parameter skips the reset and the
//! count (`:249-258`), which reads as not verified, as it should. Its lines are quoted: "nd<N>: reset
//! request <id> completed" or "... failed" (`:118-155`, `pr_info` under `pr_fmt` "neuron:<func>: ").

use super::request::ResetRequest;
use super::vendor::{ResetVendor, SysfsReset, sysfs_argv};
use crate::facts::neuron::{
    NEURON_DEVICE_STATE_INVALID, NEURON_DEVICE_STATE_READY, NEURON_DEVICE_STATE_RESET,
    NeuronGpuFacts,
};
use crate::facts::{DeviceHoldersFacts, GpuFacts, GpuVendor, KernelLogFacts, NodeFacts, Reading};
use crate::finding::ActionKind;
use crate::incident::platform::clean;
use crate::kernel_log::neuron_catalog::action_detail;
use crate::operator::scan::Said;
use crate::operator::{Check, PlanStep};
use std::time::Duration;

/// How long the driver's reset may take before it is judged: the reset thread asks the device's
/// firmware and waits for it (`nr_wait_for_reset_completion`), inside the launcher's probe deadline.
pub const RESET_TIMEOUT_SECS: u64 = 60;

/// How long after the write an uncounted request means the driver ignored it. The driver counts it
/// inside the write (`neuron_reset.c:278`), so 0 would do on a node; the margin lets a driver whose
/// counters trail the write (and the tests' own, which plays the driver from another thread) catch up,
/// and costs only a write that was ignored.
const IGNORED_AFTER: Duration = Duration::from_secs(2);

/// The driver's device index of a class device `neuron<N>`.
fn index_of(device: &str) -> Option<&str> {
    device
        .strip_prefix("neuron")
        .filter(|n| !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// The `reset` attribute of class device `neuron<N>`, relative to the host root (`None` for any other
/// name).
pub fn reset_file(device: &str) -> Option<String> {
    index_of(device).map(|n| format!("sys/class/neuron_device/neuron{n}/reset"))
}

fn neuron(g: &GpuFacts) -> Option<&NeuronGpuFacts> {
    g.neuron.as_ref().filter(|n| index_of(&n.device).is_some())
}

/// The requests the driver queued for the device: the sum over its NeuronCores (each counts every
/// device reset); `None` where one was not read.
fn requests(n: &NeuronGpuFacts) -> Option<u64> {
    if n.cores.is_empty() {
        return None;
    }
    n.cores.iter().map(|c| c.reset_req_count.get()).sum()
}

fn failures(n: &NeuronGpuFacts) -> Option<u64> {
    if n.cores.is_empty() {
        return None;
    }
    n.cores.iter().map(|c| c.reset_fail_count.get()).sum()
}

fn state_word(s: u32) -> &'static str {
    match s {
        NEURON_DEVICE_STATE_RESET => "in reset",
        NEURON_DEVICE_STATE_READY => "ready",
        NEURON_DEVICE_STATE_INVALID => "invalid",
        _ => "unknown",
    }
}

/// AWS Neuron behind the reset's seam.
pub struct Neuron;

impl ResetVendor for Neuron {
    fn preflight(&self, facts: &NodeFacts, g: &GpuFacts, req: &ResetRequest) -> Vec<Check> {
        let Some(n) = neuron(g) else {
            return vec![Check::block(
                "gpu_vendor",
                format!(
                    "GPU {} is an AWS Neuron device whose class device (neuron<N>) was not read: its \
                     `reset` file cannot be named. AWS's way: stop its workloads and reboot the node; \
                     `neuron-ls` shows the devices afterwards",
                    g.index
                ),
            )];
        };
        let dev = &n.device;
        let mut checks = vec![Check::pass(
            "gpu_vendor",
            format!(
                "GPU {} is an AWS Neuron device ({dev}): reset through the neuron driver's own `reset` \
                 file, which resets the whole device only when no process holds /dev/{dev} open",
                g.index
            ),
        )];
        checks.push(match n.device_state.get() {
            Some(NEURON_DEVICE_STATE_READY) => {
                Check::pass("neuron_state", "the driver reads the device ready (1)")
            }
            Some(NEURON_DEVICE_STATE_INVALID) => Check::pass(
                "neuron_state",
                "the driver reads the device invalid (2: its last reset failed): a reset is the \
                 driver's way back; if it fails again, the instance must move to other hardware",
            ),
            Some(NEURON_DEVICE_STATE_RESET) => Check::block(
                "neuron_state",
                "the driver is resetting the device now (0): wait and read it again (get_gpu_health); \
                 a device that stays in reset needs the node drained and rebooted",
            ),
            Some(s) => Check::block(
                "neuron_state",
                format!("the driver reads a state this tool does not know ({s}): not reset"),
            ),
            None => Check::warn(
                "neuron_state",
                "the device's `reset` state was not read: the reset's result is judged from it afterwards",
            ),
        });
        checks.push(match requests(n) {
            Some(c) => Check::pass(
                "reset_verifiable",
                format!(
                    "the driver's reset_req_count reads {c} over the device's {} NeuronCores: a reset \
                     it takes grows it",
                    n.cores.len()
                ),
            ),
            None => Check::block(
                "reset_verifiable",
                "the NeuronCores' reset_req_count was not read: whether the driver took the reset \
                 could not be verified (it ignores the write when the device is open), so none is run",
            ),
        });
        checks.push(super::device_node::check(
            facts,
            g,
            &format!("/dev/{dev}"),
            req,
            "The neuron driver ignores a reset of a device that is open",
            None,
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

    fn steps(&self, _: &NodeFacts, g: &GpuFacts) -> Vec<PlanStep> {
        let file = neuron(g)
            .and_then(|n| reset_file(&n.device))
            .unwrap_or_else(|| "sys/class/neuron_device/neuron<N>/reset".into());
        vec![
            PlanStep::new(
                "reset",
                format!(
                    "{} (the neuron driver queues a reset of the whole device and resets it through its \
                     firmware; up to {RESET_TIMEOUT_SECS} s)",
                    sysfs_argv(&file).join(" ")
                ),
            ),
            PlanStep::new(
                "verify",
                "re-read the device from sysfs until its NeuronCores' reset_req_count has grown and \
                 `reset` reads ready (1) or invalid (2), with the same serial; the kernel's reset lines \
                 quoted",
            ),
        ]
    }

    fn holders(
        &self,
        facts: &NodeFacts,
        scan: &DeviceHoldersFacts,
        g: &GpuFacts,
        self_pid: Option<u32>,
    ) -> Option<Said> {
        Some(match neuron(g) {
            Some(n) => super::device_node::said_on(
                facts,
                scan,
                &format!("/dev/{}", n.device),
                self_pid,
                None,
            ),
            None => Said::Unknown(vec![
                "the device's neuron class device was not read, so its device node cannot be named"
                    .into(),
            ]),
        })
    }

    fn sysfs(&self) -> Option<&dyn SysfsReset> {
        Some(self)
    }
}

fn find<'a>(before: &GpuFacts, after: &'a NodeFacts) -> Option<&'a GpuFacts> {
    let dev = &neuron(before)?.device;
    after.gpus.iter().find(|a| {
        a.vendor == GpuVendor::Neuron && a.neuron.as_ref().is_some_and(|n| &n.device == dev)
    })
}

impl SysfsReset for Neuron {
    fn file(&self, g: &GpuFacts) -> Result<String, String> {
        let dev = g.neuron.as_ref().map(|n| n.device.as_str()).unwrap_or("");
        reset_file(dev).ok_or_else(|| {
            format!(
                "GPU {}'s neuron class device (`{}`) is not one whose reset file can be named",
                g.index,
                dev.escape_debug()
            )
        })
    }

    fn missing(&self) -> &'static str {
        "this neuron driver has no `reset` attribute; stop the device's workloads and reboot the node \
         (`neuron-ls` shows the devices afterwards)"
    }

    fn timeout_secs(&self) -> u64 {
        RESET_TIMEOUT_SECS
    }

    /// Over when the driver took the write and its reset thread has left the reset state, or when no
    /// request was counted [`IGNORED_AFTER`] after the write.
    fn settled(&self, before: &GpuFacts, after: &NodeFacts, elapsed: Duration) -> bool {
        let (Some(b), Some(a)) = (neuron(before), find(before, after).and_then(neuron)) else {
            return false;
        };
        match (requests(b), requests(a)) {
            (Some(x), Some(y)) if y > x => a
                .device_state
                .get()
                .is_some_and(|s| s != NEURON_DEVICE_STATE_RESET),
            (Some(_), Some(_)) => elapsed >= IGNORED_AFTER,
            _ => false,
        }
    }

    fn verify(
        &self,
        before: &GpuFacts,
        after: &NodeFacts,
        log_before: Option<&KernelLogFacts>,
        log_after: &Reading<KernelLogFacts>,
    ) -> Vec<Check> {
        let Some(b) = neuron(before) else {
            return vec![Check::block(
                "gpu_back",
                "the device was not named before the reset",
            )];
        };
        let dev = &b.device;
        let Some(a) = find(before, after).and_then(neuron) else {
            return vec![Check::block(
                "gpu_back",
                format!(
                    "GPU {} ({dev}) is not in the neuron driver's sysfs after the reset: {}",
                    before.index,
                    action_detail(ActionKind::RebootNode, Some(dev))
                ),
            )];
        };
        let mut out = Vec::new();
        out.push(match (requests(b), requests(a)) {
            (Some(x), Some(y)) if y > x => Check::pass(
                "reset_taken",
                format!("the driver queued the reset: reset_req_count {x} -> {y}"),
            ),
            (Some(x), Some(_)) => Check::block(
                "reset_taken",
                format!(
                    "the driver queued no reset (reset_req_count still {x}): a process opened /dev/{dev} \
                     between the scan and the write, or the driver's `no_reset` parameter is set; the \
                     device was not reset"
                ),
            ),
            _ => Check::block(
                "reset_taken",
                "reset_req_count could not be read before and after: that the driver took the reset \
                 is not verified",
            ),
        });
        out.push(match a.device_state.get() {
            Some(NEURON_DEVICE_STATE_READY) => Check::pass(
                "gpu_back",
                format!("GPU {} ({dev}) reads ready (1) after the reset", before.index),
            ),
            Some(NEURON_DEVICE_STATE_INVALID) => Check::block(
                "gpu_back",
                format!(
                    "GPU {} ({dev}) reads invalid (2) after the reset: the driver's reset failed and it \
                     gave the device up. {}",
                    before.index,
                    action_detail(ActionKind::RebootNode, Some(dev))
                ),
            ),
            Some(s) => Check::block(
                "gpu_back",
                format!(
                    "GPU {} ({dev}) reads {} ({s}) {RESET_TIMEOUT_SECS} s after the reset: that it is \
                     usable is not verified",
                    before.index,
                    state_word(s)
                ),
            ),
            None => Check::block(
                "gpu_back",
                format!(
                    "GPU {} ({dev})'s state could not be read after the reset: that it is usable is \
                     not verified",
                    before.index
                ),
            ),
        });
        if let (Some(x), Some(y)) = (failures(b), failures(a))
            && y > x
        {
            out.push(Check::block(
                "reset_failed_count",
                format!("the driver counted a failed reset: reset_fail_count {x} -> {y}"),
            ));
        }
        out.push(
            match (
                before.serial.ok(),
                find(before, after).and_then(|g| g.serial.ok()),
            ) {
                (Some(x), Some(y)) if x == y => {
                    Check::pass("same_device", format!("the same device: serial {x}"))
                }
                (Some(x), Some(y)) => Check::block(
                    "same_device",
                    format!(
                        "GPU {} ({dev}) came back as another device: serial {y} (was {x})",
                        before.index
                    ),
                ),
                _ => Check::pass(
                    "same_device",
                    format!(
                        "the same class device {dev} (its serial was not read before and after)"
                    ),
                ),
            },
        );
        out.push(check_kernel_log(dev, log_before, log_after));
        out
    }
}

/// At most this many kernel lines are quoted.
const MAX_QUOTED: usize = 8;

/// The neuron driver's reset lines about device `dev` since the reset, quoted: a failure blocks; none
/// (or an unreadable log) warns, since the driver's own state and counts judge the reset.
fn check_kernel_log(
    dev: &str,
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
                    "the kernel log could not be read after the reset ({}): the driver's state and \
                     counts alone judge it",
                    crate::analysis::error_name(e.error)
                ),
            );
        }
    };
    let nd = format!(": nd{}: ", index_of(dev).unwrap_or("?"));
    let mut quoted = Vec::new();
    let (mut failed, mut done) = (false, false);
    for text in super::kernel_lines::since(before, after) {
        // `neuron:<func>: nd<N>: ...`: the driver's own prefix (pr_fmt, neuron_reset.c:9).
        if !text.starts_with("neuron:") {
            continue;
        }
        let Some(said) = text.find(&nd).map(|i| &text[i + nd.len()..]) else {
            continue;
        };
        let said = said.trim_end();
        if said.ends_with(" failed")
            || said.contains("failed to complete")
            || said.starts_with("failed to")
        {
            failed = true;
        } else if said.starts_with("reset request ") && said.ends_with(" completed") {
            done = true;
        } else if !said.starts_with("initiating ") {
            continue;
        }
        if quoted.len() < MAX_QUOTED {
            quoted.push(format!("\"{}\"", clean(said, 120)));
        }
    }
    let lines = quoted.join(", ");
    if failed {
        Check::block(
            NAME,
            format!("the kernel logged a failed reset: {lines}. The driver gives the device up"),
        )
    } else if done {
        Check::pass(NAME, format!("the kernel logged: {lines}"))
    } else if quoted.is_empty() {
        Check::warn(
            NAME,
            format!("the kernel log since the reset shows no neuron reset line for {dev}"),
        )
    } else {
        Check::warn(
            NAME,
            format!("the kernel logged no completion line for {dev}, only: {lines}"),
        )
    }
}

#[cfg(test)]
mod tests;
