//! RDMA NICs under the host root: `sys/class/infiniband/<dev>` (identity, PCI function, NUMA node, each
//! port's state, rate, link layer, `counters/` and `hw_counters/`) and the function's netdevs
//! (`device/net/<if>`: operstate, speed, carrier changes, statistics). The counters are read twice, a
//! bounded interval apart, so the report tells what rises now from lifetime totals. Facts only; the
//! library judges them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gpu_diag::facts::{
    FieldError, FieldErrorKind, NetdevFacts, NodeFacts, RESAMPLED_NETDEV_COUNTERS,
    RESAMPLED_PORT_COUNTERS, RdmaDeviceFacts, RdmaFacts, RdmaPortFacts, Reading,
};

use crate::host::{io_error, read_line, read_text};

/// The longest sampling interval accepted: the probe answers within the launcher's deadline.
pub const MAX_INTERVAL_MS: u64 = 10_000;

/// Collect the node's RDMA devices (two samples `interval` apart when there are any) and, when there
/// are, the GPUs' PCI paths for the affinity.
pub fn fill(facts: &mut NodeFacts, root: &Path, interval: Duration) {
    let mut rdma = read_rdma(root);
    if let Reading::Ok(r) = &mut rdma
        && !r.devices.is_empty()
    {
        if !interval.is_zero() {
            let started = Instant::now();
            std::thread::sleep(interval);
            resample(root, r);
            r.sample_interval_ms = Some(started.elapsed().as_millis() as u64);
        }
        for g in &mut facts.gpus {
            if let Some(bus) = g.pci_bus_id.ok() {
                g.pci_path = Some(gpu_pci_path(root, bus));
            }
        }
    }
    facts.rdma = Some(rdma);
}

/// The first sample. No `sys/class/infiniband` means no RDMA device (the class exists once ib_core loads).
pub fn read_rdma(root: &Path) -> Reading<RdmaFacts> {
    let class = root.join("sys/class/infiniband");
    let names = match list(&class) {
        Ok(n) => n,
        Err(e) if e.error == FieldErrorKind::NotFound => Vec::new(),
        Err(e) => return Reading::Err(e),
    };
    Reading::Ok(RdmaFacts {
        sample_interval_ms: None,
        devices: names
            .into_iter()
            .map(|n| read_device(root, &class.join(&n), n))
            .collect(),
    })
}

/// Read the [`RESAMPLED_PORT_COUNTERS`] and [`RESAMPLED_NETDEV_COUNTERS`] again.
pub fn resample(root: &Path, rdma: &mut RdmaFacts) {
    let class = root.join("sys/class/infiniband");
    for d in &mut rdma.devices {
        let dir = class.join(&d.name);
        for p in &mut d.ports {
            let pdir = dir.join("ports").join(p.port.to_string());
            for &name in RESAMPLED_PORT_COUNTERS {
                let sub = if p.counters.ok().is_some_and(|c| c.contains_key(name)) {
                    "counters"
                } else if p.hw_counters.ok().is_some_and(|c| c.contains_key(name)) {
                    "hw_counters"
                } else {
                    continue;
                };
                if let Some(v) = read_u64(&pdir.join(sub).join(name)) {
                    p.counters_later.insert(name.to_string(), v);
                }
            }
        }
        for n in &mut d.netdevs {
            let ndir = dir.join("device/net").join(&n.name);
            for name in RESAMPLED_NETDEV_COUNTERS {
                let file = if name == "carrier_changes" {
                    ndir.join(name)
                } else {
                    ndir.join("statistics").join(name)
                };
                if let Some(v) = read_u64(&file) {
                    n.later.insert(name.to_string(), v);
                }
            }
        }
    }
}

