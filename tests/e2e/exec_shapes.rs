//! Every exec the launcher can build is admitted by deploy/policies.yaml's exec policy, and nothing else
//! (issue 90). The argv of each request comes from the library's own builder (`Request::argv`) over every
//! command, flag, pin, override and claims state, then as each runner sends it: image delivery
//! (`node-probe ...` in the probe pod's container), copy delivery (the delivery script's words first) and the
//! operator's ephemeral container, each with and without `--driver-root`. Near misses of each shape (a word
//! dropped, two swapped, a flag the launcher never sends, a value with a shell's characters, the operator's
//! shape sent by the reader) are refused, by this policy by name.
//!
//! Asked as the launcher's `check` asks (launcher/src/readiness/policies.rs): a plain POST to `pods/exec` of a
//! pod that does not exist. The API server runs admission before it looks the pod up, so an admitted exec
//! answers 404 and nothing runs; a refused one answers 403 naming the policy. The same test runs on every
//! version of the matrix (tests/testbed/matrix.sh), with and without the DRA API.

use std::collections::HashSet;

use gpu_diag::command::{Command, DriverRoot, Request, Since};
use gpu_diag::dcgm::request::{DiagRun, Engine, GpuSel};
use gpu_diag::facts::api_claims_arg;
use gpu_diag::facts::{ApiClaimFacts, ApiClaimPodFacts};
use gpu_diag::operator::kill::ProcessPin;
use gpu_diag::operator::reset::{ResetPin, Seen};
use gpu_diag::rvs::request::RvsRun;

use crate::testbed::{Testbed, User, sha256_file, skipped, unique};

const POLICY: &str = "k8s-gpu-mcp-probe-exec";
const ABSENT_POD: &str = "no-such-probe-pod";

/// The API server's claims on a node, in the forms the launcher gives them: none allocated, and two claims
/// with pods (the encoder is the library's).
fn claims_states() -> Vec<Option<String>> {
    let claims = [
        ApiClaimFacts {
            namespace: "ml".into(),
            name: "train-0-gpu".into(),
            devices: vec!["gpu.nvidia.com/gpu-0".into(), "gpu.nvidia.com/gpu-1".into()],
            pods: vec![ApiClaimPodFacts {
                name: "train-0".into(),
                uid: "0b5f3c2e-9d1a-4e7b-8c6d-2f4a1b3c5d6e".into(),
            }],
        },
        ApiClaimFacts {
            namespace: "infer".into(),
            name: "amd".into(),
            devices: vec!["gpu.amd.com/gpu-3".into()],
            pods: vec![],
        },
    ];
    vec![
        None,
        Some(api_claims_arg::encode(&[])),
        Some(api_claims_arg::encode(&claims)),
    ]
}

/// What a person saw in the preflight they approved: NVIDIA's pin, AMD's with its partition, and a pin
/// with unknowns (the override's digests).
fn seen_states() -> Vec<Seen> {
    vec![
        Seen {
            pin: Some(ResetPin {
                pci_bus_id: Some("0000:3b:00.0".into()),
                uuid: Some("GPU-5d0fa1c2-7a3e-4b8c-9d1e-2f3a4b5c6d7e".into()),
                partition: None,
            }),
            unknown: vec![],
            process: None,
        },
        Seen {
            pin: Some(ResetPin {
                pci_bus_id: Some("0000:0c:00.0".into()),
                uuid: Some("0x8f3a2c1d4e5b6a79".into()),
                partition: Some("CPX/NPS4".into()),
            }),
            unknown: vec!["fd table of pid 4242 unreadable".into(), "scan cut".into()],
            process: None,
        },
    ]
}

