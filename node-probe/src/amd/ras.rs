//! RAS counters of one GPU (`<pci dev>/ras/`, `amdgpu_ras.c`; the kernel's `gpu/amdgpu/ras.html`): `features`
//! (`feature mask: 0x%x`), per block either `<block>_err_count` (MI200 and older: `ue: N` / `ce: N`, UMC
//! also `de: N`) or, on MI300-class parts whose ACA is on, `aca_<block>` (always `ue`/`ce`/`de`; the
//! `_err_count` files are then not created), read both as ROCm SMI does (`rocm_smi_device.cc`); and
//! `event_state` (`current seqno: N`, then `<name>: count:N, last_seqno:N` for fatal errors, poison
//! creation and consumption) where the driver has it. A block whose query says `Query currently
//! inaccessible` (RAS not ready yet) keeps that as its error.

use gpu_diag::facts::{
    AmdRasBlockFacts, AmdRasEventStateFacts, AmdRasFacts, FieldError, FieldErrorKind, Reading,
};

use crate::host::MAX_ATTR;
use crate::host::files::HostFiles;

/// Blocks read at most (the driver has about 25): a directory stuffed with names cannot grow the facts.
const MAX_BLOCKS: usize = 64;

pub fn read(files: HostFiles<'_>, dir: &str) -> Reading<AmdRasFacts> {
    let ras = format!("{dir}/ras");
    let names = match files.names(&ras) {
        Ok(n) => n,
        Err(e) if e.error == FieldErrorKind::NotFound => {
            return Reading::Err(FieldError::with_message(
                FieldErrorKind::NotSupported,
                "no ras/ directory: RAS is off (amdgpu.ras_enable=0) or not supported",
            ));
        }
        Err(e) => return Reading::Err(e),
    };
    let features_mask = files.line(format!("{ras}/features")).ok().and_then(|t| {
        let hex = t.rsplit(':').next()?.trim();
        u32::from_str_radix(hex.trim_start_matches("0x"), 16).ok()
    });
    let mut blocks = Vec::new();
    for name in &names {
        let (block, layout) = if let Some(b) = name.strip_prefix("aca_") {
            (b, "aca")
        } else if let Some(b) = name.strip_suffix("_err_count") {
            (b, "legacy")
        } else {
            continue;
        };
        if blocks.len() == MAX_BLOCKS {
            break;
        }
        blocks.push(block_counts(files, &format!("{ras}/{name}"), block, layout));
    }
    let event_state = files
        .text(format!("{ras}/event_state"), MAX_ATTR)
        .ok()
        .and_then(|t| event_state(&t));
    Reading::Ok(AmdRasFacts {
        features_mask,
        blocks,
        event_state,
    })
}

fn block_counts(files: HostFiles<'_>, path: &str, block: &str, layout: &str) -> AmdRasBlockFacts {
    let mut out = AmdRasBlockFacts {
        block: block.to_string(),
        layout: layout.to_string(),
        ..Default::default()
    };
    let text = match files.text(path, MAX_ATTR) {
        Ok(t) => t,
        Err(e) => {
            out.error = Some(e.message.unwrap_or_else(|| format!("{:?}", e.error)));
            return out;
        }
    };
    if text.contains("Query currently inaccessible") {
        out.error = Some("Query currently inaccessible (RAS not ready)".into());
        return out;
    }
    for line in text.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim().parse::<u64>().ok();
        match k.trim() {
            "ue" => out.ue = v,
            "ce" => out.ce = v,
            "de" => out.de = v,
            _ => {}
        }
    }
    if out.ue.is_none() && out.ce.is_none() && out.de.is_none() {
        out.error = Some(format!(
            "no `ue:`/`ce:` counts in `{}`",
            crate::host::shown(text.trim())
        ));
    }
    out
}

fn event_state(text: &str) -> Option<AmdRasEventStateFacts> {
    let count = |name: &str| -> Option<u64> {
        text.lines().find_map(|l| {
            let rest = l
                .trim()
                .strip_prefix(name)?
                .trim_start()
                .strip_prefix(':')?;
            let c = rest.trim().strip_prefix("count:")?;
            c.split(',').next()?.trim().parse().ok()
        })
    };
    let seqno = text.lines().find_map(|l| {
        l.trim()
            .strip_prefix("current seqno:")
            .and_then(|v| v.trim().parse().ok())
    })?;
    Some(AmdRasEventStateFacts {
        seqno,
        fatal: count("Fatal Error")?,
        poison_creation: count("Poison Creation")?,
        poison_consumption: count("Poison Consumption")?,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn event_state_lines() {
        let t = "current seqno: 7\nFatal Error: count:1, last_seqno:5\nPoison Creation: count:2, last_seqno:6\nPoison Consumption: count:3, last_seqno:7\n";
        let e = super::event_state(t).unwrap();
        assert_eq!(
            (e.seqno, e.fatal, e.poison_creation, e.poison_consumption),
            (7, 1, 2, 3)
        );
        assert!(super::event_state("garbage").is_none());
    }
}
