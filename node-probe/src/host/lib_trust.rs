//! Which files a vendor library reader (`amd/smi.rs` for libamd_smi, `gaudi/hlml.rs` for libhlml) may
//! load, and the open descriptors it loads them by.
//!
//! A privileged probe runs what it loads as root, so the whole chain must be root's: every directory
//! looked in on the way from the host root to the library (links followed inside the root, as
//! [`crate::host::root::resolve`] does, each directory they pass through included), the library, and every
//! library it pulls in from the host: its `DT_NEEDED` entries found in its own directory, and the host
//! libraries the caller names as loaded by soname at run time (libamd_smi `dlopen`s libdrm:
//! `src/amd_smi/amd_smi_drm.cc:91` `load("libdrm.so.2")`, ROCm/amdsmi at 0ceca28f), each with its own
//! `DT_NEEDED` in turn. Each directory and file must be owned by root (or by the probe's own user: an
//! unprivileged probe gains nothing) and writable by neither group nor others; anything else refuses the
//! load with the reason.
//!
//! The checked files are then opened (`O_NOFOLLOW`), checked again on the descriptor (`fstat`), and it
//! is these descriptors the child loads, by `/proc/self/fd/N`: a file swapped between the check and the
//! load is never the one loaded. The child's loader path is a private directory of links to those
//! descriptors alone (not the library's directory: a sibling nobody checked cannot be picked up by name).
//! A needed library found in none of these (libc, libstdc++) comes from the probe's own image, as before.

use std::collections::{HashSet, VecDeque};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use crate::host::root::resolve_file;

/// Links followed in one walk, as the kernel's `MAXSYMLINKS` (and `host::root`).
const MAX_LINKS: u32 = 40;
/// Libraries in one chain: ROCm's libamd_smi needs a handful; more is not a library to load.
const MAX_LIBS: usize = 64;

/// A file checked and open: what the child loads.
#[derive(Debug)]
pub struct Checked {
    /// Its path as the host names it, links resolved (`/opt/rocm-6.4.0/lib/libamd_smi.so.25.1.0`).
    pub host_path: String,
    pub file: File,
}

/// The library and, by the soname the loader will ask for, each host library it pulls in.
#[derive(Debug)]
pub struct Chain {
    pub lib: Checked,
    pub deps: Vec<(String, Checked)>,
}

fn me() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Root's (or the probe's own) and writable by neither group nor others.
fn owner_and_mode(m: &std::fs::Metadata, what: &str) -> Result<(), String> {
    if m.uid() != 0 && m.uid() != me() {
        return Err(format!("{what} is owned by uid {}, not root", m.uid()));
    }
    if m.mode() & 0o022 != 0 {
        return Err(format!(
            "{what} is writable by group or others (mode {:o})",
            m.mode() & 0o7777
        ));
    }
    Ok(())
}

fn host_name(done: &[std::ffi::OsString]) -> String {
    let mut s = String::from("/");
    s.push_str(
        &done
            .iter()
            .map(|c| c.to_string_lossy())
            .collect::<Vec<_>>()
            .join("/"),
    );
    s
}

/// `rel` resolved under `root` as `host::root::resolve` does, every directory a name is looked up in
/// checked first (the root included). The real path (no link left) and its host name.
fn walk(
    root: &Path,
    rel: &Path,
    checked: &mut HashSet<PathBuf>,
) -> Result<(PathBuf, String), String> {
    let mut todo: Vec<std::ffi::OsString> = Vec::new();
    push(&mut todo, rel);
    let mut done: Vec<std::ffi::OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let mut dir = root.to_path_buf();
        dir.extend(&done);
        if checked.insert(dir.clone()) {
            let what = format!("directory {}", host_name(&done));
            let m = std::fs::symlink_metadata(&dir)
                .map_err(|e| format!("{what}: cannot stat it ({e})"))?;
            if !m.is_dir() {
                return Err(format!("{what} is not a directory"));
            }
            owner_and_mode(&m, &what)?;
        }
        let p = dir.join(&c);
        let m = std::fs::symlink_metadata(&p).map_err(|e| {
            let mut d = done.clone();
            d.push(c.clone());
            format!("{}: {e}", host_name(&d))
        })?;
        if m.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return Err(format!("{}: too many links", rel.display()));
            }
            let target = std::fs::read_link(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            if target.has_root() {
                done.clear();
            }
            push(&mut todo, &target);
        } else {
            done.push(c);
        }
    }
    let mut p = root.to_path_buf();
    p.extend(&done);
    Ok((p, host_name(&done)))
}

