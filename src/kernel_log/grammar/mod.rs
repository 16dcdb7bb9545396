//! The kernel-log grammar: record envelopes (raw kmsg, dmesg, syslog/journal), then the NVIDIA lines
//! inside them (Xid, SXid, identity, fallen-off-the-bus, init failure, crash dump) and the amdgpu lines
//! (`amdgpu_lines.rs`: RAS, resets, ring timeouts, VM faults, ACA banks, …) and the habanalabs (Intel
//! Gaudi) lines (`habanalabs_lines.rs`: ECC, resets, RAZWI, MMU faults, heartbeat, firmware, …).
//!
//! Every function here is total: any input (garbage, truncated, huge) yields "not an NVIDIA line"
//! rather than a panic, and nothing is ever an event unless the driver's own wording is present.
//!
//! `envelope.rs` reads the envelopes and splits records; `nvidia_lines.rs` and `amdgpu_lines.rs` classify a
//! record's text. The envelope and the line grammars do not use each other: a record's text is all a line
//! grammar sees.

mod amdgpu_lines;
mod envelope;
mod habanalabs_lines;
mod neuron_lines;
mod nvidia_lines;

pub use amdgpu_lines::{
    AcaDecode, AmdKind, AmdLine, RasClass, may_be_amdgpu, parse_amdgpu, ras_block,
};

pub use habanalabs_lines::{HlLine, may_be_habanalabs, parse_habanalabs};
pub use neuron_lines::{NeuronLine, may_be_neuron, parse_neuron};

pub use envelope::{
    Clock, Envelope, JournalEntry, Record, RecordSplitter, journal_entry, parse_envelope, records,
    unescape_kmsg,
};
pub use nvidia_lines::{
    Line, MAX_FIELD_CHARS, MAX_MESSAGE_CHARS, SxidLine, XidLine, clip, clip_to, may_be_nvidia,
    normalize_gpu_uuid, parse_line, parse_sxid, parse_xid,
};

/// The kernel's banner, its first message at every boot: `Linux version 6.8.0-… (…)`.
pub fn is_boot_start(text: &str) -> bool {
    text.trim_start().starts_with("Linux version ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use envelope::tests::clock;

    #[test]
    fn kmsg_escapes_and_continuations() {
        let lines = [
            "3,10,100,-;NVRM: The NVIDIA GPU 0000:3b:00.0\\x0aNVRM: (PCI ID: 10de:2330) installed in this system has\\x0aNVRM: fallen off the bus and is not responding to commands.\\x0a",
            " SUBSYSTEM=pci",
            " DEVICE=+pci:0000:3b:00.0",
            "6,11,200,-;next",
        ];
        let recs = records(&lines, clock());
        assert_eq!(recs.len(), 2);
        assert!(recs[0].text.contains("\nNVRM: fallen off the bus"));
        assert!(!recs[0].text.contains("SUBSYSTEM"));
        assert_eq!(recs[1].line, 4);

        // An indented line that is itself an Xid is a record of its own, not a continuation.
        let xid_lines = [
            "[ 1.0] NVRM: Xid (PCI:0000:3b:00): 13, pid=1, name=a, x",
            "  [ 2.0] NVRM: Xid (PCI:0000:3b:00): 31, pid=1, name=a, y",
            "    NVRM: Xid (PCI:0000:3b:00): 43, pid=1, name=a, z",
        ];
        let own = records(&xid_lines, clock());
        assert_eq!(own.len(), 3);
        assert_eq!(own[1].ts, Some(1_795_250_002.0));
        assert!(matches!(
            parse_line(&recs[0].text),
            Some(Line::FallenOffBus { pci: Some(p), .. }) if p == "0000:3b:00.0"
        ));
    }
}
