//! Retired VRAM pages and the threshold that applies (`amdgpu_ras.c`, `amdgpu_ras_eeprom.c`):
//! `ras/gpu_vram_bad_pages` lists `0x%08x : 0x%08x : %1s` per page (GPU page frame number, size, flag
//! `R` reserved, `P` pending, `F` could not be reserved) and exists only while retirement is on
//! (`bad_page_threshold != 0`). The threshold the driver applies is in debugfs
//! (`dri/<minor>/ras/bad_page_cnt_threshold`) where readable; else it follows from the module parameter
//! `amdgpu.bad_page_threshold`: > 0 itself, -2 one page per 100 MiB of VRAM (`RAS_BAD_PAGE_COVER`), -1
//! the default, `(reserved >> 21) << 4`: 16 MiB reserved (128 pages) on MP0 13.0.2/13.0.6/13.0.12, 32 MiB
//! (256) on 13.0.14. Which product has which MP0 is not confirmed by a public source; the default is
//! taken by the GPU's generation (gfx 9.5 = MI350-class = 256, gfx 9.4 = 128) and said so.

use gpu_diag::facts::{AmdBadPageFacts, AmdBadPagesFacts, FieldError, FieldErrorKind, Reading};

use crate::host::files::HostFiles;

/// Pages kept in the facts; the counts cover them all.
const FIRST_PAGES: usize = 16;
/// `RAS_BAD_PAGE_COVER`.
const PAGE_COVER_BYTES: u64 = 100 << 20;

pub struct Context {
    /// The DRM minor of the GPU's card (debugfs `dri/<minor>`).
    pub card_minor: Option<u32>,
    /// `amdgpu.bad_page_threshold`.
    pub param: Option<i64>,
    pub gfx_target_version: Option<u32>,
    pub vram_bytes: Option<u64>,
}

pub fn read(files: HostFiles<'_>, dir: &str, ctx: &Context) -> Reading<AmdBadPagesFacts> {
    let text = match files.text(
        format!("{dir}/ras/gpu_vram_bad_pages"),
        crate::host::MAX_TEXT,
    ) {
        Ok(t) => t,
        Err(e) if e.error == FieldErrorKind::NotFound && ctx.param == Some(0) => {
            return Reading::Err(FieldError::with_message(
                FieldErrorKind::NotSupported,
                "page retirement is off (amdgpu.bad_page_threshold=0)",
            ));
        }
        Err(e) => return Reading::Err(e),
    };
    let mut out = AmdBadPagesFacts::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let Some(page) = parse_line(line) else {
            return Reading::Err(FieldError::with_message(
                FieldErrorKind::Unknown,
                format!(
                    "gpu_vram_bad_pages line `{}` is not `pfn : size : flag`",
                    crate::host::shown(line)
                ),
            ));
        };
        match page.flag.as_str() {
            "R" => out.reserved += 1,
            "P" => out.pending += 1,
            _ => out.unreservable += 1,
        }
        if out.first_pages.len() < FIRST_PAGES {
            out.first_pages.push(page);
        }
    }
    let (threshold, source) = threshold(files, ctx);
    out.threshold = threshold;
    out.threshold_source = source.map(str::to_string);
    Reading::Ok(out)
}

fn parse_line(line: &str) -> Option<AmdBadPageFacts> {
    let mut it = line.split(':').map(str::trim);
    let hex = |s: &str| u64::from_str_radix(s.strip_prefix("0x")?, 16).ok();
    let pfn = hex(it.next()?)?;
    let size = hex(it.next()?)?;
    let flag = it.next()?;
    if it.next().is_some() || !matches!(flag, "R" | "P" | "F") {
        return None;
    }
    Some(AmdBadPageFacts {
        pfn,
        size,
        flag: flag.to_string(),
    })
}

fn threshold(files: HostFiles<'_>, ctx: &Context) -> (Option<u32>, Option<&'static str>) {
    if let Some(minor) = ctx.card_minor
        && let Some(t) = files
            .parse::<u32>(format!(
                "sys/kernel/debug/dri/{minor}/ras/bad_page_cnt_threshold"
            ))
            .get()
    {
        return (Some(t), Some("debugfs"));
    }
    match ctx.param {
        Some(p) if p > 0 => (u32::try_from(p).ok(), Some("parameter")),
        Some(-2) => (
            ctx.vram_bytes
                .and_then(|v| u32::try_from(v / PAGE_COVER_BYTES).ok()),
            Some("parameter"),
        ),
        Some(0) => (None, Some("parameter")),
        _ => match ctx.gfx_target_version {
            Some(90500..=90599) => (Some(256), Some("default_for_generation")),
            Some(90000..=90499) => (Some(128), Some("default_for_generation")),
            _ => (None, None),
        },
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines() {
        let p = super::parse_line("0x00000001 : 0x00001000 : R").unwrap();
        assert_eq!((p.pfn, p.size, p.flag.as_str()), (1, 0x1000, "R"));
        assert!(super::parse_line("0x1 : 0x1000 : X").is_none());
        assert!(super::parse_line("1 : 2 : R").is_none());
    }
}
