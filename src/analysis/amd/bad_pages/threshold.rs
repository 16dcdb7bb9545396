//! The bad-page threshold as the running kernel's amdgpu computes it, where debugfs does not show it.
//!
//! Two eras, both read from the kernel's own code:
//!
//! **Linux up to 6.14** (Linux 6.12 source, Debian `linux-source-6.12` 6.12.117, `amdgpu_ras.c`):
//! `amdgpu_ras_validate_threshold` (2812-2846): any negative `amdgpu.bad_page_threshold` gives
//! `min(mc_vram_size / RAS_BAD_PAGE_COVER, max_count)` with `RAS_BAD_PAGE_COVER = 100 MiB` (124); a
//! positive one `min(max_count, value)`. `max_count` is `amdgpu_ras_eeprom_max_record_count`
//! (`amdgpu_ras_eeprom.c` 1012-1020): 10911 records for the v2.1 table that UMC 8.10.0 and 12.0.0 get
//! (409-423), else 10921 (`(256 KiB - 20) / 24`, `(256 KiB - 20 - 256) / 24`, 90-124). Reaching it marks
//! the GPU RMA unless the parameter is -1 (`amdgpu_ras_eeprom.c` 753): so -2 retires the GPU there. The
//! MP0-keyed reserve (`amdgpu_ras_init_reserved_vram_size`, 3551-3566) exists but only sizes KFD's
//! available memory (`amdgpu_amdkfd_gpuvm.c` 175), not the threshold.
//!
//! **Linux 6.15 and later** (AMD's "drm/amdgpu: Update usage for bad page threshold", posted to amd-gfx on
//! 22 Jan 2025, after the 6.14 merge window, so first in 6.15; the code as [`UPSTREAM`] names it): -2 keeps
//! the 1-per-100-MiB formula, -1 becomes `(reserved_pages_in_bytes >> 21) << 4` with the reserve picked by
//! the MP0 (PSP) IP version in [`RESERVED_BY_MP0`] (other MP0s reserve nothing: threshold 0), a positive
//! value stays `min(max_count, value)`; only a positive value retires the GPU when reached.
//!
//! The GFX version is used only when MP0 is unreadable, and the answer says so.

use std::fmt::Write;

/// The upstream code of the 6.15+ rule, read with the project's GitHub search (CI cannot reach GitHub,
/// so what is relied on is committed here as data): repository `gregkh/linux` (the mainline/stable
/// mirror; the stored `torvalds/linux` copy of the file predates the rule), path
/// `drivers/gpu/drm/amd/amdgpu/amdgpu_ras.c`, commit `1590b008bf7de3fd8d0d4f690a6e4b4286674e50`:
/// `amdgpu_ras_validate_threshold` (-2: `mc_vram_size / RAS_BAD_PAGE_COVER` capped; -1:
/// `((con->reserved_pages_in_bytes) >> 21) << 4`; else `min_t(int, max_count, value)`) and
/// `amdgpu_ras_init_reserved_vram_size` (the table below; `AMD_IS_APU` reserves nothing).
///
/// MP0 version -> bytes reserved for retired pages (`AMDGPU_RAS_RESERVED_VRAM_SIZE_DEFAULT` = 16 MiB,
/// `<< 1` for 13.0.14).
pub const RESERVED_BY_MP0: &[((u32, u32, u32), u64)] = &[
    ((13, 0, 2), 16 << 20),
    ((13, 0, 6), 16 << 20),
    ((13, 0, 12), 16 << 20),
    ((13, 0, 14), 32 << 20),
];

/// `RAS_BAD_PAGE_COVER`: one bad page per 100 MiB of VRAM.
const PAGE_COVER_BYTES: u64 = 100 << 20;
/// `RAS_MAX_RECORD_COUNT`, `RAS_MAX_RECORD_COUNT_V2_1` (256 KiB table, 20-byte header, 256-byte v2.1
/// info, 24-byte records).
const MAX_RECORDS_V1: u32 = ((256 * 1024) - 20) / 24;
const MAX_RECORDS_V2_1: u32 = ((256 * 1024) - 20 - 256) / 24;

