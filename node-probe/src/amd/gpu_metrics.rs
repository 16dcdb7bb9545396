//! `gpu_metrics`, the SMU's binary table (`<pci dev>/gpu_metrics`): a 4-byte header (`u16
//! structure_size, u8 format_revision, u8 content_revision`), then the struct that revision names, in
//! natural C alignment, little-endian. Layouts from Linux `drivers/gpu/drm/amd/include/kgd_pp_interface.h`:
//! v1.3 (MI200, `aldebaran_ppt.c`), v1.4/v1.5 (MI300-class, early), v1.6, v1.7 (the 2026 ROCm driver for
//! SMU 13.0.6/12/14) and v1.8 (v1.7's prefix, larger per-partition stats). The driver fills the table with
//! 0xFF before the SMU writes it (`smu_cmn_init_soft_gpu_metrics`), so an all-ones field is unreported.
//! Only the exact revision is decoded: the revisions are not append-only. A short file, a size that
//! disagrees with its revision, or an unknown revision (v1.9's attribute list among them) is an inline
//! error, never a guess.

use gpu_diag::facts::{
    AmdGpuMetricsFacts, AmdThrottleSampleFacts, AmdXgmiLinkFacts, FieldError, FieldErrorKind,
    Reading,
};

use crate::host::files::HostFiles;

/// The kernel caps a sysfs read at a page (64 KiB on some arm64 kernels); v1.8 is 3360 bytes.
const MAX_BYTES: usize = 64 * 1024;
const XGMI_LINKS: usize = 8;

/// Where one revision keeps the fields read here (byte offsets; `None` where it has no such field).
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

const V1_5: Layout = Layout {
    crev: 5,
    size: 328,
    xgmi_width: Some(84),
    xgmi_speed: Some(86),
    l0_to_recov: Some(112),
    replay: Some(120),
    nak: Some(136),
    xgmi_data: Some(144),
    ..V1_4
};

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

/// Declaration-identical to v1.7 up to `num_partition`; only the per-partition stats after it grew.
const V1_8: Layout = Layout {
    crev: 8,
    size: 3360,
    ..V1_7
};

const LAYOUTS: [&Layout; 6] = [&V1_3, &V1_4, &V1_5, &V1_6, &V1_7, &V1_8];

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
    let Some(l) = LAYOUTS.iter().find(|l| l.frev == frev && l.crev == crev) else {
        return Err(FieldError::with_message(
            FieldErrorKind::NotSupported,
            format!("gpu_metrics version {frev}.{crev} is not one this probe decodes (1.3 to 1.8)"),
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
    let u16_at = |o: usize| {
        let v = u16::from_le_bytes([b[o], b[o + 1]]);
        (v != u16::MAX).then_some(u32::from(v))
    };
    let u32_at = |o: usize| {
        let v = u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        (v != u32::MAX).then_some(u64::from(v))
    };
    let u64_at = |o: usize| {
        let v = u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        (v != u64::MAX).then_some(v)
    };
    let sample = l.accumulation.map(|o| AmdThrottleSampleFacts {
        accumulation_counter: u32_at(o),
        prochot: u32_at(o + 4),
        ppt: u32_at(o + 8),
        socket_thermal: u32_at(o + 12),
        vr_thermal: u32_at(o + 16),
        hbm_thermal: u32_at(o + 20),
    });
    let xgmi_links = match (l.xgmi_data, l.xgmi_status) {
        (None, None) => Vec::new(),
        (data, status) => (0..XGMI_LINKS)
            .map(|i| AmdXgmiLinkFacts {
                link: i as u32,
                active: match status.map(|o| u16_at(o + 2 * i)) {
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
                read_kb: data.and_then(|o| u64_at(o + 8 * i)),
                write_kb: data.and_then(|o| u64_at(o + 8 * (XGMI_LINKS + i))),
            })
            // A link the SMU left entirely unreported is no link of this GPU.
            .filter(|link| link.active.is_ok() || link.read_kb.is_some() || link.write_kb.is_some())
            .collect(),
    };
    Ok(Decoded {
        facts: AmdGpuMetricsFacts {
            version: format!("{frev}.{crev}"),
            throttle_samples: sample.into_iter().collect(),
            pcie_l0_to_recov_count_acc: l.l0_to_recov.and_then(u64_at),
            pcie_replay_count_acc: l.replay.and_then(u64_at),
            pcie_nak_sent_count_acc: l.nak.and_then(u32_at),
            pcie_nak_rcvd_count_acc: l.nak.and_then(|o| u32_at(o + 4)),
        },
        edge_c: l.edge.and_then(u16_at),
        hotspot_c: u16_at(l.hotspot),
        mem_c: u16_at(l.mem),
        socket_power_w: u16_at(l.socket_power),
        xgmi_width: l.xgmi_width.and_then(u16_at),
        xgmi_speed_gbps: l.xgmi_speed.and_then(u16_at),
        xgmi_links,
    })
}

fn bad(message: String) -> FieldError {
    FieldError::with_message(FieldErrorKind::Unknown, message)
}

/// Writes tables of the decoded revisions, for tests (the fake sysfs trees use the same offsets).
#[cfg(test)]
mod tests {
    use super::*;

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
        let mut v19 = table(&V1_3);
        v19[3] = 9;
        assert_eq!(
            decode(&v19).unwrap_err().error,
            FieldErrorKind::NotSupported
        );
        assert!(decode(&[0xAB; 4096]).is_err());
    }
}
