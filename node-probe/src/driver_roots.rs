//! Where the NVIDIA driver's user-space files live on each platform: one table that the NVML search, the
//! operator's `nvidia-smi` and the evidence tool's `nvidia-bug-report.sh` all read. Beyond the table: a
//! driver root named with `--driver-root` (or `NODE_PROBE_DRIVER_ROOT`), the root the NVIDIA container
//! toolkit's own config names, and whatever the host's loader cache (`/etc/ld.so.cache`) names.
//!
//! Every path is relative to the host root and resolved inside it: an absolute symlink (`/usr/lib64/...`)
//! means the host's path, and no link (absolute or `..`) leads out of the host root.

/// The one host-path resolution (`host::root`), for regular files.
use crate::host::root::resolve_file as resolve_in_root;
use std::path::{Component, Path, PathBuf};

/// One platform's layout. `root` is where its tools are chrooted to run (relative to the host root, `""`
/// for the host's own root); `libs` and `bins` are relative to `root`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub platform: String,
    pub root: String,
    pub libs: Vec<String>,
    pub bins: Vec<String>,
    /// Only this architecture's hosts use the row; on another it is searched last.
    pub arch: Option<&'static str>,
}

struct Static {
    platform: &'static str,
    root: &'static str,
    libs: &'static [&'static str],
    bins: &'static [&'static str],
    arch: Option<&'static str>,
}

/// A driver container's root (the GPU Operator's, or one named by the user): the image's distribution
/// decides its library directory, so all the usual ones.
const CONTAINER_LIBS: &[&str] = &[
    "usr/lib/x86_64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "usr/lib64",
    "lib/x86_64-linux-gnu",
    "lib/aarch64-linux-gnu",
    "lib64",
    "usr/lib",
];
const STD_BINS: &[&str] = &["usr/bin", "usr/sbin", "usr/local/bin", "bin"];

