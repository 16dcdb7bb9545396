//! NVIDIA's line grammar inside a record: Xid, SXid, the GPU identity line, fallen-off-the-bus (all three
//! forms), init failure and crash dump; and the caps on what a line's fields keep.

use std::sync::LazyLock;

use regex::Regex;

use crate::kernel_log::contract::DecodedDetail;
use crate::pci::normalize_bus_id;

/// Longest message kept per event; longer payloads are cut (at a char boundary) and marked.
pub const MAX_MESSAGE_CHARS: usize = 1024;

/// What one record says, if it is an NVIDIA line this grammar knows.
// `Xid` carries a `DecodedDetail`, which the amdgpu variant made larger; a `Line` lives for one record only.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Xid(XidLine),
    Sxid(SxidLine),
    /// `NVRM: GPU at PCI:…: GPU-<uuid>`.
    Identity {
        pci: Option<String>,
        uuid: String,
    },
    /// Form 2 (`NVRM: GPU dddd:bb:dd.f: GPU has fallen off the bus.`), a one-record form 3, or any
    /// other NVRM wording of it.
    FallenOffBus {
        pci: Option<String>,
        text: String,
    },
    /// First line of the three-line form 3, whose last line has not been seen yet.
    FallenOffBusHead {
        pci: Option<String>,
    },
    /// Middle line of form 3 (`NVRM: (PCI ID: 10de:2330) installed in this system has`).
    FallenOffBusMiddle,
    /// Last line of form 3 on its own.
    FallenOffBusTail,
    InitFailure {
        pci: Option<String>,
    },
    CrashDump,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct XidLine {
    /// Normalised `dddd:bb:dd.f`.
    pub pci: Option<String>,
    /// None when the number does not fit (never a real driver line, but never dropped either).
    pub code: Option<u32>,
    pub pid: Option<u32>,
    pub process_name: Option<String>,
    pub gpu_instance_id: Option<u32>,
    pub compute_instance_id: Option<u32>,
    /// The Xid-specific free text after `pid=…, name=…,`.
    pub message: String,
    pub caused_by_xid: Option<u32>,
    pub decoded: Option<DecodedDetail>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct SxidLine {
    /// `nvidia-nvswitch3`, where printed.
    pub device: Option<String>,
    pub pci: Option<String>,
    pub code: Option<u32>,
    /// `Some(true)` Fatal, `Some(false)` Non-fatal, None when the payload states no severity.
    pub fatal: Option<bool>,
    pub link: Option<u32>,
    pub message: String,
}

// ASCII `[0-9]`, not Unicode `\d`: a bounded Unicode class costs a probe run a millisecond to compile.
static PCI_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:PCI:)?\b([0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}(?:\.[0-7])?)\b")
        .expect("static regex")
});
static GPC_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\(GPC\s+([0-9]{1,9}),\s*TPC\s+([0-9]{1,9})(?:,\s*SM\s+([0-9]{1,9}))?\)")
        .expect("static regex")
});
static NVLINK_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)link\s+([0-9]{1,9})\s*\(\s*((?:0x[0-9a-f]{1,8}\s*,?\s*){1,7})\)")
        .expect("static regex")
});
static RST_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)(D-)?RST:\s*(Yes|No)\b").expect("static regex"));
static RECOVERY_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)from\s+0x([0-9a-f]{1,8})\s*\(([^)]*)\)\s*to\s+0x([0-9a-f]{1,8})\s*\(([^)]*)\)")
        .expect("static regex")
});
static NVL5_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^([A-Z0-9_/]+)\s+(Fatal|Non-?fatal)\s+(\S+)\s+(\S+)\s+Link\s+(-?[0-9]{1,9})\s*\(\s*0x([0-9a-f]{1,8})[\s,]+0x([0-9a-f]{1,8})",
    )
    .expect("static regex")
});
static CAUSED_BY_RE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"caused by previous Xid ([0-9]{1,9})").expect("static regex"));
static UUID_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b(GPU-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\b",
    )
    .expect("static regex")
});

/// Cheap test that a record could be an NVIDIA line at all; everything else skips the regexes. The
/// driver's prefix starts the kernel's message (`NVRM: …`, `nvidia-nvswitch3: SXid …`): a line with
/// other text before it quotes the driver, it is not the driver (a program's log, a JSON field).
#[inline]
pub fn may_be_nvidia(text: &str) -> bool {
    let t = without_switch_prefix(text);
    t.starts_with("NVRM") || t.starts_with("SXid")
}

