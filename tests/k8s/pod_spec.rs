//! The rendered probe pod for every applier combination, as reviewed YAML snapshots.

use crate::probe::pod::{self, AccessMode, DriverMode, ProbeCall, ProbePodOptions};

fn call() -> ProbeCall {
    ProbeCall {
        name: "gpu-probe-gpu-node-5-0123456789".into(),
        namespace: "gpu-diagnostics".into(),
        node: "gpu-node-5".into(),
        call_id: "0123456789".into(),
        tool: "get_gpu_health".into(),
    }
}

fn opts(driver: DriverMode, access: AccessMode) -> ProbePodOptions {
    ProbePodOptions {
        image: "ghcr.io/k8s-gpu-mcp/node-probe:v0.1.0".into(),
        image_pull_policy: "IfNotPresent".into(),
        active_deadline_secs: 120,
        driver,
        access,
        launcher_host: "sre-laptop".into(),
        image_pull_secrets: Vec::new(),
        priority_class: Some(pod::DEFAULT_PRIORITY_CLASS.into()),
        on_behalf_of: None,
    }
}

macro_rules! snap {
    ($name:expr, $value:expr) => {
        insta::with_settings!({
            snapshot_path => concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots/k8s"),
            prepend_module_to_snapshot => false,
        }, {
            insta::assert_yaml_snapshot!($name, $value);
        });
    };
}

#[test]
fn pod_runtime_class_read_only() {
    let p = pod::probe_pod(
        &call(),
        &opts(
            DriverMode::RuntimeClass("nvidia".into()),
            AccessMode::ReadOnly,
        ),
    );
    snap!("pod_runtime_class_read_only", p);
}

#[test]
fn pod_runtime_class_operator() {
    let p = pod::probe_pod(
        &call(),
        &opts(
            DriverMode::RuntimeClass("nvidia".into()),
            AccessMode::Operator,
        ),
    );
    snap!("pod_runtime_class_operator", p);
}

#[test]
fn pod_host_driver_read_only() {
    let p = pod::probe_pod(
        &call(),
        &opts(DriverMode::HostLibrary, AccessMode::ReadOnly),
    );
    snap!("pod_host_driver_read_only", p);
}

#[test]
fn pod_host_driver_operator() {
    let p = pod::probe_pod(
        &call(),
        &opts(DriverMode::HostLibrary, AccessMode::Operator),
    );
    snap!("pod_host_driver_operator", p);
}

/// Copy delivery on the default combination: a plain base image, node-probe extracted into a tmpfs the
/// script mounts in the container (NODE_PROBE_TMPFS), no volume (a volume costs a kubelet mount poll).
#[test]
fn pod_copy_delivery_host_driver_read_only() {
    let mut o = opts(DriverMode::HostLibrary, AccessMode::ReadOnly);
    o.image = "ubuntu:24.04".into();
    let mut p = pod::probe_pod(&call(), &o);
    let before = p.clone();
    pod::apply_copy_delivery(&mut p);
    let spec = p.spec.as_ref().unwrap();
    assert!(spec.volumes.is_none(), "no volume: {:?}", spec.volumes);
    let c = &spec.containers[0];
    assert!(c.volume_mounts.is_none());
    let envs = c.env.as_ref().unwrap();
    assert!(
        envs.iter()
            .any(|e| e.name == pod::DELIVERY_TMPFS_ENV && e.value.as_deref() == Some("1"))
    );
    assert!(
        envs.iter()
            .any(|e| e.name == pod::HOST_ROOT_ENV && e.value.as_deref() == Some(pod::HOST_ROOT))
    );
    assert_eq!(spec.node_name, before.spec.as_ref().unwrap().node_name);
    snap!("pod_copy_delivery_host_driver_read_only", p);
}

#[test]
fn ephemeral_runtime_class() {
    let p = pod::probe_pod(
        &call(),
        &opts(
            DriverMode::RuntimeClass("nvidia".into()),
            AccessMode::ReadOnly,
        ),
    );
    snap!(
        "ephemeral_runtime_class",
        pod::to_ephemeral_container(&p, Some("trainer"), 60)
    );
}

#[test]
fn ephemeral_host_driver() {
    let p = pod::probe_pod(
        &call(),
        &opts(DriverMode::HostLibrary, AccessMode::ReadOnly),
    );
    snap!(
        "ephemeral_host_driver",
        pod::to_ephemeral_container(&p, None, 60)
    );
}

