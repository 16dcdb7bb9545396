//! How node-probe gets into the probe container.
//!
//! - `image`: the probe image has `node-probe` on its PATH (deploy/probe-image).
//! - `copy`: the probe pod runs a plain glibc base image the node already has (`--probe-image`); the
//!   launcher carries the node-probe build for the node's architecture, streams its bytes (gzip-compressed
//!   where that pays) over the exec connection's stdin into a private directory, checks its length and
//!   SHA-256 there and runs it, in one exec. Nothing is written on the launcher host.
//!
//! `auto` (the default) is `image` only when `--probe-image` is given without `--probe-bin-dir` (that image
//! carries node-probe), and `copy` otherwise: into `--probe-image` as a base, or, with no image named, into a
//! trusted image the node already has. Zero configuration needs nothing published.
//!
//! The in-container side is [`SCRIPT`], one POSIX sh script per call. It never waits for stdin's EOF (it reads
//! exactly the payload's length), so it works over the v4 exec protocol, which cannot close stdin alone, and
//! over kwok 0.8, which never delivers stdin's EOF to the command.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

/// `--probe-delivery`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryChoice {
    /// `copy` when a probe binary directory is given or no `--probe-image` (then into an image the node
    /// already has: the default, which needs nothing published); `image` when only `--probe-image` is given.
    #[default]
    Auto,
    Image,
    Copy,
}

impl std::str::FromStr for DeliveryChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(DeliveryChoice::Auto),
            "image" => Ok(DeliveryChoice::Image),
            "copy" => Ok(DeliveryChoice::Copy),
            _ => Err(format!(
                "probe delivery `{s}`: expected `auto`, `image` or `copy`"
            )),
        }
    }
}

impl DeliveryChoice {
    /// The documented automatic rule: image iff only `--probe-image` is given, else copy.
    pub fn resolve(self, bin_dir_given: bool, image_given: bool) -> Delivery {
        match self {
            DeliveryChoice::Image => Delivery::Image,
            DeliveryChoice::Copy => Delivery::Copy,
            DeliveryChoice::Auto if image_given && !bin_dir_given => Delivery::Image,
            DeliveryChoice::Auto => Delivery::Copy,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Image,
    Copy,
}

/// The launcher's own architecture in Kubernetes terms.
pub fn launcher_arch() -> &'static str {
    kube_arch(std::env::consts::ARCH)
}

/// The node's `status.nodeInfo.architecture` (GOARCH: `amd64`, `arm64`); "" where it reports none.
pub fn node_arch(node: &k8s_openapi::api::core::v1::Node) -> &str {
    node.status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .map(|i| i.architecture.as_str())
        .unwrap_or_default()
}

/// Rust's `std::env::consts::ARCH` -> GOARCH (what nodes report); other names pass through.
pub fn kube_arch(rust_arch: &str) -> &str {
    match rust_arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// ELF `e_machine` of each deliverable architecture.
fn elf_machine(arch: &str) -> Option<u16> {
    match arch {
        "amd64" => Some(0x3e),
        "arm64" => Some(0xb7),
        _ => None,
    }
}

/// The release archives' directory of node-probe builds, beside the launcher (packaging/release.sh).
pub const PROBES_DIR: &str = "probes";

/// The directory of the launcher's executable, links resolved: krew starts the launcher through a link
/// (`kubectl-gpu_mcp`) in its bin directory, and `current_exe` may return the link's path (macOS).
pub fn exe_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    exe.parent().map(Path::to_path_buf)
}

/// Where copy delivery looks without `--probe-bin-dir`: `probes/` beside the launcher when it is there (a
/// release archive), else the launcher's own directory (`cargo install` puts `node-probe` there).
pub fn default_dir(exe_dir: &Path) -> PathBuf {
    let probes = exe_dir.join(PROBES_DIR);
    if probes.is_dir() {
        probes
    } else {
        exe_dir.to_path_buf()
    }
}

/// File names looked for in a directory, in order, for a node of `arch`. A plain `node-probe` only stands for
/// the launcher's own architecture (it is what `cargo build` produces next to the launcher).
pub fn candidates(dir: &Path, arch: &str, launcher_arch: &str) -> Vec<PathBuf> {
    let mut c = vec![
        dir.join(format!("node-probe-linux-{arch}")),
        dir.join(arch).join("node-probe"),
    ];
    if arch == launcher_arch {
        c.push(dir.join("node-probe"));
    }
    c
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error(
        "node `{node}` reports no architecture (status.nodeInfo.architecture); copy delivery cannot pick a \
         node-probe build (use --probe-delivery image)"
    )]
    NoArch { node: String },
    #[error(
        "no node-probe build for architecture `{arch}` (node `{node}`): looked for {looked}. The release \
         archive carries it in probes/ beside the launcher; or build it (`bash packaging/build-probes.sh DIR`, \
         target {triple}) and name DIR with --probe-bin-dir; or use a probe image (--probe-delivery image)"
    )]
    NoBinary {
        node: String,
        arch: String,
        looked: String,
        triple: String,
    },
    #[error(
        "node `{node}` is `{arch}`: copy delivery has node-probe builds for amd64 and arm64 only (use \
         --probe-delivery image)"
    )]
    UnsupportedArch { node: String, arch: String },
    #[error("node-probe build {path}: {reason}")]
    BadBinary { path: String, reason: String },
}

