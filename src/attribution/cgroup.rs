//! `/proc/<pid>/cgroup` → pod UID and container id.
//!
//! Shapes handled (the kubelet's cgroup driver × cgroup version × runtime):
//! - systemd driver: `/kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid with _>.slice/<runtime>-<id>.scope`
//!   (`cri-containerd-`, `crio-`, `crio-conmon-`, `docker-`), guaranteed pods without the qos level;
//! - cgroupfs driver: `/kubepods/<qos>/pod<uid>/<id>` (`crio-<id>` for CRI-O), guaranteed pods directly
//!   under `/kubepods`;
//! - cgroup v1 (one line per hierarchy, `N:controllers:path`), v2 (`0::path`) and hybrid;
//! - paths relative to a cgroup namespace (`/../../kubepods-...`) and nested kubelets
//!   (`/kubelet.slice/kubelet-kubepods.slice/...`, kind): the pod component is found wherever it is.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CgroupVersion {
    V1,
    V2,
    /// v1 controllers plus the v2 unified hierarchy.
    Hybrid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CgroupDriver {
    Systemd,
    Cgroupfs,
}

/// What a process's cgroup says about the pod and container it runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CgroupAttribution {
    pub version: CgroupVersion,
    /// The path the attribution was read from (the kubepods one when there is one).
    pub path: String,
    /// Absent: the process runs in no pod (a host service, an SSH session, a plain `docker run`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<CgroupDriver>,
    /// `guaranteed`, `burstable` or `besteffort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// `containerd`, `crio`, `crio-conmon` (CRI-O's monitor, not the container), `docker`; absent when the
    /// path does not say (cgroupfs with a bare id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
}

/// The pod/container part of one cgroup path.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathInfo {
    pub pod_uid: Option<String>,
    pub driver: Option<CgroupDriver>,
    pub qos: Option<String>,
    pub container_id: Option<String>,
    pub runtime: Option<String>,
}

/// Parse the contents of `/proc/<pid>/cgroup`.
pub fn parse_proc_cgroup(text: &str) -> Result<CgroupAttribution, String> {
    let mut v1 = false;
    let mut v2 = false;
    let mut best: Option<(u8, &str, PathInfo)> = None;
    let mut first_path: Option<&str> = None;
    let mut unified_path: Option<&str> = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) || !path.starts_with('/') {
            continue;
        }
        if id == "0" && controllers.is_empty() {
            v2 = true;
            unified_path.get_or_insert(path);
        } else {
            v1 = true;
        }
        first_path.get_or_insert(path);
        let info = parse_path(path);
        // Prefer a path that names the container too; hierarchies may disagree when a process moved.
        let rank = u8::from(info.pod_uid.is_some()) * 2 + u8::from(info.container_id.is_some());
        if rank > 0 && best.as_ref().is_none_or(|(r, _, _)| rank > *r) {
            best = Some((rank, path, info));
        }
    }
    let version = match (v1, v2) {
        (true, true) => CgroupVersion::Hybrid,
        (false, true) => CgroupVersion::V2,
        (true, false) => CgroupVersion::V1,
        (false, false) => return Err("no `hierarchy:controllers:/path` line".into()),
    };
    let (path, info) = match best {
        Some((_, path, info)) => (path, info),
        None => (
            unified_path.or(first_path).unwrap_or("/"),
            PathInfo::default(),
        ),
    };
    Ok(CgroupAttribution {
        version,
        path: path.to_string(),
        pod_uid: info.pod_uid,
        driver: info.driver,
        qos: info.qos,
        container_id: info.container_id,
        runtime: info.runtime,
    })
}

/// Find the pod and container in one cgroup path.
pub fn parse_path(path: &str) -> PathInfo {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let Some((uid, driver, qos)) = pod_component(part, i.checked_sub(1).map(|j| parts[j]))
        else {
            continue;
        };
        let (container_id, runtime) = parts
            .get(i + 1)
            .and_then(|c| container_component(c))
            .map_or((None, None), |(id, rt)| (Some(id), rt));
        return PathInfo {
            pod_uid: Some(uid),
            driver: Some(driver),
            qos: Some(qos),
            container_id,
            runtime,
        };
    }
    PathInfo::default()
}

