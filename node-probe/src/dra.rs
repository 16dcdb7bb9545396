//! What the node shows of DRA (Dynamic Resource Allocation) drivers without asking the kubelet: the
//! drivers registered with it and the GPU claims a driver prepared. Raw facts only; `gpu_diag::attribution`
//! joins them to GPUs and to what the kubelet reported.
//!
//! - Registration: a DRA kubelet plugin puts `<driver>-reg.sock` (or `<driver>-<uid>-reg.sock` with
//!   rolling updates) in the kubelet's `plugins_registry` (k8s.io/dynamic-resource-allocation/kubeletplugin,
//!   `RegistrarSocketFilename`).
//! - Prepared claims: NVIDIA's GPU driver writes one transient CDI spec per claim,
//!   `k8s.gpu.nvidia.com-claim_<claim uid>.yaml`, whose devices are `<claim uid>-<device>` (NVIDIA/
//!   k8s-dra-driver-gpu `cmd/gpu-kubelet-plugin/cdi.go`; CDI's `GenerateTransientSpecName`), in its
//!   `--cdi-root` (default `/etc/cdi`; the CDI default dirs are `/etc/cdi` and `/var/run/cdi`).
//!
//! Only root-owned entries count: a file or socket a tenant placed through a hostPath volume is not the
//! driver's. A forged spec could only make a GPU look held (a reset is refused), never hide one.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use gpu_diag::facts::{CdiClaimSpecFacts, DraHostFacts, FieldError, FieldErrorKind, Reading};

/// CDI spec directories, relative to the host root.
const CDI_DIRS: &[&str] = &["etc/cdi", "var/run/cdi"];
/// The file-name prefix of the CDI claim specs of GPU DRA drivers: `<vendor>-<class>_`.
const GPU_CLAIM_SPEC_PREFIXES: &[&str] = &["k8s.gpu.nvidia.com-claim_"];
/// A node prepares at most a few claims per GPU; a directory far fuller is cut.
const MAX_ENTRIES: usize = 4096;
/// A claim's spec lists a few devices with their edits: tens of KiB.
const MAX_SPEC_BYTES: u64 = 1 << 20;
/// Device names kept per spec.
const MAX_DEVICES: usize = 64;

/// The kubelet's plugin registry and the GPU drivers' claim specs under `host_root`.
pub fn read(host_root: &Path, kubelet_dir: &Path) -> Reading<DraHostFacts> {
    let owner = match std::fs::metadata(host_root) {
        Ok(m) => m.uid(),
        Err(e) => {
            return Reading::Err(FieldError::with_message(
                FieldErrorKind::NotFound,
                format!("{}: {e}", host_root.display()),
            ));
        }
    };
    // Resolved as the host would: `/var/lib/kubelet` may be a link to a data disk, `/var/run` one to `/run`.
    let registry = crate::host::root::path(host_root, kubelet_dir.join("plugins_registry"));
    let mut registered: Vec<String> = entries(&registry)
        .filter(|(_, m)| m.file_type().is_socket() && m.uid() == owner)
        .filter_map(|(name, _)| driver_of_socket(&name))
        .collect();
    registered.sort();
    registered.dedup();
    let mut claim_specs = Vec::new();
    for dir in CDI_DIRS {
        let at = crate::host::root::path(host_root, dir);
        for (name, meta) in entries(&at) {
            if !meta.is_file() || meta.uid() != owner || meta.len() > MAX_SPEC_BYTES {
                continue;
            }
            let Some(uid) = claim_uid_of_spec(&name) else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(at.join(&name)) else {
                continue;
            };
            claim_specs.push(parse_claim_spec(&format!("{dir}/{name}"), uid, &text));
        }
    }
    claim_specs.sort_by(|a, b| a.file.cmp(&b.file));
    Reading::Ok(DraHostFacts {
        registered,
        claim_specs,
    })
}

