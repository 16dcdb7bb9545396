//! PCI bus ids in one canonical form, so ids from NVML (`00000000:3B:00.0`), Xid lines (`0000:3b:00`, no
//! function), device lines (`0000:3b:00.0`) and sysfs compare equal.

/// Canonical `dddd:bb:dd.f`, lowercase. A missing domain becomes `0000`, a missing function `.0`; NVML's
/// 8-digit domain is shortened when its upper digits are zero. Returns None for anything that is not a
/// PCI address.
pub fn normalize_bus_id(raw: &str) -> Option<String> {
    let s = raw.trim();
    let s = s
        .strip_prefix("PCI:")
        .or_else(|| s.strip_prefix("pci:"))
        .unwrap_or(s);
    let (body, function) = match s.rsplit_once('.') {
        Some((b, f)) => (b, Some(f)),
        None => (s, None),
    };
    let parts: Vec<&str> = body.split(':').collect();
    let (domain, bus, device) = match parts.as_slice() {
        [d, b, dev] => (*d, *b, *dev),
        [b, dev] => ("0", *b, *dev),
        _ => return None,
    };
    let hex = |t: &str, max_len: usize| -> Option<u32> {
        if t.is_empty() || t.len() > max_len || !t.bytes().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(t, 16).ok()
    };
    let domain = hex(domain, 8)?;
    let bus = hex(bus, 2)?;
    let device = hex(device, 2)?;
    let function = match function {
        Some(f) => hex(f, 1)?,
        None => 0,
    };
    if domain > 0xffff || device > 0x1f || function > 7 {
        return None;
    }
    Some(format!("{domain:04x}:{bus:02x}:{device:02x}.{function:x}"))
}

#[cfg(test)]
mod tests {
    use super::normalize_bus_id as n;

    #[test]
    fn all_printed_forms_agree() {
        let want = Some("0000:3b:00.0".to_string());
        assert_eq!(n("00000000:3B:00.0"), want);
        assert_eq!(n("0000:3b:00"), want);
        assert_eq!(n("PCI:0000:3B:00"), want);
        assert_eq!(n("0000:3b:00.0"), want);
        assert_eq!(n("3b:00.0"), want);
        assert_eq!(n("0008:01:00.1"), Some("0008:01:00.1".into()));
    }

    #[test]
    fn rejects_non_addresses() {
        for bad in [
            "",
            "3b",
            "zz:00.0",
            "0000:3b:00.9",
            "0000:3b:20.0",
            "1:2:3:4",
            "0000:3b:00.",
            "123456789:00:00.0",
        ] {
            assert_eq!(n(bad), None, "{bad}");
        }
    }
}