/// The Rust target triple of a Kubernetes architecture (for the build hint).
fn triple(arch: &str) -> String {
    match arch {
        "arm64" => "aarch64-unknown-linux-gnu".into(),
        _ => "x86_64-unknown-linux-gnu".into(),
    }
}

/// Pick the node-probe build for `arch`: the first existing candidate in `dir`.
pub fn find_binary(
    dir: &Path,
    node: &str,
    arch: &str,
    launcher_arch: &str,
) -> Result<PathBuf, DeliveryError> {
    if arch.is_empty() {
        return Err(DeliveryError::NoArch { node: node.into() });
    }
    if elf_machine(arch).is_none() {
        return Err(DeliveryError::UnsupportedArch {
            node: node.into(),
            arch: arch.into(),
        });
    }
    let c = candidates(dir, arch, launcher_arch);
    if let Some(p) = c.iter().find(|p| p.is_file()) {
        return Ok(p.clone());
    }
    Err(DeliveryError::NoBinary {
        node: node.into(),
        arch: arch.into(),
        looked: c
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        triple: triple(arch),
    })
}

/// What the ELF header says: its machine and its program interpreter (None: statically linked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfInfo {
    pub machine: u16,
    pub interpreter: Option<String>,
}

/// Read the ELF64 little-endian header and PT_INTERP of `data`.
pub fn elf_info(data: &[u8]) -> Result<ElfInfo, String> {
    let u16_at = |o: usize| -> Option<u16> {
        Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?))
    };
    let u32_at = |o: usize| -> Option<u32> {
        Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?))
    };
    let u64_at = |o: usize| -> Option<usize> {
        usize::try_from(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?)).ok()
    };
    if data.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF executable".into());
    }
    if data.get(4) != Some(&2) || data.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF".into());
    }
    let truncated = || "truncated ELF header".to_string();
    let machine = u16_at(0x12).ok_or_else(truncated)?;
    let phoff = u64_at(0x20).ok_or_else(truncated)?;
    let phentsize = usize::from(u16_at(0x36).ok_or_else(truncated)?);
    let phnum = usize::from(u16_at(0x38).ok_or_else(truncated)?);
    let mut interpreter = None;
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        const PT_INTERP: u32 = 3;
        if u32_at(ph).ok_or_else(truncated)? != PT_INTERP {
            continue;
        }
        let off = u64_at(ph + 8).ok_or_else(truncated)?;
        let size = u64_at(ph + 32).ok_or_else(truncated)?;
        let raw = data
            .get(off..off.saturating_add(size))
            .ok_or_else(truncated)?;
        let s = String::from_utf8_lossy(raw)
            .trim_end_matches('\0')
            .to_string();
        // It goes into a shell argument: refuse anything odd rather than quote it.
        if s.is_empty()
            || !s
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/._-+".contains(c))
        {
            return Err(format!("odd ELF interpreter {s:?}"));
        }
        interpreter = Some(s);
    }
    Ok(ElfInfo {
        machine,
        interpreter,
    })
}

