//! What a diagnostic run asks for, validated: a level (1–3) or named tests, and an explicit list of GPUs.
//! The launcher builds these from tool arguments, which may carry text a model was shown, so the grammar is
//! closed: levels are numbers, tests come from [`TESTS`], GPUs are indices or `GPU-` UUIDs; node-probe and
//! deploy/policies.yaml's exec admission policy check the same grammar ([`GPUS_PATTERN`], [`TESTS_PATTERN`]).

use std::fmt;

/// Tests that may be named, with the level whose deadline they run under (`-r` takes plugin names;
/// NVIDIA/DCGM `nvvs/include/PluginStrings.h` v4.6.0, ../shared/reference/dcgm.md section 1). Level-4
/// tests (`memtest`, `pulse_test`: up to hours) and EUD (a proprietary binary that must run as root) are
/// not offered.
pub const TESTS: &[(&str, u8)] = &[
    ("software", 1),
    ("context_create", 1),
    ("pcie", 2),
    ("memory", 2),
    ("diagnostic", 3),
    ("targeted_stress", 3),
    ("targeted_power", 3),
    ("memory_bandwidth", 3),
    ("sm_stress", 3),
    ("nvbandwidth", 3),
];

/// Every GPU of the node, for level 1 only: a run that loads GPUs names them.
pub const ALL: &str = "all";

/// `all` (the empty list) only with level 1.
pub fn check_all(run: &DiagRun, gpus: &[GpuSel]) -> Result<(), InvalidRequest> {
    if gpus.is_empty() && *run != DiagRun::Level(1) {
        return Err(InvalidRequest(format!(
            "{run} loads the GPUs for minutes: name them (indices or UUIDs); `all` is for level 1 only"
        )));
    }
    Ok(())
}

/// At most this many GPUs in one run (the largest nodes have 8; MIG is refused by DCGM anyway).
pub const MAX_GPUS: usize = 16;

/// `--gpus`: 1 to 16 comma-separated GPU indices (0–255) or `GPU-` UUIDs.
pub const GPUS_PATTERN: &str = r"^((0|[1-9][0-9]{0,2})|GPU-[0-9a-fA-F-]{36})(,((0|[1-9][0-9]{0,2})|GPU-[0-9a-fA-F-]{36})){0,15}$";
/// `--tests`: 1 to 10 comma-separated names of lower-case letters and `_` (each checked against [`TESTS`]).
pub const TESTS_PATTERN: &str = r"^[a-z_]{1,20}(,[a-z_]{1,20}){0,9}$";

/// A level or named tests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiagRun {
    Level(u8),
    Tests(Vec<&'static str>),
}

impl DiagRun {
    /// The level whose deadline applies: the level itself, or the highest of the named tests.
    pub fn level(&self) -> u8 {
        match self {
            DiagRun::Level(l) => *l,
            DiagRun::Tests(t) => t
                .iter()
                .filter_map(|n| TESTS.iter().find(|(m, _)| m == n).map(|(_, l)| *l))
                .max()
                .unwrap_or(1),
        }
    }

    /// `-r`'s value.
    pub fn arg(&self) -> String {
        match self {
            DiagRun::Level(l) => l.to_string(),
            DiagRun::Tests(t) => t.join(","),
        }
    }

    /// What DCGM runs, in words (DCGM's level table, ../shared/reference/dcgm.md section 1).
    pub fn tests_in_words(&self) -> String {
        match self {
            DiagRun::Level(1) => "software checks".into(),
            DiagRun::Level(2) => "software, PCIe and memory tests".into(),
            DiagRun::Level(_) => "software, PCIe, memory, stress, power and bandwidth tests".into(),
            DiagRun::Tests(t) => t.join(", "),
        }
    }
}

impl fmt::Display for DiagRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DiagRun::Level(l) => write!(f, "level {l}"),
            DiagRun::Tests(t) => write!(f, "tests {}", t.join(", ")),
        }
    }
}

/// One requested GPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GpuSel {
    Index(u32),
    Uuid(String),
}

impl fmt::Display for GpuSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GpuSel::Index(i) => write!(f, "{i}"),
            GpuSel::Uuid(u) => f.write_str(u),
        }
    }
}

/// Why an argument is refused; callers put the flag's name before it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidRequest(pub String);

/// `1`, `2` or `3`.
pub fn parse_level(s: &str) -> Result<DiagRun, InvalidRequest> {
    match s {
        "1" | "2" | "3" => Ok(DiagRun::Level(s.parse().unwrap_or(1))),
        _ => Err(InvalidRequest(format!(
            "must be 1, 2 or 3 (got `{}`)",
            super::limits::clip(s, 16)
        ))),
    }
}