/// `kubepods-burstable-pod<uid_>.slice` (systemd) or `pod<uid>` (cgroupfs) → (uid, driver, qos).
fn pod_component(part: &str, parent: Option<&str>) -> Option<(String, CgroupDriver, String)> {
    if let Some(stem) = part.strip_suffix(".slice") {
        // The slice name carries the whole hierarchy: kubepods-<qos>-pod<uid>; the uid's dashes are
        // escaped as underscores because `-` separates slice levels.
        let (prefix, uid) = stem.rsplit_once("-pod")?;
        let uid = uid.replace('_', "-");
        if !pod_uid_like(&uid) || (!prefix.ends_with("kubepods") && !prefix.contains("kubepods-")) {
            return None;
        }
        let qos = match prefix.rsplit_once("kubepods-") {
            Some((_, q)) if !q.is_empty() => q.to_string(),
            _ => "guaranteed".to_string(),
        };
        return Some((uid, CgroupDriver::Systemd, qos));
    }
    let uid = part.strip_prefix("pod")?;
    if !pod_uid_like(uid) {
        return None;
    }
    let qos = match parent {
        Some(q @ ("burstable" | "besteffort")) => q.to_string(),
        _ => "guaranteed".to_string(),
    };
    Some((uid.to_string(), CgroupDriver::Cgroupfs, qos))
}

/// A pod UID (`8-4-4-4-12` hex) or a static pod's config hash (32 hex digits).
pub fn pod_uid_like(s: &str) -> bool {
    let hex = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit());
    if hex(s, 32) {
        return true;
    }
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5 && groups.iter().zip([8, 4, 4, 4, 12]).all(|(g, n)| hex(g, n))
}

