//! One way to name a host path: resolved inside the host root, as the host itself would resolve it.
//!
//! A probe pod reads the node through `/proc/1/root`. The kernel keeps the *caller's* root for a whole
//! lookup, so an absolute symlink met under `/proc/1/root` (`/var/run -> /run` on Ubuntu, Bottlerocket and
//! Talos; a kubelet root moved with `/var/lib/kubelet -> /data/kubelet`; the kubelet's
//! `/var/log/containers/*.log -> /var/log/pods/...` links) continues in the probe's own root, not the
//! host's (linux `Documentation/filesystems/path-lookup.rst`). This walk follows each link itself: an
//! absolute target restarts at the host root, `..` never climbs above it, at most 40 links, so a path
//! resolves as on the host and never leaves it. Mount points need nothing: they are crossed by the kernel.
//!
//! What it returns is a path under the host root with no symlink left in it (a link swapped after the
//! walk is a race the host's own root-owned directories do not offer a tenant; tenant-writable places are
//! read with the existing owner checks). `proc/`, `sys/` and `dev/` paths are not walked: procfs' magic
//! links (`proc/<pid>/root`) are meant to be followed by the kernel.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// Symlinks followed in one resolution, as the kernel's `MAXSYMLINKS`.
const MAX_LINKS: u32 = 40;

/// `rel` (absolute or relative, taken from the host's `/`) resolved under `root`. A component that does
/// not exist ends the walk: the rest is joined as given, so opening the result fails as on the host.
/// `None` when the links loop or nest deeper than 40.
pub fn resolve(root: &Path, rel: impl AsRef<Path>) -> Option<PathBuf> {
    let mut todo: Vec<OsString> = Vec::new();
    push_components(&mut todo, rel.as_ref());
    let mut done: Vec<OsString> = Vec::new();
    let mut links = 0;
    while let Some(c) = todo.pop() {
        if c == ".." {
            done.pop();
            continue;
        }
        let mut p = root.to_path_buf();
        p.extend(&done);
        p.push(&c);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    return None;
                }
                let target = std::fs::read_link(&p).ok()?;
                if target.has_root() {
                    done.clear();
                }
                push_components(&mut todo, &target);
            }
            Ok(_) => done.push(c),
            Err(_) => {
                // Not there (or not readable): the rest as given, so the caller's open says so.
                done.push(c);
                while let Some(c) = todo.pop() {
                    done.push(c);
                }
            }
        }
    }
    let mut p = root.to_path_buf();
    p.extend(&done);
    Some(p)
}

/// [`resolve`], then only a regular file.
pub fn resolve_file(root: &Path, rel: impl AsRef<Path>) -> Option<PathBuf> {
    resolve(root, rel).filter(|p| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_file()))
}

/// [`resolve`], or the plain join where the links loop (opening that fails with the kernel's ELOOP).
pub fn path(root: &Path, rel: impl AsRef<Path>) -> PathBuf {
    let rel = rel.as_ref();
    resolve(root, rel).unwrap_or_else(|| root.join(rel.strip_prefix("/").unwrap_or(rel)))
}

/// Push `p`'s components onto the stack `todo` so they pop in order (`.` and the root dropped).
fn push_components(todo: &mut Vec<OsString>, p: &Path) {
    for c in p.components().rev() {
        match c {
            Component::Normal(n) => todo.push(n.to_os_string()),
            Component::ParentDir => todo.push(OsString::from("..")),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tree() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("run/cdi")).unwrap();
        std::fs::write(r.join("run/cdi/spec.yaml"), "x").unwrap();
        std::fs::create_dir_all(r.join("var")).unwrap();
        std::fs::create_dir_all(r.join("data/kubelet/plugins_registry")).unwrap();
        std::fs::create_dir_all(r.join("var/lib")).unwrap();
        symlink("/data/kubelet", r.join("var/lib/kubelet")).unwrap();
        d
    }

    #[test]
    fn absolute_links_stay_in_the_root() {
        let d = tree();
        let r = d.path();
        symlink("/run", r.join("var/run")).unwrap();
        assert_eq!(
            resolve_file(r, "var/run/cdi/spec.yaml"),
            Some(r.join("run/cdi/spec.yaml"))
        );
        assert_eq!(
            resolve(r, "/var/lib/kubelet/plugins_registry"),
            Some(r.join("data/kubelet/plugins_registry"))
        );
    }

    #[test]
    fn relative_links_and_dotdot_never_climb_above_the_root() {
        let d = tree();
        let r = d.path();
        symlink("../run", r.join("var/run")).unwrap();
        assert_eq!(resolve(r, "var/run/cdi"), Some(r.join("run/cdi")));
        // A tenant's link that climbs: clamped at the root, as the host's own `/..` is `/`.
        std::fs::create_dir_all(r.join("var/log/pods/ns_p_u/c")).unwrap();
        symlink(
            "../../../../../../../../etc/shadow",
            r.join("var/log/pods/ns_p_u/c/0.log"),
        )
        .unwrap();
        assert_eq!(
            resolve(r, "var/log/pods/ns_p_u/c/0.log"),
            Some(r.join("etc/shadow"))
        );
        assert_eq!(resolve_file(r, "var/log/pods/ns_p_u/c/0.log"), None);
        assert_eq!(resolve(r, "../../.."), Some(r.to_path_buf()));
    }

    #[test]
    fn loops_and_missing_paths() {
        let d = tree();
        let r = d.path();
        symlink("b", r.join("a")).unwrap();
        symlink("a", r.join("b")).unwrap();
        assert_eq!(resolve(r, "a/x"), None);
        assert_eq!(path(r, "a/x"), r.join("a/x"));
        assert_eq!(resolve(r, "nope/x/y"), Some(r.join("nope/x/y")));
        // A chain of 40 links resolves; one more does not.
        std::fs::create_dir_all(r.join("chain")).unwrap();
        std::fs::write(r.join("chain/end"), "x").unwrap();
        for i in 0..41 {
            let to = if i == 0 {
                "end".to_string()
            } else {
                format!("l{}", i - 1)
            };
            symlink(to, r.join(format!("chain/l{i}"))).unwrap();
        }
        assert_eq!(resolve_file(r, "chain/l39"), Some(r.join("chain/end")));
        assert_eq!(resolve(r, "chain/l40"), None);
    }
}