/// Every request the launcher's tools can send, with the values each flag takes.
fn requests() -> Vec<Request> {
    let mut out: Vec<Request> = Command::ALL.iter().map(|c| Request::Plain(*c)).collect();
    out.push(Request::Health { expect_gpus: None });
    out.push(Request::Health {
        expect_gpus: Some(8),
    });
    out.push(Request::Xid { since: None });
    for s in ["90s", "30m", "24h", "7d"] {
        out.push(Request::Xid {
            since: Some(s.parse::<Since>().unwrap()),
        });
    }
    out.push(Request::Evidence {
        time_limit_secs: 120,
    });
    for api_claims in claims_states() {
        out.push(Request::Allocation {
            api_claims: api_claims.clone(),
        });
        for (dry_run, override_unknown) in [(false, false), (true, false), (false, true)] {
            let kill = Request::Kill {
                pid: 4242,
                grace_seconds: 10,
                dry_run,
                api_claims: api_claims.clone(),
                override_unknown,
                seen: None,
            };
            // The preflight, and the act bound to the process a person saw (in a pod, in none).
            out.push(kill.clone());
            for pod in [Some("3f7c9a2e-1b2d-4c5e-9f0a-2b3c4d5e6f70"), None] {
                out.push(kill.clone().bound(&Seen {
                    pin: None,
                    unknown: vec!["fd table of pid 4243 unreadable".into()],
                    process: Some(ProcessPin {
                        start_ticks: 262_811_407,
                        pod: pod.map(str::to_string),
                    }),
                }));
            }
            for gpu in [
                "0",
                "GPU-5d0fa1c2-7a3e-4b8c-9d1e-2f3a4b5c6d7e",
                "0000:3b:00.0",
            ] {
                let reset = Request::Reset {
                    gpu: gpu.into(),
                    dry_run,
                    api_claims: api_claims.clone(),
                    override_unknown,
                    seen: None,
                };
                // The preflight, and the act bound to each thing a person could have seen.
                out.push(reset.clone());
                for seen in seen_states() {
                    out.push(reset.clone().bound(&seen));
                }
            }
        }
        let runs = [
            DiagRun::Level(1),
            DiagRun::Level(2),
            DiagRun::Level(3),
            DiagRun::Tests(vec!["software"]),
            DiagRun::Tests(vec!["memory", "pcie"]),
        ];
        for run in runs {
            let gpu_sets: Vec<Vec<GpuSel>> = if run == DiagRun::Level(1) {
                vec![
                    vec![],
                    vec![GpuSel::Index(0)],
                    vec![
                        GpuSel::Index(2),
                        GpuSel::Uuid("GPU-5d0fa1c2-7a3e-4b8c-9d1e-2f3a4b5c6d7e".into()),
                    ],
                ]
            } else {
                vec![vec![GpuSel::Index(0), GpuSel::Index(7)]]
            };
            for gpus in gpu_sets {
                for timeout_secs in [None, Some(600)] {
                    for engine in [
                        None,
                        Some(Engine::parse("10.0.0.12:5555").unwrap()),
                        Some(Engine::parse("[fd00::12]:5555,heartbeat").unwrap()),
                    ] {
                        out.push(Request::DcgmDiag {
                            run: run.clone(),
                            gpus: gpus.clone(),
                            timeout_secs,
                            api_claims: api_claims.clone(),
                            engine,
                        });
                    }
                }
            }
        }
        let mut rvs = vec![RvsRun::Level(1), RvsRun::Level(2), RvsRun::Level(3)];
        rvs.extend(
            gpu_diag::rvs::request::RECIPES
                .iter()
                .map(|(r, _, _)| RvsRun::Recipe(r)),
        );
        for run in rvs {
            let gpu_sets: Vec<Vec<gpu_diag::rvs::request::GpuSel>> = if run.loads() {
                vec![gpu_diag::rvs::request::parse_gpus("0,3").unwrap()]
            } else {
                vec![vec![], gpu_diag::rvs::request::parse_gpus("1").unwrap()]
            };
            for gpus in gpu_sets {
                for timeout_secs in [None, Some(900)] {
                    out.push(Request::RvsDiag {
                        run: run.clone(),
                        gpus: gpus.clone(),
                        timeout_secs,
                        api_claims: api_claims.clone(),
                    });
                }
            }
        }
    }
    for (gpus, start_at_ms) in [
        (vec![], None),
        (vec![0, 3, 7], Some(1_767_225_600_000)),
        ((0..64).collect(), Some(1_767_225_600_000)),
    ] {
        out.push(Request::Watch {
            seconds: 30,
            interval_ms: 1000,
            start_at_ms,
            gpus,
        });
    }
    // Each kind of request is here: a new one fails to compile until it is added above.
    for r in &out {
        match r {
            Request::Plain(_)
            | Request::Health { .. }
            | Request::Xid { .. }
            | Request::Kill { .. }
            | Request::Allocation { .. }
            | Request::Reset { .. }
            | Request::Evidence { .. }
            | Request::DcgmDiag { .. }
            | Request::RvsDiag { .. }
            | Request::Watch { .. } => {}
        }
    }
    out
}

/// How a runner sends node-probe's arguments.
#[derive(Clone, Copy, Debug)]
enum Runner {
    /// `node-probe ARGS` in the probe pod's container (image delivery).
    Image,
    /// The delivery script's words, then ARGS (copy delivery).
    Copy,
    /// `node-probe ARGS` in an ephemeral container the operator added.
    Ephemeral,
}

impl Runner {
    fn container(self) -> &'static str {
        match self {
            Runner::Image | Runner::Copy => "probe",
            Runner::Ephemeral => "node-probe-e2e1",
        }
    }
}