/// The table, in search order (a row for another architecture moves to the end).
const TABLE: &[Static] = &[
    // GPU Operator: the driver container's root is mounted at `hostPaths.driverInstallDir`, default
    // /run/nvidia/driver; its image is Ubuntu, RHEL/RHCOS or another distribution, with the driver's files
    // where that distribution keeps them. Chart parameters:
    // https://docs.nvidia.com/datacenter/cloud-native/gpu-operator/latest/getting-started.html
    Static {
        platform: "GPU Operator driver container",
        root: "run/nvidia/driver",
        libs: CONTAINER_LIBS,
        bins: STD_BINS,
        arch: None,
    },
    // Ubuntu / DGX OS (and Debian) host packages, x86_64: /usr/lib/x86_64-linux-gnu, nvidia-smi and
    // nvidia-bug-report.sh in /usr/bin (NVIDIA driver installation guide,
    // https://docs.nvidia.com/datacenter/tesla/driver-installation-guide/index.html; a host's loader
    // picking /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.535.216.03: https://github.com/leptonai/gpud/pull/515).
    // Debian's own packages use .../nvidia/current (https://github.com/CFSworks/nvml_fix/issues/31).
    Static {
        platform: "Ubuntu/DGX OS/Debian host (x86_64)",
        root: "",
        libs: &[
            "usr/lib/x86_64-linux-gnu",
            "lib/x86_64-linux-gnu",
            "usr/lib/x86_64-linux-gnu/nvidia/current",
        ],
        bins: &["usr/bin", "usr/sbin"],
        arch: Some("x86_64"),
    },
    // aarch64 hosts (Grace: DGX GH200, GB200 NVL72 trays; Ubuntu arm64 "sbsa" packages): the same layout
    // under the aarch64 triplet (driver installation guide above; a loader search of
    // /usr/lib/aarch64-linux-gnu/libnvidia-ml.so* on an arm64 host: https://github.com/ollama/ollama/pull/2264).
    // RHEL-family aarch64 hosts use /usr/lib64, the next row.
    Static {
        platform: "Ubuntu/DGX OS host on Grace (aarch64)",
        root: "",
        libs: &[
            "usr/lib/aarch64-linux-gnu",
            "lib/aarch64-linux-gnu",
            "usr/lib/aarch64-linux-gnu/nvidia/current",
        ],
        bins: &["usr/bin", "usr/sbin"],
        arch: Some("aarch64"),
    },
    // RHEL / Rocky / Alma and Amazon Linux 2023 (NVIDIA's dnf repositories, `amzn2023` among them; the
    // EKS AL2023 NVIDIA AMI installs the same packages): /usr/lib64, tools in /usr/bin (driver installation
    // guide above; /usr/lib64/libnvidia-ml.so.535.154.05 on such a host:
    // https://github.com/ollama/ollama/pull/2264).
    Static {
        platform: "RHEL/Rocky/Amazon Linux 2023 host",
        root: "",
        libs: &["usr/lib64", "lib64"],
        bins: &["usr/bin", "usr/sbin"],
        arch: None,
    },
    // GKE (COS and Ubuntu node images): Google's driver installer writes /home/kubernetes/bin/nvidia/{lib64,bin}
    // (`NVIDIA_INSTALL_DIR_HOST`,
    // https://raw.githubusercontent.com/GoogleCloudPlatform/container-engine-accelerators/master/nvidia-driver-installer/cos/daemonset-preloaded.yaml;
    // PATH and LD_LIBRARY_PATH set to those two on a node: https://github.com/NVIDIA/nvidia-container-toolkit/issues/209).
    // The directory is not on the loader's path, so tools run with LD_LIBRARY_PATH set to it.
    Static {
        platform: "GKE driver installer (COS, Ubuntu)",
        root: "",
        libs: &["home/kubernetes/bin/nvidia/lib64"],
        bins: &["home/kubernetes/bin/nvidia/bin"],
        arch: None,
    },
    // Bottlerocket NVIDIA variants (aws-k8s-*-nvidia): libraries in /usr/lib/nvidia/tesla with soname links,
    // nvidia-smi in /usr/bin, formerly /usr/libexec/nvidia/tesla/bin (kmod-6.1-nvidia.spec,
    // https://github.com/bottlerocket-os/bottlerocket-kernel-kit/blob/b217ebe8a65a969ad30495f01bcac38a1bfc007a/packages/kmod-6.1-nvidia/kmod-6.1-nvidia.spec;
    // https://github.com/bottlerocket-os/bottlerocket-kernel-kit/issues/365,
    // https://github.com/bottlerocket-os/bottlerocket-kernel-kit/issues/85). No nvidia-bug-report.sh ships.
    Static {
        platform: "Bottlerocket NVIDIA variant",
        root: "",
        libs: &["usr/lib/nvidia/tesla"],
        bins: &["usr/bin", "usr/libexec/nvidia/tesla/bin"],
        arch: None,
    },
    // Talos NVIDIA extensions: the driver is installed under the glibc prefix /usr/local/glibc/usr
    // (libraries in lib64, tools in bin: nvidia-driver/userspace pkg.yaml,
    // https://github.com/siderolabs/extensions/blob/415eb95293f9782adf2e0cbe9e6dfbac731d3e1c/nvidia-gpu/nvidia-driver/userspace/production/pkg.yaml);
    // releases before that: /usr/local/glibc/usr/lib (https://github.com/siderolabs/extensions/issues/940),
    // /usr/local/glibc/lib with nvidia-smi in /usr/local/bin (https://github.com/NVIDIA/gpu-operator/pull/1050),
    // /usr/local/lib (https://github.com/siderolabs/extensions/issues/385).
    Static {
        platform: "Talos NVIDIA extension",
        root: "",
        libs: &[
            "usr/local/glibc/usr/lib64",
            "usr/local/glibc/usr/lib",
            "usr/local/glibc/lib",
            "usr/local/lib",
        ],
        bins: &["usr/local/glibc/usr/bin", "usr/local/bin"],
        arch: None,
    },
    // The NVIDIA .run installer's fallback directory and older 32/64-bit-agnostic layouts.
    Static {
        platform: "generic host",
        root: "",
        libs: &["usr/lib", "usr/local/nvidia/lib64"],
        bins: &["usr/local/bin", "bin", "usr/local/nvidia/bin"],
        arch: None,
    },
];