fn read_device(root: &Path, dir: &Path, name: String) -> RdmaDeviceFacts {
    let device = dir.join("device");
    let pci_path = pci_path(root, &device);
    let pci_bus_id = match &pci_path {
        Reading::Ok(p) => p.last().cloned().map_or_else(
            || Reading::Err(FieldError::new(FieldErrorKind::Unknown)),
            Reading::Ok,
        ),
        Reading::Err(e) => Reading::Err(e.clone()),
    };
    let ports = match list(&dir.join("ports")) {
        Ok(ports) => ports
            .into_iter()
            .filter_map(|p| p.parse::<u32>().ok())
            .map(|n| read_port(&dir.join("ports").join(n.to_string()), n))
            .collect(),
        Err(_) => Vec::new(),
    };
    let netdevs = list(&device.join("net"))
        .unwrap_or_default()
        .into_iter()
        .map(|n| read_netdev(&device.join("net").join(&n), n))
        .collect();
    RdmaDeviceFacts {
        name,
        hca_type: read_line(&dir.join("hca_type")),
        board_id: read_line(&dir.join("board_id")),
        fw_ver: read_line(&dir.join("fw_ver")),
        pci_bus_id,
        pci_path,
        numa_node: read_i64(&device.join("numa_node")).map(|v| *v as i32),
        ports,
        netdevs,
    }
}

fn read_port(dir: &Path, port: u32) -> RdmaPortFacts {
    RdmaPortFacts {
        port,
        state: read_line(&dir.join("state")),
        phys_state: read_line(&dir.join("phys_state")),
        rate: read_line(&dir.join("rate")),
        link_layer: read_line(&dir.join("link_layer")),
        counters: read_counters(&dir.join("counters")),
        hw_counters: read_counters(&dir.join("hw_counters")),
        counters_later: BTreeMap::new(),
    }
}

fn read_netdev(dir: &Path, name: String) -> NetdevFacts {
    NetdevFacts {
        name,
        operstate: read_line(&dir.join("operstate")),
        speed_mbps: read_i64(&dir.join("speed")),
        carrier_changes: read_i64(&dir.join("carrier_changes")).map(|v| *v as u64),
        statistics: read_counters(&dir.join("statistics")),
        later: BTreeMap::new(),
    }
}

/// Every readable numeric file of a counter directory. A counter the device cannot read fails its read
/// (EINVAL) and is left out rather than failing the rest.
fn read_counters(dir: &Path) -> Reading<BTreeMap<String, u64>> {
    match list(dir) {
        Ok(names) => Reading::Ok(
            names
                .into_iter()
                .filter_map(|n| read_u64(&dir.join(&n)).map(|v| (n, v)))
                .collect(),
        ),
        Err(e) => Reading::Err(e),
    }
}

fn read_u64(path: &Path) -> Option<u64> {
    crate::host::read_text_max(path, crate::host::MAX_ATTR)
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn read_i64(path: &Path) -> Reading<i64> {
    match read_text(path) {
        Ok(t) => t
            .trim()
            .parse::<i64>()
            .map_err(|e| {
                FieldError::with_message(
                    FieldErrorKind::Unknown,
                    format!("`{}`: {e}", crate::host::shown(t.trim())),
                )
            })
            .into(),
        Err(e) => Reading::Err(e),
    }
}

/// The most entries read of one sysfs directory (a device's counters, ports, netdevs: tens in practice).
const MAX_ENTRIES: usize = 4096;

/// Sorted entry names of a directory, at most [`MAX_ENTRIES`] of them.
fn list(dir: &Path) -> Result<Vec<String>, FieldError> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| io_error(&e))?
        .filter_map(Result::ok)
        .take(MAX_ENTRIES)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    Ok(names)
}

/// A GPU's PCI path from `sys/bus/pci/devices/<bdf>`.
pub fn gpu_pci_path(root: &Path, nvml_bus_id: &str) -> Reading<Vec<String>> {
    match gpu_diag::pci::normalize_bus_id(nvml_bus_id) {
        Some(bdf) => pci_path(root, &root.join("sys/bus/pci/devices").join(bdf)),
        None => Reading::Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("not a PCI address: {nvml_bus_id}"),
        )),
    }
}