/// Names and metadata (not following links) of a directory's entries; nothing when it is unreadable.
fn entries(dir: &Path) -> impl Iterator<Item = (String, std::fs::Metadata)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .take(MAX_ENTRIES)
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let meta = std::fs::symlink_metadata(e.path()).ok()?;
            Some((name, meta))
        })
}

/// `gpu.nvidia.com-reg.sock` → `gpu.nvidia.com`; `gpu.nvidia.com-<uid>-reg.sock` → the same.
fn driver_of_socket(name: &str) -> Option<String> {
    let stem = name.strip_suffix("-reg.sock")?;
    // A driver name is a DNS subdomain (it has dots); rolling updates add `-<36-character uid>`.
    let driver = match stem.len().checked_sub(37) {
        Some(cut) if stem.as_bytes()[cut] == b'-' && is_uuid(&stem[cut + 1..]) => &stem[..cut],
        _ => stem,
    };
    (driver.contains('.') && driver.len() <= 253).then(|| driver.to_string())
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| {
            matches!(i, 8 | 13 | 18 | 23) == (b == b'-') && (b == b'-' || b.is_ascii_hexdigit())
        })
}

/// `k8s.gpu.nvidia.com-claim_<uid>.yaml` (or `.json`) → the claim UID.
fn claim_uid_of_spec(name: &str) -> Option<String> {
    let stem = name
        .strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".json"))?;
    let uid = GPU_CLAIM_SPEC_PREFIXES
        .iter()
        .find_map(|p| stem.strip_prefix(p))?;
    is_uuid(uid).then(|| uid.to_string())
}

/// The spec's `kind` and the device names that belong to the claim (`<uid>-gpu-0` → `gpu-0`). JSON is parsed;
/// YAML (what NVIDIA's driver writes) is read line by line: only `kind:` and `name:` values are needed, and a
/// value that is not `<uid>-<device>` is not one of the claim's devices.
fn parse_claim_spec(file: &str, uid: String, text: &str) -> CdiClaimSpecFacts {
    let prefix = format!("{uid}-");
    let mut kind = String::new();
    let mut devices: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if let Some(device) = name.strip_prefix(&prefix)
            && device_name_ok(device)
            && devices.len() < MAX_DEVICES
            && !devices.iter().any(|d| d == device)
        {
            devices.push(device.to_string());
        }
    };
    if text.trim_start().starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        kind = v["kind"].as_str().unwrap_or_default().to_string();
        for d in v["devices"].as_array().into_iter().flatten() {
            add(d["name"].as_str().unwrap_or_default());
        }
        return CdiClaimSpecFacts {
            file: file.to_string(),
            kind,
            claim_uid: uid,
            devices,
        };
    }
    let value = |line: &str, key: &str| -> Option<String> {
        let l = line.trim().trim_start_matches('-').trim_start();
        let rest = l
            .strip_prefix(key)
            .or_else(|| l.strip_prefix(&format!("\"{key}\"")))?;
        let v = rest.trim_start().strip_prefix(':')?.trim();
        Some(
            v.trim_end_matches(',')
                .trim_matches('"')
                .trim_matches('\'')
                .to_string(),
        )
    };
    for line in text.lines() {
        if kind.is_empty()
            && let Some(k) = value(line, "kind")
        {
            kind = k;
        } else if let Some(n) = value(line, "name") {
            add(&n);
        }
    }
    CdiClaimSpecFacts {
        file: file.to_string(),
        kind,
        claim_uid: uid,
        devices,
    }
}

