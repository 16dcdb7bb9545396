//! The host: its identity and clocks, the NVIDIA driver and NVML it runs, and the GPU services on it.

use serde::{Deserialize, Serialize};

use super::reading::Reading;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HostFacts {
    #[serde(default)]
    pub hostname: Reading<String>,
    /// `/proc/sys/kernel/random/boot_id`.
    #[serde(default)]
    pub boot_id: Reading<String>,
    #[serde(default)]
    pub kernel_release: Reading<String>,
    /// Wall-clock boot time (unix seconds), to turn kmsg monotonic microseconds into timestamps.
    #[serde(default)]
    pub boot_time_unix: Reading<f64>,
    /// Wall clock when the facts were collected (unix seconds). Fixed in scenarios so output is stable.
    #[serde(default)]
    pub now_unix: Reading<f64>,
    /// Number of CPUs, for reading CPU affinity masks.
    #[serde(default)]
    pub cpu_count: Reading<u32>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DriverFacts {
    #[serde(default)]
    pub driver_version: Reading<String>,
    /// As NVML encodes it: 1000 * major + 10 * minor (12040 = 12.4).
    #[serde(default)]
    pub cuda_driver_version: Reading<i32>,
    #[serde(default)]
    pub nvml_version: Reading<String>,
    /// Path of the NVML library the probe loaded (the loader's name, or a file under the host root).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvml_library: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceFacts {
    /// `nvidia-fabricmanager`, `nvidia-persistenced`, `nv-hostengine`, ...
    pub name: String,
    /// Whether a process of that name runs on the host.
    pub running: Reading<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe's clock reading, written and read back, is the same number: replays of captured
    /// facts compare exactly. These values came back 1 ulp off with serde_json's default parser.
    #[test]
    fn host_clock_readings_survive_a_json_round_trip() {
        for t in [1795398777.0001767_f64, 1795398777.0001903, 0.1 + 0.2] {
            let host = HostFacts {
                now_unix: Reading::Ok(t),
                boot_time_unix: Reading::Ok(t / 3.0),
                ..HostFacts::default()
            };
            let back: HostFacts =
                serde_json::from_str(&serde_json::to_string(&host).unwrap()).unwrap();
            assert_eq!(back, host, "{t}");
        }
    }
}
