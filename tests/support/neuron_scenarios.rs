//! The host trees behind the built-in AWS Neuron scenarios (`src/scenarios/trn2-*.json`): a trn2.48xlarge
//! EKS node written with `neuron_tree.rs` (the neuron driver's sysfs printers), its kernel log as the driver
//! prints it, and the training ranks holding `/dev/neuron<N>`. The scenario files are node-probe's own
//! reading of these trees (tests/probe/neuron.rs writes and checks them), never values typed into JSON.
//!
//! Sources: aws-neuron/aws-neuron-driver at commit fca19f7df31b44cbbffaf121230a66df6f59d118, file:line beside
//! each value. Hostnames, BDFs, serials, pids, times and the job are invented; their formats are the kernel's.
//! Included beside `neuron_tree.rs` and `host_root.rs`.
#![allow(dead_code)]

use super::host_root::HostRoot;
use super::neuron_tree::{Core, Node};

/// The fixed collection time every scenario shares (tests/support/generate_scenarios.py's NOW).
pub const NOW: f64 = 1795600000.0;

/// `v3_routing_id_to_user_id` (v3/neuron_dhal_v3.c:1300-1304): the firmware's routing id of the PCI
/// function to the driver's device index `neuron<N>`, as `neuron_pci_get_device_id_v3` sets it (:1349).
pub const V3_ROUTING_TO_USER: [u32; 16] = [0, 3, 4, 7, 12, 15, 8, 11, 1, 2, 5, 6, 13, 14, 9, 10];

/// `NEURON_RESET_REQUEST_ALL` (neuron_reset.h:18), printed `%u` in the reset lines: the id of the driver's
/// own whole-device resets (at probe, neuron_pci.c:125, and through sysfs `reset`, neuron_cdev.c:2986).
const RESET_ALL: u32 = 0xffff_ffff;

/// kmsg priorities (`pri,seq,usec,flags;text`): `pr_err` 3, `pr_warn` 4, `pr_info` 6.
const ERR: u8 = 3;
const INFO: u8 = 6;

pub struct Scenario {
    pub name: &'static str,
    pub hostname: &'static str,
    pub uptime_s: u64,
    pub node: Node,
    /// (microseconds since boot, priority, text), in time order.
    pub kmsg: Vec<(u64, u8, String)>,
    /// (pid, device index) of each training rank holding `/dev/neuron<N>` open.
    pub ranks: Vec<(u32, u32)>,
}

/// The pod the training ranks run in (its uid in the cgroup path).
const POD_UID: &str = "7c2f9a41-5be3-4d0e-9f61-2a8c3d5e7b10";
const CONTAINER: &str = "4f1d8a0c2b7e6d5f3a9c1e0b8d7f6a5c4e3b2a1d0c9f8e7d6c5b4a3f2e1d0c9b";

/// What the driver prints as it loads and takes each device: its start line (a bare `printk(KERN_ERR …)`,
/// no pr_fmt, no newline: neuron_module.c:70, version and revision :26-27, month names :57), then per PCI
/// function (pr_fmt `neuron:<func>: `, neuron_reset.c:9 and Kbuild:1) the BDF-to-index line
/// (v3/neuron_dhal_v3.c:1351) and the whole-device reset the driver runs on every new device
/// (neuron_pci.c:125; neuron_reset.c:111, :148).
fn boot_lines(node: &Node) -> Vec<(u64, u8, String)> {
    let mut out = vec![(
        8_913_402,
        ERR,
        "Neuron Driver Started with Version:2.24.7.0-bab563e32c62d9dd615a42079e5bbd8e1a6327b1 at: 2026-nov-21 08:02:19.118407"
            .to_string(),
    )];
    for (routing, (bdf, _)) in node.functions.iter().enumerate() {
        let nd = V3_ROUTING_TO_USER[routing];
        let bus = u32::from_str_radix(&bdf[5..7], 16).expect("a BDF of the tree");
        let t = 9_201_000 + routing as u64 * 131_077;
        out.push((
            t,
            ERR,
            format!(
                "neuron:neuron_pci_get_device_id_v3: ** BDF: {bus:02x}:00.0 => nd[{nd}] (routing id: {routing})"
            ),
        ));
        out.push((
            t + 2_310,
            INFO,
            format!(
                "neuron:nr_reset_thread_fn: nd{nd}: initiating device reset request {RESET_ALL}"
            ),
        ));
        out.push((
            t + 1_840_552,
            INFO,
            format!("neuron:nr_reset_thread_fn: nd{nd}: reset request {RESET_ALL} completed"),
        ));
    }
    out
}

/// A trn2.48xlarge (16 Trainium2, 8 NeuronCores each) whose cores have counted no error, one rank per
/// device (a job that gives each process a whole device; with trn2's default logical NeuronCore of two
/// physical cores a job may run four per device, which the processes tool lists the same way).
fn trn2(name: &'static str, hostname: &'static str, uptime_s: u64) -> Scenario {
    let mut node = Node::trn2(16);
    for d in &mut node.devices {
        d.cores = vec![Core::clean(); 8];
    }
    let kmsg = boot_lines(&node);
    Scenario {
        name,
        hostname,
        uptime_s,
        node,
        kmsg,
        ranks: (0..16u32).map(|r| (70_112 + r * 7, r)).collect(),
    }
}

