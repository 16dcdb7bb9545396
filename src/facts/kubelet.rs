//! The kubelet's answers: its PodResources device assignment and its pod and container log directories.

use serde::{Deserialize, Serialize};

use super::reading::Reading;

/// The kubelet PodResources API's answers (`v1.PodResourcesLister`), as received.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodResourcesFacts {
    /// The socket as addressed, relative to the host root.
    pub socket: String,
    /// `List`: devices per container of each active pod.
    #[serde(default)]
    pub pods: Vec<PodResourcesPodFacts>,
    /// `GetAllocatableResources`: every device the node can assign. Kubelets before 1.21 answer
    /// unimplemented (not_supported).
    #[serde(default)]
    pub allocatable: Reading<Vec<ContainerDevicesFacts>>,
    /// Whether the kubelet serves `Get` (gate KubeletPodResourcesGet), from its answer for a pod that does
    /// not exist: "not found" is served, "Get method disabled" is not; absent when neither was said.
    /// Kubernetes turned it on by default in 1.34 together with KubeletPodResourcesDynamicResources (both
    /// alpha and off in 1.27-1.33, kubernetes/website feature-gates pages), so it tells a kubelet whose
    /// empty DRA answer means "no claim" from one whose empty answer means "not reported".
    /// It is another gate than DRA's: it never says whether DRA claims are reported (see `dra_gate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub get_served: Option<bool>,
    /// `KubeletPodResourcesDynamicResources` as the kubelet's own command line (`--feature-gates`) or
    /// config file (`featureGates:`) sets it: whether `List` carries DRA claims. Absent where neither names
    /// it (its version's default then applies: off 1.27-1.33, on from 1.34; kubernetes/website
    /// feature-gates page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dra_gate: Option<KubeletGateFacts>,
}

/// One kubelet feature gate as the kubelet was started with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeletGateFacts {
    pub enabled: bool,
    /// Where it was read: `--feature-gates of host pid 812`, `featureGates in var/lib/kubelet/config.yaml`.
    pub from: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodResourcesPodFacts {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub containers: Vec<PodResourcesContainerFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodResourcesContainerFacts {
    pub name: String,
    #[serde(default)]
    pub devices: Vec<ContainerDevicesFacts>,
    /// Devices allocated through DRA ResourceClaims (`dynamic_resources`); empty where the kubelet does not
    /// report them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<ClaimFacts>,
}

/// One ResourceClaim a container uses, as the kubelet reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimFacts {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub devices: Vec<ClaimDeviceFacts>,
}

/// One allocated device: `<driver>/<pool>/<device>` names it in the driver's ResourceSlices.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimDeviceFacts {
    pub driver: String,
    pub pool: String,
    pub device: String,
    /// The CDI device names the driver prepared (`k8s.gpu.nvidia.com/claim=<claim uid>-gpu-0`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cdi_ids: Vec<String>,
}

/// What the node shows of DRA drivers without asking the kubelet: which drivers registered with it, and
/// the claims a driver prepared (its per-claim CDI spec files). A claim prepared here that the kubelet's
/// answer does not list is a GPU in use that attribution would otherwise miss.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DraHostFacts {
    /// Driver names from the kubelet's plugin registry (`plugins_registry/<driver>[-<uid>]-reg.sock`).
    #[serde(default)]
    pub registered: Vec<String>,
    /// Per-claim CDI spec files of GPU drivers.
    #[serde(default)]
    pub claim_specs: Vec<CdiClaimSpecFacts>,
}

/// A per-claim CDI spec file (`/var/run/cdi/k8s.gpu.nvidia.com-claim_<claim uid>.yaml`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CdiClaimSpecFacts {
    /// The file, relative to the host root.
    pub file: String,
    /// The CDI `kind` (`k8s.gpu.nvidia.com/claim`).
    pub kind: String,
    pub claim_uid: String,
    /// Device names in the spec (`<claim uid>-gpu-0`).
    #[serde(default)]
    pub devices: Vec<String>,
}

