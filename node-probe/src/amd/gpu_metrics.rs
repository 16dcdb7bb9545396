//! `gpu_metrics`, the SMU's binary table (`<pci dev>/gpu_metrics`): a 4-byte header (`u16
//! structure_size, u8 format_revision, u8 content_revision`), then what that revision names, little-endian.
//! Revisions 1.3 to 1.8 are fixed C structs in natural alignment (Linux
//! `drivers/gpu/drm/amd/include/kgd_pp_interface.h`): v1.3 (MI200, `aldebaran_ppt.c`, 120 bytes), v1.4 (288)
//! and v1.5 (360: `jpeg_activity[NUM_JPEG_ENG]` with NUM_JPEG_ENG 32; MI300X on kernels 6.8 to 6.12), v1.6
//! (1664), v1.7 (2208, the 2026 ROCm driver for SMU 13.0.6/12/14) and v1.8 (3872: v1.7's members, larger
//! per-partition stats). Their offsets are `tests/truth/gpu_metrics_layouts.txt`, which cc computes from the
//! kernel's own declarations (tests/truth/gpu_metrics.rs); the unit test below holds these layouts to it.
//! v1.9 (what current drivers write for MI300/MI325/MI355) is a packed list: `int attr_count`, then per
//! attribute a u64 encoding (unit bits 31:24, type 23:20, id 19:10, value count 9:0;
//! `AMDGPU_METRICS_ENC_ATTR`) followed at once by its values (`DECLARE_SMU_METRICS_CLASS`, smu_cmn.h); the
//! attributes are found by id, whatever their order, type or count, and unknown ones are skipped
//! (`tests/truth/gpu_metrics_v1_9.txt` cites the sources).
//! The driver fills the table with 0xFF before the SMU writes it (`smu_cmn_init_soft_gpu_metrics`, and the
//! v1.9 init), so an all-ones value is unreported. Only the exact fixed revisions are decoded: they are not
//! append-only. A short file, a size that disagrees with its revision, an attribute list that runs past its
//! end, or an unknown revision is an inline error, never a guess.

use gpu_diag::facts::{
    AmdGpuMetricsFacts, AmdThrottleSampleFacts, AmdXgmiLinkFacts, FieldError, FieldErrorKind,
    Reading,
};

use crate::host::files::HostFiles;

/// The kernel caps a sysfs read at a page (64 KiB on some arm64 kernels); v1.8 is 3872 bytes.
const MAX_BYTES: usize = 64 * 1024;
const XGMI_LINKS: usize = 8;

/// Where one fixed revision keeps the fields read here (byte offsets; `None` where it has no such field).
/// Offsets from `tests/truth/gpu_metrics_layouts.txt`; the struct each comes from is named beside it.
struct Layout {
    frev: u8,
    crev: u8,
    size: usize,
    edge: Option<usize>,
    hotspot: usize,
    mem: usize,
    socket_power: usize,
    xgmi_width: Option<usize>,
    xgmi_speed: Option<usize>,
    /// `accumulation_counter`, followed by the five u32 residencies (prochot, ppt, socket, vr, hbm).
    accumulation: Option<usize>,
    l0_to_recov: Option<usize>,
    replay: Option<usize>,
    /// `pcie_nak_sent_count_acc`, then `pcie_nak_rcvd_count_acc` (u32 each).
    nak: Option<usize>,
    /// `xgmi_read_data_acc[8]` then `xgmi_write_data_acc[8]` (u64 each).
    xgmi_data: Option<usize>,
    xgmi_status: Option<usize>,
}

/// Linux 6.12 `kgd_pp_interface.h:653` (`struct gpu_metrics_v1_3`).
const V1_3: Layout = Layout {
    frev: 1,
    crev: 3,
    size: 120,
    edge: Some(4),
    hotspot: 6,
    mem: 8,
    socket_power: 22,
    xgmi_width: None,
    xgmi_speed: None,
    accumulation: None,
    l0_to_recov: None,
    replay: None,
    nak: None,
    xgmi_data: None,
    xgmi_status: None,
};

/// Linux 6.12 `kgd_pp_interface.h:725` (`struct gpu_metrics_v1_4`).
const V1_4: Layout = Layout {
    frev: 1,
    crev: 4,
    size: 288,
    edge: None,
    hotspot: 4,
    mem: 6,
    socket_power: 10,
    xgmi_width: Some(52),
    xgmi_speed: Some(54),
    accumulation: None,
    l0_to_recov: Some(80),
    replay: Some(88),
    nak: None,
    xgmi_data: Some(104),
    xgmi_status: None,
};