pub fn all() -> Vec<Scenario> {
    vec![healthy(), hbm_ue(), device_failed()]
}

fn healthy() -> Scenario {
    trn2(
        "trn2-healthy",
        "ip-10-0-141-27.us-west-2.compute.internal",
        2 * 86_400 + 5_120,
    )
}

/// Device 6 read an uncorrectable HBM error its repair failed on: the firmware's HBM repair state 0x2 makes
/// `mem_ecc_uncorrected` the sum of the HBM channels' UE counts (v3/neuron_dhal_v3.c:1099-1103,
/// neuron_fw_io.c:560-574), and the runtime ended the executions on the two cores of the logical core that
/// was running (`hw_hbm_ue_error`, neuron_sysfs_metrics.c:91). The driver prints no kernel line for it at
/// fca19f7 (no such print; AWS's `NEURON_HW_ERR=` lines are not in this driver's tree). The ranks on
/// device 6 are gone; the other 60 still hold their devices.
fn hbm_ue() -> Scenario {
    let mut s = trn2(
        "trn2-hbm-ue",
        "ip-10-0-141-63.us-west-2.compute.internal",
        4 * 86_400 + 1_907,
    );
    let d = &mut s.node.devices[6];
    d.mem_ecc_uncorrected = 1;
    for c in [2, 3] {
        d.cores[c].hw_hbm_ue_error = 1;
    }
    s.ranks.retain(|(_, dev)| *dev != 6);
    s
}

/// Device 9 is one the driver gave up on: after its ranks left, a whole-device reset through sysfs
/// (neuron_cdev.c:2985-2986, only while no process holds it) could not be started: `reset request %u
/// failed` (neuron_reset.c:111, :119), every core's `reset_fail_count` counted (neuron_sysfs_metrics.c:
/// 1089-1102), the device state set invalid (neuron_reset.c:164-172), `reset` reading 2.
fn device_failed() -> Scenario {
    let mut s = trn2(
        "trn2-device-failed",
        "ip-10-0-141-90.us-west-2.compute.internal",
        86_400 + 40_211,
    );
    let d = &mut s.node.devices[9];
    d.device_state = 2;
    for c in &mut d.cores {
        c.reset_fail_count = 1;
    }
    let t = (s.uptime_s - 1_260) * 1_000_000;
    s.kmsg.push((
        t,
        INFO,
        format!("neuron:nr_reset_thread_fn: nd9: initiating device reset request {RESET_ALL}"),
    ));
    s.kmsg.push((
        t + 5_002_113,
        INFO,
        format!("neuron:nr_reset_thread_fn: nd9: reset request {RESET_ALL} failed"),
    ));
    s.ranks.retain(|(_, dev)| *dev != 9);
    s
}

impl Scenario {
    /// Write the host: identity, clock, kernel log, the driver's sysfs and the ranks' `/proc`.
    pub fn write(&self, root: &HostRoot) {
        let boot = NOW - self.uptime_s as f64;
        root.file("etc/hostname", format!("{}\n", self.hostname))
            .file(
                "proc/uptime",
                format!("{}.00 {}.00\n", self.uptime_s, self.uptime_s * 180),
            )
            .file(
                "proc/stat",
                format!("cpu  0 0 0 0\nbtime {}\n", boot as u64),
            )
            .file(
                "proc/sys/kernel/osrelease",
                "6.1.119-129.201.amzn2023.x86_64\n",
            )
            .file(
                "proc/sys/kernel/random/boot_id",
                format!("{}\n", boot_id(self.name)),
            )
            // trn2.48xlarge: 192 vCPUs.
            .file("sys/devices/system/cpu/possible", "0-191\n");
        self.node.write(root.path());
        let mut kmsg = String::new();
        let mut lines = self.kmsg.clone();
        lines.sort_by_key(|l| l.0);
        for (seq, (usec, pri, text)) in lines.iter().enumerate() {
            kmsg.push_str(&format!("{pri},{},{usec},-;{text}\n", 1400 + seq));
        }
        root.file("dev/kmsg", kmsg);
        let cgroup = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{CONTAINER}.scope\n",
            POD_UID.replace('-', "_")
        );
        // Started 40 minutes after boot, in clock ticks (field 22 of proc/<pid>/stat).
        let start_ticks = 2_400 * 100;
        for (rank, (pid, dev)) in self.ranks.iter().enumerate() {
            let mut stat = format!("{pid} (python3) S 70100 70100 70100 0 -1 4194560");
            stat.push_str(&" 0".repeat(10));
            stat.push_str(&format!(" 64 0 {start_ticks}"));
            stat.push_str(&" 0".repeat(30));
            root.fds(*pid, &[&format!("/dev/neuron{dev}"), "/dev/null"])
                .file(&format!("proc/{pid}/comm"), "python3\n")
                .file(
                    &format!("proc/{pid}/cmdline"),
                    format!(
                        "python3\0-u\0run_llama_nxd.py\0--tensor_parallel_size\x0032\0--local_rank\0{rank}\0"
                    ),
                )
                .file(&format!("proc/{pid}/cgroup"), &cgroup)
                .file(&format!("proc/{pid}/stat"), format!("{stat}\n"));
        }
    }
}

fn boot_id(seed: &str) -> String {
    let h = seed.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let x = format!("{h:016x}{:016x}", h.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}