/// The text after an NVSwitch driver's `nvidia-nvswitchN: ` prefix, else all of it.
fn without_switch_prefix(text: &str) -> &str {
    match text.split_once(": ") {
        Some((dev, rest)) if dev.starts_with("nvidia-") && !dev.contains(' ') => rest,
        _ => text,
    }
}

/// Classify one record's text. None: not an NVIDIA line this grammar reports.
pub fn parse_line(text: &str) -> Option<Line> {
    if !may_be_nvidia(text) {
        return None;
    }
    if let Some(x) = parse_xid(text) {
        return Some(Line::Xid(x));
    }
    if let Some(s) = parse_sxid(text) {
        return Some(Line::Sxid(s));
    }
    // The driver's prefix starts the message (see `may_be_nvidia`).
    if !text.starts_with("NVRM:") {
        return None;
    }
    let body = text;
    if let Some(rest) = body.strip_prefix("NVRM: GPU at ")
        && let Some(c) = UUID_RE.captures(rest)
    {
        let pci = first_pci(rest);
        return Some(Line::Identity {
            pci,
            uuid: normalize_gpu_uuid(&c[1]),
        });
    }
    if body.contains("fallen off the bus") {
        if let Some(pos) = body.find("The NVIDIA GPU ") {
            return Some(Line::FallenOffBus {
                pci: first_pci(&body[pos..]),
                text: body.to_string(),
            });
        }
        if body.starts_with("NVRM: fallen off the bus") {
            return Some(Line::FallenOffBusTail);
        }
        return Some(Line::FallenOffBus {
            pci: first_pci(body),
            text: body.to_string(),
        });
    }
    if let Some(pos) = body.find("NVRM: The NVIDIA GPU ") {
        let after = &body[pos + "NVRM: The NVIDIA GPU ".len()..];
        // Only the address form starts form 3; `The NVIDIA GPU 10de:1234 (PCI ID …) … not supported` does not.
        if let Some(m) = PCI_RE.captures(after)
            && after.starts_with(&m[1])
        {
            return Some(Line::FallenOffBusHead {
                pci: normalize_bus_id(&m[1]),
            });
        }
        return None;
    }
    if body.starts_with("NVRM: (PCI ID:") && body.contains("installed in this system has") {
        return Some(Line::FallenOffBusMiddle);
    }
    if body.contains("RmInitAdapter failed")
        || body.contains("rm_init_adapter failed")
        || body.contains("probe routine failed")
    {
        return Some(Line::InitFailure {
            pci: first_pci(body),
        });
    }
    if body.contains("A GPU crash dump has been created") {
        return Some(Line::CrashDump);
    }
    None
}

/// A GPU UUID as the analysis compares them: `GPU-` then lower-case hex, whether it came from an identity
/// line or from NVML (whose case and prefix case vary with the driver).
pub fn normalize_gpu_uuid(uuid: &str) -> String {
    let mut out = uuid.to_ascii_lowercase();
    if out.starts_with("gpu-") {
        out.replace_range(..4, "GPU-");
    }
    out
}

fn first_pci(s: &str) -> Option<String> {
    PCI_RE
        .captures_iter(s)
        .find_map(|c| normalize_bus_id(&c[1]))
}

