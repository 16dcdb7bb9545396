//! Which GPU a reset request names (an index or a UUID), and the request as the probe makes it.

use crate::facts::{GpuFacts, NodeFacts};

/// How the request names the GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuSelector {
    Index(u32),
    Uuid(String),
}

impl GpuSelector {
    /// A number is an index; anything else is a UUID (`GPU-...`, compared case-insensitively).
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if t.is_empty() {
            return None;
        }
        match t.parse::<u32>() {
            Ok(i) => Some(GpuSelector::Index(i)),
            Err(_) if t.len() >= 4 && t[..4].eq_ignore_ascii_case("GPU-") => {
                Some(GpuSelector::Uuid(t.to_string()))
            }
            Err(_) => None,
        }
    }

    pub fn find<'a>(&self, facts: &'a NodeFacts) -> Option<&'a GpuFacts> {
        facts.gpus.iter().find(|g| match self {
            GpuSelector::Index(i) => g.index == *i,
            GpuSelector::Uuid(u) => g.uuid.ok().is_some_and(|x| x.eq_ignore_ascii_case(u)),
        })
    }
}

impl std::fmt::Display for GpuSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GpuSelector::Index(i) => write!(f, "{i}"),
            GpuSelector::Uuid(u) => f.write_str(u),
        }
    }
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