/// Linux 6.12 `kgd_pp_interface.h:797` (`struct gpu_metrics_v1_5`): `jpeg_activity[32]` (line 812) puts
/// everything after it 64 bytes past v1.4.
const V1_5: Layout = Layout {
    crev: 5,
    size: 360,
    xgmi_width: Some(116),
    xgmi_speed: Some(118),
    l0_to_recov: Some(144),
    replay: Some(152),
    nak: Some(168),
    xgmi_data: Some(176),
    ..V1_4
};

/// `struct gpu_metrics_v1_6` (ROCm/amdgpu 1858ba85, `tests/truth/gpu_metrics_v1_6_to_v1_8.txt`).
const V1_6: Layout = Layout {
    crev: 6,
    size: 1664,
    accumulation: Some(32),
    xgmi_width: Some(64),
    xgmi_speed: Some(66),
    l0_to_recov: Some(96),
    replay: Some(104),
    nak: Some(120),
    xgmi_data: Some(128),
    ..V1_5
};

/// `struct gpu_metrics_v1_7` (same source): `mem_max_bandwidth` moves the rest by 8; link status added.
const V1_7: Layout = Layout {
    crev: 7,
    size: 2208,
    accumulation: Some(40),
    xgmi_width: Some(72),
    xgmi_speed: Some(74),
    l0_to_recov: Some(104),
    replay: Some(112),
    nak: Some(128),
    xgmi_data: Some(136),
    xgmi_status: Some(264),
    ..V1_6
};

/// `struct gpu_metrics_v1_8` (same source): v1.7's members; only `xcp_stats` (`amdgpu_xcp_metrics_v1_2`:
/// `jpeg_busy[40]` and four more u64[8] accumulators per partition) grew.
const V1_8: Layout = Layout {
    crev: 8,
    size: 3872,
    ..V1_7
};

const LAYOUTS: [&Layout; 6] = [&V1_3, &V1_4, &V1_5, &V1_6, &V1_7, &V1_8];

/// v1.9: the attribute encoding (`AMDGPU_METRICS_ATTR_{TYPE,ID,INST}_{SHIFT,MASK}`).
const ATTR_TYPE_SHIFT: u64 = 20;
const ATTR_TYPE_MASK: u64 = 0xF;
const ATTR_ID_SHIFT: u64 = 10;
const ATTR_ID_MASK: u64 = 0x3FF;
const ATTR_INST_MASK: u64 = 0x3FF;

/// v1.9 attribute ids read here (`enum amdgpu_metrics_attr_id`, `tests/truth/gpu_metrics_v1_9.txt`).
mod attr {
    pub const TEMPERATURE_HOTSPOT: u64 = 0;
    pub const TEMPERATURE_MEM: u64 = 1;
    pub const CURR_SOCKET_POWER: u64 = 3;
    pub const ACCUMULATION_COUNTER: u64 = 9;
    pub const PROCHOT_RESIDENCY_ACC: u64 = 10;
    pub const PPT_RESIDENCY_ACC: u64 = 11;
    pub const SOCKET_THM_RESIDENCY_ACC: u64 = 12;
    pub const VR_THM_RESIDENCY_ACC: u64 = 13;
    pub const HBM_THM_RESIDENCY_ACC: u64 = 14;
    pub const XGMI_LINK_WIDTH: u64 = 18;
    pub const XGMI_LINK_SPEED: u64 = 19;
    pub const PCIE_L0_TO_RECOV_COUNT_ACC: u64 = 24;
    pub const PCIE_REPLAY_COUNT_ACC: u64 = 25;
    pub const PCIE_NAK_SENT_COUNT_ACC: u64 = 27;
    pub const PCIE_NAK_RCVD_COUNT_ACC: u64 = 28;
    pub const XGMI_READ_DATA_ACC: u64 = 29;
    pub const XGMI_WRITE_DATA_ACC: u64 = 30;
    pub const XGMI_LINK_STATUS: u64 = 31;
}

/// What one read decoded: the AMD-only facts, and what feeds the shared ones.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    pub facts: AmdGpuMetricsFacts,
    pub edge_c: Option<u32>,
    pub hotspot_c: Option<u32>,
    pub mem_c: Option<u32>,
    pub socket_power_w: Option<u32>,
    pub xgmi_width: Option<u32>,
    pub xgmi_speed_gbps: Option<u32>,
    pub xgmi_links: Vec<AmdXgmiLinkFacts>,
}