/// What the node shows that the rule depends on.
#[derive(Debug, Clone, Default)]
pub struct Inputs<'a> {
    /// `/sys/module/amdgpu/parameters/bad_page_threshold`.
    pub param: Option<i64>,
    /// `mem_info_vram_total` (`real_vram_size`, set equal to `mc_vram_size` by gmc_v9_0.c:1693).
    pub vram_bytes: Option<u64>,
    /// `/proc/sys/kernel/osrelease`.
    pub kernel_release: Option<&'a str>,
    /// `/sys/module/amdgpu/version`: present only for ROCm's out-of-tree (DKMS) driver.
    pub out_of_tree: Option<&'a str>,
    pub mp0: Option<(u32, u32, u32)>,
    pub umc: Option<(u32, u32, u32)>,
    /// debugfs `ras/ras_eeprom_size`'s record count.
    pub eeprom_max_records: Option<u32>,
    /// KFD's `gfx_target_version` (`90402`), the last resort.
    pub gfx_target_version: Option<u32>,
}

/// The threshold the kernel would apply and how this one was worked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Threshold {
    /// Pages; 0 where the rule gives none (the driver then has no count to reach).
    pub pages: u32,
    /// Reaching it retires the GPU (RMA); else the driver only warns.
    pub rma: bool,
    /// In words: the formula, its inputs and the kernel era.
    pub basis: String,
    /// Where the era was assumed (an out-of-tree driver, an unreadable kernel release) and the other
    /// era's rule gives another count: that count. A verdict resting on the assumption alone says so.
    pub other_era: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Era {
    /// Linux up to 6.14.
    UpTo6_14,
    /// Linux 6.15 and later.
    From6_15,
}

/// `13.0.6` -> `(13, 0, 6)`.
pub fn ip(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.trim().split('.').map(|p| p.parse::<u32>().ok());
    let out = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(out)
}

/// `5.15.0-125-generic` -> `(5, 15)`.
fn kernel_version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(['.', '-']);
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn show_ip((a, b, c): (u32, u32, u32)) -> String {
    format!("{a}.{b}.{c}")
}

fn show_bytes(b: u64) -> String {
    if b.is_multiple_of(1 << 30) {
        format!("{} GiB", b >> 30)
    } else {
        format!("{} MiB", b >> 20)
    }
}

/// The era, in words what picked it, and whether it was assumed.
fn era(i: &Inputs<'_>) -> (Era, String, bool) {
    if let Some(v) = i.out_of_tree {
        // ROCm's DKMS tree carried the change first (the posted patch is against it); a DKMS version
        // cannot be mapped to a kernel release (ROCm 6.2's and older DKMS drivers predate it), so this
        // is an assumption and says so.
        return (
            Era::From6_15,
            format!("rule of Linux 6.15+, assumed for the out-of-tree amdgpu {v}"),
            true,
        );
    }
    match i
        .kernel_release
        .and_then(|r| kernel_version(r).map(|v| (r, v)))
    {
        Some((r, v)) if v >= (6, 15) => (
            Era::From6_15,
            format!("Linux 6.15+ rule (kernel {r})"),
            false,
        ),
        Some((r, _)) => (
            Era::UpTo6_14,
            format!("Linux 6.12 rule (kernel {r})"),
            false,
        ),
        None => (
            Era::From6_15,
            "rule of Linux 6.15+, assumed: kernel release unreadable".to_string(),
            true,
        ),
    }
}

