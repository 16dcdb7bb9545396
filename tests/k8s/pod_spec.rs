//! The rendered probe pod for every applier combination, as reviewed YAML snapshots.

use crate::k8s::pod::{self, AccessMode, DriverMode, ProbeCall, ProbePodOptions};

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
        active_deadline_secs: 120,
        driver,
        access,
        launcher_host: "sre-laptop".into(),
        image_pull_secrets: Vec::new(),
        priority_class: Some(pod::DEFAULT_PRIORITY_CLASS.into()),
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

/// Copy delivery on the default combination: a plain base image, node-probe extracted onto a memory-backed
/// emptyDir at /run/node-probe (NODE_PROBE_DIR), nothing else changed.
#[test]
fn pod_copy_delivery_host_driver_read_only() {
    let mut o = opts(DriverMode::HostLibrary, AccessMode::ReadOnly);
    o.image = "ubuntu:24.04".into();
    let mut p = pod::probe_pod(&call(), &o);
    let before = p.clone();
    pod::apply_copy_delivery(&mut p);
    let spec = p.spec.as_ref().unwrap();
    let vol = spec
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == pod::DELIVERY_VOLUME)
        .expect("delivery volume");
    let ed = vol.empty_dir.as_ref().expect("emptyDir");
    assert_eq!(
        ed.medium.as_deref(),
        Some("Memory"),
        "tmpfs: nothing on the node's disk"
    );
    let c = &spec.containers[0];
    assert!(
        c.volume_mounts
            .as_ref()
            .unwrap()
            .iter()
            .any(|m| m.name == pod::DELIVERY_VOLUME
                && m.mount_path == pod::DELIVERY_MOUNT
                && m.read_only.is_none())
    );
    assert!(
        c.env
            .as_ref()
            .unwrap()
            .iter()
            .any(|e| e.name == "NODE_PROBE_DIR" && e.value.as_deref() == Some(pod::DELIVERY_MOUNT))
    );
    // The host root stays read-only; only the spec parts above changed.
    assert_eq!(c.volume_mounts.as_ref().unwrap()[0].read_only, Some(true));
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
            let m = &c.volume_mounts.as_ref().unwrap()[0];
            assert_eq!(m.mount_path, "/host");
            assert_eq!(m.read_only == Some(true), access == AccessMode::ReadOnly);
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
    assert_eq!(pod::label_value("__weird tool!"), "weird_tool");
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