/// The fields read, whichever form they came in: `None` where the table has no such field, `Some(None)`
/// where it has it and the SMU left it all-ones.
#[derive(Default)]
struct Fields {
    edge: Option<u64>,
    hotspot: Option<u64>,
    mem: Option<u64>,
    socket_power: Option<u64>,
    xgmi_width: Option<u64>,
    xgmi_speed: Option<u64>,
    /// accumulation counter, prochot, ppt, socket, vr, hbm; `None` where the table has no residencies.
    residency: Option<[Option<u64>; 6]>,
    l0_to_recov: Option<u64>,
    replay: Option<u64>,
    nak_sent: Option<u64>,
    nak_rcvd: Option<u64>,
    xgmi_read: Option<Vec<Option<u64>>>,
    xgmi_write: Option<Vec<Option<u64>>>,
    xgmi_status: Option<Vec<Option<u64>>>,
}

pub fn read(files: HostFiles<'_>, dir: &str) -> Result<Decoded, FieldError> {
    decode(&files.bytes(format!("{dir}/gpu_metrics"), MAX_BYTES)?)
}

/// One more sample of the throttle residencies (the second of a probe run).
pub fn sample(files: HostFiles<'_>, dir: &str) -> Option<AmdThrottleSampleFacts> {
    let d = read(files, dir).ok()?;
    d.facts.throttle_samples.first().copied()
}

pub fn decode(b: &[u8]) -> Result<Decoded, FieldError> {
    if b.len() < 4 {
        return Err(bad(format!(
            "gpu_metrics is {} bytes, shorter than its header",
            b.len()
        )));
    }
    let size = usize::from(u16::from_le_bytes([b[0], b[1]]));
    let (frev, crev) = (b[2], b[3]);
    let fields = if (frev, crev) == (1, 9) {
        if b.len() < size {
            return Err(bad(format!(
                "gpu_metrics 1.9 is truncated: {} of {size} bytes",
                b.len()
            )));
        }
        attributes(&b[..size])?
    } else {
        let Some(l) = LAYOUTS.iter().find(|l| l.frev == frev && l.crev == crev) else {
            return Err(FieldError::with_message(
                FieldErrorKind::NotSupported,
                format!(
                    "gpu_metrics version {frev}.{crev} is not one this probe decodes (1.3 to 1.9)"
                ),
            ));
        };
        if size != l.size {
            return Err(bad(format!(
                "gpu_metrics {frev}.{crev} says it is {size} bytes; that version is {}",
                l.size
            )));
        }
        if b.len() < l.size {
            return Err(bad(format!(
                "gpu_metrics {frev}.{crev} is truncated: {} of {} bytes",
                b.len(),
                l.size
            )));
        }
        fixed(l, b)
    };
    Ok(assemble(frev, crev, fields))
}

/// The little-endian unsigned value of `n` bytes at `o`; all-ones (unreported) is `None`. The caller has
/// checked `o + n` against the length.
fn uint(b: &[u8], o: usize, n: usize) -> Option<u64> {
    let mut v = [0u8; 8];
    v[..n].copy_from_slice(&b[o..o + n]);
    let v = u64::from_le_bytes(v);
    let ones = if n == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * n)) - 1
    };
    (v != ones).then_some(v)
}

fn fixed(l: &Layout, b: &[u8]) -> Fields {
    let u16_at = |o: usize| uint(b, o, 2);
    let u32_at = |o: usize| uint(b, o, 4);
    let u64_at = |o: usize| uint(b, o, 8);
    let links = |o: usize, n: usize| (0..XGMI_LINKS).map(|i| uint(b, o + n * i, n)).collect();
    Fields {
        edge: l.edge.and_then(u16_at),
        hotspot: u16_at(l.hotspot),
        mem: u16_at(l.mem),
        socket_power: u16_at(l.socket_power),
        xgmi_width: l.xgmi_width.and_then(u16_at),
        xgmi_speed: l.xgmi_speed.and_then(u16_at),
        residency: l
            .accumulation
            .map(|o| std::array::from_fn(|k| u32_at(o + 4 * k))),
        l0_to_recov: l.l0_to_recov.and_then(u64_at),
        replay: l.replay.and_then(u64_at),
        nak_sent: l.nak.and_then(u32_at),
        nak_rcvd: l.nak.and_then(|o| u32_at(o + 4)),
        xgmi_read: l.xgmi_data.map(|o| links(o, 8)),
        xgmi_write: l.xgmi_data.map(|o| links(o + 8 * XGMI_LINKS, 8)),
        xgmi_status: l.xgmi_status.map(|o| links(o, 2)),
    }
}