/// The EEPROM table's record count and, where it was not read, how it was taken.
fn max_records(i: &Inputs<'_>, era: Era) -> (u32, &'static str) {
    if let Some(n) = i.eeprom_max_records {
        return (n, "EEPROM capacity from debugfs");
    }
    let v2_1 = match (i.umc, era) {
        (Some((8, 10, 0)) | Some((12, 0, 0)), _) => true,
        // Newer kernels keep the v2.1 count for every later table version (`>= RAS_TABLE_VER_V2_1`),
        // which UMC 12 parts get.
        (Some((12, _, _)), Era::From6_15) => true,
        (Some(_), _) => false,
        (None, _) => return (MAX_RECORDS_V1, "EEPROM capacity assumed (UMC unreadable)"),
    };
    if v2_1 {
        (MAX_RECORDS_V2_1, "EEPROM capacity by UMC version")
    } else {
        (MAX_RECORDS_V1, "EEPROM capacity by UMC version")
    }
}

/// The threshold by the kernel's rule; `None` where retirement is off or the inputs do not suffice.
/// Where the era was assumed, the other era's count rides along ([`Threshold::other_era`]).
pub fn compute(i: &Inputs<'_>) -> Option<Threshold> {
    let (era, era_words, assumed) = era(i);
    let mut t = compute_in(i, era, &era_words)?;
    if assumed {
        let other = match era {
            Era::From6_15 => Era::UpTo6_14,
            Era::UpTo6_14 => Era::From6_15,
        };
        t.other_era = compute_in(i, other, "")
            .map(|o| o.pages)
            .filter(|p| *p != t.pages);
    }
    Some(t)
}

