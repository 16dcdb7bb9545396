//! The neuron driver's line grammar (AWS Trainium, Inferentia): its device resets (started, completed,
//! failed), DMA completion timeouts and HBM scrub failures, as aws-neuron/aws-neuron-driver (commit fca19f7d)
//! prints them through `pr_fmt` `"%s:%s: "` of KBUILD_MODNAME `neuron` and the function
//! (`neuron:nr_reset_thread_fn: nd3: reset request 7 failed`), and the `NEURON_HW_ERR=<KIND>` lines AWS's
//! own EKS node monitoring agent reads (its rules and test lines: `monitors/neuron/monitor.go:68-89`). The
//! driver at that commit prints no `NEURON_HW_ERR` line itself; the lines, each with its file:line, are held
//! in `tests/kernel_log/neuron/` and checked there. What each means lives in `kernel_log/neuron_catalog.rs`.
//!
//! Total like the other grammars: any input yields "not a neuron line" rather than a panic, and the
//! driver's own wording must be present. A write into `/dev/kmsg` from user space never reaches here (the
//! envelope drops a record of a facility other than the kernel's).

use std::sync::LazyLock;

use regex::Regex;

use super::nvidia_lines::clip;

/// One recognised neuron record.
#[derive(Debug, Clone, PartialEq)]
pub struct NeuronLine {
    /// The event's id in the neuron catalog.
    pub event: &'static str,
    /// The device the line names, as its class device (`neuron3` for the driver's `nd3`); `None` for a
    /// line about the node's devices (`NEURON_HW_ERR=… affecting neuron devices`).
    pub device: Option<String>,
    /// The message, prefix dropped, bounded.
    pub text: String,
}

/// A cheap test before the regexes.
pub fn may_be_neuron(text: &str) -> bool {
    text.starts_with("neuron:") || text.starts_with("NEURON_HW_ERR=")
}

static PREFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^neuron:[a-z_][a-z0-9_]{0,63}: (?P<msg>.*)$").unwrap());

/// (regex over the message, catalog id); `nd` is the driver's device index.
static MESSAGES: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        // neuron_reset.c:111
        (r"^nd(?P<nd>\d{1,4}): initiating (?:device|TPB) reset request \d{1,10}$", "reset_start"),
        // neuron_reset.c:148
        (r"^nd(?P<nd>\d{1,4}): reset request \d{1,10} completed$", "reset_done"),
        // neuron_reset.c:119
        (r"^nd(?P<nd>\d{1,4}): reset request \d{1,10} failed$", "reset_failed"),
        // neuron_reset.c:129
        (r"^nd(?P<nd>\d{1,4}): reset request \d{1,10} was initiated, but failed to complete$", "reset_incomplete"),
        // neuron_reset.c:137
        (r"^nd(?P<nd>\d{1,4}): failed to initialize dma after reset$", "reset_dma_failed"),
        // neuron_reset.c:144
        (r"^nd(?P<nd>\d{1,4}): failed to complete post reset configuration$", "reset_config_failed"),
        // neuron_dma.c:270
        (r"^DMA completion timeout on nd(?P<nd>\d{1,4}) for \S{1,64} q\d{1,4} desc count \d{1,10}$", "dma_timeout"),
        // neuron_cdev.c:2397
        (r"^Scrub failed for nd(?P<nd>\d{1,4}) HBM \d{1,3}$", "hbm_scrub_failed"),
    ]
    .into_iter()
    .map(|(re, id)| (Regex::new(re).unwrap(), id))
    .collect()
});

/// AWS's agent's rules (`.* NEURON_HW_ERR=<KIND> .*`, monitor.go:68-89) read over the record's text.
static HW_ERR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^NEURON_HW_ERR=(?P<kind>SRAM_UNCORRECTABLE_ERROR|NC_UNCORRECTABLE_ERROR|HBM_UNCORRECTABLE_ERROR|DMA_ERROR) \S")
        .unwrap()
});

/// A neuron record, or `None` when it is not one this grammar knows.
pub fn parse_neuron(text: &str) -> Option<NeuronLine> {
    let text = text.lines().next()?.trim_end();
    if let Some(c) = HW_ERR.captures(text) {
        let event = match &c["kind"] {
            "SRAM_UNCORRECTABLE_ERROR" => "hw_sram_ue",
            "NC_UNCORRECTABLE_ERROR" => "hw_nc_ue",
            "HBM_UNCORRECTABLE_ERROR" => "hw_hbm_ue",
            _ => "hw_dma_error",
        };
        return Some(NeuronLine {
            event,
            device: None,
            text: clip(text),
        });
    }
    let msg = PREFIX.captures(text)?.name("msg")?.as_str();
    MESSAGES.iter().find_map(|(re, id)| {
        let c = re.captures(msg)?;
        let nd: u32 = c.name("nd")?.as_str().parse().ok()?;
        Some(NeuronLine {
            event: id,
            device: Some(format!("neuron{nd}")),
            text: clip(msg),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_look_alikes() {
        let l = parse_neuron("neuron:nr_reset_thread_fn: nd3: reset request 7 failed").unwrap();
        assert_eq!(
            (l.event, l.device.as_deref()),
            ("reset_failed", Some("neuron3"))
        );
        let l =
            parse_neuron("NEURON_HW_ERR=HBM_UNCORRECTABLE_ERROR affecting neuron devices").unwrap();
        assert_eq!((l.event, l.device), ("hw_hbm_ue", None));
        for not in [
            "neuron:nr_reset_thread_fn: nd3: reset request 7 failed soon",
            "neuron: nd3: reset request 7 failed",
            "mlx5_core: nd3: reset request 7 failed",
            "NEURON_HW_ERR=HBM_UNCORRECTABLE_ERRORS affecting neuron devices",
            "NEURON_HW_ERR=HBM_UNCORRECTABLE_ERROR",
            "someuser: NEURON_HW_ERR=HBM_UNCORRECTABLE_ERROR affecting neuron devices",
            "neuron:ndma: DMA completion timeout on ndx for a q1 desc count 2",
        ] {
            assert_eq!(parse_neuron(not), None, "{not}");
        }
    }
}
