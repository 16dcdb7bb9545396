//! Test fixtures shared by the reset steps' tests: GPUs, device holders, a node, a request.

use super::request::{GpuSelector, ResetRequest};
use crate::facts::{
    DeviceHolderFacts, DeviceHoldersFacts, GpuFacts, MigModeFacts, NodeFacts, NvLinkFacts, Reading,
    ServiceFacts,
};

pub(super) fn gpu(index: u32, arch: &str) -> GpuFacts {
    GpuFacts {
        index,
        uuid: Reading::Ok(format!("GPU-{index:04}")),
        architecture: Reading::Ok(arch.into()),
        processes: Reading::Ok(vec![]),
        persistence_mode: Reading::Ok(false),
        mig_mode: Reading::Ok(MigModeFacts::default()),
        recovery_action: Reading::Ok(1),
        minor_number: Some(Reading::Ok(index)),
        ..Default::default()
    }
}

pub(super) fn holder(pid: u32, name: &str, devs: &[&str]) -> DeviceHolderFacts {
    DeviceHolderFacts {
        pid,
        name: Reading::Ok(name.into()),
        devices: devs.iter().map(|d| d.to_string()).collect(),
        kfd: None,
    }
}

pub(super) fn node(gpus: Vec<GpuFacts>, holders: Vec<DeviceHolderFacts>) -> NodeFacts {
    NodeFacts {
        gpus,
        device_holders: Some(Reading::Ok(DeviceHoldersFacts {
            holders,
            ..Default::default()
        })),
        services: vec![ServiceFacts {
            name: "nvidia-fabricmanager".into(),
            running: Reading::Ok(false),
        }],
        ..Default::default()
    }
}

pub(super) fn req(gpu: GpuSelector) -> ResetRequest {
    ResetRequest {
        gpu,
        self_pid: Some(4000),
        tool: None,
        override_unknown: false,
        pin: None,
        seen_unknown: None,
    }
}

pub(super) fn switch_links(n: u32) -> Vec<NvLinkFacts> {
    (0..n)
        .map(|link| NvLinkFacts {
            link,
            active: Reading::Ok(true),
            remote_device_type: Reading::Ok("switch".into()),
            ..Default::default()
        })
        .collect()
}