/// Comma-separated names from [`TESTS`], no repeats.
pub fn parse_tests(s: &str) -> Result<DiagRun, InvalidRequest> {
    let mut out: Vec<&'static str> = Vec::new();
    let parts: Vec<&str> = s.split(',').collect();
    if s.is_empty() || parts.len() > TESTS.len() {
        return Err(InvalidRequest(format!(
            "must name 1 to {} tests, comma-separated",
            TESTS.len()
        )));
    }
    for p in parts {
        let Some((name, _)) = TESTS.iter().find(|(n, _)| *n == p) else {
            return Err(InvalidRequest(format!(
                "unknown test `{}`: one of {}",
                super::limits::clip(p, 24),
                TESTS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
            )));
        };
        if out.contains(name) {
            return Err(InvalidRequest(format!("test `{name}` named twice")));
        }
        out.push(name);
    }
    Ok(DiagRun::Tests(out))
}

fn is_uuid(s: &str) -> bool {
    s.len() == 40
        && s.starts_with("GPU-")
        && s[4..].chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

/// Comma-separated GPU indices (0–255) or `GPU-` UUIDs, 1 to [`MAX_GPUS`], no repeats; or `all` (every GPU
/// NVML lists, allowed with level 1 only: [`check_all`]), which is the empty list.
pub fn parse_gpus(s: &str) -> Result<Vec<GpuSel>, InvalidRequest> {
    if s == ALL {
        return Ok(Vec::new());
    }
    let parts: Vec<&str> = s.split(',').collect();
    if s.is_empty() || parts.len() > MAX_GPUS {
        return Err(InvalidRequest(format!(
            "must name 1 to {MAX_GPUS} GPUs (indices or GPU- UUIDs), comma-separated"
        )));
    }
    let mut out = Vec::new();
    for p in parts {
        let g = if is_uuid(p) {
            GpuSel::Uuid(p.to_string())
        } else {
            match p.parse::<u32>() {
                Ok(i) if i <= 255 && (p == "0" || !p.starts_with('0')) => GpuSel::Index(i),
                _ => {
                    return Err(InvalidRequest(format!(
                        "`{}` is no GPU index (0-255) nor GPU- UUID",
                        super::limits::clip(p, 48)
                    )));
                }
            }
        };
        if out.contains(&g) {
            return Err(InvalidRequest(format!("GPU {g} named twice")));
        }
        out.push(g);
    }
    Ok(out)
}

/// How long a run may take before the probe stops it, by level. NVIDIA's docs give level 1 seconds,
/// level 2 about 2 minutes and level 3 about 15 minutes (../shared/reference/dcgm.md section 1); GKE's
/// scanner gives level 2 15 minutes and its health runner level 3 30 minutes [D29]. Level 1: 2 min (it
/// starts an embedded host engine and loads the CUDA plugins first); level 2: 15 min (the memory test
/// allocates and checks all of a large GPU's memory); level 3: 45 min (`diagnostic` 180 s,
/// `targeted_power` 120 s, `targeted_stress` 30 s by default, plus bandwidth and nvbandwidth, with
/// head-room for slow GPUs and for DCGM waiting on a copy engine to settle).
pub fn deadline_secs(level: u8) -> u64 {
    match level {
        0 | 1 => 120,
        2 => 15 * 60,
        _ => 45 * 60,
    }
}

/// Where node-probe `dcgm-diag` keeps its PID and start time while it runs in a probe container, for the
/// launcher's orderly stop of a cancelled run (`launcher/src/probe/stop_first.rs`).
pub const PID_FILE: &str = "/tmp/k8s-gpu-mcp-dcgm-diag.pid";

/// A host engine that already runs on the node (the GPU Operator's standalone `nvidia-dcgm`, off by
/// default), to run the diagnostic on instead of an engine embedded in the probe: its address, and whether
/// it is DCGM 4.5 or later, where `--enable-heartbeat` makes the engine stop the run when this client goes
/// away (without it a remote engine keeps nvvs running after a hard kill: ../shared/reference/dcgm.md
/// sections 1 and 8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Engine {
    pub addr: std::net::SocketAddr,
    pub heartbeat: bool,
}

/// `--engine`: an IPv4 or bracketed IPv6 address with a port, optionally `,heartbeat`. Addresses only,
/// never names: the launcher resolves the engine from the API server, and a name in an argument could be
/// made to point anywhere.
pub const ENGINE_PATTERN: &str =
    r"^([0-9]{1,3}(\.[0-9]{1,3}){3}|\[[0-9a-f:]{2,39}\]):[1-9][0-9]{0,4}(,heartbeat)?$";

impl Engine {
    /// `--engine`'s value.
    pub fn arg(&self) -> String {
        format!(
            "{}{}",
            self.addr,
            if self.heartbeat { ",heartbeat" } else { "" }
        )
    }

    pub fn parse(s: &str) -> Result<Engine, InvalidRequest> {
        let (addr, heartbeat) = match s.strip_suffix(",heartbeat") {
            Some(a) => (a, true),
            None => (s, false),
        };
        let bad = || {
            InvalidRequest(format!(
                "`{}` is not ADDRESS:PORT[,heartbeat] with an IP address",
                super::limits::clip(s, 64)
            ))
        };
        let addr: std::net::SocketAddr = addr.parse().map_err(|_| bad())?;
        if addr.port() == 0 || addr.ip().is_unspecified() || addr.ip().is_multicast() {
            return Err(bad());
        }
        Ok(Engine { addr, heartbeat })
    }
}