/// v1.9: walks `attr_count` attributes from byte 8, each a u64 encoding and then its values.
fn attributes(b: &[u8]) -> Result<Fields, FieldError> {
    if b.len() < 8 {
        return Err(bad(format!(
            "gpu_metrics 1.9 is {} bytes, shorter than its header and attribute count",
            b.len()
        )));
    }
    let count = i32::from_le_bytes([b[4], b[5], b[6], b[7]]);
    let Ok(count) = usize::try_from(count) else {
        return Err(bad(format!("gpu_metrics 1.9 lists {count} attributes")));
    };
    let mut f = Fields::default();
    let mut residency: [Option<u64>; 6] = [None; 6];
    let mut any_residency = false;
    let mut at = 8;
    for n in 0..count {
        if b.len() < at + 8 {
            return Err(bad(format!(
                "gpu_metrics 1.9 lists {count} attributes; its {} bytes end at the {}th",
                b.len(),
                n + 1
            )));
        }
        let enc = u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
        at += 8;
        let ty = (enc >> ATTR_TYPE_SHIFT) & ATTR_TYPE_MASK;
        let id = (enc >> ATTR_ID_SHIFT) & ATTR_ID_MASK;
        let inst = (enc & ATTR_INST_MASK) as usize;
        // enum amdgpu_metrics_attr_type: U8, S8, U16, S16, U32, S32, U64, S64.
        let width = match ty {
            0 | 1 => 1,
            2 | 3 => 2,
            4 | 5 => 4,
            6 | 7 => 8,
            _ => {
                return Err(bad(format!(
                    "gpu_metrics 1.9 attribute {id} has type {ty}, which no kernel defines; the rest cannot be found"
                )));
            }
        };
        let end = at + width * inst;
        if b.len() < end {
            return Err(bad(format!(
                "gpu_metrics 1.9 attribute {id} needs {} bytes at offset {at}; the table is {}",
                width * inst,
                b.len()
            )));
        }
        let values: Vec<Option<u64>> = (0..inst).map(|i| uint(b, at + width * i, width)).collect();
        let first = values.first().copied().flatten();
        match id {
            attr::TEMPERATURE_HOTSPOT => f.hotspot = first,
            attr::TEMPERATURE_MEM => f.mem = first,
            attr::CURR_SOCKET_POWER => f.socket_power = first,
            attr::XGMI_LINK_WIDTH => f.xgmi_width = first,
            attr::XGMI_LINK_SPEED => f.xgmi_speed = first,
            attr::ACCUMULATION_COUNTER
            | attr::PROCHOT_RESIDENCY_ACC
            | attr::PPT_RESIDENCY_ACC
            | attr::SOCKET_THM_RESIDENCY_ACC
            | attr::VR_THM_RESIDENCY_ACC
            | attr::HBM_THM_RESIDENCY_ACC => {
                any_residency = true;
                residency[(id - attr::ACCUMULATION_COUNTER) as usize] = first;
            }
            attr::PCIE_L0_TO_RECOV_COUNT_ACC => f.l0_to_recov = first,
            attr::PCIE_REPLAY_COUNT_ACC => f.replay = first,
            attr::PCIE_NAK_SENT_COUNT_ACC => f.nak_sent = first,
            attr::PCIE_NAK_RCVD_COUNT_ACC => f.nak_rcvd = first,
            attr::XGMI_READ_DATA_ACC => f.xgmi_read = Some(values),
            attr::XGMI_WRITE_DATA_ACC => f.xgmi_write = Some(values),
            attr::XGMI_LINK_STATUS => f.xgmi_status = Some(values),
            // Every other attribute (clocks, activity, per-partition stats, ids newer than this reader).
            _ => {}
        }
        at = end;
    }
    f.residency = any_residency.then_some(residency);
    Ok(f)
}