/// The invariants the issue names, checked on every combination (snapshots show them; this fails loudly
/// if an applier ever breaks one).
#[test]
fn invariants_hold_for_every_combination() {
    for driver in [
        DriverMode::RuntimeClass("nvidia".into()),
        DriverMode::HostLibrary,
    ] {
        for access in [AccessMode::ReadOnly, AccessMode::Operator] {
            let p = pod::probe_pod(&call(), &opts(driver.clone(), access));
            let spec = p.spec.as_ref().unwrap();
            assert_eq!(spec.node_name.as_deref(), Some("gpu-node-5"));
            assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
            assert_eq!(spec.active_deadline_seconds, Some(120));
            assert_eq!(spec.termination_grace_period_seconds, Some(0));
            assert_eq!(spec.host_pid, Some(true));
            assert_eq!(spec.automount_service_account_token, Some(false));
            assert_eq!(spec.enable_service_links, Some(false));
            let tol = spec.tolerations.as_ref().unwrap();
            assert!(
                tol.iter()
                    .any(|t| t.operator.as_deref() == Some("Exists") && t.key.is_none())
            );
            let c = &spec.containers[0];
            assert_eq!(c.security_context.as_ref().unwrap().privileged, Some(true));
            assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
            let res = c.resources.as_ref().unwrap();
            for map in [res.requests.as_ref().unwrap(), res.limits.as_ref().unwrap()] {
                assert!(map.keys().all(|k| k == "cpu" || k == "memory"), "{map:?}");
            }
            // No volume (each costs a kubelet mount poll): the host root is the host init's, /proc/1/root.
            assert!(spec.volumes.is_none() && c.volume_mounts.is_none());
            assert!(c.env.as_ref().unwrap().iter().any(
                |e| e.name == pod::HOST_ROOT_ENV && e.value.as_deref() == Some(pod::HOST_ROOT)
            ));
            let a = &p.metadata.annotations.as_ref().unwrap()[pod::ANN_ACCESS];
            assert_eq!(a == "read-only", access == AccessMode::ReadOnly);
            assert_eq!(
                spec.runtime_class_name.is_some(),
                matches!(driver, DriverMode::RuntimeClass(_))
            );
            let labels = p.metadata.labels.as_ref().unwrap();
            assert_eq!(labels[pod::LABEL_CALL_ID], "0123456789");
            assert_eq!(labels[pod::LABEL_TOOL], "get_gpu_health");
        }
    }
}

#[test]
fn generated_names_are_valid_and_unique() {
    let a = ProbeCall::new("ns", "GPU_Node.5.example.com", "get_gpu_health");
    let b = ProbeCall::new("ns", "GPU_Node.5.example.com", "get_gpu_health");
    assert_ne!(a.name, b.name);
    assert!(a.name.len() <= 63, "{}", a.name);
    assert!(
        a.name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
        "{}",
        a.name
    );
    assert!(a.name.starts_with("gpu-probe-gpu-node-5-example-com-"));
    let long = ProbeCall::new("ns", &"x".repeat(253), "t");
    assert!(long.name.len() <= 63);
    assert_eq!(
        crate::cluster::labels::label_value("__weird tool!"),
        "weird_tool"
    );
    assert!(pod::default_image().ends_with(concat!(":v", env!("CARGO_PKG_VERSION"))));
}

/// `--image-pull-secret`: the probe pod pulls with those Secrets; none given, the field is absent.
#[test]
fn image_pull_secrets_reach_the_pod_spec() {
    let mut o = opts(DriverMode::HostLibrary, AccessMode::ReadOnly);
    let none = pod::probe_pod(&call(), &o);
    assert!(none.spec.as_ref().unwrap().image_pull_secrets.is_none());
    o.image_pull_secrets = vec!["regcred".into(), "mirror".into()];
    let p = pod::probe_pod(&call(), &o);
    let names: Vec<String> = p
        .spec
        .unwrap()
        .image_pull_secrets
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["regcred", "mirror"]);
}

