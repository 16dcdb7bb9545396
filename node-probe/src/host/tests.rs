//! [`fill`](super::fill) on whole fake host roots: what each section reads, and every failure inline.

use super::identity::read_hostname;
use super::processes::clock_ticks;
use super::test_support::{Dir, node_root};
use super::*;
use gpu_diag::facts::{AerFacts, FieldError, GpuFacts, GpuProcessFacts};

#[test]
fn reads_a_fake_host_root() {
    let d = node_root();
    let mut facts = NodeFacts::default();
    facts.gpus.push(GpuFacts {
        pci_bus_id: Reading::Ok("00000000:3B:00.0".into()),
        processes: Reading::Ok(vec![
            GpuProcessFacts {
                pid: 4242,
                kind: "compute".into(),
                ..Default::default()
            },
            GpuProcessFacts {
                pid: 999,
                kind: "compute".into(),
                ..Default::default()
            },
        ]),
        ..Default::default()
    });
    // A GPU whose bus id is unknown keeps its AER not_collected.
    facts.gpus.push(GpuFacts::default());
    fill(&mut facts, d.path(), Sections::ALL);

    let h = &facts.host;
    // Under a host root the host's etc/hostname wins over the reader's UTS namespace.
    assert_eq!(h.hostname, Reading::Ok("gpu-node-5".into()));
    assert_eq!(
        h.boot_id,
        Reading::Ok("0f8c2a6e-3b7d-4a55-9d1e-7c2f4b9a1e20".into())
    );
    assert_eq!(h.kernel_release, Reading::Ok("6.8.0-1015-nvidia".into()));
    assert_eq!(h.boot_time_unix, Reading::Ok(1763700000.0));
    assert_eq!(h.cpu_count, Reading::Ok(224));
    assert!(h.now_unix.get().unwrap() > 1.7e9);

    assert_eq!(facts.host_processes.len(), 2);
    let p = &facts.host_processes[1];
    assert_eq!(p.pid, 4242);
    assert_eq!(p.name, Reading::Ok("python3".into()));
    assert_eq!(p.cmdline, Reading::Ok("python3 train.py --epochs 3".into()));
    assert!(p.cgroup.ok().unwrap().contains("kubepods-pod1234"));
    assert_eq!(p.state, Reading::Ok("R".into()));
    if clock_ticks() == 100 {
        assert_eq!(p.age_seconds, Reading::Ok(2600));
    }
    // A pid that exited between NVML's answer and the read.
    let gone = &facts.host_processes[0];
    assert_eq!(gone.pid, 999);
    assert_eq!(gone.name.err().unwrap().error, FieldErrorKind::NotFound);
    assert_eq!(gone.state.err().unwrap().error, FieldErrorKind::NotFound);

    assert_eq!(
        facts.gpus[0].pcie.aer,
        Reading::Ok(AerFacts {
            correctable: 3,
            nonfatal: 0,
            fatal: 1
        })
    );
    assert_eq!(
        facts.gpus[1].pcie.aer.err().unwrap().error,
        FieldErrorKind::NotCollected
    );

    let running: Vec<(&str, Option<bool>)> = facts
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.running.get()))
        .collect();
    assert_eq!(
        running,
        vec![
            ("nvidia-fabricmanager", Some(true)),
            ("nvidia-persistenced", Some(true)),
            ("nv-hostengine", Some(false)),
            ("dcgm-exporter", Some(false)),
        ]
    );
}

#[test]
fn sections_limit_what_is_read() {
    let d = node_root();
    let mut facts = NodeFacts::default();
    facts.gpus.push(GpuFacts {
        pci_bus_id: Reading::Ok("00000000:3B:00.0".into()),
        ..Default::default()
    });
    let inventory = Sections {
        identity: true,
        ..Sections::default()
    };
    fill(&mut facts, d.path(), inventory);
    assert!(facts.host.hostname.is_ok());
    assert!(facts.host_processes.is_empty());
    assert!(facts.services.is_empty());
    assert!(!facts.gpus[0].pcie.aer.is_ok());
}

#[test]
fn an_empty_root_fails_inline() {
    let d = Dir::new();
    let mut facts = NodeFacts::default();
    facts.gpus.push(GpuFacts {
        pci_bus_id: Reading::Ok("00000000:3B:00.0".into()),
        ..Default::default()
    });
    fill(&mut facts, d.path(), Sections::ALL);
    let nf = |r: Option<&FieldError>| r.map(|e| e.error);
    assert_eq!(
        nf(facts.host.hostname.err()),
        Some(FieldErrorKind::NotFound)
    );
    assert_eq!(nf(facts.host.boot_id.err()), Some(FieldErrorKind::NotFound));
    assert_eq!(
        nf(facts.host.cpu_count.err()),
        Some(FieldErrorKind::NotFound)
    );
    assert_eq!(
        nf(facts.host.boot_time_unix.err()),
        Some(FieldErrorKind::NotFound)
    );
    assert_eq!(
        nf(facts.gpus[0].pcie.aer.err()),
        Some(FieldErrorKind::NotFound)
    );
    assert!(facts.services.iter().all(|s| s.running.err().is_some()));
    // The kernel name is the fallback when etc/hostname is missing.
    let d = Dir::new();
    d.file("proc/sys/kernel/hostname", "node-a\n");
    assert_eq!(read_hostname(d.path()), Reading::Ok("node-a".into()));
}