fn push(todo: &mut Vec<std::ffi::OsString>, p: &Path) {
    for c in p.components().rev() {
        match c {
            Component::Normal(n) => todo.push(n.to_os_string()),
            Component::ParentDir => todo.push("..".into()),
            _ => {}
        }
    }
}

/// `rel` walked with its directories checked, opened without following a last link, and checked again
/// on the descriptor: a regular file, root's, not writable by others.
pub fn open_checked(
    root: &Path,
    rel: &Path,
    checked: &mut HashSet<PathBuf>,
) -> Result<Checked, String> {
    let (real, host_path) = walk(root, rel, checked)?;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&real)
        .map_err(|e| format!("{host_path}: cannot open it ({e})"))?;
    let m = file
        .metadata()
        .map_err(|e| format!("{host_path}: cannot stat it ({e})"))?;
    if !m.is_file() {
        return Err(format!("{host_path} is not a regular file"));
    }
    owner_and_mode(&m, &host_path)?;
    Ok(Checked { host_path, file })
}

/// The library at `lib_rel` and what it pulls in from the host: its `DT_NEEDED` names (and theirs, in
/// turn) found in its own directory, and `host_libs` (loaded by soname at run time) from its own
/// directory or the first of `host_lib_dirs` that has them. The first untrusted link of the chain is
/// the error.
pub fn chain(
    root: &Path,
    lib_rel: &Path,
    host_libs: &[&str],
    host_lib_dirs: &[&str],
) -> Result<Chain, String> {
    let mut checked = HashSet::new();
    let lib = open_checked(root, lib_rel, &mut checked)?;
    // The directory the loader would have searched first: the library's real one.
    let lib_dir = PathBuf::from(lib.host_path.trim_start_matches('/'))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut queue: VecDeque<(String, String)> = needed(&lib.file)
        .map_err(|e| format!("{}: {e}", lib.host_path))?
        .into_iter()
        .map(|n| (n, lib.host_path.clone()))
        .collect();
    queue.extend(host_libs.iter().map(|n| (n.to_string(), "dlopen".into())));
    let mut seen = HashSet::new();
    let mut deps = Vec::new();
    while let Some((name, by)) = queue.pop_front() {
        if !seen.insert(name.clone()) {
            continue;
        }
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(format!(
                "{by} asks for a library by path ({name:?}); only sonames are loaded"
            ));
        }
        let own = lib_dir.join(&name);
        let rel = if std::fs::symlink_metadata(root.join(&own)).is_ok() {
            Some(own)
        } else if host_libs.contains(&name.as_str()) {
            host_lib_dirs
                .iter()
                .map(|d| Path::new(d).join(&name))
                .find(|p| resolve_file(root, p).is_some())
        } else {
            None
        };
        // Found in none: the probe image's own (libc, libstdc++).
        let Some(rel) = rel else { continue };
        if deps.len() >= MAX_LIBS {
            return Err(format!("more than {MAX_LIBS} libraries in its chain"));
        }
        let f = open_checked(root, &rel, &mut checked)
            .map_err(|e| format!("{e} ({name}, needed by {by})"))?;
        for n in needed(&f.file).map_err(|e| format!("{}: {e}", f.host_path))? {
            queue.push_back((n, f.host_path.clone()));
        }
        deps.push((name, f));
    }
    Ok(Chain { lib, deps })
}