/// A shared server (`serve --http`) names the person the probe runs for on its pod.
#[test]
fn a_shared_servers_probe_names_its_person() {
    let mut o = opts(DriverMode::HostLibrary, AccessMode::ReadOnly);
    o.on_behalf_of = Some("oidc:alice@example.com".into());
    let p = pod::probe_pod(&call(), &o);
    let ann = p.metadata.annotations.unwrap_or_default();
    assert_eq!(
        ann.get(pod::ANN_ON_BEHALF_OF).map(String::as_str),
        Some("oidc:alice@example.com")
    );
    let plain = pod::probe_pod(
        &call(),
        &opts(DriverMode::HostLibrary, AccessMode::ReadOnly),
    );
    assert!(
        !plain
            .metadata
            .annotations
            .unwrap_or_default()
            .contains_key(pod::ANN_ON_BEHALF_OF)
    );
}

/// Kubernetes' toleration rule (kubernetes.io/docs/concepts/scheduling-eviction/taint-and-toleration): an
/// empty key with `Exists` matches every key, an empty effect every effect; `Equal` (the default) also
/// needs the value.
fn tolerates(
    t: &k8s_openapi::api::core::v1::Toleration,
    taint: &k8s_openapi::api::core::v1::Taint,
) -> bool {
    let effect = t.effect.as_deref().unwrap_or("");
    if !effect.is_empty() && effect != taint.effect {
        return false;
    }
    let key = t.key.as_deref().unwrap_or("");
    match t.operator.as_deref().unwrap_or("Equal") {
        "Exists" => key.is_empty() || key == taint.key,
        _ => {
            key == taint.key
                && t.value.as_deref().unwrap_or("") == taint.value.as_deref().unwrap_or("")
        }
    }
}

/// A run's own mark (`keep_pods_off`) keeps new pods off its node, never its own probe: the DCGM probe pod
/// tolerates the run's NoSchedule taint, another run's, and a person's cordon taint.
#[test]
fn the_dcgm_probe_pod_tolerates_the_runs_mark() {
    use crate::cluster::run_mark::RunMark;
    let mut p = pod::probe_pod(
        &call(),
        &opts(DriverMode::HostLibrary, AccessMode::Operator),
    );
    pod::apply_dcgm(&mut p, std::time::Duration::from_secs(990));
    let tol = p.spec.as_ref().unwrap().tolerations.clone().unwrap();
    let now = jiff::Timestamp::now();
    let cordon = k8s_openapi::api::core::v1::Taint {
        key: "node.kubernetes.io/unschedulable".into(),
        effect: "NoSchedule".into(),
        ..Default::default()
    };
    for taint in [
        RunMark::new(now, 990).unwrap().taint(),
        RunMark::new(now, 60).unwrap().taint(),
        cordon,
    ] {
        assert!(
            tol.iter().any(|t| tolerates(t, &taint)),
            "{tol:?} vs {taint:?}"
        );
    }
    // The rule itself can refuse: a toleration of another key does not tolerate the mark.
    let other = k8s_openapi::api::core::v1::Toleration {
        key: Some("example.com/x".into()),
        operator: Some("Exists".into()),
        ..Default::default()
    };
    assert!(!tolerates(&other, &RunMark::new(now, 60).unwrap().taint()));
}

/// A run longer than the pod's deadline (a long watch window, `top`'s windows) lengthens the pod to the run's
/// deadline, its sleep with it, so the kubelet does not end it mid-run; a shorter run leaves the pod as it
/// was (issue 92 found watch pods held to the default 120 s whatever their window).
#[test]
fn a_run_longer_than_the_pods_deadline_lengthens_it_and_a_shorter_one_does_not() {
    let mut p = pod::probe_pod(
        &call(),
        &opts(DriverMode::HostLibrary, AccessMode::ReadOnly),
    );
    let before = p.spec.as_ref().unwrap().active_deadline_seconds.unwrap();
    pod::lengthen(&mut p, std::time::Duration::from_secs(30));
    assert_eq!(
        p.spec.as_ref().unwrap().active_deadline_seconds,
        Some(before)
    );
    let secs = before as u64 + 600;
    pod::lengthen(&mut p, std::time::Duration::from_secs(secs));
    let spec = p.spec.as_ref().unwrap();
    assert_eq!(spec.active_deadline_seconds, Some(secs as i64));
    assert_eq!(
        spec.containers[0].command.as_deref(),
        Some(&["sleep".to_string(), secs.to_string()][..])
    );
    assert_eq!(
        p.metadata.annotations.as_ref().unwrap()[pod::ANN_DEADLINE],
        secs.to_string()
    );
}