/// The loader caches glibc reads on the host: the usual one, and Talos's glibc extension's
/// (https://github.com/siderolabs/extensions/issues/940: `/usr/local/glibc/etc/ld.so.cache`).
pub const LOADER_CACHES: &[&str] = &["etc/ld.so.cache", "usr/local/glibc/etc/ld.so.cache"];

/// The NVIDIA container toolkit's config on the host, whose `[nvidia-container-cli] root` names the driver
/// root it injects from: the GPU Operator's toolkit writes the first
/// (https://github.com/NVIDIA/gpu-operator/issues/473), a host install the second
/// (https://github.com/NVIDIA/nvidia-container-toolkit/issues/110).
pub const TOOLKIT_CONFIGS: &[&str] = &[
    "usr/local/nvidia/toolkit/.config/nvidia-container-runtime/config.toml",
    "etc/nvidia-container-runtime/config.toml",
];

/// The flag naming a driver root the table does not know (also `NODE_PROBE_DRIVER_ROOT`, `options.rs`).
pub const DRIVER_ROOT_FLAG: &str = "--driver-root";

/// Where to look: the host root, and a driver root the user named (a path on the host).
#[derive(Debug, Clone)]
pub struct Search {
    pub host_root: PathBuf,
    pub given: Option<PathBuf>,
    /// Whether the root's own files (toolkit config, loader cache) may name more places: true for the
    /// host, false for a workload container's root, whose files its owner controls.
    pub host_files: bool,
}

impl Search {
    pub fn new(host_root: &Path, given: Option<&Path>) -> Self {
        Search {
            host_root: host_root.to_path_buf(),
            given: given.map(Path::to_path_buf),
            host_files: true,
        }
    }

    /// The table alone under a workload container's root (`/proc/<pid>/root`).
    pub fn container(root: &Path) -> Self {
        Search {
            host_root: root.to_path_buf(),
            given: None,
            host_files: false,
        }
    }

    /// The rows in search order for `arch`: a given root first, then the toolkit's, then the table.
    pub fn rows(&self, arch: &str) -> Vec<Row> {
        let mut out = Vec::new();
        let mut custom = |platform: String, host_path: &Path| {
            let rel = relative(host_path);
            out.push(Row {
                platform,
                root: rel,
                libs: CONTAINER_LIBS.iter().map(|s| s.to_string()).collect(),
                bins: STD_BINS.iter().map(|s| s.to_string()).collect(),
                arch: None,
            });
        };
        if let Some(g) = &self.given {
            custom(format!("{DRIVER_ROOT_FLAG} {}", g.display()), g);
        }
        if let Some((config, root)) = self
            .host_files
            .then(|| toolkit_root(&self.host_root))
            .flatten()
        {
            custom(format!("driver root of {config}"), &root);
        }
        let (mut own, mut other): (Vec<Row>, Vec<Row>) = TABLE
            .iter()
            .map(|s| Row {
                platform: s.platform.to_string(),
                root: s.root.to_string(),
                libs: s.libs.iter().map(|x| x.to_string()).collect(),
                bins: s.bins.iter().map(|x| x.to_string()).collect(),
                arch: s.arch,
            })
            .partition(|r| r.arch.is_none_or(|a| a == arch));
        // A driver container of the other architecture is no use either: its triplet goes last too.
        for r in &mut own {
            let foreign = if arch == "aarch64" {
                "x86_64"
            } else {
                "aarch64"
            };
            r.libs.sort_by_key(|d| d.contains(foreign));
        }
        // The same custom root twice (flag and toolkit config naming one place) is searched once.
        out.dedup_by(|a, b| a.root == b.root);
        out.append(&mut own);
        out.append(&mut other);
        out
    }