/// A ResourceSlice device name is a DNS label.
fn device_name_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "dab5ab50-d59a-42a6-af16-cfd4628c0f7a";

    #[test]
    fn driver_names_from_registration_sockets() {
        assert_eq!(
            driver_of_socket("gpu.nvidia.com-reg.sock").as_deref(),
            Some("gpu.nvidia.com")
        );
        assert_eq!(
            driver_of_socket(&format!("compute-domain.nvidia.com-{UID}-reg.sock")).as_deref(),
            Some("compute-domain.nvidia.com")
        );
        // CSI plugins register here too; a name without a domain is not a DRA driver's.
        assert_eq!(driver_of_socket("csi-hostpath-reg.sock"), None);
        assert_eq!(driver_of_socket("gpu.nvidia.com.sock"), None);
    }

    #[test]
    fn claim_specs_name_their_claim_and_devices() {
        assert_eq!(
            claim_uid_of_spec(&format!("k8s.gpu.nvidia.com-claim_{UID}.yaml")).as_deref(),
            Some(UID)
        );
        assert_eq!(claim_uid_of_spec("k8s.gpu.nvidia.com-claim_x.yaml"), None);
        assert_eq!(claim_uid_of_spec("nvidia.yaml"), None);
        let yaml = format!(
            "cdiVersion: 0.5.0\nkind: k8s.gpu.nvidia.com/claim\ndevices:\n- name: {UID}-gpu-0\n  containerEdits:\n    env:\n    - NVIDIA_VISIBLE_DEVICES=void\n- name: {UID}-gpu-1-mig-1g10gb-19-0\n- name: other-gpu-2\n- name: {UID}-GPU_3\ncontainerEdits:\n  deviceNodes:\n  - path: /dev/nvidiactl\n"
        );
        let s = parse_claim_spec("etc/cdi/x.yaml", UID.into(), &yaml);
        assert_eq!(s.kind, "k8s.gpu.nvidia.com/claim");
        assert_eq!(s.devices, vec!["gpu-0", "gpu-1-mig-1g10gb-19-0"]);
        let json = format!(
            r#"{{"cdiVersion":"0.5.0","kind":"k8s.gpu.nvidia.com/claim","devices":[
  {{"name": "{UID}-gpu-3", "containerEdits": {{}}}}]}}"#
        );
        let s = parse_claim_spec("var/run/cdi/x.json", UID.into(), &json);
        assert_eq!(s.devices, vec!["gpu-3"]);
    }

    #[test]
    fn only_root_owned_entries_count() {
        use std::os::unix::net::UnixListener;
        let d = tempfile::tempdir().unwrap();
        let reg = d.path().join("var/lib/kubelet/plugins_registry");
        std::fs::create_dir_all(&reg).unwrap();
        let _l = UnixListener::bind(reg.join("gpu.nvidia.com-reg.sock")).unwrap();
        std::fs::create_dir_all(d.path().join("etc/cdi")).unwrap();
        std::fs::write(
            d.path()
                .join(format!("etc/cdi/k8s.gpu.nvidia.com-claim_{UID}.yaml")),
            format!("kind: k8s.gpu.nvidia.com/claim\ndevices:\n- name: {UID}-gpu-2\n"),
        )
        .unwrap();
        let r = read(d.path(), Path::new("var/lib/kubelet"));
        let f = r.ok().cloned().unwrap();
        assert_eq!(f.registered, vec!["gpu.nvidia.com"]);
        assert_eq!(f.claim_specs.len(), 1);
        assert_eq!(f.claim_specs[0].devices, vec!["gpu-2"]);
        // Owned by someone else than the root's owner: not the driver's.
        if nix_uid() == 0 {
            std::os::unix::fs::lchown(
                d.path()
                    .join(format!("etc/cdi/k8s.gpu.nvidia.com-claim_{UID}.yaml")),
                Some(1234),
                None,
            )
            .unwrap();
            std::os::unix::fs::lchown(reg.join("gpu.nvidia.com-reg.sock"), Some(1234), None)
                .unwrap();
            let f = read(d.path(), Path::new("var/lib/kubelet"))
                .ok()
                .cloned()
                .unwrap();
            assert!(f.registered.is_empty() && f.claim_specs.is_empty());
        }
    }

    fn nix_uid() -> u32 {
        std::fs::metadata("/proc/self")
            .map(|m| m.uid())
            .unwrap_or(1)
    }
}