/// Where a sysfs device link points below `sys/devices`: `[pci0000:17, 0000:17:01.0, ..., <function>]`.
/// The links are relative, so they resolve inside the host root.
fn pci_path(root: &Path, link: &Path) -> Reading<Vec<String>> {
    let resolved = match std::fs::canonicalize(link) {
        Ok(p) => p,
        Err(e) => return Reading::Err(io_error(&e)),
    };
    let devices: PathBuf = std::fs::canonicalize(root.join("sys/devices"))
        .unwrap_or_else(|_| root.join("sys/devices"));
    match resolved.strip_prefix(&devices) {
        Ok(rel) => {
            let parts: Vec<String> = rel
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect();
            if parts.first().is_some_and(|p| p.starts_with("pci")) {
                Reading::Ok(parts)
            } else {
                Reading::Err(FieldError::with_message(
                    FieldErrorKind::Unknown,
                    format!("{} is not a PCI device", rel.display()),
                ))
            }
        }
        Err(_) => Reading::Err(FieldError::with_message(
            FieldErrorKind::Unknown,
            format!("{} is outside sys/devices", resolved.display()),
        )),
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    /// A fake sysfs in a temporary directory, with the links the kernel makes.
    pub struct Sysfs(pub tempfile::TempDir);

    impl Sysfs {
        pub fn new() -> Self {
            Sysfs(tempfile::tempdir().unwrap())
        }
        pub fn root(&self) -> &Path {
            self.0.path()
        }
        pub fn file(&self, rel: &str, contents: &str) -> &Self {
            let p = self.root().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, contents).unwrap();
            self
        }
        pub fn link(&self, rel: &str, target: &str) -> &Self {
            let p = self.root().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(target, p).unwrap();
            self
        }
        /// A PCI function at `path` (below sys/devices), with its bus link.
        pub fn pci(&self, path: &str, numa: i32) -> &Self {
            let bdf = path.rsplit('/').next().unwrap();
            self.file(
                &format!("sys/devices/{path}/numa_node"),
                &format!("{numa}\n"),
            );
            self.link(
                &format!("sys/bus/pci/devices/{bdf}"),
                &format!("../../../devices/{path}"),
            )
        }
        /// An InfiniBand device on the PCI function at `path`, one port.
        pub fn ib(&self, name: &str, path: &str, numa: i32, state: &str, rate: &str) -> &Self {
            self.pci(path, numa);
            let dev = format!("sys/devices/{path}/infiniband/{name}");
            self.link(
                &format!("sys/class/infiniband/{name}"),
                &format!("../../devices/{path}/infiniband/{name}"),
            )
            .link(&format!("{dev}/device"), "../..")
            .file(&format!("{dev}/hca_type"), "MT4129\n")
            .file(&format!("{dev}/board_id"), "MT_0000000838\n")
            .file(&format!("{dev}/fw_ver"), "28.39.1002\n");
            let port = format!("{dev}/ports/1");
            let (st, phys) = if state == "up" {
                ("4: ACTIVE", "5: LinkUp")
            } else {
                ("1: DOWN", "2: Polling")
            };
            self.file(&format!("{port}/state"), &format!("{st}\n"))
                .file(&format!("{port}/phys_state"), &format!("{phys}\n"))
                .file(&format!("{port}/rate"), &format!("{rate}\n"))
                .file(&format!("{port}/link_layer"), "InfiniBand\n");
            for c in [
                "symbol_error",
                "link_error_recovery",
                "link_downed",
                "port_rcv_errors",
                "local_link_integrity_errors",
                "excessive_buffer_overrun_errors",
                "port_xmit_discards",
            ] {
                self.file(&format!("{port}/counters/{c}"), "0\n");
            }
            self.file(&format!("{port}/counters/port_xmit_wait"), "1200\n")
                .file(&format!("{port}/counters/port_xmit_data"), "987654321\n")
                .file(&format!("{port}/hw_counters/out_of_buffer"), "0\n")
                .file(&format!("{port}/hw_counters/lifespan"), "12\n")
        }
    }

    #[test]
    fn no_infiniband_class_means_no_devices() {
        let s = Sysfs::new();
        let mut facts = NodeFacts::default();
        fill(&mut facts, s.root(), Duration::from_millis(500));
        assert_eq!(facts.rdma, Some(Reading::Ok(RdmaFacts::default())));
    }

    #[test]
    fn reads_devices_ports_counters_and_paths() {
        let s = Sysfs::new();
        s.ib(
            "mlx5_0",
            "pci0000:17/0000:17:01.0/0000:18:00.0/0000:19:04.0/0000:1c:00.0",
            0,
            "up",
            "400 Gb/sec (4X NDR)",
        )
        .ib(
            "mlx5_1",
            "pci0000:5d/0000:5d:01.0/0000:5e:00.0",
            1,
            "down",
            "10 Gb/sec (4X SDR)",
        )
        .pci(
            "pci0000:17/0000:17:01.0/0000:18:00.0/0000:19:00.0/0000:1b:00.0",
            0,
        );
        let mut facts = NodeFacts::default();
        facts.gpus.push(gpu_diag::facts::GpuFacts {
            pci_bus_id: Reading::Ok("00000000:1B:00.0".into()),
            ..Default::default()
        });
        let mut rdma = read_rdma(s.root()).ok().cloned().unwrap();
        assert_eq!(rdma.devices.len(), 2);
        let d = &rdma.devices[0];
        assert_eq!(d.name, "mlx5_0");
        assert_eq!(d.pci_bus_id, Reading::Ok("0000:1c:00.0".into()));
        assert_eq!(
            d.pci_path.ok().unwrap().join("/"),
            "pci0000:17/0000:17:01.0/0000:18:00.0/0000:19:04.0/0000:1c:00.0"
        );
        assert_eq!(d.numa_node, Reading::Ok(0));
        assert_eq!(d.hca_type, Reading::Ok("MT4129".into()));
        let p = &d.ports[0];
        assert_eq!(p.state, Reading::Ok("4: ACTIVE".into()));
        assert_eq!(p.counters.ok().unwrap()["port_xmit_wait"], 1200);
        assert_eq!(p.hw_counters.ok().unwrap()["lifespan"], 12);
        assert_eq!(rdma.devices[1].numa_node, Reading::Ok(1));

        // The second sample sees what rose meanwhile.
        s.file(
            "sys/devices/pci0000:17/0000:17:01.0/0000:18:00.0/0000:19:04.0/0000:1c:00.0/infiniband/mlx5_0/ports/1/counters/link_downed",
            "1\n",
        );
        resample(s.root(), &mut rdma);
        let later = &rdma.devices[0].ports[0].counters_later;
        assert_eq!(later["link_downed"], 1);
        assert_eq!(later["port_xmit_wait"], 1200);
        assert!(!later.contains_key("lifespan"), "only the judged counters");

        fill(&mut facts, s.root(), Duration::from_millis(20));
        let r = facts.rdma.as_ref().unwrap().ok().unwrap();
        assert!(r.sample_interval_ms.unwrap() >= 20);
        assert_eq!(
            facts.gpus[0]
                .pci_path
                .as_ref()
                .unwrap()
                .ok()
                .unwrap()
                .join("/"),
            "pci0000:17/0000:17:01.0/0000:18:00.0/0000:19:00.0/0000:1b:00.0"
        );
    }

    #[test]
    fn roce_netdev_and_unreadable_counters() {
        let s = Sysfs::new();
        let path = "pci0000:00/0000:00:02.0/0000:03:00.0";
        s.ib("mlx5_0", path, -1, "up", "100 Gb/sec (2X HDR)");
        let net = format!("sys/devices/{path}/net/ens1f0np0");
        s.file(&format!("{net}/operstate"), "up\n")
            .file(&format!("{net}/speed"), "100000\n")
            .file(&format!("{net}/carrier_changes"), "6\n")
            .file(&format!("{net}/statistics/rx_errors"), "0\n")
            .file(&format!("{net}/statistics/rx_crc_errors"), "3\n")
            .file(
                &format!("sys/devices/{path}/infiniband/mlx5_0/ports/1/counters/bogus"),
                "n/a\n",
            );
        let mut rdma = read_rdma(s.root()).ok().cloned().unwrap();
        let d = &rdma.devices[0];
        assert_eq!(d.numa_node, Reading::Ok(-1));
        assert_eq!(d.netdevs[0].name, "ens1f0np0");
        assert_eq!(d.netdevs[0].speed_mbps, Reading::Ok(100_000));
        assert_eq!(d.netdevs[0].carrier_changes, Reading::Ok(6));
        assert!(!d.ports[0].counters.ok().unwrap().contains_key("bogus"));
        s.file(&format!("{net}/carrier_changes"), "8\n");
        resample(s.root(), &mut rdma);
        assert_eq!(rdma.devices[0].netdevs[0].later["carrier_changes"], 8);
        assert_eq!(rdma.devices[0].netdevs[0].later["rx_crc_errors"], 3);
    }
}