    /// The libraries named `file` (`libnvidia-ml.so.1`) that exist, as paths the probe can open, with the
    /// row that found each; then what the host's loader cache names.
    pub fn libraries(&self, file: &str, arch: &str) -> Vec<(PathBuf, String)> {
        let mut out: Vec<(PathBuf, String)> = Vec::new();
        let mut push = |p: PathBuf, why: String| {
            if !out.iter().any(|(q, _)| *q == p) {
                out.push((p, why));
            }
        };
        for row in self.rows(arch) {
            for dir in &row.libs {
                let rel = Path::new(&row.root).join(dir).join(file);
                if let Some(p) = resolve_in_root(&self.host_root, &rel) {
                    push(p, row.platform.clone());
                }
            }
        }
        for (cache, paths) in self.cache_entries(file, arch) {
            for named in paths {
                if let Some(p) = resolve_in_root(&self.host_root, Path::new(&named)) {
                    push(p, format!("{cache} names {named}"));
                }
            }
        }
        out
    }

    /// What each readable loader cache names for `soname` (errors are skipped: a corrupt cache only costs
    /// this extra place to look; the failure text is in [`Search::described`]).
    fn cache_entries(&self, soname: &str, arch: &str) -> Vec<(String, Vec<String>)> {
        if !self.host_files {
            return Vec::new();
        }
        LOADER_CACHES
            .iter()
            .filter_map(|c| {
                let path = resolve_in_root(&self.host_root, Path::new(c))?;
                let entries = crate::ldcache::read(&path).ok()?;
                Some((
                    format!("/{c}"),
                    crate::ldcache::lookup(&entries, soname, arch),
                ))
            })
            .collect()
    }

    /// A program (`nvidia-smi`, `nvidia-bug-report.sh`) of the first row that has it, and how to run it:
    /// chrooted into that row's root, with the row's library directories on the loader's path.
    pub fn program(&self, name: &str, arch: &str) -> Option<Program> {
        let rows = self.rows(arch);
        for row in &rows {
            let root = self.host_root.join(&row.root);
            for bin in &row.bins {
                let rel = Path::new(bin).join(name);
                if resolve_in_root(&root, &rel).is_none() {
                    continue;
                }
                // Where this root's NVML is: the row's own directories first, then those of the other
                // rows sharing its root (`/usr/bin/nvidia-smi` is Ubuntu's and RHEL's alike).
                let mut libs: Vec<String> = Vec::new();
                let same_root =
                    std::iter::once(row).chain(rows.iter().filter(|r| r.root == row.root));
                for dir in same_root.flat_map(|r| r.libs.iter()) {
                    let d = format!("/{dir}");
                    let has = resolve_in_root(&root, Path::new(dir).join("libnvidia-ml.so.1"));
                    if has.is_some() && !libs.contains(&d) {
                        libs.push(d);
                    }
                }
                return Some(Program {
                    chroot: (root.as_path() != Path::new("/")).then_some(root),
                    program: Path::new("/").join(rel),
                    ld_library_path: (!libs.is_empty()).then(|| libs.join(":")),
                    platform: row.platform.clone(),
                });
            }
        }
        None
    }