/// One resource's device ids (`nvidia.com/gpu`: `GPU-<uuid>`, `MIG-<uuid>`, `nvidia0/gi1`, `<id>::2`, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerDevicesFacts {
    pub resource_name: String,
    #[serde(default)]
    pub device_ids: Vec<String>,
    /// NUMA nodes of the devices, where the device plugin reports topology.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub numa_nodes: Vec<i64>,
}

/// The kubelet's log layout, which ties cgroup ids to names without asking the API server:
/// `var/log/pods/<namespace>_<pod>_<uid>/<container>/` and
/// `var/log/containers/<pod>_<namespace>_<container>-<container id>.log`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KubeletLogFacts {
    #[serde(default)]
    pub pods: Vec<PodLogDirFacts>,
    /// File names in `var/log/containers`.
    #[serde(default)]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PodLogDirFacts {
    /// Directory name, `<namespace>_<pod>_<uid>`.
    pub name: String,
    #[serde(default)]
    pub containers: Vec<ContainerLogDirFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerLogDirFacts {
    pub name: String,
    /// Modification time of the container's log directory (unix seconds): the kubelet adds a log file
    /// there at each (re)start, so it dates the current container.
    #[serde(default)]
    pub modified_unix: Option<f64>,
}

/// The ResourceClaims the API server has allocated on this node, as the launcher read them (one list per
/// call) and gave them to node-probe (`--api-claims`): the second source of DRA claims after the kubelet,
/// used where the kubelet names none (its PodResources API leaves DRA out before 1.34 or with the gate off).
/// Only devices of GPU drivers are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiClaimFacts {
    pub namespace: String,
    pub name: String,
    /// `<driver>/<device>` of each device allocated on this node (`gpu.nvidia.com/gpu-0`).
    pub devices: Vec<String>,
    /// The pods `status.reservedFor` names (in the claim's namespace); empty when none is.
    #[serde(default)]
    pub pods: Vec<ApiClaimPodFacts>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApiClaimPodFacts {
    pub name: String,
    #[serde(default)]
    pub uid: String,
}

/// The command-line form of [`ApiClaimFacts`] (`--api-claims`): `none`, or claims joined by `,`, each
/// `<namespace>/<name>=<driver>/<device>[+<driver>/<device>...][><pod>:<uid>...]`. Names are Kubernetes
/// names (lower-case letters, digits, `-` and `.`), so the separators never occur inside them; the
/// admission policy bounds the text's characters and length.
pub mod api_claims_arg {
    use super::{ApiClaimFacts, ApiClaimPodFacts};

    /// Longest text accepted (and admitted by deploy/policies.yaml).
    pub const MAX_LEN: usize = 16_384;
    /// More claims on one node than this is not a node we know.
    pub const MAX_CLAIMS: usize = 256;
    const MAX_DEVICES: usize = 64;
    const MAX_PODS: usize = 256;
    /// The text's characters, as the admission policy checks them (beside `size(...) <= MAX_LEN`: RE2
    /// repeats at most 1000 times).
    pub const PATTERN: &str = r"^(none|[a-z0-9][a-z0-9./=+>:,-]*)$";

    pub fn encode(claims: &[ApiClaimFacts]) -> String {
        if claims.is_empty() {
            return "none".into();
        }
        claims
            .iter()
            .map(|c| {
                let mut s = format!("{}/{}={}", c.namespace, c.name, c.devices.join("+"));
                for p in &c.pods {
                    s.push('>');
                    s.push_str(&p.name);
                    s.push(':');
                    s.push_str(&p.uid);
                }
                s
            })
            .collect::<Vec<_>>()
            .join(",")
    }

    fn name(s: &str, max: usize, what: &str) -> Result<String, String> {
        let ok = !s.is_empty()
            && s.len() <= max
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            && !s.starts_with(['-', '.'])
            && !s.ends_with(['-', '.']);
        if ok {
            Ok(s.to_string())
        } else {
            Err(format!("`{s}` is not a {what}"))
        }
    }