struct Shapes {
    script: String,
    build_sum: String,
}

impl Shapes {
    fn argv(&self, runner: Runner, args: &[String]) -> Vec<String> {
        let mut argv: Vec<String> = match runner {
            Runner::Image | Runner::Ephemeral => vec!["node-probe".into()],
            Runner::Copy => vec![
                "sh".into(),
                "-c".into(),
                self.script.clone(),
                "sh".into(),
                "31457280".into(),
                "9437184".into(),
                self.build_sum.clone(),
                "/lib64/ld-linux-x86-64.so.2".into(),
            ],
        };
        argv.extend(args.iter().cloned());
        argv
    }
}

/// node-probe's arguments as the runners finish them: the launcher's `--driver-root` (where set), then
/// `--node-name`.
fn finished(req: &Request, driver_root: Option<&DriverRoot>, node: &str) -> Vec<String> {
    let mut args = req.argv();
    if let Some(d) = driver_root {
        args.extend([DriverRoot::FLAG.to_string(), d.to_string()]);
    }
    args.extend(["--node-name".to_string(), node.to_string()]);
    args
}

/// Whether the API server admits `argv` from `user` (Ok), or the refusal's message.
async fn admitted(
    client: &kube::Client,
    ns: &str,
    container: &str,
    argv: &[String],
) -> Result<(), String> {
    let ap = kube::api::AttachParams::default()
        .container(container)
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let url = <k8s_openapi::api::core::v1::Pod as kube::Resource>::url_path(&(), Some(ns));
    let mut req = kube::core::Request::new(url)
        .exec(ABSENT_POD, argv.to_vec(), &ap)
        .map_err(|e| e.to_string())?;
    *req.method_mut() = http::Method::POST;
    match client.request_text(req).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(()),
        Err(kube::Error::Api(s)) => Err(format!("{} {}", s.code, s.message)),
        Err(e) => panic!("the API server did not answer: {e}"),
    }
}

async fn client(tb: &Testbed, user: User) -> kube::Client {
    let kc = kube::config::Kubeconfig::read_from(tb.kubeconfig(user)).unwrap();
    let cfg = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(cfg).unwrap()
}

/// An argv's shape: its flags and the command in place, every value one placeholder. Two argvs of one shape
/// differ only in values, which the policy checks by grammar (a near miss of values is the injection case).
fn shape(argv: &[String]) -> Vec<String> {
    argv.iter()
        .enumerate()
        .map(|(i, w)| {
            if i <= 1 || w.starts_with("--") {
                w.clone()
            } else {
                "V".into()
            }
        })
        .collect()
}