/// The `DT_NEEDED` sonames of a 64-bit little-endian ELF shared object (x86_64, aarch64): its program
/// headers' `PT_DYNAMIC`, that section's `DT_STRTAB` mapped to a file offset through the `PT_LOAD`
/// segments (ELF-64 Object File Format, "Program header" and "Dynamic section").
pub fn needed(f: &File) -> Result<Vec<String>, String> {
    let len = f.metadata().map_err(|e| e.to_string())?.len();
    let read = |off: u64, n: u64| -> Result<Vec<u8>, String> {
        if n > 4 << 20 || off.checked_add(n).is_none_or(|end| end > len) {
            return Err(format!(
                "not an ELF shared object (a read of {n} at {off} past its end)"
            ));
        }
        let mut b = vec![0u8; n as usize];
        f.read_exact_at(&mut b, off).map_err(|e| e.to_string())?;
        Ok(b)
    };
    let u16_at = |b: &[u8], o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as u64;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as u64;
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
    let h = read(0, 64)?;
    if &h[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    if h[4] != 2 || h[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let (phoff, phentsize, phnum) = (u64_at(&h, 32), u16_at(&h, 54), u16_at(&h, 56));
    if phentsize < 56 || phnum > 512 {
        return Err("ELF program headers out of bounds".into());
    }
    let ph = read(phoff, phentsize * phnum)?;
    let mut loads = Vec::new();
    let mut dynamic = None;
    for i in 0..phnum as usize {
        let p = &ph[i * phentsize as usize..];
        let (typ, off, vaddr, filesz) = (u32_at(p, 0), u64_at(p, 8), u64_at(p, 16), u64_at(p, 32));
        match typ {
            1 => loads.push((vaddr, off, filesz)),
            2 => dynamic = Some((off, filesz)),
            _ => {}
        }
    }
    let Some((doff, dsize)) = dynamic else {
        return Ok(Vec::new());
    };
    let d = read(doff, dsize.min(1 << 20))?;
    let (mut strtab, mut strsz, mut names) = (None, None, Vec::new());
    for e in d.chunks_exact(16) {
        let (tag, val) = (u64_at(e, 0), u64_at(e, 8));
        match tag {
            0 => break,
            1 => names.push(val),
            5 => strtab = Some(val),
            10 => strsz = Some(val),
            _ => {}
        }
    }
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let (Some(strtab), Some(strsz)) = (strtab, strsz) else {
        return Err("DT_NEEDED without a string table".into());
    };
    let stroff = loads
        .iter()
        .find(|(va, _, sz)| strtab >= *va && strtab - va < *sz)
        .map(|(va, off, _)| off + (strtab - va))
        .ok_or("its string table is in no loaded segment")?;
    let strs = read(stroff, strsz)?;
    names
        .into_iter()
        .map(|o| {
            let s = strs
                .get(o as usize..)
                .ok_or("a DT_NEEDED name past its string table")?;
            let end = s
                .iter()
                .position(|&b| b == 0)
                .ok_or("an unterminated DT_NEEDED name")?;
            String::from_utf8(s[..end].to_vec())
                .map_err(|_| "a DT_NEEDED name not UTF-8".to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_needed_libraries_of_an_elf_file() {
        // This test binary is dynamically linked against glibc.
        let exe = File::open(std::env::current_exe().unwrap()).unwrap();
        let n = needed(&exe).unwrap();
        assert!(n.iter().any(|s| s.starts_with("libc.so.")), "{n:?}");
        let t = tempfile::tempdir().unwrap();
        for (name, body) in [
            (
                "text",
                b"not an elf at all, long enough to be read as a header ........ ".to_vec(),
            ),
            ("short", b"\x7fELF".to_vec()),
            ("elf32", {
                let mut b = vec![0u8; 64];
                b[..4].copy_from_slice(b"\x7fELF");
                b[4] = 1;
                b[5] = 1;
                b
            }),
        ] {
            std::fs::write(t.path().join(name), body).unwrap();
            let f = File::open(t.path().join(name)).unwrap();
            assert!(needed(&f).is_err(), "{name}");
        }
    }

    #[test]
    fn every_directory_of_the_walk_is_checked() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("opt/rocm-6.4.0/lib")).unwrap();
        std::fs::create_dir_all(r.join("srv/open")).unwrap();
        for d in [
            "opt",
            "opt/rocm-6.4.0",
            "opt/rocm-6.4.0/lib",
            "srv",
            "srv/open",
        ] {
            std::fs::set_permissions(r.join(d), std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(r.join("opt/rocm-6.4.0/lib/x.so"), b"x").unwrap();
        std::os::unix::fs::symlink("rocm-6.4.0", r.join("opt/rocm")).unwrap();
        let mut seen = HashSet::new();
        let c = open_checked(r, Path::new("opt/rocm/lib/x.so"), &mut seen).unwrap();
        assert_eq!(c.host_path, "/opt/rocm-6.4.0/lib/x.so");
        // A link through a world-writable directory: that directory is named, though the file is not in it.
        std::fs::set_permissions(r.join("srv/open"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        std::os::unix::fs::symlink("/opt/rocm/lib/x.so", r.join("srv/open/x.so")).unwrap();
        std::os::unix::fs::symlink("/srv/open/x.so", r.join("opt/rocm-6.4.0/lib/y.so")).unwrap();
        let e = open_checked(r, Path::new("opt/rocm/lib/y.so"), &mut HashSet::new()).unwrap_err();
        assert!(e.contains("directory /srv/open is writable"), "{e}");
    }
}
