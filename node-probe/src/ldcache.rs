//! A reader for glibc's loader cache (`/etc/ld.so.cache`), so the driver search also finds a library in a
//! directory only the host's own `ld.so.conf` names. Both layouts glibc writes are read: the old
//! `ld.so-1.7.0` table (optionally followed by the new one, `ldconfig -c compat`) and the new
//! `glibc-ld.so.cache1.1` table (`ldconfig -c new`, the default since glibc 2.32). The layouts are those of
//! glibc's public `sysdeps/generic/dl-cache.h`.
//!
//! The file is the host's (a tenant cannot write it), but it may be corrupt or truncated: every offset and
//! count is checked against the bytes actually read, and anything out of bounds is an error, never a panic.

use std::io::Read;
use std::path::Path;

/// A cache is tens of KiB; a file past this is not one.
pub const MAX_BYTES: u64 = 16 << 20;
/// A library path is short; a longer "string" means a corrupt offset.
const MAX_STRING: usize = 4096;

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
/// Old header: 11 magic bytes, padding to 12, `nlibs: u32`; entries `{flags: i32, key: u32, value: u32}`.
const OLD_HEADER: usize = 16;
const OLD_ENTRY: usize = 12;
/// New header: 20 magic+version bytes, `nlibs`, `len_strings`, flags byte + 3 padding, `extension_offset`,
/// 3 unused words; entries `{flags: i32, key: u32, value: u32, osversion: u32, hwcap: u64}`.
const NEW_HEADER: usize = 48;
const NEW_ENTRY: usize = 24;
/// Byte 32 of the new header: 2 little-endian, 3 big-endian, 0 unset (written before glibc 2.33).
const NEW_FLAGS_AT: usize = 32;

/// `FLAG_ELF_LIBC6` with the ABI bits of a 64-bit library: what `ldconfig -p` shows as `libc6,x86-64` and
/// `libc6,AArch64` (glibc `dl-cache.h`: `FLAG_X8664_LIB64` 0x0300, `FLAG_AARCH64_LIB64` 0x0a00).
pub const FLAGS_X86_64: i32 = 0x0303;
pub const FLAGS_AARCH64: i32 = 0x0a03;