/// The newest glibc symbol version an ELF64 little-endian binary asks for (`GLIBC_2.34` -> (2, 34)), from its
/// version-needs section (`SHT_GNU_verneed`, kept by `strip`): the oldest glibc it runs on. None: no such
/// section or no glibc version named (a static build, or not an ELF).
pub fn glibc_needed(data: &[u8]) -> Option<(u32, u32)> {
    let u16_at = |o: usize| Some(u16::from_le_bytes(data.get(o..o + 2)?.try_into().ok()?));
    let u32_at = |o: usize| Some(u32::from_le_bytes(data.get(o..o + 4)?.try_into().ok()?));
    let u64_at =
        |o: usize| usize::try_from(u64::from_le_bytes(data.get(o..o + 8)?.try_into().ok()?)).ok();
    if data.get(..4) != Some(b"\x7fELF") || data.get(4) != Some(&2) || data.get(5) != Some(&1) {
        return None;
    }
    let shoff = u64_at(0x28)?;
    let shentsize = usize::from(u16_at(0x3a)?);
    let shnum = usize::from(u16_at(0x3c)?);
    const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;
    let section = |i: usize| shoff.checked_add(i.checked_mul(shentsize)?);
    let mut best: Option<(u32, u32)> = None;
    for i in 0..shnum.min(4096) {
        let sh = section(i)?;
        if u32_at(sh + 4)? != SHT_GNU_VERNEED {
            continue;
        }
        let (off, count) = (u64_at(sh + 24)?, u32_at(sh + 44)? as usize);
        let strtab = u64_at(section(u32_at(sh + 40)? as usize)? + 24)?;
        let name = |o: u32| -> Option<&str> {
            let start = strtab.checked_add(o as usize)?;
            let bytes = data.get(start..)?;
            let end = bytes.iter().position(|b| *b == 0)?;
            std::str::from_utf8(&bytes[..end]).ok()
        };
        let mut vn = off;
        for _ in 0..count.min(1024) {
            let (cnt, aux, next) = (u16_at(vn + 2)?, u32_at(vn + 8)?, u32_at(vn + 12)?);
            let mut a = vn.checked_add(aux as usize)?;
            for _ in 0..cnt {
                if let Some(v) = name(u32_at(a + 8)?).and_then(|n| n.strip_prefix("GLIBC_")) {
                    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
                    if let (Some(Some(major)), Some(Some(minor))) = (parts.next(), parts.next()) {
                        best = best.max(Some((major, minor)));
                    }
                }
                let next_aux = u32_at(a + 12)?;
                if next_aux == 0 {
                    break;
                }
                a = a.checked_add(next_aux as usize)?;
            }
            if next == 0 {
                break;
            }
            vn = vn.checked_add(next as usize)?;
        }
    }
    best
}

