//! Which GPU a reset request names (an index, a UUID or AMD unique id, a PCI address), the identity the
//! preflight a person saw pins it to, and the request as the probe makes it.

use serde::{Deserialize, Serialize};

use crate::facts::{GpuFacts, NodeFacts};

/// How the request names the GPU. An index is the probe's own numbering (NVIDIA's GPUs first, then
/// AMD's), which shifts when NVML does not answer; a UUID / unique id or a PCI address does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuSelector {
    Index(u32),
    /// NVIDIA's `GPU-...` UUID or AMD's 16-hex-digit `unique_id` (the probe's `uuid` of an AMD GPU),
    /// compared case-insensitively, a `0x` dropped.
    Uuid(String),
    /// A PCI address, `dddd:bb:dd.f` or `bb:dd.f` (NVML prints an 8-digit domain, amdgpu a 4-digit one).
    Bdf(String),
}

/// A PCI address as numbers (domain, bus, device, function), whatever the domain's width.
pub fn parse_bdf(text: &str) -> Option<(u32, u8, u8, u8)> {
    let t = text.trim();
    let (head, func) = t.rsplit_once('.')?;
    let parts: Vec<&str> = head.split(':').collect();
    let (domain, bus, dev) = match parts.as_slice() {
        [d, b, v] if (1..=8).contains(&d.len()) => (u32::from_str_radix(d, 16).ok()?, *b, *v),
        [b, v] => (0, *b, *v),
        _ => return None,
    };
    if bus.len() != 2 || dev.len() != 2 || func.len() != 1 {
        return None;
    }
    let dev = u8::from_str_radix(dev, 16).ok().filter(|d| *d < 32)?;
    let func = u8::from_str_radix(func, 16).ok().filter(|f| *f < 8)?;
    Some((domain, u8::from_str_radix(bus, 16).ok()?, dev, func))
}

/// Two PCI addresses are the same device (an unparsable one equals nothing).
pub fn same_bdf(a: &str, b: &str) -> bool {
    matches!((parse_bdf(a), parse_bdf(b)), (Some(x), Some(y)) if x == y)
}

fn same_id(a: &str, b: &str) -> bool {
    let strip = |s: &str| {
        let s = s.trim();
        s.strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s)
            .to_ascii_lowercase()
    };
    strip(a) == strip(b)
}

impl GpuSelector {
    /// A number is an index; `GPU-...` or 16 hex digits (`0x` allowed) a UUID / unique id; a PCI address
    /// a BDF.
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.is_empty() {
            return None;
        }
        if let Ok(i) = t.parse::<u32>() {
            return Some(GpuSelector::Index(i));
        }
        if t.len() >= 4 && t[..4].eq_ignore_ascii_case("GPU-") {
            return Some(GpuSelector::Uuid(t.to_string()));
        }
        let hex = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        if hex.len() == 16 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Some(GpuSelector::Uuid(t.to_string()));
        }
        parse_bdf(t).map(|_| GpuSelector::Bdf(t.to_string()))
    }

    pub fn find<'a>(&self, facts: &'a NodeFacts) -> Option<&'a GpuFacts> {
        facts.gpus.iter().find(|g| match self {
            GpuSelector::Index(i) => g.index == *i,
            GpuSelector::Uuid(u) => g.uuid.ok().is_some_and(|x| same_id(x, u)),
            GpuSelector::Bdf(b) => g.pci_bus_id.ok().is_some_and(|x| same_bdf(x, b)),
        })
    }
}

impl std::fmt::Display for GpuSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpuSelector::Index(i) => write!(f, "{i}"),
            GpuSelector::Uuid(u) | GpuSelector::Bdf(u) => f.write_str(u),
        }
    }
}

/// The identity of the GPU as the preflight a person approved showed it: the act resets that GPU or
/// nothing. (An index names another GPU when NVML stops answering between the preflight and the act:
/// AMD's GPUs are numbered after NVIDIA's.)
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResetPin {
    /// The PCI address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    /// NVIDIA's UUID or AMD's unique_id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// An AMD GPU's partition mode, `CPX/NPS4`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

impl ResetPin {
    pub fn is_empty(&self) -> bool {
        self.pci_bus_id.is_none() && self.uuid.is_none() && self.partition.is_none()
    }
}

/// What a person saw in the preflight they approved, which the act is bound to: the GPU's identity and
/// the unknowns (holders, sources) an override of theirs covers. The launcher keeps it between the
/// confirmation's rounds (never the client: it could be forged).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seen {
    pub pin: Option<ResetPin>,
    pub unknown: Vec<String>,
    /// A kill's process: its start time and pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessPin>,
}

/// One process as a preflight saw it: a pid names a process only until it exits, when the kernel may give
/// it to another; the start time (`/proc/<pid>/stat` field 22, clock ticks after boot, proc(5)) tells the
/// two apart for the life of the boot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProcessPin {
    /// Start time in clock ticks after boot.
    pub start_ticks: u64,
    /// The pod its cgroup names (the kubelet's pod UID), `None` for a process in no pod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
}

/// What stands for "in no pod" in `--approved`'s `pod=`.
pub const NO_POD: &str = "-";

impl ProcessPin {
    /// `start=<ticks>;pod=<uid|->`, the part of `--approved` that names the process.
    pub fn arg(&self) -> String {
        format!(
            "start={};pod={}",
            self.start_ticks,
            self.pod.as_deref().unwrap_or(NO_POD)
        )
    }
}

