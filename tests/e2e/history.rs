//! `get_gpu_history` against a real Prometheus (Debian's `prometheus` and `promtool`): hours of exporter
//! series backfilled with `promtool tsdb create-blocks-from openmetrics`, Prometheus started on those blocks
//! on a free port, and the tool called through the launcher, with the URL named and with the cluster's own
//! Prometheus found through the API server's service proxy (a Service, its Endpoints and EndpointSlice and a
//! Pod holding the address on the testbed, pointing at this machine's non-loopback address: the API server
//! refuses loopback endpoints, and any endpoint that is no Pod's). Then a
//! Prometheus that answers garbage, a huge body, or nothing in time.
//!
//! The series are shaped as the exporters publish them: dcgm-exporter's names and labels from
//! github.com/NVIDIA/dcgm-exporter `etc/default-counters.csv` (`gpu`, `UUID`, `modelName`, `Hostname`), AMD's
//! from github.com/ROCm/device-metrics-exporter `docs/configuration/metricslist.md` (lower-case field names,
//! `gpu_id`, `serial_number`, `card_model`, `hostname`).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::mcp;
use crate::testbed::{FakeNode, Testbed, User, skipped, unique};

const STEP: i64 = 30;
const HOURS: i64 = 6;

/// This machine's address on its default route (the API server proxies to it; loopback it refuses).
fn own_ip() -> String {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.connect("10.255.255.255:1").unwrap();
    s.local_addr().unwrap().ip().to_string()
}