    pub fn decode(text: &str) -> Result<Vec<ApiClaimFacts>, String> {
        if text.len() > MAX_LEN {
            return Err(format!("longer than {MAX_LEN} bytes"));
        }
        if text == "none" {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for claim in text.split(',') {
            if out.len() == MAX_CLAIMS {
                return Err(format!("more than {MAX_CLAIMS} claims"));
            }
            let (id, rest) = claim
                .split_once('=')
                .ok_or_else(|| format!("`{claim}`: no `=` after the claim's name"))?;
            let (ns, cname) = id
                .split_once('/')
                .ok_or_else(|| format!("`{id}`: not <namespace>/<name>"))?;
            let mut parts = rest.split('>');
            let devices = parts
                .next()
                .unwrap_or_default()
                .split('+')
                .map(|d| {
                    let (driver, dev) = d
                        .split_once('/')
                        .ok_or_else(|| format!("`{d}`: not <driver>/<device>"))?;
                    Ok(format!(
                        "{}/{}",
                        name(driver, 253, "DRA driver name")?,
                        name(dev, 63, "DRA device name")?
                    ))
                })
                .collect::<Result<Vec<_>, String>>()?;
            if devices.len() > MAX_DEVICES {
                return Err(format!("claim `{id}`: more than {MAX_DEVICES} devices"));
            }
            let pods = parts
                .map(|p| {
                    let (pod, uid) = p.split_once(':').unwrap_or((p, ""));
                    Ok(ApiClaimPodFacts {
                        name: name(pod, 253, "pod name")?,
                        uid: if uid.is_empty() {
                            String::new()
                        } else {
                            name(uid, 64, "pod UID")?
                        },
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            if pods.len() > MAX_PODS {
                return Err(format!("claim `{id}`: more than {MAX_PODS} pods"));
            }
            out.push(ApiClaimFacts {
                namespace: name(ns, 63, "namespace")?,
                name: name(cname, 253, "claim name")?,
                devices,
                pods,
            });
        }
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trip_and_refusals() {
            let claims = vec![
                ApiClaimFacts {
                    namespace: "ml".into(),
                    name: "train-0-gpu-x7".into(),
                    devices: vec!["gpu.nvidia.com/gpu-1".into(), "gpu.nvidia.com/gpu-3".into()],
                    pods: vec![ApiClaimPodFacts {
                        name: "train-0".into(),
                        uid: "0d3c4b1e-1111-4222-8333-444455556666".into(),
                    }],
                },
                ApiClaimFacts {
                    namespace: "a".into(),
                    name: "stale".into(),
                    devices: vec!["gpu.nvidia.com/gpu-0-mig-1g10gb-19-0".into()],
                    pods: vec![],
                },
            ];
            let text = encode(&claims);
            assert!(regex_lite_match(&text), "{text}");
            assert_eq!(decode(&text).unwrap(), claims);
            assert_eq!(decode("none").unwrap(), vec![]);
            assert_eq!(encode(&[]), "none");
            for bad in [
                "",
                "ml/c",
                "ml=gpu.nvidia.com/gpu-0",
                "ml/c=gpu-0",
                "ML/c=gpu.nvidia.com/gpu-0",
                "ml/c=gpu.nvidia.com/gpu-0>",
                "ml/-c=gpu.nvidia.com/gpu-0",
                "ml/c=gpu.nvidia.com/gpu_0",
            ] {
                assert!(decode(bad).is_err(), "{bad:?} accepted");
            }
            assert!(decode(&"a".repeat(MAX_LEN + 1)).is_err());
        }

        /// PATTERN's character class, checked without a regex engine.
        fn regex_lite_match(s: &str) -> bool {
            s == "none"
                || (!s.is_empty()
                    && s.len() <= MAX_LEN
                    && s.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"./=+>:,-".contains(&b)
                    }))
        }
    }
}