fn compute_in(i: &Inputs<'_>, era: Era, era_words: &str) -> Option<Threshold> {
    let param = i.param.unwrap_or(-1);
    if param == 0 {
        return None;
    }
    let (cap, cap_words) = max_records(i, era);
    let mut basis = String::new();
    let per_vram = |basis: &mut String| -> Option<u32> {
        let vram = i.vram_bytes?;
        let pages = u32::try_from(vram / PAGE_COVER_BYTES).unwrap_or(u32::MAX);
        let _ = write!(basis, "1 per 100 MiB of {} VRAM", show_bytes(vram));
        Some(pages)
    };
    let capped = |pages: u32, basis: &mut String| -> u32 {
        if pages > cap {
            let _ = write!(basis, ", capped at {cap} records ({cap_words})");
        }
        pages.min(cap)
    };
    let (pages, rma) = match (era, param) {
        (_, p) if p > 0 => {
            let p = u32::try_from(p).unwrap_or(u32::MAX);
            let _ = write!(basis, "the user threshold {p}");
            (capped(p, &mut basis), true)
        }
        (Era::UpTo6_14, p) => (capped(per_vram(&mut basis)?, &mut basis), p != -1),
        (Era::From6_15, -2) => (capped(per_vram(&mut basis)?, &mut basis), false),
        (Era::From6_15, -1) => {
            let reserved = match i.mp0 {
                Some(mp0) => {
                    let r = RESERVED_BY_MP0
                        .iter()
                        .find(|(v, _)| *v == mp0)
                        .map_or(0, |(_, r)| *r);
                    if r == 0 {
                        let _ = write!(
                            basis,
                            "MP0 {} reserves no VRAM for retired pages, so the default gives no count",
                            show_ip(mp0)
                        );
                    } else {
                        let _ = write!(
                            basis,
                            "{} reserved for retired pages on MP0 {}",
                            show_bytes(r),
                            show_ip(mp0)
                        );
                    }
                    r
                }
                None => {
                    // The GFX version stands in for MP0: MI350-class (GC 9.5) parts are the 13.0.14
                    // ones in the scenarios' reference, everything older 16 MiB.
                    let gfx = i.gfx_target_version?;
                    let r = match gfx {
                        90500..=90599 => 32 << 20,
                        90000..=90499 => 16 << 20,
                        _ => return None,
                    };
                    let _ = write!(
                        basis,
                        "estimated from GFX {}.{}.{}, MP0 unreadable ({} reserved)",
                        gfx / 10000,
                        gfx / 100 % 100,
                        gfx % 100,
                        show_bytes(r)
                    );
                    r
                }
            };
            (
                u32::try_from((reserved >> 21) << 4).unwrap_or(u32::MAX),
                false,
            )
        }
        // Any other negative value falls to `min_t(int, max_count, value)`: negative, stored in a u32,
        // so a count no GPU reaches.
        (Era::From6_15, p) => {
            let _ = write!(
                basis,
                "amdgpu.bad_page_threshold={p} gives no reachable count"
            );
            (0, false)
        }
    };
    let _ = write!(basis, ", {era_words}");
    Some(Threshold {
        pages,
        rma,
        basis,
        other_era: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: u64 = 1 << 30;

    fn mi300x_on(kernel: &'static str) -> Inputs<'static> {
        Inputs {
            param: Some(-1),
            vram_bytes: Some(192 * GIB),
            kernel_release: Some(kernel),
            mp0: Some((13, 0, 6)),
            umc: Some((12, 0, 0)),
            gfx_target_version: Some(90402),
            ..Inputs::default()
        }
    }

    #[test]
    fn record_counts_follow_the_table_layout() {
        // amdgpu_ras_eeprom.c 66-67, 90, 94-95, 118, 122-124 (Linux 6.12): (262144 - 20) / 24 and
        // (262144 - 20 - 256) / 24, integer division.
        assert_eq!(MAX_RECORDS_V1, 10921);
        assert_eq!(MAX_RECORDS_V2_1, 10911);
    }

    #[test]
    fn linux_6_12_default_is_one_page_per_100_mib() {
        // 192 GiB = 196608 MiB; 196608 / 100 = 1966 (do_div truncates). Warn only: param -1.
        let t = compute(&mi300x_on("6.12.12-amd64")).unwrap();
        assert_eq!((t.pages, t.rma), (1966, false));
        assert!(
            t.basis.contains("1 per 100 MiB of 192 GiB VRAM"),
            "{}",
            t.basis
        );
        assert!(
            t.basis.contains("Linux 6.12 rule (kernel 6.12.12-amd64)"),
            "{}",
            t.basis
        );
        // 64 GiB = 65536 MiB -> 655.
        let t = compute(&Inputs {
            vram_bytes: Some(64 * GIB),
            ..mi300x_on("5.15.0-125-generic")
        })
        .unwrap();
        assert_eq!(t.pages, 655);
    }

    #[test]
    fn linux_6_12_minus_two_retires_the_gpu() {
        // amdgpu_ras_eeprom.c 753: is_rma unless the parameter is -1.
        let t = compute(&Inputs {
            param: Some(-2),
            ..mi300x_on("6.12.0")
        })
        .unwrap();
        assert_eq!((t.pages, t.rma), (1966, true));
    }

    #[test]
    fn the_cap_is_the_eeprom_record_count() {
        // 2 TiB / 100 MiB = 20971 > 10911 (UMC 12.0.0: v2.1 table).
        let t = compute(&Inputs {
            vram_bytes: Some(2048 * GIB),
            ..mi300x_on("6.12.0")
        })
        .unwrap();
        assert_eq!(t.pages, 10911);
        assert!(t.basis.contains("capped at 10911"), "{}", t.basis);
        // A user value over the capacity read from debugfs is cut to it.
        let t = compute(&Inputs {
            param: Some(50_000),
            eeprom_max_records: Some(10921),
            ..mi300x_on("6.16.3")
        })
        .unwrap();
        assert_eq!((t.pages, t.rma), (10921, true));
        assert!(
            t.basis.contains("EEPROM capacity from debugfs"),
            "{}",
            t.basis
        );
    }

    #[test]
    fn newer_kernels_key_the_default_on_mp0() {
        // (16 MiB >> 21) << 4 = 8 << 4 = 128; (32 MiB >> 21) << 4 = 256.
        let t = compute(&mi300x_on("6.15.0")).unwrap();
        assert_eq!((t.pages, t.rma), (128, false));
        assert!(
            t.basis
                .contains("16 MiB reserved for retired pages on MP0 13.0.6"),
            "{}",
            t.basis
        );
        let t = compute(&Inputs {
            mp0: Some((13, 0, 14)),
            ..mi300x_on("6.17.1")
        })
        .unwrap();
        assert_eq!(t.pages, 256);
        // An MP0 outside the table reserves nothing: the default gives no count.
        let t = compute(&Inputs {
            mp0: Some((13, 0, 10)),
            ..mi300x_on("6.17.1")
        })
        .unwrap();
        assert_eq!(t.pages, 0);
    }

    #[test]
    fn an_mi355_like_part_is_judged_by_mp0_not_gfx() {
        // GFX 9.5.0 with MP0 13.0.12: 16 MiB reserved -> 128. The GFX-keyed model said 256 (gfx 9.5 =
        // MI350-class), so an RMA verdict came at twice the driver's count.
        let t = compute(&Inputs {
            mp0: Some((13, 0, 12)),
            gfx_target_version: Some(90500),
            vram_bytes: Some(288 * GIB),
            ..mi300x_on("6.15.2")
        })
        .unwrap();
        assert_eq!(t.pages, 128);
        // A GFX 9.4 part on MP0 13.0.14: 256, where the GFX model said 128.
        let t = compute(&Inputs {
            mp0: Some((13, 0, 14)),
            gfx_target_version: Some(90402),
            ..mi300x_on("6.15.2")
        })
        .unwrap();
        assert_eq!(t.pages, 256);
    }

    #[test]
    fn gfx_stands_in_only_when_mp0_is_unreadable() {
        let t = compute(&Inputs {
            mp0: None,
            gfx_target_version: Some(90500),
            ..mi300x_on("6.15.2")
        })
        .unwrap();
        assert_eq!(t.pages, 256);
        assert!(
            t.basis
                .starts_with("estimated from GFX 9.5.0, MP0 unreadable"),
            "{}",
            t.basis
        );
        assert!(
            compute(&Inputs {
                mp0: None,
                gfx_target_version: None,
                ..mi300x_on("6.15.2")
            })
            .is_none()
        );
    }

    #[test]
    fn newer_minus_two_warns_only_and_positive_values_retire() {
        let t = compute(&Inputs {
            param: Some(-2),
            ..mi300x_on("6.15.0")
        })
        .unwrap();
        assert_eq!((t.pages, t.rma), (1966, false));
        let t = compute(&Inputs {
            param: Some(200),
            ..mi300x_on("6.15.0")
        })
        .unwrap();
        assert_eq!((t.pages, t.rma), (200, true));
        assert!(
            compute(&Inputs {
                param: Some(0),
                ..mi300x_on("6.15.0")
            })
            .is_none()
        );
    }

    #[test]
    fn the_era_comes_from_the_driver_that_runs() {
        let dkms = Inputs {
            out_of_tree: Some("6.12.12"),
            ..mi300x_on("5.15.0-125-generic")
        };
        let t = compute(&dkms).unwrap();
        assert_eq!(t.pages, 128);
        assert!(
            t.basis
                .contains("assumed for the out-of-tree amdgpu 6.12.12"),
            "{}",
            t.basis
        );
        let t = compute(&Inputs {
            kernel_release: None,
            ..mi300x_on("")
        })
        .unwrap();
        assert!(t.basis.contains("kernel release unreadable"), "{}", t.basis);
        assert_eq!(
            kernel_version("6.1.112-124.190.amzn2023.x86_64"),
            Some((6, 1))
        );
        assert_eq!(ip("13.0.14"), Some((13, 0, 14)));
        assert_eq!(ip("13.0"), None);
        assert_eq!(ip("13.0.1.2"), None);
    }
}