fn parse_u32(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 10 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Leading ASCII digits of `s` and the rest.
fn split_digits(s: &str) -> (&str, &str) {
    let n = s.bytes().take_while(|b| b.is_ascii_digit()).count();
    s.split_at(n)
}

/// `NVRM: Xid (PCI:dddd:bb:dd[ GPU-I:nn[ GPU-CI:nn]]): N, [pid=…, name=…, ]msg`.
pub fn parse_xid(text: &str) -> Option<XidLine> {
    let rest = text.strip_prefix("NVRM: Xid (")?;
    let close = rest.find(')')?;
    let inside = &rest[..close];
    let after = rest[close + 1..].strip_prefix(':')?.trim_start();
    let (digits, tail) = split_digits(after);
    if digits.is_empty() {
        return None;
    }
    let mut x = XidLine {
        code: parse_u32(digits),
        ..XidLine::default()
    };
    let mut toks = inside.split_whitespace();
    x.pci = toks.next().and_then(normalize_bus_id);
    for t in toks {
        if let Some(v) = t.strip_prefix("GPU-I:") {
            x.gpu_instance_id = parse_u32(v);
        } else if let Some(v) = t.strip_prefix("GPU-CI:") {
            x.compute_instance_id = parse_u32(v);
        }
    }
    let mut msg = tail.trim_start_matches([',', ' ']);
    if let Some(v) = msg.strip_prefix("pid=") {
        let (pid, r) = v.split_once(',').unwrap_or((v, ""));
        x.pid = parse_u32(pid.trim());
        msg = r.trim_start();
    }
    if let Some(v) = msg.strip_prefix("name=") {
        let (name, r) = v.split_once(", ").unwrap_or((v.trim_end_matches(','), ""));
        let name = name.trim();
        if !name.is_empty() && name != "<unknown>" {
            // The driver prints the task's comm (15 bytes); a longer name is not the driver's.
            x.process_name = Some(clip_to(name, MAX_FIELD_CHARS));
        }
        msg = r.trim_start();
    }
    x.caused_by_xid = CAUSED_BY_RE.captures(msg).and_then(|c| parse_u32(&c[1]));
    x.decoded = decode(x.code, msg);
    x.message = clip(msg.trim());
    Some(x)
}

fn hex_u32(s: &str) -> Option<u32> {
    u32::from_str_radix(s.trim_start_matches("0x").trim_start_matches("0X"), 16).ok()
}

fn decode(code: Option<u32>, msg: &str) -> Option<DecodedDetail> {
    match code {
        Some(13) => GPC_RE
            .captures(msg)
            .and_then(|c| match (parse_u32(&c[1]), parse_u32(&c[2])) {
                (Some(gpc), Some(tpc)) => Some(DecodedDetail::GraphicsException {
                    gpc,
                    tpc,
                    sm: c.get(3).and_then(|m| parse_u32(m.as_str())),
                }),
                _ => None,
            }),
        Some(74) => NVLINK_RE.captures(msg).and_then(|c| {
            let registers: Vec<u32> = c[2]
                .split(|ch: char| ch == ',' || ch.is_whitespace())
                .filter(|t| !t.is_empty())
                .filter_map(hex_u32)
                .collect();
            let link = parse_u32(&c[1])?;
            Some(DecodedDetail::NvLinkRegisters { link, registers })
        }),
        Some(94 | 95) => {
            let mut reset = None;
            let mut drain = None;
            for c in RST_RE.captures_iter(msg) {
                let yes = c[2].eq_ignore_ascii_case("yes");
                if c.get(1).is_some() {
                    drain = Some(yes);
                } else {
                    reset = Some(yes);
                }
            }
            let contained = if msg.contains("Uncontained") {
                Some(false)
            } else if msg.contains("Contained") {
                Some(true)
            } else {
                None
            };
            Some(DecodedDetail::Containment {
                contained,
                reset_required: reset,
                drain_and_reset_required: drain,
            })
        }
        Some(154) => {
            RECOVERY_RE
                .captures(msg)
                .and_then(|c| match (hex_u32(&c[1]), hex_u32(&c[3])) {
                    (Some(from), Some(to)) => Some(DecodedDetail::RecoveryAction {
                        from,
                        from_name: clip_to(c[2].trim(), MAX_FIELD_CHARS),
                        to,
                        to_name: clip_to(c[4].trim(), MAX_FIELD_CHARS),
                    }),
                    _ => None,
                })
        }
        Some(144..=150) => NVL5_RE.captures(msg).and_then(|c| {
            let link = c[5].parse::<i32>().ok();
            match (link, hex_u32(&c[6]), hex_u32(&c[7])) {
                (Some(link), Some(intr_info), Some(error_status)) => Some(DecodedDetail::NvLink5 {
                    unit: c[1].to_string(),
                    fatal: c[2].eq_ignore_ascii_case("fatal"),
                    link,
                    intr_info,
                    error_status,
                }),
                _ => None,
            }
        }),
        _ => None,
    }
}

/// `nvidia-nvswitchN: SXid (PCI:dddd:bb:dd.f): NNNNN, [Fatal|Non-fatal, Link N ]msg`.
pub fn parse_sxid(text: &str) -> Option<SxidLine> {
    let after_dev = without_switch_prefix(text);
    let rest = after_dev.strip_prefix("SXid (")?;
    let device = text
        .strip_suffix(after_dev)
        .and_then(|d| d.strip_suffix(": "))
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let close = rest.find(')')?;
    let after = rest[close + 1..].strip_prefix(':')?.trim_start();
    let (digits, tail) = split_digits(after);
    if digits.is_empty() {
        return None;
    }
    let mut s = SxidLine {
        device,
        pci: normalize_bus_id(rest[..close].trim()),
        code: parse_u32(digits),
        ..SxidLine::default()
    };
    let msg = tail.trim_start_matches([',', ' ']);
    for (word, fatal) in [("Fatal", true), ("Non-fatal", false), ("Nonfatal", false)] {
        if let Some(r) = msg.strip_prefix(word)
            && let Some(r) = r.strip_prefix(',')
        {
            s.fatal = Some(fatal);
            let r = r.trim_start();
            if let Some(l) = r.strip_prefix("Link ") {
                let (d, _) = split_digits(l);
                s.link = parse_u32(d);
            }
            break;
        }
    }
    s.message = clip(msg.trim());
    Some(s)
}

/// Longest short field kept from a line (a process name, a recovery action's name): what the driver
/// prints is far shorter, so only a hostile or damaged line is cut.
pub const MAX_FIELD_CHARS: usize = 64;

/// Cut a message to [`MAX_MESSAGE_CHARS`] at a char boundary.
pub fn clip(s: &str) -> String {
    clip_to(s, MAX_MESSAGE_CHARS)
}

/// Cut `s` to `max` characters, marking the cut with `…`.
pub fn clip_to(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xid_variants() {
        let x = parse_xid("NVRM: Xid (PCI:0000:3B:00): 13, pid=1234, name=python3, Graphics SM Warp Exception on (GPC 1, TPC 3, SM 0): Out Of Range Address").unwrap();
        assert_eq!(x.pci.as_deref(), Some("0000:3b:00.0"));
        assert_eq!(x.code, Some(13));
        assert_eq!(x.pid, Some(1234));
        assert_eq!(x.process_name.as_deref(), Some("python3"));
        assert_eq!(
            x.decoded,
            Some(DecodedDetail::GraphicsException {
                gpc: 1,
                tpc: 3,
                sm: Some(0)
            })
        );

        let x = parse_xid("NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.").unwrap();
        assert_eq!((x.pid, x.process_name.as_deref()), (None, None));
        assert_eq!(x.message, "GPU has fallen off the bus.");

        let x = parse_xid("NVRM: Xid (PCI:0000:01:00 GPU-I:05 GPU-CI:01): 31, pid=7, name=a.out, Ch 00000007, intr 0").unwrap();
        assert_eq!(
            (x.gpu_instance_id, x.compute_instance_id),
            (Some(5), Some(1))
        );

        let x = parse_xid(
            "NVRM: Xid (PCI:0000:01:00): 45, pid=7, name=a, Ch 00000007 caused by previous Xid 48",
        )
        .unwrap();
        assert_eq!(x.caused_by_xid, Some(48));

        let x = parse_xid("NVRM: Xid (PCI:0000:01:00): 95, pid=7062, Uncontained: LTC TAG (0x2, 0x1). RST: Yes, D-RST: No").unwrap();
        assert_eq!(
            x.decoded,
            Some(DecodedDetail::Containment {
                contained: Some(false),
                reset_required: Some(true),
                drain_and_reset_required: Some(false)
            })
        );

        let x = parse_xid("NVRM: Xid (PCI:0008:01:00): 154, GPU recovery action changed from 0x0 (None) to 0x1 (GPU Reset Required)").unwrap();
        assert!(matches!(
            x.decoded,
            Some(DecodedDetail::RecoveryAction { from: 0, to: 1, .. })
        ));

        let x = parse_xid("NVRM: Xid (PCI:0018:01:00): 149, NETIR_LINK_EVT  Fatal   XC0 i0 Link 09 (0x025525c6 0x00000000 0x0 0x0 0x0 0x0)").unwrap();
        assert!(matches!(
            x.decoded,
            Some(DecodedDetail::NvLink5 {
                fatal: true,
                link: 9,
                intr_info: 0x025525c6,
                ..
            })
        ));

        let x = parse_xid("NVRM: Xid (PCI:0000:06:00): 74, pid=1, name=x, NVLink: fatal error detected on link 14(0x0, 0x0, 0x10000, 0x0, 0x0, 0x0, 0x0)").unwrap();
        assert_eq!(
            x.decoded,
            Some(DecodedDetail::NvLinkRegisters {
                link: 14,
                registers: vec![0, 0, 0x10000, 0, 0, 0, 0]
            })
        );

        let x = parse_xid("NVRM: Xid (0000:03:00): 14, Channel 00000001").unwrap();
        assert_eq!(x.pci.as_deref(), Some("0000:03:00.0"));

        let x = parse_xid("NVRM: Xid (PCI:0000:03:00): 99999999999999, huge").unwrap();
        assert_eq!(x.code, None);
    }

    #[test]
    fn other_lines() {
        let s = parse_sxid("nvidia-nvswitch3: SXid (PCI:0000:05:00.0): 28006, Non-fatal, Link 46 MC TS crumbstore MCTO (First)").unwrap();
        assert_eq!(s.device.as_deref(), Some("nvidia-nvswitch3"));
        assert_eq!(
            (s.code, s.fatal, s.link),
            (Some(28006), Some(false), Some(46))
        );
        let s = parse_sxid("nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 26006, SOE HALTED").unwrap();
        assert_eq!((s.code, s.fatal), (Some(26006), None));
        let s = parse_sxid("nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 01000, Fatal, Link 02 x")
            .unwrap();
        assert_eq!((s.code, s.fatal, s.link), (Some(1000), Some(true), Some(2)));

        assert!(matches!(
            parse_line("NVRM: GPU at PCI:0000:3b:00: GPU-ABCDEF01-2345-6789-abcd-ef0123456789"),
            Some(Line::Identity { uuid, .. }) if uuid == "GPU-abcdef01-2345-6789-abcd-ef0123456789"
        ));
        assert!(matches!(
            parse_line("NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus."),
            Some(Line::FallenOffBus { pci: Some(_), .. })
        ));
        assert!(matches!(
            parse_line("NVRM: The NVIDIA GPU 0000:3b:00.0"),
            Some(Line::FallenOffBusHead { .. })
        ));
        assert_eq!(
            parse_line("NVRM: The NVIDIA GPU 10de:1234 (PCI ID: 10de:1234)"),
            None
        );
        assert!(matches!(
            parse_line("NVRM: GPU 0000:3b:00.0: RmInitAdapter failed! (0x22:0x56:667)"),
            Some(Line::InitFailure { .. })
        ));
        assert_eq!(
            parse_line("NVRM: A GPU crash dump has been created. If possible, please run"),
            Some(Line::CrashDump)
        );
        for d in [
            "NVRM: loading NVIDIA UNIX x86_64 Kernel Module  570.86.15",
            "nvidia-peermem nv_get_p2p_free_callback:125 ERROR detected invalid context",
            "pcieport 0000:00:01.0: AER: Corrected error received: 0000:3b:00.0",
            "NVRM: GPU 0000:3b:00.0: GPU serial number is 1234.",
            "NVRM: GPU Board Serial Number: 1234",
            "NVRM: Xid without parens",
            "NVRM: Xid (PCI:0000:3b:00): no code",
        ] {
            assert_eq!(parse_line(d), None, "{d}");
        }
    }

    #[test]
    fn gpu_uuids_normalise_one_way() {
        // The identity line's form and NVML's agree.
        for (raw, want) in [
            (
                "GPU-ABCDEF01-2345-6789-abcd-ef0123456789",
                "GPU-abcdef01-2345-6789-abcd-ef0123456789",
            ),
            (
                "gpu-abcdef01-2345-6789-ABCD-ef0123456789",
                "GPU-abcdef01-2345-6789-abcd-ef0123456789",
            ),
            ("Gpu-0A", "GPU-0a"),
        ] {
            assert_eq!(normalize_gpu_uuid(raw), want, "{raw}");
        }
        // Only a leading prefix is restored: the old NVML path turned any later `gpu-` into `GPU-`.
        assert_eq!(normalize_gpu_uuid("MIG-GPU-1"), "mig-gpu-1");
        assert_eq!(normalize_gpu_uuid(""), "");
    }
}