fn free_port() -> u16 {
    TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Family {
    name: &'static str,
    kind: &'static str,
    lines: String,
}

/// Exporter series of three nodes over the last 6 h (plus a margin), one sample per 30 s, in OpenMetrics.
/// - `dcgm`: 8 H100s (label `Hostname`): GPU 3 in HW thermal slowdown 40 % of the window in two bursts, GPU 5
///   an Xid 79 at 3 h, GPU 6's double-bit ECC climbing from 3.5 h, the exporter down 20 min at 2 h (between
///   the bursts, so the bursts stay two episodes and the share stays 40 % of the time with data, give or take
///   Prometheus's 5 min lookback bridging the gap's start).
/// - `amd`: 2 MI300X (label `hostname`): GPU 1 in socket thermal violation half the time.
/// - `gaudi`: 2 Gaudi 2s as Intel's metric exporter writes them (its Go source's `Collect`: `habanalabs_*`,
///   milliwatts, labels `Serial`, `UUID`, `id`; no node label of its own, so the scrape's relabelled `node`):
///   device 1 with 2 double-bit rows pending replacement from the window's middle.
/// - `hostile`: relabelled `instance="NODE:9400"`, label values with escapes, NUL-free control characters
///   and 20 KB strings.
fn openmetrics(now: i64, dcgm: &str, amd: &str, gaudi: &str, hostile: &str) -> String {
    let start = now - HOURS * 3600 - 600;
    let steps = ((now - start) / STEP) as usize;
    let k_of = |t: i64| (t - (now - HOURS * 3600)) / STEP; // step index within the window
    let mut fams: Vec<Family> = Vec::new();
    let mut fam = |name: &'static str, kind: &'static str| -> usize {
        fams.push(Family {
            name,
            kind,
            lines: String::new(),
        });
        fams.len() - 1
    };
    let f_util = fam("DCGM_FI_DEV_GPU_UTIL", "gauge");
    let f_power = fam("DCGM_FI_DEV_POWER_USAGE", "gauge");
    let f_limit = fam("DCGM_FI_DEV_POWER_MGMT_LIMIT", "gauge");
    let f_temp = fam("DCGM_FI_DEV_GPU_TEMP", "gauge");
    let f_reasons = fam("DCGM_FI_DEV_CLOCKS_EVENT_REASONS", "gauge");
    let f_xid = fam("DCGM_FI_DEV_XID_ERRORS", "gauge");
    let f_dbe = fam("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "gauge");
    let f_sbe = fam("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "gauge");
    let a_util = fam("gpu_gfx_activity", "gauge");
    let a_power = fam("gpu_package_power", "gauge");
    let a_temp = fam("gpu_junction_temperature", "gauge");
    let a_socket = fam("gpu_violation_socket_thermal_residency_percentage", "gauge");
    let a_ppt = fam("gpu_violation_ppt_residency_percentage", "gauge");
    let h_util = fam("habanalabs_utilization", "gauge");
    let h_power = fam("habanalabs_power_mW", "gauge");
    let h_limit = fam("habanalabs_power_default_limit_mW", "gauge");
    let h_temp = fam("habanalabs_temperature_onchip", "gauge");
    let h_rows = fam(
        "habanalabs_pending_rows_with_double_bit_ecc_errors",
        "gauge",
    );
    // Raw ESC and RIGHT-TO-LEFT OVERRIDE (OpenMetrics label values take any UTF-8 but `"`, `\` and a line
    // break; `\n` is the one escape that decodes to a control character, here a newline).
    let evil = format!("\u{1b}[31m{}\u{202e}", "x".repeat(20_000));
    for i in 0..steps {
        let t = start + i as i64 * STEP;
        let k = k_of(t);
        let window = HOURS * 3600 / STEP;
        let gap = (window / 3..window / 3 + 40).contains(&k);
        if !gap {
            for g in 0..8 {
                let l = format!(
                    "gpu=\"{g}\",UUID=\"GPU-{g:08}\",modelName=\"NVIDIA H100 80GB HBM3\",Hostname=\"{dcgm}\",pod=\"trainer-{}\"",
                    k / 200
                );
                let throttled = g == 3
                    && ((k >= window / 10 && k < window / 10 + window / 5)
                        || (k >= window / 2 && k < window / 2 + window / 5));
                let mut w = |f: usize, v: f64| {
                    let name = fams[f].name;
                    let _ = writeln!(fams[f].lines, "{name}{{{l}}} {v} {t}");
                };
                w(f_util, 97.0);
                w(f_power, if throttled { 420.0 } else { 650.0 });
                w(f_limit, 700.0);
                w(f_temp, if throttled { 91.0 } else { 70.0 });
                w(f_reasons, if throttled { 72.0 } else { 0.0 });
                w(f_xid, if g == 5 && k >= window / 2 { 79.0 } else { 0.0 });
                w(
                    f_dbe,
                    if g == 6 && k >= window * 7 / 12 {
                        ((k - window * 7 / 12) / 60 + 1) as f64
                    } else {
                        0.0
                    },
                );
                w(f_sbe, 0.0);
            }
        }
        for g in 0..2 {
            let l = format!(
                "gpu_id=\"{g}\",serial_number=\"PHX{g}\",card_model=\"AMD Instinct MI300X\",hostname=\"{amd}\""
            );
            let mut w = |f: usize, v: f64| {
                let name = fams[f].name;
                let _ = writeln!(fams[f].lines, "{name}{{{l}}} {v} {t}");
            };
            w(a_util, 90.0);
            w(a_power, 700.0);
            w(a_temp, 80.0);
            w(a_socket, if g == 1 && k % 2 == 0 { 100.0 } else { 0.0 });
            w(a_ppt, 20.0);
        }
        for g in 0..2 {
            let l = format!(
                "Serial=\"AM2314567{g}\",UUID=\"01P0-HL2080A0-15-TNA3B3-20-07-0{g}\",id=\"{g}\",node=\"{gaudi}\""
            );
            let mut w = |f: usize, v: f64| {
                let name = fams[f].name;
                let _ = writeln!(fams[f].lines, "{name}{{{l}}} {v} {t}");
            };
            w(h_util, 85.0);
            w(h_power, 450_000.0);
            w(h_limit, 600_000.0);
            w(h_temp, 58.0);
            w(h_rows, if g == 1 && k >= window / 2 { 2.0 } else { 0.0 });
        }
        let l = format!(
            "gpu=\"{evil}\",modelName=\"{evil}\",UUID=\"\\n\t{evil}\",instance=\"{hostile}:9400\""
        );
        let _ = writeln!(fams[f_util].lines, "DCGM_FI_DEV_GPU_UTIL{{{l}}} 50 {t}");
        let _ = writeln!(fams[f_xid].lines, "DCGM_FI_DEV_XID_ERRORS{{{l}}} 0 {t}");
    }
    let mut out = String::new();
    for f in fams {
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
        out.push_str(&f.lines);
    }
    out.push_str("# EOF\n");
    out
}

struct Prom {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Prom {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_prometheus(om: &str) -> Prom {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.om");
    std::fs::write(&data, om).unwrap();
    let tsdb = dir.path().join("tsdb");
    let out = Command::new("promtool")
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&data)
        .arg(&tsdb)
        .output()
        .expect("promtool (Debian's prometheus package; .ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(
        dir.path().join("prom.yml"),
        "global:\n  scrape_interval: 1h\n",
    )
    .unwrap();
    let port = free_port();
    let mut child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prom.yml").display()
        ))
        .arg(format!("--storage.tsdb.path={}", tsdb.display()))
        .arg(format!("--web.listen-address=0.0.0.0:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("prom.log")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /-/ready HTTP/1.0\r\n\r\n");
            let mut r = String::new();
            let _ = s.read_to_string(&mut r);
            if r.starts_with("HTTP/1.0 200") || r.starts_with("HTTP/1.1 200") {
                return Prom {
                    child,
                    port,
                    _dir: dir,
                };
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "prometheus not ready: {}",
        std::fs::read_to_string(dir.path().join("prom.log")).unwrap_or_default()
    );
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// No string of the answer holds a control character (the text's own line breaks aside) or a bidi control.
fn no_control(v: &Value, text: &str) {
    fn bad(c: char) -> bool {
        c.is_control()
            || matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
    }
    fn walk(v: &Value, path: &str) {
        match v {
            Value::String(s) => assert!(!s.chars().any(bad), "{path}: {s:?}"),
            Value::Array(a) => a
                .iter()
                .enumerate()
                .for_each(|(i, v)| walk(v, &format!("{path}[{i}]"))),
            Value::Object(o) => o.iter().for_each(|(k, v)| walk(v, &format!("{path}.{k}"))),
            _ => {}
        }
    }
    walk(v, "structuredContent");
    assert!(
        !text.chars().any(|c| c != '\n' && bad(c)),
        "control characters reached the text: {text:?}"
    );
}

fn gpu<'a>(v: &'a Value, id: &str) -> &'a Value {
    v["history"]["gpus"]
        .as_array()
        .and_then(|a| a.iter().find(|g| g["gpu"] == id))
        .unwrap_or_else(|| panic!("GPU {id}: {v:#}"))
}

/// The issue's node through a named URL, then the same found through the API server's service proxy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_from_a_named_prometheus_and_from_the_clusters_own() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-history");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let (dcgm, amd, gaudi, hostile) = (
        unique("hist-dcgm"),
        unique("hist-amd"),
        unique("hist-gaudi"),
        unique("hist-hostile"),
    );
    let prom = start_prometheus(&openmetrics(now(), &dcgm, &amd, &gaudi, &hostile));
    let ip = own_ip();
    let url = format!("http://{ip}:{}", prom.port);

    let l = mcp::start(tb, User::Reader, &ns, &["--prometheus", &url]).await;
    let t0 = Instant::now();
    let r = l.call("get_gpu_history", json!({"node_name": dcgm})).await;
    let latency = t0.elapsed();
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    eprintln!(
        "get_gpu_history, 8 GPUs over 6 h: {} ms, text {} bytes, structured {} bytes\n{t}",
        latency.as_millis(),
        t.len(),
        v.to_string().len()
    );
    assert_eq!(v["status"], "history", "{t}");
    assert_eq!(v["history"]["matched_label"], "Hostname");
    assert_eq!(v["history"]["verdict"], "unhealthy", "{t}");
    let g3 = gpu(&v, "3");
    let thermal = g3["throttle"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["reason"] == "HwThermalSlowdown")
        .unwrap();
    let f = thermal["fraction"].as_f64().unwrap();
    // 40 % of the window written, in two bursts; the share is of the time with data (the gap lies between
    // the bursts): 288 throttled points of the ~690 Prometheus answers, 0.42.
    assert!((0.40..0.44).contains(&f), "{f}");
    assert_eq!(g3["throttle_episodes"].as_array().unwrap().len(), 2, "{t}");
    assert_eq!(g3["verdict"], "degraded");
    assert_eq!(gpu(&v, "5")["xids"][0]["code"], 79);
    assert_eq!(gpu(&v, "5")["verdict"], "unhealthy");
    assert_eq!(
        gpu(&v, "6")["counters"][0]["counter"],
        "uncorrectable ECC errors"
    );
    assert!(t.contains("GPU 3: throttled 4"), "{t}");
    assert!(
        t.contains("GPU 5: Xid 79 (GPU has fallen off the bus)"),
        "{t}"
    );
    assert!(
        t.contains("- GPU 0-2, 4, 7: steady — no harmful throttling, no Xid, error counters flat"),
        "{t}"
    );
    assert!(t.contains("no data from any GPU: "), "{t}");
    assert_eq!(v["history"]["gaps"].as_array().unwrap().len(), 1, "{t}");
    assert!(t.len() < 3_000, "{}", t.len());

    // A window of the same node carries its recorded hours beside it (issue 65: the window joined to the
    // cluster's own history).
    tb.add_nodes(&[FakeNode::gpu(&dcgm, "dgx-h100-healthy")]);
    let w = l
        .call("watch_gpus", json!({"node_name": dcgm, "seconds": 5}))
        .await;
    let (wt, wv) = (mcp::text(&w), w.structured_content.clone().unwrap());
    assert_eq!(w.is_error, Some(false), "{wt}");
    assert_eq!(wv["history"]["verdict"], "unhealthy", "{wt}");
    assert!(wt.contains(&format!("the last 6 h of {dcgm}")), "{wt}");
    assert!(wt.contains("GPU 5: Xid 79"), "{wt}");

    // AMD's exporter, matched on its own `hostname`; PPT is power tracking, not harm.
    let v = l
        .ok("get_gpu_history", json!({"node_name": amd, "hours": 2}))
        .await;
    assert_eq!(v["history"]["matched_label"], "hostname", "{v:#}");
    assert_eq!(v["history"]["exporters"][0], "amd");
    assert_eq!(gpu(&v, "1")["verdict"], "degraded");
    assert_eq!(gpu(&v, "0")["verdict"], "healthy", "{v:#}");

    // Intel's Gaudi exporter, matched on the scrape's `node`: watts from milliwatts, named by the serial,
    // the pending rows a warning; a device with nothing pending is "unknown" (the exporter publishes no
    // throttle reasons or errors), never "healthy".
    let r = l
        .call("get_gpu_history", json!({"node_name": gaudi, "hours": 6}))
        .await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    assert_eq!(v["history"]["matched_label"], "node", "{v:#}");
    assert_eq!(v["history"]["exporters"][0], "gaudi", "{v:#}");
    assert_eq!(gpu(&v, "1")["verdict"], "degraded", "{t}");
    assert_eq!(gpu(&v, "1")["uuid"], "AM23145671", "{v:#}");
    assert_eq!(gpu(&v, "0")["verdict"], "unknown", "{t}");
    assert!(
        t.contains("2 HBM row(s) with double-bit ECC errors pending replacement"),
        "{t}"
    );
    assert!(t.contains("450 W avg of 600 W limit"), "{t}");
    assert!(!t.contains("DCGM") && !t.contains("AMD"), "{t}");

    // Relabelled `instance`, hostile label values: matched, cleaned, bounded.
    let r = l
        .call("get_gpu_history", json!({"node_name": hostile}))
        .await;
    let v = r.structured_content.clone().unwrap();
    eprintln!("hostile labels:\n{}", mcp::text(&r));
    assert_eq!(v["history"]["matched_label"], "instance", "{v:#}");
    no_control(&v, &mcp::text(&r));
    assert!(v.to_string().len() < 8_000, "{}", v.to_string().len());
    assert!(mcp::text(&r).len() < 2_000);

    // A node the Prometheus does not know: one line, never healthy.
    let v = l
        .ok("get_gpu_history", json!({"node_name": "no-such-node"}))
        .await;
    assert_eq!(v["status"], "no_series");
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("labels tried: Hostname, node"),
        "{v}"
    );
    l.stop().await;

    // No flag: nothing found yet is one line naming the flag.
    let l = mcp::start(tb, User::Reader, &ns, &[]).await;
    let v = l.ok("get_gpu_history", json!({"node_name": dcgm})).await;
    let s = v["summary"].as_str().unwrap().to_string();
    if v["status"] == "no_prometheus" {
        assert!(s.contains("--prometheus URL"), "{s}");
    }

    // The cluster's own: a selector-less Service in `monitoring` with the stack's label, its endpoint this
    // machine, read through the API server as the person. The API server's service proxy reads the v1
    // Endpoints (not the slices) and dials only an address whose `targetRef` is a Pod of the Service's
    // namespace with that address in `status.podIPs` (kube-apiserver's pkg/registry/core/service/storage,
    // `isValidAddress`); else it answers 503 "no endpoints available". First that 503, said at once (it is
    // the proxy's answer, not the API server pushing back: never retried), then a Pod holding the address.
    let svc = unique("prometheus-k8s");
    let pod = format!("{svc}-0");
    let objects = |target_ref: &str| {
        format!(
            r#"apiVersion: v1
kind: Namespace
metadata: {{name: monitoring}}
---
apiVersion: v1
kind: ServiceAccount
metadata: {{name: default, namespace: monitoring}}
---
apiVersion: v1
kind: Service
metadata:
  name: {svc}
  namespace: monitoring
  labels: {{app.kubernetes.io/name: prometheus}}
spec:
  ports: [{{name: web, port: 9090, targetPort: {port}, protocol: TCP}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {svc}-1
  namespace: monitoring
  labels: {{kubernetes.io/service-name: {svc}}}
addressType: IPv4
ports: [{{name: web, port: {port}, protocol: TCP}}]
endpoints: [{{addresses: ["{ip}"], conditions: {{ready: true}}{target_ref}}}]
---
apiVersion: v1
kind: Endpoints
metadata: {{name: {svc}, namespace: monitoring}}
subsets: [{{addresses: [{{ip: "{ip}"{target_ref}}}], ports: [{{name: web, port: {port}}}]}}]
"#,
            port = prom.port
        )
    };
    tb.apply(&objects(""));
    let t0 = Instant::now();
    let v = l.ok("get_gpu_history", json!({"node_name": dcgm})).await;
    let took = t0.elapsed();
    let s = v["summary"].as_str().unwrap();
    eprintln!(
        "service proxy, endpoint no Pod's: {} ms: {s}",
        took.as_millis()
    );
    assert_eq!(v["status"], "unreachable", "{v}");
    assert!(
        s.contains("HTTP 503: the API server reached no endpoint of the Service"),
        "{s}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");

    // A Pod holding the address: unscheduled (no kubelet or kwok touches it), its status set as a kubelet
    // would.
    tb.apply(&format!(
        r#"apiVersion: v1
kind: Pod
metadata: {{name: {pod}, namespace: monitoring, labels: {{app.kubernetes.io/name: prometheus}}}}
spec:
  automountServiceAccountToken: false
  containers: [{{name: prometheus, image: quay.io/prometheus/prometheus}}]
"#
    ));
    tb.kubectl(&[
        "patch",
        "-n",
        "monitoring",
        "pod",
        &pod,
        "--subresource=status",
        "--type=merge",
        "-p",
        &json!({"status": {"podIP": ip, "podIPs": [{"ip": ip}]}}).to_string(),
    ]);
    tb.apply(&objects(&format!(
        ", targetRef: {{kind: Pod, namespace: monitoring, name: {pod}}}"
    )));
    let t0 = Instant::now();
    let r = l.call("get_gpu_history", json!({"node_name": dcgm})).await;
    let (t, v) = (mcp::text(&r), r.structured_content.clone().unwrap());
    eprintln!(
        "through the service proxy: {} ms\n{t}",
        t0.elapsed().as_millis()
    );
    assert_eq!(v["status"], "history", "{t}");
    assert!(
        v["history"]["source"].as_str().unwrap().contains(&format!(
            "Service monitoring/{svc}:web (through the API server)"
        )),
        "{t}"
    );
    assert_eq!(v["history"]["verdict"], "unhealthy");
    l.stop().await;

    // `--prometheus off`: said in one line.
    let l = mcp::start(tb, User::Reader, &ns, &["--prometheus", "off"]).await;
    let v = l.ok("get_gpu_history", json!({"node_name": dcgm})).await;
    assert_eq!(v["status"], "no_prometheus");
    l.stop().await;
    tb.kubectl(&[
        "delete",
        "-n",
        "monitoring",
        &format!("service/{svc}"),
        &format!("endpoints/{svc}"),
        &format!("endpointslices.discovery.k8s.io/{svc}-1"),
        &format!("pod/{pod}"),
        "--ignore-not-found",
        "--wait=false",
    ]);
}

/// A server that answers every connection with `answer` (after `delay`).
fn fake_server(answer: Vec<u8>, delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            let answer = answer.clone();
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                std::thread::sleep(delay);
                let _ = s.write_all(&answer);
            });
        }
    });
    port
}