/// The flags a library for the running architecture carries, where known.
pub fn own_flags(arch: &str) -> Option<i32> {
    match arch {
        "x86_64" => Some(FLAGS_X86_64),
        "aarch64" => Some(FLAGS_AARCH64),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The soname (`libnvidia-ml.so.1`).
    pub name: String,
    /// The path the loader would open, as the host sees it.
    pub path: String,
    pub flags: i32,
}

/// Read and parse `path` (at most [`MAX_BYTES`]).
pub fn read(path: &Path) -> Result<Vec<Entry>, String> {
    let f = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(format!(
            "{}: larger than {MAX_BYTES} bytes, not a loader cache",
            path.display()
        ));
    }
    parse(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parse a whole cache file. The new table is preferred when both are present (it is what glibc reads).
pub fn parse(b: &[u8]) -> Result<Vec<Entry>, String> {
    if b.starts_with(NEW_MAGIC) {
        return parse_new(b);
    }
    if !b.starts_with(OLD_MAGIC) {
        return Err("not a glibc loader cache (unknown magic)".into());
    }
    let n = u32_at(b, 12).ok_or("truncated old header")? as usize;
    let entries_end = n
        .checked_mul(OLD_ENTRY)
        .and_then(|x| x.checked_add(OLD_HEADER))
        .filter(|&e| e <= b.len())
        .ok_or_else(|| format!("old table claims {n} entries, more than the file holds"))?;
    // `ldconfig -c compat`: the new table follows, 8-byte aligned; its offsets are its own.
    let new_at = entries_end.next_multiple_of(8);
    if b.get(new_at..)
        .is_some_and(|rest| rest.starts_with(NEW_MAGIC))
    {
        return parse_new(&b[new_at..]);
    }
    // Old-only: string offsets count from the end of the entries.
    let strings = &b[entries_end..];
    let mut out = Vec::with_capacity(n.min(4096));
    for i in 0..n {
        let at = OLD_HEADER + i * OLD_ENTRY;
        out.push(entry(b, at, strings)?);
    }
    Ok(out)
}

fn parse_new(b: &[u8]) -> Result<Vec<Entry>, String> {
    if b.len() < NEW_HEADER {
        return Err("truncated new header".into());
    }
    match b[NEW_FLAGS_AT] & 3 {
        0 | 2 => {}
        3 => return Err("big-endian cache; this probe reads little-endian hosts".into()),
        _ => return Err("cache marked invalid by ldconfig".into()),
    }
    let n = u32_at(b, 20).ok_or("truncated new header")? as usize;
    n.checked_mul(NEW_ENTRY)
        .and_then(|x| x.checked_add(NEW_HEADER))
        .filter(|&e| e <= b.len())
        .ok_or_else(|| format!("new table claims {n} entries, more than the file holds"))?;
    // New format: string offsets count from the start of this header.
    let mut out = Vec::with_capacity(n.min(4096));
    for i in 0..n {
        out.push(entry(b, NEW_HEADER + i * NEW_ENTRY, b)?);
    }
    Ok(out)
}

fn entry(b: &[u8], at: usize, strings: &[u8]) -> Result<Entry, String> {
    let flags = u32_at(b, at).ok_or("truncated entry")? as i32;
    let key = u32_at(b, at + 4).ok_or("truncated entry")? as usize;
    let value = u32_at(b, at + 8).ok_or("truncated entry")? as usize;
    Ok(Entry {
        name: string_at(strings, key)?,
        path: string_at(strings, value)?,
        flags,
    })
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let w = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
}

/// The NUL-terminated string at `at`, within `MAX_STRING` bytes.
fn string_at(strings: &[u8], at: usize) -> Result<String, String> {
    let rest = strings
        .get(at..)
        .ok_or_else(|| format!("string offset {at} is past the end of the file"))?;
    let window = &rest[..rest.len().min(MAX_STRING)];
    let end = window
        .iter()
        .position(|&c| c == 0)
        .ok_or_else(|| format!("string at {at} is not terminated"))?;
    String::from_utf8(window[..end].to_vec()).map_err(|_| format!("string at {at} is not UTF-8"))
}

/// The paths the cache gives for `soname`, the running architecture's first, then entries of unknown
/// ABI; libraries of another ABI (32-bit, the other architecture) are left out.
pub fn lookup(entries: &[Entry], soname: &str, arch: &str) -> Vec<String> {
    let own = own_flags(arch);
    let mut exact: Vec<String> = Vec::new();
    let mut unknown: Vec<String> = Vec::new();
    for e in entries.iter().filter(|e| e.name == soname) {
        if Some(e.flags) == own {
            exact.push(e.path.clone());
        } else if own.is_none() {
            unknown.push(e.path.clone());
        }
    }
    exact.extend(unknown);
    exact.dedup();
    exact
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A cache in the old layout, built by hand: two entries, string table after them.
    fn old_cache(entries: &[(i32, &str, &str)]) -> Vec<u8> {
        let mut strings = Vec::new();
        let mut table = Vec::new();
        for (flags, k, v) in entries {
            let ko = strings.len() as u32;
            strings.extend_from_slice(k.as_bytes());
            strings.push(0);
            let vo = strings.len() as u32;
            strings.extend_from_slice(v.as_bytes());
            strings.push(0);
            table.extend_from_slice(&flags.to_le_bytes());
            table.extend_from_slice(&ko.to_le_bytes());
            table.extend_from_slice(&vo.to_le_bytes());
        }
        let mut b = OLD_MAGIC.to_vec();
        b.push(0);
        b.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        b.extend(table);
        b.extend(strings);
        b
    }

    #[test]
    fn old_layout_by_hand() {
        let b = old_cache(&[
            (
                FLAGS_X86_64,
                "libnvidia-ml.so.1",
                "/opt/drv/lib/libnvidia-ml.so.1",
            ),
            (
                0x0003,
                "libnvidia-ml.so.1",
                "/opt/drv/lib32/libnvidia-ml.so.1",
            ),
            (
                FLAGS_AARCH64,
                "libnvidia-ml.so.1",
                "/usr/lib/aarch64-linux-gnu/libnvidia-ml.so.1",
            ),
        ]);
        let e = parse(&b).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(
            lookup(&e, "libnvidia-ml.so.1", "x86_64"),
            ["/opt/drv/lib/libnvidia-ml.so.1"]
        );
        assert_eq!(
            lookup(&e, "libnvidia-ml.so.1", "aarch64"),
            ["/usr/lib/aarch64-linux-gnu/libnvidia-ml.so.1"]
        );
        assert!(lookup(&e, "libcuda.so.1", "x86_64").is_empty());
    }

    #[test]
    fn corrupt_input_is_an_error_never_a_panic() {
        let good = old_cache(&[(FLAGS_X86_64, "a", "/b")]);
        // Every truncation of a valid file, and of a valid new-format header.
        for cut in 0..good.len() {
            let _ = parse(&good[..cut]);
        }
        let mut new = NEW_MAGIC.to_vec();
        new.resize(NEW_HEADER, 0);
        assert_eq!(parse(&new).unwrap(), vec![]);
        for cut in 0..new.len() {
            let _ = parse(&new[..cut]);
        }
        // Garbage, and counts and offsets far out of range.
        assert!(parse(b"").is_err());
        assert!(parse(b"\x7fELF garbage").is_err());
        let mut huge = new.clone();
        huge[20..24].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(
            parse(&huge)
                .unwrap_err()
                .contains("more than the file holds")
        );
        let mut old_huge = good.clone();
        old_huge[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse(&old_huge).is_err());
        let mut bad_off = good.clone();
        bad_off[20..24].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
        assert!(parse(&bad_off).unwrap_err().contains("past the end"));
        // An unterminated string at the very end.
        let mut unterminated = good.clone();
        unterminated.pop();
        assert!(parse(&unterminated).unwrap_err().contains("not terminated"));
        let mut big_endian = new.clone();
        big_endian[NEW_FLAGS_AT] = 3;
        assert!(parse(&big_endian).unwrap_err().contains("big-endian"));
        // Pseudo-random bytes behind each magic.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for magic in [OLD_MAGIC, NEW_MAGIC] {
            for len in [16usize, 64, 300, 4096] {
                let mut b = magic.to_vec();
                while b.len() < len {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    b.push(x as u8);
                }
                let _ = parse(&b);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(
            read(&dir.path().join("absent"))
                .unwrap_err()
                .contains("absent")
        );
    }

    /// A real cache, written by this machine's `ldconfig` in each of its formats under a temporary root,
    /// naming a library in a directory only the root's `ld.so.conf` lists.
    #[test]
    fn caches_written_by_ldconfig() {
        const LIBZ: &[&str] = &[
            "/lib/x86_64-linux-gnu/libz.so.1",
            "/lib/aarch64-linux-gnu/libz.so.1",
            "/usr/lib64/libz.so.1",
        ];
        let Some(lib) = LIBZ.iter().map(Path::new).find(|p| p.exists()) else {
            eprintln!("skipped: no libz.so.1 to copy");
            return;
        };
        for format in ["new", "compat", "old"] {
            let root = tempfile::tempdir().unwrap();
            let dir = root.path().join("opt/vendor/lib");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::create_dir_all(root.path().join("etc")).unwrap();
            std::fs::copy(lib, dir.join("libz.so.1.2.13")).unwrap();
            std::fs::write(root.path().join("etc/ld.so.conf"), "/opt/vendor/lib\n").unwrap();
            let out = Command::new("ldconfig")
                .args(["-c", format, "-r"])
                .arg(root.path())
                .args(["-C", "/etc/ld.so.cache", "-f", "/etc/ld.so.conf"])
                .output();
            match out {
                Ok(o) if o.status.success() => {}
                Ok(o) => {
                    eprintln!(
                        "skipped {format}: ldconfig failed: {}",
                        String::from_utf8_lossy(&o.stderr)
                    );
                    continue;
                }
                Err(e) => {
                    eprintln!("skipped: no ldconfig ({e})");
                    return;
                }
            }
            let entries = read(&root.path().join("etc/ld.so.cache")).unwrap();
            let arch = std::env::consts::ARCH;
            assert_eq!(
                lookup(&entries, "libz.so.1", arch),
                ["/opt/vendor/lib/libz.so.1"],
                "{format}: {entries:?}"
            );
        }
    }
}