    /// Every place searched, compactly: `platform: root/{dir,dir}`; then the loader caches' outcome.
    pub fn described(&self, what: &str, arch: &str, libs: bool) -> String {
        let mut parts: Vec<String> = self
            .rows(arch)
            .iter()
            .map(|r| {
                let dirs = if libs { &r.libs } else { &r.bins };
                let root = if r.root.is_empty() {
                    String::new()
                } else {
                    format!("/{}", r.root)
                };
                format!("{} {root}/{{{}}}", r.platform, dirs.join(","))
            })
            .collect();
        if libs && self.host_files {
            for c in LOADER_CACHES {
                let outcome = match crate::ldcache::read(&self.host_root.join(c)) {
                    Ok(e) if crate::ldcache::lookup(&e, what, arch).is_empty() => {
                        format!("no {what}")
                    }
                    Ok(_) => "names it, but not as a file under the host root".to_string(),
                    Err(e) => e.rsplit(": ").next().unwrap_or(&e).to_string(),
                };
                parts.push(format!("loader cache /{c}: {outcome}"));
            }
        }
        format!(
            "{what} under host root {}: {}",
            self.host_root.display(),
            parts.join("; ")
        )
    }
}

/// How to run a driver tool found through the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Program {
    /// Directory to chroot into first; none when the host root is `/` (the probe runs on the host).
    pub chroot: Option<PathBuf>,
    /// The program's path inside the chroot.
    pub program: PathBuf,
    /// `LD_LIBRARY_PATH` inside the chroot: the row's library directories that exist.
    pub ld_library_path: Option<String>,
    pub platform: String,
}

/// A host path as a path relative to the host root (`/run/x` -> `run/x`), with `..` dropped.
fn relative(p: &Path) -> String {
    let parts: Vec<String> = p
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    parts.join("/")
}

