//! Names in the kubelet's log layout: `var/log/pods/<namespace>_<pod>_<uid>` and
//! `var/log/containers/<pod>_<namespace>_<container>-<container id>.log`. Namespaces, pod and container
//! names are DNS labels/subdomains (no `_`), so `_` separates the parts unambiguously.

use super::cgroup::pod_uid_like;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodDir {
    pub namespace: String,
    pub name: String,
    pub uid: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerLog {
    pub pod: String,
    pub namespace: String,
    pub container: String,
    pub container_id: String,
}

fn dns_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

/// `<namespace>_<pod>_<uid>`.
pub fn parse_pod_dir(name: &str) -> Option<PodDir> {
    let mut it = name.split('_');
    let (Some(ns), Some(pod), Some(uid), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    (dns_name(ns) && dns_name(pod) && pod_uid_like(uid)).then(|| PodDir {
        namespace: ns.to_string(),
        name: pod.to_string(),
        uid: uid.to_string(),
    })
}

/// `<pod>_<namespace>_<container>-<64 hex>.log`.
pub fn parse_container_log(name: &str) -> Option<ContainerLog> {
    let stem = name.strip_suffix(".log")?;
    let mut it = stem.split('_');
    let (Some(pod), Some(ns), Some(rest), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return None;
    };
    let (container, id) = rest.rsplit_once('-')?;
    let id_ok = id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit());
    (dns_name(pod) && dns_name(ns) && dns_name(container) && id_ok).then(|| ContainerLog {
        pod: pod.to_string(),
        namespace: ns.to_string(),
        container: container.to_string(),
        container_id: id.to_ascii_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "3f2a8c1b9d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8";

    #[test]
    fn pod_dirs() {
        let d = parse_pod_dir("ml-team_train-0_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d").unwrap();
        assert_eq!(
            (d.namespace.as_str(), d.name.as_str(), d.uid.as_str()),
            ("ml-team", "train-0", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d")
        );
        for bad in [
            "",
            "a_b",
            "a_b_c_d",
            "ns_pod_not-a-uid",
            "NS_pod_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "_pod_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
            "ns_pöd_0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        ] {
            assert_eq!(parse_pod_dir(bad), None, "{bad}");
        }
    }

    #[test]
    fn container_logs() {
        let c = parse_container_log(&format!("train-0_ml-team_trainer-init-{CID}.log")).unwrap();
        assert_eq!(c.container, "trainer-init");
        assert_eq!(c.container_id, CID);
        assert_eq!(
            (c.pod.as_str(), c.namespace.as_str()),
            ("train-0", "ml-team")
        );
        for bad in [
            "".to_string(),
            ".log".to_string(),
            format!("train-0_ml-team_trainer-{CID}"),
            "train-0_ml-team_trainer-abc.log".to_string(),
            format!("train-0_ml-team_{CID}.log"),
            format!("a_b_c_d-{CID}.log"),
            format!("train-0_ml-team_-{CID}.log"),
        ] {
            assert_eq!(parse_container_log(&bad), None, "{bad}");
        }
    }
}