/// `cri-containerd-<id>.scope`, `crio-<id>.scope`, `crio-<id>`, `docker-<id>.scope`, `<id>` → (id, runtime).
fn container_component(part: &str) -> Option<(String, Option<String>)> {
    let stem = part.strip_suffix(".scope").unwrap_or(part);
    const PREFIXES: &[(&str, &str)] = &[
        ("cri-containerd-", "containerd"),
        ("crio-conmon-", "crio-conmon"),
        ("crio-", "crio"),
        ("docker-", "docker"),
        ("containerd-", "containerd"),
    ];
    let (id, runtime) = PREFIXES
        .iter()
        .find_map(|(p, rt)| stem.strip_prefix(p).map(|id| (id, Some(rt.to_string()))))
        .unwrap_or((stem, None));
    let ok = (12..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| (id.to_ascii_lowercase(), runtime))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    const CID: &str = "3f2a8c1b9d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

    fn uid_(u: &str) -> String {
        u.replace('-', "_")
    }

    #[test]
    fn v2_systemd_containerd() {
        let t = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{CID}.scope\n",
            uid_(UID)
        );
        let a = parse_proc_cgroup(&t).unwrap();
        assert_eq!(a.version, CgroupVersion::V2);
        assert_eq!(a.pod_uid.as_deref(), Some(UID));
        assert_eq!(a.container_id.as_deref(), Some(CID));
        assert_eq!(a.runtime.as_deref(), Some("containerd"));
        assert_eq!(a.qos.as_deref(), Some("burstable"));
        assert_eq!(a.driver, Some(CgroupDriver::Systemd));
    }

    #[test]
    fn v2_systemd_crio_guaranteed_and_conmon() {
        let t = format!(
            "0::/kubepods.slice/kubepods-pod{}.slice/crio-{CID}.scope",
            uid_(UID)
        );
        let a = parse_proc_cgroup(&t).unwrap();
        assert_eq!(a.qos.as_deref(), Some("guaranteed"));
        assert_eq!(a.runtime.as_deref(), Some("crio"));
        assert_eq!(a.container_id.as_deref(), Some(CID));
        let t = format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{}.slice/crio-conmon-{CID}.scope",
            uid_(UID)
        );
        let a = parse_proc_cgroup(&t).unwrap();
        assert_eq!(a.runtime.as_deref(), Some("crio-conmon"));
        assert_eq!(a.qos.as_deref(), Some("besteffort"));
    }

    #[test]
    fn v2_cgroupfs_and_crio_cgroupfs() {
        let a = parse_proc_cgroup(&format!("0::/kubepods/besteffort/pod{UID}/{CID}")).unwrap();
        assert_eq!(a.driver, Some(CgroupDriver::Cgroupfs));
        assert_eq!(a.qos.as_deref(), Some("besteffort"));
        assert_eq!(a.container_id.as_deref(), Some(CID));
        assert_eq!(a.runtime, None);
        let a = parse_proc_cgroup(&format!("0::/kubepods/pod{UID}/crio-{CID}")).unwrap();
        assert_eq!(a.qos.as_deref(), Some("guaranteed"));
        assert_eq!(a.runtime.as_deref(), Some("crio"));
    }

    #[test]
    fn v1_cgroupfs_many_hierarchies() {
        let t = format!(
            "12:hugetlb:/kubepods/burstable/pod{UID}/{CID}\n\
             11:memory:/kubepods/burstable/pod{UID}/{CID}\n\
             10:cpu,cpuacct:/kubepods/burstable/pod{UID}/{CID}\n\
             4:devices:/kubepods/burstable/pod{UID}/{CID}\n\
             1:name=systemd:/kubepods/burstable/pod{UID}/{CID}\n"
        );
        let a = parse_proc_cgroup(&t).unwrap();
        assert_eq!(a.version, CgroupVersion::V1);
        assert_eq!(a.pod_uid.as_deref(), Some(UID));
        assert_eq!(a.container_id.as_deref(), Some(CID));
    }

    #[test]
    fn hybrid_systemd_docker_and_namespaced_paths() {
        let t = format!(
            "5:devices:/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/docker-{CID}.scope\n\
             0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{u}.slice/docker-{CID}.scope\n",
            u = uid_(UID)
        );
        let a = parse_proc_cgroup(&t).unwrap();
        assert_eq!(a.version, CgroupVersion::Hybrid);
        assert_eq!(a.runtime.as_deref(), Some("docker"));
        // Read from inside another cgroup namespace: relative to the reader's root.
        let t = format!(
            "0::/../../kubepods-besteffort-pod{}.slice/cri-containerd-{CID}.scope",
            uid_(UID)
        );
        let a = parse_proc_cgroup(&t).unwrap();
        assert_eq!(a.pod_uid.as_deref(), Some(UID));
        assert_eq!(a.qos.as_deref(), Some("besteffort"));
        // kind: a kubelet inside a container, nested slices.
        let t = format!(
            "0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod{}.slice/cri-containerd-{CID}.scope",
            uid_(UID)
        );
        let a = parse_proc_cgroup(&t).unwrap();
        assert_eq!(a.pod_uid.as_deref(), Some(UID));
        assert_eq!(a.qos.as_deref(), Some("burstable"));
        // Static pod: config hash as UID; pod-level process (no container component).
        let a = parse_proc_cgroup("0::/kubepods/pod0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            a.pod_uid.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(a.container_id, None);
    }

    #[test]
    fn outside_any_pod() {
        for t in [
            "0::/system.slice/ssh.service",
            "0::/user.slice/user-1000.slice/session-3.scope",
            "0::/",
            "0::/system.slice/docker-3f2a8c1b9d4e.scope",
            "0::/podman",
            "0::/kubepods.slice",
        ] {
            let a = parse_proc_cgroup(t).unwrap();
            assert_eq!(a.pod_uid, None, "{t}");
            assert!(a.path.starts_with('/'));
        }
    }

    #[test]
    fn malformed_input_is_an_error_or_no_pod_never_a_panic() {
        for t in [
            "",
            "\n\n",
            "garbage",
            "x:y:z",
            "0:",
            "0::relative/path",
            "::/",
            "1:memory",
        ] {
            assert!(parse_proc_cgroup(t).is_err(), "{t:?}");
        }
        let weird = [
            "0::/kubepods/burstable/podnot-a-uid/abc".to_string(),
            "0::/kubepods.slice/kubepods-pod.slice".to_string(),
            "0::/kubepods.slice/kubepods-burstable-pod_____.slice".to_string(),
            format!("0::/kubepods/pod{UID}/not-hex-id"),
            format!("0::/kubepods/pod{UID}/cri-containerd-.scope"),
            "0::/kubepods/pod€€€/é".to_string(),
            format!("0::/x-pod{}.slice", uid_(UID)),
            "0::///////".to_string(),
        ];
        for t in &weird {
            let a = parse_proc_cgroup(t).unwrap();
            if t.contains("not-hex-id") || t.contains("cri-containerd-.scope") {
                assert_eq!(a.pod_uid.as_deref(), Some(UID), "{t}");
                assert_eq!(a.container_id, None, "{t}");
            } else {
                assert_eq!(a.pod_uid, None, "{t}");
            }
        }
    }
}