fn assemble(frev: u8, crev: u8, f: Fields) -> Decoded {
    let small = |v: Option<u64>| v.and_then(|v| u32::try_from(v).ok());
    let sample = f.residency.map(|r| AmdThrottleSampleFacts {
        accumulation_counter: r[0],
        prochot: r[1],
        ppt: r[2],
        socket_thermal: r[3],
        vr_thermal: r[4],
        hbm_thermal: r[5],
    });
    let n = [&f.xgmi_read, &f.xgmi_write, &f.xgmi_status]
        .iter()
        .filter_map(|v| v.as_ref().map(Vec::len))
        .max()
        .unwrap_or(0);
    let at = |v: &Option<Vec<Option<u64>>>, i: usize| {
        v.as_ref().and_then(|v| v.get(i).copied().flatten())
    };
    let xgmi_links = (0..n)
        .map(|i| AmdXgmiLinkFacts {
            link: i as u32,
            active: match f.xgmi_status.as_ref().map(|s| s.get(i).copied().flatten()) {
                Some(Some(v)) => Reading::Ok(v == 1),
                Some(None) => Reading::Err(FieldError::with_message(
                    FieldErrorKind::NotSupported,
                    "the SMU did not report this link's status",
                )),
                None => Reading::Err(FieldError::with_message(
                    FieldErrorKind::NotSupported,
                    format!("gpu_metrics {frev}.{crev} has no link status (1.7 and later)"),
                )),
            },
            read_kb: at(&f.xgmi_read, i),
            write_kb: at(&f.xgmi_write, i),
        })
        // A link the SMU left entirely unreported is no link of this GPU.
        .filter(|link| link.active.is_ok() || link.read_kb.is_some() || link.write_kb.is_some())
        .collect();
    Decoded {
        facts: AmdGpuMetricsFacts {
            version: format!("{frev}.{crev}"),
            throttle_samples: sample.into_iter().collect(),
            pcie_l0_to_recov_count_acc: f.l0_to_recov,
            pcie_replay_count_acc: f.replay,
            pcie_nak_sent_count_acc: f.nak_sent,
            pcie_nak_rcvd_count_acc: f.nak_rcvd,
        },
        edge_c: small(f.edge),
        hotspot_c: small(f.hotspot),
        mem_c: small(f.mem),
        socket_power_w: small(f.socket_power),
        xgmi_width: small(f.xgmi_width),
        xgmi_speed_gbps: small(f.xgmi_speed),
        xgmi_links,
    }
}