/// One node-probe build, ready to stream: its bytes (plain and gzip-compressed), and what the container
/// checks.
#[derive(Debug)]
pub struct Payload {
    pub path: PathBuf,
    /// The binary as sent on stdin to an image without gzip, or before the compressed form exists (shared by
    /// every call). No archive format: the script writes the bytes to one file, so it needs no `tar`.
    pub plain: Arc<Vec<u8>>,
    /// The binary gzip-compressed, once [`Payload::compress`] has run (in the background; a call waits for
    /// it a bounded time, [`Payload::compressed`], else the image gets the plain bytes): what an image with
    /// gzip gets where compression is on (44 % of the bytes of a release build; the container decompresses
    /// while it receives).
    gzip: std::sync::OnceLock<Arc<Vec<u8>>>,
    /// Set once [`Payload::compress`] has ended, made or failed: what [`Payload::compressed`] waits for.
    compress_ended: tokio::sync::watch::Sender<bool>,
    /// Hex SHA-256 of the binary: what the container compares with the `sha256sum` of what it received.
    pub sha256: String,
    /// PT_INTERP of the binary, checked to exist in the container (glibc's loader).
    pub interpreter: Option<String>,
    /// The oldest glibc it runs on ([`glibc_needed`]): base images known to be older are not tried.
    pub glibc: Option<(u32, u32)>,
}

pub fn sha256_hex(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

impl Payload {
    /// Check the binary is an ELF for `arch` and hash it.
    pub fn build(arch: &str, path: &Path, data: &[u8]) -> Result<Payload, DeliveryError> {
        let bad = |reason: String| DeliveryError::BadBinary {
            path: path.display().to_string(),
            reason,
        };
        let info = elf_info(data).map_err(bad)?;
        let want = elf_machine(arch).ok_or_else(|| bad(format!("unknown architecture {arch}")))?;
        if info.machine != want {
            let is = match info.machine {
                0x3e => "amd64".to_string(),
                0xb7 => "arm64".to_string(),
                m => format!("ELF machine {m:#x}"),
            };
            return Err(bad(format!("built for {is}, not for the node's {arch}")));
        }
        let sha256 = sha256_hex(data);
        let glibc = glibc_needed(data);
        #[cfg(debug_assertions)]
        let data = &corrupt_for_tests(data);
        Ok(Payload {
            path: path.into(),
            plain: Arc::new(data.to_vec()),
            gzip: std::sync::OnceLock::new(),
            compress_ended: tokio::sync::watch::Sender::new(false),
            sha256,
            interpreter: info.interpreter,
            glibc,
        })
    }

    /// Compress the binary (blocking; a few hundred milliseconds for a release build, once).
    pub fn compress(&self) -> std::io::Result<()> {
        let made = match self.gzip.get() {
            Some(_) => Ok(()),
            None => gzip(&self.plain).map(|g| {
                let _ = self.gzip.set(Arc::new(g));
            }),
        };
        self.compress_ended.send_replace(true);
        made
    }

    /// Whether the compressed form exists, after waiting at most `limit` for a compression under way (never
    /// started: the full `limit`). Where the API server is far (compression on), a call that would start
    /// before it ends waits rather than stream the plain bytes: a release build compresses in about 0.4 s
    /// and saves 3.9 of its 7 MB, 310 ms at 100 Mbit/s and 1.5 s at 20 Mbit/s (docs/performance.md).
    pub async fn compressed(&self, limit: std::time::Duration) -> bool {
        let mut ended = self.compress_ended.subscribe();
        let _ = tokio::time::timeout(limit, ended.wait_for(|e| *e)).await;
        self.gzip.get().is_some()
    }

    /// The compressed binary, once made.
    pub fn gzip(&self) -> Option<&Arc<Vec<u8>>> {
        self.gzip.get()
    }

    /// What to send once the script said it is ready for `format` (`gzip` is only offered, in
    /// [`Payload::argv`], once the compressed form exists).
    pub fn stdin_for(&self, format: Format) -> &[u8] {
        match (format, self.gzip()) {
            (Format::Gzip, Some(gz)) => gz,
            _ => &self.plain,
        }
    }

    /// The exec argv: the script, then its positional parameters, then node-probe's arguments.
    pub fn argv(&self, probe_args: impl IntoIterator<Item = String>) -> Vec<String> {
        let mut argv = vec![
            "sh".to_string(),
            "-c".into(),
            SCRIPT.into(),
            "sh".into(),
            self.plain.len().to_string(),
            // 0: not compressed yet, the script takes the plain bytes.
            self.gzip().map_or(0, |g| g.len()).to_string(),
            self.sha256.clone(),
            self.interpreter.clone().unwrap_or_default(),
        ];
        argv.extend(probe_args);
        argv
    }
}

/// Test-only (debug builds): with `K8S_GPU_MCP_TEST_CORRUPT_PROBE_PAYLOAD` set, the bytes sent differ from the
/// bytes hashed (one flipped), so the container's checksum check fails whichever form it gets.
#[cfg(debug_assertions)]
fn corrupt_for_tests(data: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    match std::env::var_os("K8S_GPU_MCP_TEST_CORRUPT_PROBE_PAYLOAD") {
        Some(_) if !data.is_empty() => {
            let mut v = data.to_vec();
            v[0] ^= 0xff;
            std::borrow::Cow::Owned(v)
        }
        _ => std::borrow::Cow::Borrowed(data),
    }
}

/// gzip at the default level: 0.43 s for the 4.9 MB release node-probe, once per launcher process and in the
/// background (docs/performance.md), against the transfer saved on every call to a remote API server.
pub fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 2),
        flate2::Compression::default(),
    );
    e.write_all(data)?;
    e.finish()
}