/// Near misses of one admitted argv (node-probe's part starts at `start`), each with whether it differs in
/// shape (false: only a value, made hostile).
fn near_misses(argv: &[String], start: usize) -> Vec<(String, bool, Vec<String>)> {
    let mut out = Vec::new();
    let n = argv.len();
    // --node-name and its value close every shape: mutate what is before them, and the value itself.
    for i in start..n {
        let mut v = argv.to_vec();
        let w = v.remove(i);
        out.push((format!("`{w}` dropped"), true, v));
    }
    for i in start..n - 1 {
        if argv[i] != argv[i + 1] {
            let mut v = argv.to_vec();
            v.swap(i, i + 1);
            out.push((
                format!("`{}` and `{}` swapped", argv[i], argv[i + 1]),
                true,
                v,
            ));
        }
    }
    let tail = n - 2;
    for extra in [
        vec!["--fixture", "/tmp/x"],
        vec!["--nvml-lib", "/tmp/x.so"],
        vec!["--host-root", "/"],
        vec!["--dry-run"],
        vec!["--override-unknown-holders"],
        vec!["--api-claims", "none"],
        vec!["--approved", "pci=0000:3b:00.0"],
        vec!["--timeout-secs", "60"],
    ] {
        let mut v = argv.to_vec();
        for (k, w) in extra.iter().enumerate() {
            v.insert(tail + k, w.to_string());
        }
        out.push((
            format!("{} added before --node-name", extra.join(" ")),
            true,
            v,
        ));
    }
    for (i, w) in argv.iter().enumerate().skip(start + 1) {
        if !w.starts_with("--") {
            // Characters outside every value's grammar (`;` is the approval's own separator).
            for bad in [format!("{w} $(id)"), format!("{w}\n"), format!("{w}`id`")] {
                let mut v = argv.to_vec();
                v[i] = bad;
                out.push((format!("`{w}` with a shell's characters"), false, v));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_exec_the_launcher_builds_is_admitted_and_near_misses_refused() {
    if skipped() {
        return;
    }
    let tb = Testbed::shared();
    let ns = unique("e2e-shapes");
    for u in [User::Reader, User::Operator] {
        tb.probe_namespace(&ns, u);
        tb.bind_reader(u);
    }
    crate::operator::bind_operator(tb, User::Operator);
    let reader = client(tb, User::Reader).await;
    let operator = client(tb, User::Operator).await;
    let shapes = Shapes {
        script: crate::policies::policy_script("deliveryScript"),
        build_sum: sha256_file(&tb.stripped_probe_dir().join("node-probe-linux-amd64")),
    };
    let node = "gpu-node-5.example.internal";
    let roots = [
        None,
        Some("/run/nvidia/driver".parse::<DriverRoot>().unwrap()),
    ];

    // Every shape the launcher sends, by runner: admitted from the role that may send it, refused from the
    // reader where only the operator may.
    let reqs = requests();
    let mut sent: HashSet<Vec<String>> = HashSet::new();
    let mut shapes_sent: HashSet<Vec<String>> = HashSet::new();
    let mut cases: Vec<(Runner, bool, Vec<String>)> = Vec::new();
    for req in &reqs {
        let op = req.operator_only();
        for root in &roots {
            let args = finished(req, root.as_ref(), node);
            for runner in [Runner::Image, Runner::Copy, Runner::Ephemeral] {
                // The ephemeral container is the operator's, for its acts.
                if matches!(runner, Runner::Ephemeral) && !op {
                    continue;
                }
                let argv = shapes.argv(runner, &args);
                sent.insert(argv.clone());
                shapes_sent.insert(shape(&argv));
                cases.push((runner, op, argv));
            }
        }
    }
    let mut refused = Vec::new();
    let mut reader_refused = 0;
    for (runner, op, argv) in &cases {
        let who = if *op { &operator } else { &reader };
        if let Err(m) = admitted(who, &ns, runner.container(), argv).await {
            refused.push(format!("{runner:?} {}: {m}", argv_text(argv, *runner)));
        }
        if *op && !matches!(runner, Runner::Ephemeral) {
            let m = admitted(&reader, &ns, runner.container(), argv)
                .await
                .expect_err(&format!(
                    "the operator's shape admitted from the reader: {}",
                    argv_text(argv, *runner)
                ));
            assert!(m.contains(POLICY), "{m}");
            reader_refused += 1;
        }
    }
    assert!(
        refused.is_empty(),
        "{} of {} shapes the launcher sends are refused:\n{}",
        refused.len(),
        cases.len(),
        refused.join("\n")
    );

    // Near misses, from the operator (the role that may send the most): refused by this policy by name.
    let mut misses = 0;
    let mut admitted_misses = Vec::new();
    for (runner, _, argv) in cases.iter().filter(|(r, _, a)| {
        // Every shape through image delivery; copy delivery's own words are checked by the policy test.
        matches!(r, Runner::Image) && !a.iter().any(|w| w == DriverRoot::FLAG)
    }) {
        for (what, of_shape, miss) in near_misses(argv, 1) {
            if sent.contains(&miss) || (of_shape && shapes_sent.contains(&shape(&miss))) {
                continue;
            }
            misses += 1;
            match admitted(&operator, &ns, runner.container(), &miss).await {
                Ok(()) => admitted_misses.push(format!("{what}: {}", argv_text(&miss, *runner))),
                Err(m) => assert!(m.contains(POLICY), "{what}: refused by another: {m}"),
            }
        }
    }
    assert!(
        admitted_misses.is_empty(),
        "{} of {misses} near misses admitted:\n{}",
        admitted_misses.len(),
        admitted_misses.join("\n")
    );
    eprintln!(
        "exec shapes on 1.{} (resource.k8s.io {}): {} admitted as the launcher sends them ({} requests), \
         {reader_refused} operator shapes refused from the reader, {misses} near misses refused",
        tb.var("TESTBED_K8S_MINOR"),
        tb.var("TESTBED_DRA_VERSION"),
        cases.len(),
        reqs.len()
    );
    assert!(
        cases.len() > 500 && misses > 5000,
        "too few cases: {} {misses}",
        cases.len()
    );
}

/// An argv for a message: the delivery script's text elided.
fn argv_text(argv: &[String], runner: Runner) -> String {
    let skip = if matches!(runner, Runner::Copy) { 3 } else { 0 };
    let mut words: Vec<String> = Vec::new();
    if skip > 0 {
        words.push("sh -c SCRIPT".into());
    }
    words.extend(argv.iter().skip(skip).map(|w| format!("{w:?}")));
    words.join(" ")
}
