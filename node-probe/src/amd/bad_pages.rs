//! Retired VRAM pages and the threshold the driver applies (`amdgpu_ras.c`, `amdgpu_ras_eeprom.c`):
//! `ras/gpu_vram_bad_pages` lists `0x%08x : 0x%08x : %1s` per page (GPU page frame number, size, flag
//! `R` reserved, `P` pending, `F` could not be reserved) and exists only while retirement is on
//! (`bad_page_threshold != 0`). The threshold itself is read only where the driver shows it, debugfs
//! `dri/<minor>/ras/bad_page_cnt_threshold`, with the EEPROM table's capacity (`ras/ras_eeprom_size`,
//! `%d bytes or %d records`, amdgpu_ras_eeprom.c:1039 in Linux 6.12). Where debugfs is closed the analysis
//! works the threshold out from the running kernel's rule (`gpu_diag::analysis::amd::bad_pages`): it
//! depends on the kernel release, which the probe does not judge here.

use gpu_diag::facts::{AmdBadPageFacts, AmdBadPagesFacts, FieldError, FieldErrorKind, Reading};

use crate::host::files::HostFiles;

/// Pages kept in the facts; the counts cover them all.
const FIRST_PAGES: usize = 16;

pub struct Context {
    /// The DRM minor of the GPU's card (debugfs `dri/<minor>`).
    pub card_minor: Option<u32>,
    /// `amdgpu.bad_page_threshold`.
    pub param: Option<i64>,
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
    if let Some(minor) = ctx.card_minor {
        let ras = format!("sys/kernel/debug/dri/{minor}/ras");
        if let Some(t) = files
            .parse::<u32>(format!("{ras}/bad_page_cnt_threshold"))
            .get()
        {
            out.threshold = Some(t);
            out.threshold_source = Some("debugfs".to_string());
        }
        out.eeprom_max_records = files
            .line(format!("{ras}/ras_eeprom_size"))
            .ok()
            .and_then(|l| eeprom_records(&l));
    }
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

/// `262144 bytes or 10921 records` -> 10921; `Not supported` -> `None`.
fn eeprom_records(line: &str) -> Option<u32> {
    let (_, tail) = line.split_once(" or ")?;
    tail.trim().strip_suffix("records")?.trim().parse().ok()
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

    #[test]
    fn eeprom_size_line() {
        // amdgpu_ras_eeprom.c:1039 (Linux 6.12): "%d bytes or %d records\n", RAS_TBL_SIZE_BYTES,
        // ras_max_record_count; 1037 prints "Not supported\n" without a RAS context.
        assert_eq!(
            super::eeprom_records("262144 bytes or 10921 records"),
            Some(10921)
        );
        assert_eq!(super::eeprom_records("Not supported"), None);
        assert_eq!(super::eeprom_records("262144 bytes or many records"), None);
    }
}