fn http_ok(body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

/// Garbage, a huge body and a silent server: each is one line within the query's time, never a crash.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_prometheus_is_one_line_within_its_time() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-history-hostile");
    tb.probe_namespace(&ns, User::Reader);
    tb.bind_reader(User::Reader);
    let huge = {
        let item = r#"{"metric":{"__name__":"DCGM_FI_DEV_GPU_UTIL","gpu":"0"},"value":[1,"1"]},"#;
        let mut b = br#"{"status":"success","data":{"resultType":"vector","result":["#.to_vec();
        while b.len() < 40 << 20 {
            b.extend_from_slice(item.as_bytes());
        }
        b
    };
    for (what, port, want) in [
        (
            "garbage",
            fake_server(http_ok(b"\x1b[31m<html>not json"), Duration::ZERO),
            "not a Prometheus answer",
        ),
        (
            "huge",
            fake_server(http_ok(&huge), Duration::ZERO),
            "over 16 MiB",
        ),
        (
            "silent",
            fake_server(Vec::new(), Duration::from_secs(60)),
            "no answer within 10 s",
        ),
    ] {
        let l = mcp::start(
            tb,
            User::Reader,
            &ns,
            &["--prometheus", &format!("http://127.0.0.1:{port}")],
        )
        .await;
        let t0 = Instant::now();
        let r = l
            .call("get_gpu_history", json!({"node_name": "gpu-node-1"}))
            .await;
        let took = t0.elapsed();
        let v = r
            .structured_content
            .clone()
            .unwrap_or_else(|| panic!("{what}: {}", mcp::text(&r)));
        let s = v["summary"].as_str().unwrap();
        eprintln!("{what}: {} ms: {s}", took.as_millis());
        assert_eq!(v["status"], "unreachable", "{what}: {v}");
        assert!(s.contains(want), "{what}: {s}");
        assert!(!s.chars().any(char::is_control), "{what}: {s:?}");
        assert!(s.len() < 400, "{what}");
        assert!(took < Duration::from_secs(15), "{what}: {took:?}");
        l.stop().await;
    }
    let _ = Path::new("/");
}
