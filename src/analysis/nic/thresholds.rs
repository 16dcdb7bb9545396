//! The thresholds the port rules judge by, and how a finding states them.

/// An IBTA-compliant link runs at a bit error rate of 10^-12 or better, which allows about 120 symbol
/// errors an hour; a lifetime average above it is a marginal link (cable, transceiver, port).
pub const ERRORS_PER_HOUR_BUDGET: f64 = 120.0;
/// Symbol errors rising faster than this during the sampling window: the link is degrading now. On PAM4
/// links (HDR, NDR) some raw errors are normal, so a rate, not "any error", is judged (the rate NVIDIA's
/// NVSentinel NIC health monitor design uses).
pub const SYMBOL_ERRORS_PER_S: f64 = 10.0;
/// Link-down events (or link error recoveries) since the counters were cleared at or above which a port
/// has flapped, rather than seen one re-cabling or switch reboot.
pub const FLAPS_LIFETIME: u64 = 3;
/// `carrier_changes` counts both directions and an interface brought up once shows 1 or 2: this many
/// means at least [`FLAPS_LIFETIME`] down/up cycles.
pub const CARRIER_CHANGES_LIFETIME: u64 = 2 * FLAPS_LIFETIME + 1;
/// Carrier changes during the window that make a flap in progress (down and up again).
pub const CARRIER_CHANGES_WINDOW: u64 = 2;
/// Congestion: during the window the port waited for credits (`port_xmit_wait`, in ticks) at least this
/// many times per 4-byte word it sent (`port_xmit_data`): sending is starved by the fabric, not the node.
pub const XMIT_WAIT_PER_WORD: f64 = 1.0;

/// The stated thresholds of a rule, as the finding's last evidence line.
pub(super) fn thresholds(code: &str) -> Option<String> {
    Some(match code {
        "nic.port_down" => "threshold: state ACTIVE and phys_state LinkUp (and the netdev up); critical when other ports of the model are up, info for a port that never carried traffic".into(),
        "nic.link_flapping" => format!(
            "thresholds: critical when link_downed or >= {CARRIER_CHANGES_WINDOW} carrier changes rise during the window; warning for a link error recovery during it, or >= {FLAPS_LIFETIME} downs or recoveries ({CARRIER_CHANGES_LIFETIME} carrier changes) since the counters were cleared"
        ),
        "nic.link_integrity" | "nic.buffer_overrun" => {
            "thresholds: any count is a fault; rising during the window is critical".into()
        }
        "nic.symbol_errors" => format!(
            "thresholds: > {SYMBOL_ERRORS_PER_S}/s during the window, or > {ERRORS_PER_HOUR_BUDGET}/h averaged since boot (10^-12 BER)"
        ),
        "nic.receive_errors" => format!(
            "thresholds: any increase during the window, or > {ERRORS_PER_HOUR_BUDGET}/h averaged since boot"
        ),
        "nic.congestion" => format!(
            "threshold: port_xmit_wait rising by >= {XMIT_WAIT_PER_WORD} x port_xmit_data (4-byte words) during the window, or any port_xmit_discards increase"
        ),
        "nic.rate_degraded" => "threshold: below the fastest active port of the same model and link layer".into(),
        _ => return None,
    })
}