/// The form of the binary the container asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Gzip,
    Plain,
}

/// The script's ready lines on stderr (with their newline, so `ready` alone never matches `ready gzip` cut
/// across frames), each with the form it asks for.
pub const READY: &[(&[u8], Format)] = &[
    (b"k8s-gpu-mcp-delivery: ready gzip\n", Format::Gzip),
    (b"k8s-gpu-mcp-delivery: ready plain\n", Format::Plain),
];

/// The node-probe builds of one launcher process: looked up, checked and hashed once per architecture.
#[derive(Debug)]
pub struct ProbeBinaries {
    /// `--probe-bin-dir`, else the launcher executable's directory.
    pub dir: PathBuf,
    pub launcher_arch: String,
    /// Whether to make the gzip form at all (not when the API server is on this machine: there the
    /// transfer is cheap and decompressing in the container costs more than the bytes saved, measured).
    pub compress: bool,
    /// Per architecture, built once: concurrent first uses (the prewarm and a first call) wait for one build.
    cache: Mutex<HashMap<String, Arc<tokio::sync::OnceCell<Arc<Payload>>>>>,
}

impl ProbeBinaries {
    pub fn new(dir: PathBuf) -> Self {
        ProbeBinaries {
            dir,
            launcher_arch: launcher_arch().into(),
            compress: true,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// `--probe-bin-dir`, else [`default_dir`] of the launcher executable's directory.
    pub fn from_flag(bin_dir: Option<&Path>) -> Self {
        let dir = bin_dir.map(Path::to_path_buf).unwrap_or_else(|| {
            let exe_dir = exe_dir().unwrap_or_else(|| PathBuf::from("."));
            default_dir(&exe_dir)
        });
        ProbeBinaries::new(dir)
    }

    /// Read, hash and compress the build for the launcher's own architecture in the background, so the first
    /// call does not wait for it (a no-op outside a tokio runtime or without such a build; a node of another
    /// architecture gets its build on first use).
    pub fn prewarm(self: &Arc<Self>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let arch = self.launcher_arch.clone();
        if find_binary(&self.dir, "", &arch, &arch).is_err() {
            return;
        }
        let bins = self.clone();
        rt.spawn(async move {
            if let Err(e) = bins.payload("", &arch).await {
                tracing::debug!(error = %e, "prewarming the node-probe build");
            }
        });
    }

    /// The payload for a node of `arch` (read, checked and hashed on first use).
    pub async fn payload(&self, node: &str, arch: &str) -> Result<Arc<Payload>, DeliveryError> {
        let cell = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(arch.to_string())
            .or_default()
            .clone();
        cell.get_or_try_init(|| self.build(node, arch))
            .await
            .cloned()
    }

    async fn build(&self, node: &str, arch: &str) -> Result<Arc<Payload>, DeliveryError> {
        let path = find_binary(&self.dir, node, arch, &self.launcher_arch)?;
        let arch_owned = arch.to_string();
        let built = tokio::task::spawn_blocking(move || {
            let data = std::fs::read(&path).map_err(|e| DeliveryError::BadBinary {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            Payload::build(&arch_owned, &path, &data)
        })
        .await
        .map_err(|e| DeliveryError::BadBinary {
            path: self.dir.display().to_string(),
            reason: format!("reading task failed: {e}"),
        })??;
        tracing::info!(arch, path = %built.path.display(), bytes = built.plain.len(), sha256 = %built.sha256, "node-probe build ready for copy delivery");
        let p = Arc::new(built);
        if !self.compress {
            return Ok(p);
        }
        let bg = p.clone();
        let arch = arch.to_string();
        // Compressed in the background, once: a call waits for it only so long ([`Payload::compressed`],
        // [`GZIP_WAIT`]), and gets the plain bytes past that.
        tokio::task::spawn_blocking(move || {
            let t = std::time::Instant::now();
            match bg.compress() {
                Ok(()) => tracing::info!(
                    arch,
                    bytes = bg.plain.len(),
                    gzip_bytes = bg.gzip().map_or(0, |g| g.len()),
                    ms = t.elapsed().as_millis() as u64,
                    "node-probe build compressed for copy delivery"
                ),
                Err(e) => {
                    tracing::warn!(arch, error = %e, "cannot compress node-probe; sending it plain")
                }
            }
        });
        Ok(p)
    }
}

/// How long a call waits for node-probe's compressed form to be made (a release build takes about 0.4 s
/// once per launcher; past this the call streams the plain bytes).
pub const GZIP_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The in-container side of copy delivery, run as `sh -c SCRIPT sh SIZE GZSIZE SHA256 INTERP ARGS...`.
///
/// Checks its tools and the ELF interpreter (glibc's loader) first, before reading anything, then says on
/// stderr which form it takes: `k8s-gpu-mcp-delivery: ready gzip` where one is offered (GZSIZE not 0) and
/// the image has `gzip` (GZSIZE bytes, decompressed as they arrive), else `k8s-gpu-mcp-delivery: ready plain`
/// (SIZE bytes); the launcher sends that one only after the line. Then reads exactly that many bytes of stdin
/// (never waits for EOF) into one file in a private directory under `$NODE_PROBE_DIR` (/tmp where unset) on
/// which, with `NODE_PROBE_TMPFS` set (privileged probe pods), it first mounts a tmpfs of the container's own
/// (in memory; where `mount` is missing or refused, the directory stays on the container's writable layer,
/// removed with it). `tee` hashes the bytes while they arrive, so the SHA-256 is ready with the last byte
/// (hashing the file afterwards cost 25-35 ms here, after the transfer). Only when the file has SIZE bytes and
/// that hash is SHA256 does it make the file executable and run node-probe with ARGS (stdin from /dev/null,
/// stdout untouched); it removes the directory and exits with node-probe's code. A delivery failure prints
/// one `k8s-gpu-mcp-delivery: <what>` line on stderr and exits with its own code (see [`Failure`]).
pub const SCRIPT: &str = r#"m() { echo "k8s-gpu-mcp-delivery: $*" >&2; }
size=$1 zsize=$2 sum=$3 interp=$4
shift 4
for t in head tee sha256sum wc chmod mktemp rm; do
  command -v "$t" >/dev/null 2>&1 || { m missing-tool "$t"; exit 120; }
done
if [ -n "$interp" ] && [ ! -e "$interp" ]; then m no-glibc "$interp"; exit 124; fi
base=${NODE_PROBE_DIR:-/tmp}
d=$(mktemp -d "$base/node-probe.XXXXXX" 2>/dev/null) || { m no-private-dir "$base"; exit 121; }
t=
if [ -n "${NODE_PROBE_TMPFS:-}" ] && mount -t tmpfs -o mode=0700,size=256m node-probe "$d" 2>/dev/null; then t=1; fi
trap '[ -z "$t" ] || umount "$d" 2>/dev/null; rm -rf "$d"' EXIT
trap 'exit 143' HUP INT TERM
f=$d/node-probe
if [ "$zsize" != 0 ] && command -v gzip >/dev/null 2>&1; then
  m ready gzip
  actual=$(head -c "$zsize" | gzip -dc 2>/dev/null | tee "$f" | sha256sum)
else
  m ready plain
  actual=$(head -c "$size" | tee "$f" | sha256sum)
fi
got=$(wc -c <"$f" 2>/dev/null)
[ "$got" = "$size" ] || { m incomplete "${got:-0}"; exit 122; }
[ "${actual%% *}" = "$sum" ] || { m checksum-mismatch "${actual%% *}"; exit 123; }
chmod 0700 "$f" || { m cannot-execute chmod; exit 125; }
"$f" "$@" </dev/null
rc=$?
case $rc in 126|127) m cannot-execute "$rc"; exit 125;; esac
exit $rc
"#;

/// A delivery failure the script reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    MissingTool(String),
    NoPrivateDir(String),
    /// Fewer (or more) bytes than the binary's length arrived: the bytes written, as the script counted them.
    Incomplete(String),
    ChecksumMismatch(String),
    NoGlibc(String),
    CannotExecute(String),
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::MissingTool(_) => 120,
            Failure::NoPrivateDir(_) => 121,
            Failure::Incomplete(_) => 122,
            Failure::ChecksumMismatch(_) => 123,
            Failure::NoGlibc(_) => 124,
            Failure::CannotExecute(_) => 125,
        }
    }