/// `[nvidia-container-cli] root = "..."` of the first toolkit config that sets one other than `/` or the
/// table's own GPU Operator root. Read bounded; a config the probe cannot parse names nothing.
pub fn toolkit_root(host_root: &Path) -> Option<(String, PathBuf)> {
    use std::io::Read;
    for c in TOOLKIT_CONFIGS {
        let Some(path) = resolve_in_root(host_root, Path::new(c)) else {
            continue;
        };
        let mut text = String::new();
        let Ok(f) = std::fs::File::open(&path) else {
            continue;
        };
        if f.take(1 << 20).read_to_string(&mut text).is_err() {
            continue;
        }
        let mut section = String::new();
        for line in text.lines() {
            let line = line.trim();
            if let Some(s) = line.strip_prefix('[') {
                section = s.trim_end_matches(']').trim().to_string();
                continue;
            }
            if section != "nvidia-container-cli" {
                continue;
            }
            let Some((k, v)) = line.split_once('=') else {
                continue;
            };
            if k.trim() != "root" {
                continue;
            }
            let v = v.trim().trim_matches('"');
            let rel = relative(Path::new(v));
            if v.starts_with('/') && !rel.is_empty() && rel != "run/nvidia/driver" {
                return Some((format!("/{c}"), PathBuf::from(v)));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str) -> PathBuf {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, b"x").unwrap();
        p
    }

    #[test]
    fn own_architecture_first_and_the_operator_root_before_the_host() {
        let s = Search::new(Path::new("/h"), None);
        let x = s.rows("x86_64");
        assert_eq!(x[0].root, "run/nvidia/driver");
        assert_eq!(x[0].libs[0], "usr/lib/x86_64-linux-gnu");
        assert_eq!(x[1].libs[0], "usr/lib/x86_64-linux-gnu");
        assert_eq!(x.last().unwrap().arch, Some("aarch64"));
        let a = s.rows("aarch64");
        assert_eq!(a[0].libs[0], "usr/lib/aarch64-linux-gnu");
        assert_eq!(a[1].platform, "Ubuntu/DGX OS host on Grace (aarch64)");
        assert_eq!(a.last().unwrap().arch, Some("x86_64"));
        // A given root comes first and is relative to the host root.
        let g = Search::new(Path::new("/h"), Some(Path::new("/opt/nvidia/driver")));
        assert_eq!(g.rows("x86_64")[0].root, "opt/nvidia/driver");
    }

    #[test]
    fn links_resolve_inside_the_root_and_never_out_of_it() {
        let outside = tempfile::tempdir().unwrap();
        let secret = write(outside.path(), "secret.so");
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        write(r, "usr/lib64/libnvidia-ml.so.550.54.15");
        // Merged /usr with an absolute directory link, then an absolute file link.
        std::os::unix::fs::symlink("/usr/lib64", r.join("lib64")).unwrap();
        std::os::unix::fs::symlink(
            "/usr/lib64/libnvidia-ml.so.550.54.15",
            r.join("usr/lib64/libnvidia-ml.so.1"),
        )
        .unwrap();
        assert_eq!(
            resolve_in_root(r, Path::new("lib64/libnvidia-ml.so.1")),
            Some(r.join("usr/lib64/libnvidia-ml.so.550.54.15"))
        );
        // `..` past the root stays at the root: this names {root}/<outside's path>, which does not exist.
        let up = format!("../../../../../../../..{}", secret.display());
        std::fs::create_dir_all(r.join("usr/lib")).unwrap();
        std::os::unix::fs::symlink(&up, r.join("usr/lib/libnvidia-ml.so.1")).unwrap();
        assert_eq!(
            resolve_in_root(r, Path::new("usr/lib/libnvidia-ml.so.1")),
            None
        );
        // An absolute link to the outside file: re-rooted, so not found either.
        std::os::unix::fs::symlink(&secret, r.join("usr/lib/abs.so")).unwrap();
        assert_eq!(resolve_in_root(r, Path::new("usr/lib/abs.so")), None);
        // A loop ends.
        std::os::unix::fs::symlink("loop-b", r.join("usr/lib/loop-a")).unwrap();
        std::os::unix::fs::symlink("loop-a", r.join("usr/lib/loop-b")).unwrap();
        assert_eq!(resolve_in_root(r, Path::new("usr/lib/loop-a")), None);
        // A directory is not a library.
        assert_eq!(resolve_in_root(r, Path::new("usr/lib64")), None);
    }

    #[test]
    fn the_toolkit_config_names_a_custom_driver_root() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        assert!(toolkit_root(r).is_none());
        let cfg = r.join(TOOLKIT_CONFIGS[0]);
        std::fs::create_dir_all(cfg.parent().unwrap()).unwrap();
        // Commented out, the operator default, and another section's `root`: none names a new root.
        std::fs::write(
            &cfg,
            "[nvidia-container-cli]\n#root = \"/x\"\nroot = \"/run/nvidia/driver\"\n[other]\nroot = \"/y\"\n",
        )
        .unwrap();
        assert!(toolkit_root(r).is_none());
        std::fs::write(
            &cfg,
            "disable-require = false\n[nvidia-container-cli]\nldconfig = \"@/sbin/ldconfig\"\nroot = \"/opt/drv\"\n",
        )
        .unwrap();
        let (from, at) = toolkit_root(r).unwrap();
        assert_eq!(at, Path::new("/opt/drv"));
        let rows = Search::new(r, None).rows("x86_64");
        assert_eq!(rows[0].root, "opt/drv");
        assert!(rows[0].platform.contains(&from));
    }

    #[test]
    fn programs_run_in_their_rows_root_with_its_libraries() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let s = Search::new(r, None);
        assert_eq!(s.program("nvidia-smi", "x86_64"), None);
        write(r, "home/kubernetes/bin/nvidia/bin/nvidia-smi");
        write(r, "home/kubernetes/bin/nvidia/lib64/libnvidia-ml.so.1");
        let p = s.program("nvidia-smi", "x86_64").unwrap();
        assert_eq!(p.chroot.as_deref(), Some(r));
        assert_eq!(
            p.program,
            Path::new("/home/kubernetes/bin/nvidia/bin/nvidia-smi")
        );
        assert_eq!(
            p.ld_library_path.as_deref(),
            Some("/home/kubernetes/bin/nvidia/lib64")
        );
        // The operator's driver root wins, chrooted there.
        write(r, "run/nvidia/driver/usr/bin/nvidia-smi");
        let p = s.program("nvidia-smi", "x86_64").unwrap();
        assert_eq!(p.chroot, Some(r.join("run/nvidia/driver")));
        assert_eq!(p.program, Path::new("/usr/bin/nvidia-smi"));
        assert_eq!(p.platform, "GPU Operator driver container");
    }

    /// nvidia-smi and nvidia-bug-report.sh as each platform installs them: (root, bin dir, lib dir,
    /// expected chroot relative to the host root, expected LD_LIBRARY_PATH).
    #[test]
    fn tools_are_found_in_each_platforms_root() {
        let cases: &[(&str, &str, &str, &str, &str)] = &[
            (
                "run/nvidia/driver",
                "usr/bin",
                "usr/lib64",
                "run/nvidia/driver",
                "/usr/lib64",
            ),
            (
                "",
                "usr/bin",
                "usr/lib/x86_64-linux-gnu",
                "",
                "/usr/lib/x86_64-linux-gnu",
            ),
            ("", "usr/bin", "usr/lib64", "", "/usr/lib64"),
            (
                "",
                "home/kubernetes/bin/nvidia/bin",
                "home/kubernetes/bin/nvidia/lib64",
                "",
                "/home/kubernetes/bin/nvidia/lib64",
            ),
            (
                "",
                "usr/libexec/nvidia/tesla/bin",
                "usr/lib/nvidia/tesla",
                "",
                "/usr/lib/nvidia/tesla",
            ),
            (
                "",
                "usr/local/glibc/usr/bin",
                "usr/local/glibc/usr/lib64",
                "",
                "/usr/local/glibc/usr/lib64",
            ),
            (
                "",
                "usr/local/bin",
                "usr/local/glibc/lib",
                "",
                "/usr/local/glibc/lib",
            ),
            (
                "",
                "usr/bin",
                "usr/lib/aarch64-linux-gnu",
                "",
                "/usr/lib/aarch64-linux-gnu",
            ),
        ];
        for (root, bin, lib, chroot, ld) in cases {
            for tool in ["nvidia-smi", "nvidia-bug-report.sh"] {
                let host = tempfile::tempdir().unwrap();
                let h = host.path();
                let drv = h.join(root);
                write(&drv, &format!("{bin}/{tool}"));
                write(&drv, &format!("{lib}/libnvidia-ml.so.1"));
                let arch = if lib.contains("aarch64") {
                    "aarch64"
                } else {
                    "x86_64"
                };
                let p = Search::new(h, None)
                    .program(tool, arch)
                    .unwrap_or_else(|| panic!("{tool} in {root}/{bin}"));
                assert_eq!(p.chroot, Some(h.join(chroot)), "{tool} {bin}");
                assert_eq!(p.program, Path::new("/").join(bin).join(tool));
                assert!(
                    p.ld_library_path.as_deref().unwrap().contains(ld),
                    "{tool} {bin}: {:?}",
                    p.ld_library_path
                );
            }
        }
        // A root named with --driver-root, and the place list when nothing is there.
        let host = tempfile::tempdir().unwrap();
        let h = host.path();
        let s = Search::new(h, Some(Path::new("/opt/drv")));
        let said = s.described("nvidia-smi", "x86_64", false);
        let head = format!(
            "nvidia-smi under host root {}: --driver-root /opt/drv /opt/drv/{{usr/bin,",
            h.display()
        );
        assert!(said.starts_with(&head), "{said}");
        assert!(said.contains("home/kubernetes/bin/nvidia/bin"), "{said}");
        write(h, "opt/drv/usr/bin/nvidia-smi");
        write(h, "usr/bin/nvidia-smi");
        assert_eq!(
            s.program("nvidia-smi", "x86_64").unwrap().chroot,
            Some(h.join("opt/drv"))
        );
    }
}