/// `dcgmi`'s arguments: `diag -r <level|tests> -j -i <indices>`, and `--host ADDR [--enable-heartbeat]` on
/// a node's own engine. `-i` is the GPU list in 3.x and the entity list in 4.x: plain indices mean the same
/// GPUs in both. No `-t`: 3.2 and older reject it (exit 254); the probe keeps the deadline itself.
pub fn dcgmi_args(run: &DiagRun, indices: &[u32], engine: Option<&Engine>) -> Vec<String> {
    let mut argv: Vec<String> = vec![
        "diag".into(),
        "-r".into(),
        run.arg(),
        "-j".into(),
        "-i".into(),
        indices
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(","),
    ];
    if let Some(e) = engine {
        argv.extend(["--host".into(), e.addr.to_string()]);
        if e.heartbeat {
            argv.push("--enable-heartbeat".into());
        }
    }
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_tests_and_gpus() {
        assert_eq!(parse_gpus("all").unwrap(), []);
        assert!(check_all(&DiagRun::Level(1), &[]).is_ok());
        assert!(check_all(&DiagRun::Level(2), &[]).is_err());
        assert!(check_all(&DiagRun::Level(2), &[GpuSel::Index(0)]).is_ok());
        assert_eq!(parse_level("2"), Ok(DiagRun::Level(2)));
        for bad in ["0", "4", "", "1;rm", "01"] {
            assert!(parse_level(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_tests("pcie,memory").unwrap(),
            DiagRun::Tests(vec!["pcie", "memory"])
        );
        assert_eq!(parse_tests("pcie,diagnostic").unwrap().level(), 3);
        for bad in ["", "memtest", "pcie,pcie", "pcie,", "PCIE", "pcie;memory"] {
            assert!(parse_tests(bad).is_err(), "{bad}");
        }
        let u = "GPU-5cf8a2b4-9e1d-4c1a-8d0e-1f2a3b4c5d6e";
        assert_eq!(
            parse_gpus(&format!("0,7,{u}")).unwrap(),
            vec![GpuSel::Index(0), GpuSel::Index(7), GpuSel::Uuid(u.into())]
        );
        for bad in [
            "",
            "0,0",
            "256",
            "07",
            "-1",
            "ALL",
            "all,0",
            "*",
            "0 1",
            "GPU-x",
            "gpu:0",
            &"1,".repeat(17),
        ] {
            assert!(parse_gpus(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_patterns_accept_what_the_parsers_accept() {
        let gpus = regex::Regex::new(GPUS_PATTERN).unwrap();
        let tests = regex::Regex::new(TESTS_PATTERN).unwrap();
        for ok in ["0", "0,1,15", "GPU-5cf8a2b4-9e1d-4c1a-8d0e-1f2a3b4c5d6e,3"] {
            assert!(gpus.is_match(ok) && parse_gpus(ok).is_ok(), "{ok}");
        }
        for bad in ["", "all", "0;1", "0,", "1000"] {
            assert!(!gpus.is_match(bad), "{bad}");
        }
        for (name, _) in TESTS {
            assert!(tests.is_match(name));
        }
        assert!(!tests.is_match("pcie;reboot"));
    }

    #[test]
    fn deadlines_and_argv() {
        assert_eq!(deadline_secs(1), 120);
        assert_eq!(deadline_secs(2), 900);
        assert_eq!(deadline_secs(3), 2700);
        assert_eq!(
            dcgmi_args(&DiagRun::Level(2), &[0, 3], None),
            ["diag", "-r", "2", "-j", "-i", "0,3"]
        );
        let e = Engine::parse("10.244.1.7:5555,heartbeat").unwrap();
        assert_eq!(
            dcgmi_args(&DiagRun::Level(1), &[3], Some(&e)),
            [
                "diag",
                "-r",
                "1",
                "-j",
                "-i",
                "3",
                "--host",
                "10.244.1.7:5555",
                "--enable-heartbeat"
            ]
        );
    }

    #[test]
    fn an_engine_is_an_address_never_a_name() {
        let re = regex::Regex::new(ENGINE_PATTERN).unwrap();
        for ok in [
            "10.244.1.7:5555",
            "10.0.0.1:5555,heartbeat",
            "[fd00::12]:5555",
        ] {
            let e = Engine::parse(ok).unwrap();
            assert_eq!(e.arg(), ok);
            assert!(re.is_match(ok), "{ok}");
        }
        for bad in [
            "",
            "nvidia-dcgm.gpu-operator.svc:5555",
            "evil.example.com:5555",
            "10.0.0.1",
            "10.0.0.1:0",
            "0.0.0.0:5555",
            "10.0.0.1:5555,heartbeat,heartbeat",
            "10.0.0.1:5555;rm",
            "unix:///run/x.sock",
            "10.0.0.1:99999",
        ] {
            assert!(Engine::parse(bad).is_err(), "{bad}");
        }
        for bad in [
            "evil.example.com:5555",
            "10.0.0.1",
            "10.0.0.1:5555;rm",
            "unix:///x",
        ] {
            assert!(!re.is_match(bad), "{bad}");
        }
    }
}