    /// The failure in this exit: the script's marker line on stderr, with the matching exit code (both, so a
    /// node-probe that happens to exit 120..125 is not mistaken for one).
    pub fn from_exit(exit_code: i32, stderr: &str) -> Option<Failure> {
        let line = stderr
            .lines()
            .rev()
            .find_map(|l| l.trim().strip_prefix("k8s-gpu-mcp-delivery: "))?;
        let (what, arg) = line.split_once(' ').unwrap_or((line, ""));
        let arg = arg.trim().to_string();
        let f = match what {
            "missing-tool" => Failure::MissingTool(arg),
            "no-private-dir" => Failure::NoPrivateDir(arg),
            "incomplete" => Failure::Incomplete(arg),
            "checksum-mismatch" => Failure::ChecksumMismatch(arg),
            "no-glibc" => Failure::NoGlibc(arg),
            "cannot-execute" => Failure::CannotExecute(arg),
            _ => return None,
        };
        (f.exit_code() == exit_code).then_some(f)
    }

    /// What happened, in which image, and what to do.
    pub fn explain(&self, image: &str, payload: &Payload) -> String {
        let alt = "pick another --probe-image, or use --probe-delivery image";
        match self {
            Failure::MissingTool(t) => format!(
                "copy delivery: the probe image {image} has no `{t}` (copy delivery needs sh, head, tee, \
                 sha256sum, wc, chmod, mktemp and rm in the image, e.g. a Debian/Ubuntu-based image; distroless images have \
                 none); {alt}"
            ),
            Failure::NoPrivateDir(d) => format!(
                "copy delivery: cannot create a private directory under {d} in the probe image {image}; {alt}"
            ),
            Failure::Incomplete(got) => format!(
                "copy delivery: node-probe arrived incomplete in the probe image {image}: {got} of {} bytes \
                 ({} bytes gzip-compressed; stream cut short, or no room in the private directory?); \
                 nothing was run; {alt}",
                payload.plain.len(),
                payload.gzip().map_or(0, |g| g.len())
            ),
            Failure::ChecksumMismatch(got) => format!(
                "copy delivery: checksum mismatch: node-probe arrived in {image} with SHA-256 {got}, expected \
                 {} ({}); the stream was altered on the way; nothing was run",
                payload.sha256,
                payload.path.display()
            ),
            Failure::NoGlibc(interp) => format!(
                "copy delivery: the probe image {image} has no glibc (no {interp}, the loader node-probe \
                 needs); use a glibc-based image (Debian, Ubuntu, RHEL UBI, the GPU Operator's driver or \
                 toolkit images), or --probe-delivery image"
            ),
            Failure::CannotExecute(rc) => format!(
                "copy delivery: node-probe could not be executed in the probe image {image} (shell status \
                 {rc}: missing shared libraries or a noexec directory; see stderr); {alt}"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The newest GLIBC_ version the test binary itself asks for (a glibc executable built here), as
    /// binutils' objdump reads it.
    #[test]
    fn glibc_needed_reads_the_version_needs_as_objdump_does() {
        let exe = std::env::current_exe().unwrap();
        let data = std::fs::read(&exe).unwrap();
        let ours = glibc_needed(&data).expect("a glibc executable names glibc versions");
        let out = std::process::Command::new("objdump")
            .arg("-T")
            .arg(&exe)
            .output()
            .expect("objdump (binutils)");
        let theirs = String::from_utf8_lossy(&out.stdout)
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .filter_map(|w| w.strip_prefix("GLIBC_"))
            .filter_map(|v| {
                let mut p = v.split('.').map(|x| x.parse::<u32>().ok());
                Some((p.next()??, p.next()??))
            })
            .max()
            .unwrap();
        assert_eq!(ours, theirs);
    }

    /// A call waits for a compression under way and takes its result as soon as it ends; with none under way
    /// it gives up at its limit.
    #[tokio::test]
    async fn a_call_waits_for_the_compressed_form_only_while_it_is_made() {
        #[cfg(target_arch = "x86_64")]
        let arch = "amd64";
        #[cfg(target_arch = "aarch64")]
        let arch = "arm64";
        let path = std::path::Path::new("/bin/true");
        let p = Arc::new(Payload::build(arch, path, &std::fs::read(path).unwrap()).unwrap());
        let t = std::time::Instant::now();
        assert!(!p.compressed(Duration::from_millis(100)).await);
        assert!(
            t.elapsed() >= Duration::from_millis(100),
            "not started: waits its limit"
        );
        let bg = p.clone();
        tokio::task::spawn_blocking(move || {
            std::thread::sleep(Duration::from_millis(200));
            bg.compress()
        });
        let t = std::time::Instant::now();
        assert!(p.compressed(Duration::from_secs(30)).await);
        assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
        let gz = p.gzip().expect("made").clone();
        assert!(gz.len() < p.plain.len());
        assert!(std::ptr::eq(p.stdin_for(Format::Gzip), gz.as_slice()));
        // Made already: no wait at all.
        let t = std::time::Instant::now();
        assert!(p.compressed(Duration::from_secs(30)).await);
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn glibc_needed_of_garbage_or_a_bare_header_is_none() {
        assert_eq!(glibc_needed(b""), None);
        assert_eq!(glibc_needed(b"#!/bin/sh\n"), None);
        let mut elf = vec![0u8; 64];
        elf[..6].copy_from_slice(b"\x7fELF\x02\x01");
        assert_eq!(glibc_needed(&elf), None);
        // Section headers pointing past the end: no panic, no answer.
        elf[0x28] = 0xff;
        elf[0x3a] = 64;
        elf[0x3c] = 3;
        assert_eq!(glibc_needed(&elf), None);
        let mut cut = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        cut.truncate(cut.len() / 2);
        let _ = glibc_needed(&cut);
    }
}