fn bad(message: String) -> FieldError {
    FieldError::with_message(FieldErrorKind::Unknown, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offsets cc computed from the kernel's declarations (tests/truth/gpu_metrics.rs checks the file).
    const TRUTH: &str = include_str!("../../../tests/truth/gpu_metrics_layouts.txt");

    /// Where this reader looks for a kernel member in `l` (`None`: it does not read it there).
    fn reader_offset(l: &Layout, member: &str) -> Option<usize> {
        let residency = |k: usize| l.accumulation.map(|o| o + 4 * k);
        match member {
            "temperature_edge" => l.edge,
            "temperature_hotspot" => Some(l.hotspot),
            "temperature_mem" => Some(l.mem),
            "average_socket_power" if l.crev == 3 => Some(l.socket_power),
            "curr_socket_power" if l.crev != 3 => Some(l.socket_power),
            "xgmi_link_width" => l.xgmi_width,
            "xgmi_link_speed" => l.xgmi_speed,
            "accumulation_counter" => residency(0),
            "prochot_residency_acc" => residency(1),
            "ppt_residency_acc" => residency(2),
            "socket_thm_residency_acc" => residency(3),
            "vr_thm_residency_acc" => residency(4),
            "hbm_thm_residency_acc" => residency(5),
            "pcie_l0_to_recov_count_acc" => l.l0_to_recov,
            "pcie_replay_count_acc" => l.replay,
            "pcie_nak_sent_count_acc" => l.nak,
            "pcie_nak_rcvd_count_acc" => l.nak.map(|o| o + 4),
            "xgmi_read_data_acc" => l.xgmi_data,
            "xgmi_write_data_acc" => l.xgmi_data.map(|o| o + 8 * XGMI_LINKS),
            "xgmi_link_status" => l.xgmi_status,
            _ => None,
        }
    }

    const READ: [&str; 21] = [
        "temperature_edge",
        "temperature_hotspot",
        "temperature_mem",
        "average_socket_power",
        "curr_socket_power",
        "xgmi_link_width",
        "xgmi_link_speed",
        "accumulation_counter",
        "prochot_residency_acc",
        "ppt_residency_acc",
        "socket_thm_residency_acc",
        "vr_thm_residency_acc",
        "hbm_thm_residency_acc",
        "pcie_l0_to_recov_count_acc",
        "pcie_replay_count_acc",
        "pcie_nak_sent_count_acc",
        "pcie_nak_rcvd_count_acc",
        "xgmi_read_data_acc",
        "xgmi_write_data_acc",
        "xgmi_link_status",
        "SIZE",
    ];

    #[test]
    fn every_layout_is_the_compilers() {
        let rows: Vec<(String, String, usize)> = TRUTH
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .map(|l| {
                let p: Vec<&str> = l.split_whitespace().collect();
                // `SIZE 0 BYTES`: the struct's size is the last column.
                let col = if p[1] == "SIZE" { 3 } else { 2 };
                (p[0].to_string(), p[1].to_string(), p[col].parse().unwrap())
            })
            .collect();
        for l in LAYOUTS {
            let rev = format!("{}.{}", l.frev, l.crev);
            for member in READ {
                let truth = rows
                    .iter()
                    .find(|(r, m, _)| *r == rev && m == member)
                    .map(|(_, _, o)| *o);
                let mine = if member == "SIZE" {
                    Some(l.size)
                } else {
                    reader_offset(l, member)
                };
                assert_eq!(mine, truth, "gpu_metrics {rev} {member}");
            }
        }
        assert_eq!(
            rows.iter().filter(|(_, m, _)| m == "SIZE").count(),
            LAYOUTS.len(),
            "a revision in the table that the reader does not decode"
        );
    }

    fn table(l: &Layout) -> Vec<u8> {
        let mut b = vec![0xFF; l.size];
        b[0..2].copy_from_slice(&(l.size as u16).to_le_bytes());
        b[2] = l.frev;
        b[3] = l.crev;
        b
    }

    #[test]
    fn v1_7_fields_and_unreported_ones() {
        let mut b = table(&V1_7);
        b[4..6].copy_from_slice(&71u16.to_le_bytes());
        let acc = 40;
        b[acc..acc + 4].copy_from_slice(&1000u32.to_le_bytes());
        b[acc + 8..acc + 12].copy_from_slice(&250u32.to_le_bytes());
        b[264..266].copy_from_slice(&1u16.to_le_bytes());
        b[266..268].copy_from_slice(&0u16.to_le_bytes());
        let d = decode(&b).unwrap();
        assert_eq!(d.facts.version, "1.7");
        assert_eq!(d.hotspot_c, Some(71));
        assert_eq!(d.mem_c, None, "0xFFFF is unreported");
        let s = d.facts.throttle_samples[0];
        assert_eq!(
            (s.accumulation_counter, s.ppt, s.prochot),
            (Some(1000), Some(250), None)
        );
        assert_eq!(d.xgmi_links.len(), 2);
        assert_eq!(d.xgmi_links[1].active, Reading::Ok(false));
    }

    #[test]
    fn v1_5_is_360_bytes_and_the_old_328_is_refused() {
        let mut b = table(&V1_5);
        b[152..160].copy_from_slice(&77u64.to_le_bytes());
        b[116..118].copy_from_slice(&16u16.to_le_bytes());
        let d = decode(&b).unwrap();
        assert_eq!(d.facts.pcie_replay_count_acc, Some(77));
        assert_eq!(d.xgmi_width, Some(16));
        let mut old = b[..328].to_vec();
        old[0..2].copy_from_slice(&328u16.to_le_bytes());
        assert!(decode(&old).unwrap_err().message.unwrap().contains("360"));
    }

    /// A v1.9 table: header, count, then (id, type, values) packed.
    fn v19(attrs: &[(u64, u64, Vec<u64>)]) -> Vec<u8> {
        let mut b = vec![0, 0, 1, 9];
        b.extend_from_slice(&(attrs.len() as i32).to_le_bytes());
        for (id, ty, vals) in attrs {
            let enc = (2u64 << 24) | (ty << 20) | (id << 10) | vals.len() as u64;
            b.extend_from_slice(&enc.to_le_bytes());
            let w = [1, 1, 2, 2, 4, 4, 8, 8][*ty as usize];
            for v in vals {
                b.extend_from_slice(&v.to_le_bytes()[..w]);
            }
        }
        let n = b.len() as u16;
        b[0..2].copy_from_slice(&n.to_le_bytes());
        b
    }

    #[test]
    fn v1_9_attributes_by_id_in_any_order_unknown_ones_skipped() {
        let b = v19(&[
            (attr::XGMI_LINK_STATUS, 2, vec![1, 0, 1, 0xFFFF]),
            (700, 6, vec![5, 6, 7]), // an id newer than this reader
            (attr::TEMPERATURE_MEM, 2, vec![0xFFFF]),
            (attr::TEMPERATURE_HOTSPOT, 2, vec![66]),
            (attr::PCIE_REPLAY_COUNT_ACC, 6, vec![123_456]),
            (attr::PCIE_NAK_SENT_COUNT_ACC, 6, vec![9]), // u64 where MI300 writes u32
            (attr::PPT_RESIDENCY_ACC, 4, vec![4242]),
            (attr::ACCUMULATION_COUNTER, 6, vec![99_999]),
            (attr::XGMI_READ_DATA_ACC, 6, vec![10, 20, 30]),
        ]);
        let d = decode(&b).unwrap();
        assert_eq!(d.facts.version, "1.9");
        assert_eq!((d.hotspot_c, d.mem_c), (Some(66), None));
        assert_eq!(d.facts.pcie_replay_count_acc, Some(123_456));
        assert_eq!(d.facts.pcie_nak_sent_count_acc, Some(9));
        let s = d.facts.throttle_samples[0];
        assert_eq!(
            (s.accumulation_counter, s.ppt, s.prochot),
            (Some(99_999), Some(4242), None)
        );
        let active: Vec<_> = d.xgmi_links.iter().map(|l| l.active.clone()).collect();
        assert_eq!(active.len(), 3, "the unreported fourth link is no link");
        assert_eq!(active[1], Reading::Ok(false));
        assert_eq!(d.xgmi_links[2].read_kb, Some(30));
    }

    #[test]
    fn malformed_v1_9_is_an_error_never_a_panic() {
        let good = v19(&[
            (attr::TEMPERATURE_HOTSPOT, 2, vec![66]),
            (attr::XGMI_LINK_STATUS, 2, vec![1; 8]),
        ]);
        assert!(decode(&good).is_ok());
        // Every truncation, with the size patched to match, is an error or a shorter decode, never a panic.
        for n in 0..good.len() {
            let mut t = good[..n].to_vec();
            if t.len() >= 2 {
                t[0..2].copy_from_slice(&(n as u16).to_le_bytes());
            }
            let _ = decode(&t);
        }
        let mut more = good.clone();
        more[4..8].copy_from_slice(&3i32.to_le_bytes());
        assert!(
            decode(&more)
                .unwrap_err()
                .message
                .unwrap()
                .contains("3 attributes")
        );
        let mut neg = good.clone();
        neg[4..8].copy_from_slice(&(-1i32).to_le_bytes());
        assert!(decode(&neg).is_err());
        let mut badtype = good.clone();
        badtype[8 + 2] |= 0xF0; // type bits 23:20 = 15
        assert!(
            decode(&badtype)
                .unwrap_err()
                .message
                .unwrap()
                .contains("type")
        );
        let mut long = good.clone();
        long[0..2].copy_from_slice(&4000u16.to_le_bytes());
        assert!(
            decode(&long)
                .unwrap_err()
                .message
                .unwrap()
                .contains("truncated")
        );
        // Arbitrary bytes behind a 1.9 header.
        for seed in 0..200u32 {
            let mut b: Vec<u8> = (0..300u32)
                .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed.wrapping_mul(40_503)) >> 13) as u8)
                .collect();
            b[0..2].copy_from_slice(&300u16.to_le_bytes());
            (b[2], b[3]) = (1, 9);
            let _ = decode(&b);
        }
    }

    #[test]
    fn short_oversized_and_unknown_tables_are_errors() {
        let b = table(&V1_8);
        assert!(
            decode(&b[..100])
                .unwrap_err()
                .message
                .unwrap()
                .contains("truncated")
        );
        assert!(decode(&b[..3]).is_err());
        let mut odd = table(&V1_3);
        odd[0..2].copy_from_slice(&999u16.to_le_bytes());
        assert!(decode(&odd).unwrap_err().message.unwrap().contains("999"));
        let mut v110 = table(&V1_3);
        v110[3] = 10;
        assert_eq!(
            decode(&v110).unwrap_err().error,
            FieldErrorKind::NotSupported
        );
        assert!(decode(&[0xAB; 4096]).is_err());
    }
}