/// One unknown item as the act's argv carries it: the first 16 hex digits of its SHA-256. Only digests
/// cross the exec boundary (the admission policy admits no free text), and a tenant cannot make a new
/// holder's item collide with one the person saw.
pub fn unknown_digest(item: &str) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(item.as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

impl Seen {
    /// node-probe's `--approved` value: a reset's `pci=<bdf>;uuid=<id>;partition=<mode>` or a kill's
    /// `start=<ticks>;pod=<uid|->` and, with an override, `;seen=<digest>,<digest>,...` (every field
    /// optional).
    pub fn arg(&self, overridden: bool) -> String {
        let mut parts = Vec::new();
        if let Some(p) = &self.process {
            parts.push(p.arg());
        }
        if let Some(p) = &self.pin {
            for (k, v) in [
                ("pci", &p.pci_bus_id),
                ("uuid", &p.uuid),
                ("partition", &p.partition),
            ] {
                if let Some(v) = v {
                    parts.push(format!("{k}={v}"));
                }
            }
        }
        if overridden {
            let d: Vec<String> = self.unknown.iter().map(|i| unknown_digest(i)).collect();
            parts.push(format!("seen={}", d.join(",")));
        }
        parts.join(";")
    }
}

/// `--approved`'s value back: the pin and the digests of the unknowns the person saw.
pub fn parse_approved(text: &str) -> Result<(ResetPin, Vec<String>), String> {
    let mut pin = ResetPin::default();
    let mut seen = Vec::new();
    for field in text.split(';').filter(|f| !f.is_empty()) {
        let (k, v) = field
            .split_once('=')
            .ok_or_else(|| format!("`{field}` is not key=value"))?;
        match k {
            "pci" => pin.pci_bus_id = Some(v.to_string()),
            "uuid" => pin.uuid = Some(v.to_string()),
            "partition" => pin.partition = Some(v.to_string()),
            "seen" => seen.extend(v.split(',').filter(|d| !d.is_empty()).map(str::to_string)),
            other => return Err(format!("unknown field `{other}`")),
        }
    }
    Ok((pin, seen))
}

/// An AMD GPU's partition mode as the pin names it (`CPX/NPS4`), where readable.
pub fn partition_of(g: &GpuFacts) -> Option<String> {
    let p = g.amd.as_ref()?.partition.ok()?;
    Some(format!("{}/{}", p.compute.ok()?, p.memory.ok()?))
}

/// Each pinned field against the GPU found now: the mismatches, in words (empty: it is the same GPU).
pub fn pin_mismatches(pin: &ResetPin, g: &GpuFacts) -> Vec<String> {
    let mut out = Vec::new();
    let now = |r: Option<&String>| r.cloned().unwrap_or_else(|| "unreadable".into());
    if let Some(want) = &pin.pci_bus_id
        && !g.pci_bus_id.ok().is_some_and(|x| same_bdf(x, want))
    {
        out.push(format!(
            "PCI address {} (approved: {want})",
            now(g.pci_bus_id.ok())
        ));
    }
    if let Some(want) = &pin.uuid
        && !g.uuid.ok().is_some_and(|x| same_id(x, want))
    {
        out.push(format!("unique id {} (approved: {want})", now(g.uuid.ok())));
    }
    if let Some(want) = &pin.partition
        && partition_of(g).as_deref() != Some(want.as_str())
    {
        out.push(format!(
            "partition mode {} (approved: {want})",
            partition_of(g).unwrap_or_else(|| "unreadable".into())
        ));
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetRequest {
    pub gpu: GpuSelector,
    /// The probe's own pid, left out of the device holders it judges (it closes NVML before the reset).
    pub self_pid: Option<u32>,
    /// The reset tool the probe found (`chroot /host nvidia-smi`), or why there is none. `None` in
    /// simulated mode, where nothing runs.
    pub tool: Option<Result<String, String>>,
    /// A person overrode, in the confirmation, the block of a GPU whose holders no source can vouch
    /// for (`--override-unknown-holders`). A holder a source names still blocks.
    pub override_unknown: bool,
    /// The GPU's identity in the preflight the person approved (`--expect-*`): any difference refuses.
    pub pin: Option<ResetPin>,
    /// With `override_unknown`: the digests ([`unknown_digest`]) of the unknowns (holders and sources) the
    /// person saw when they overrode (`--approved ...;seen=`). One found now whose digest is not among them
    /// refuses: the override covers only them.
    pub seen_unknown: Option<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operator::reset::test_support::{gpu, node};

    #[test]
    fn selector_parsing() {
        assert_eq!(GpuSelector::parse("3"), Some(GpuSelector::Index(3)));
        assert_eq!(
            GpuSelector::parse("gpu-ab12"),
            Some(GpuSelector::Uuid("gpu-ab12".into()))
        );
        assert_eq!(GpuSelector::parse(""), None);
        assert_eq!(GpuSelector::parse("-1"), None);
        assert_eq!(GpuSelector::parse("nvidia3"), None);
        let f = node(vec![gpu(0, "Hopper"), gpu(1, "Hopper")], vec![]);
        assert_eq!(
            GpuSelector::Uuid("gpu-0001".into()).find(&f).unwrap().index,
            1
        );
    }
}
