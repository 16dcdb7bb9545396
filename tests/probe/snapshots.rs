//! Every command on every built-in scenario, run through the real binary, as a reviewed snapshot under
//! `snapshots/probe/` (`<command>__<scenario>.snap`). The output is deterministic: scenarios fix the clock.

#[path = "../support/node_probe.rs"]
mod node_probe;

use node_probe::NodeProbe;

#[test]
fn every_command_on_every_scenario() {
    let scenarios = node_probe::scenarios();
    let builtin: Vec<&str> = gpu_diag::scenarios::BUILTIN
        .iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(
        scenarios, builtin,
        "the binary lists the library's scenarios"
    );
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(concat!(env!("CARGO_MANIFEST_DIR"), "/../snapshots/probe"));
    settings.set_prepend_module_to_snapshot(false);
    settings.bind(|| {
        for scenario in &scenarios {
            for cmd in commands() {
                let out = NodeProbe::new()
                    .env("NODE_PROBE_PRETTY", "1")
                    .args([cmd, "--simulate", scenario.as_str()])
                    .run();
                out.success();
                insta::assert_snapshot!(format!("{cmd}__{scenario}"), out.stdout);
            }
        }
    });
}

/// The commands whose reports are snapshotted per scenario, from gpu-diag's list: `xid`, `allocation` and
/// `workload` have their own suites (xid, alloc, the launcher's workload diagnosis).
fn commands() -> Vec<&'static str> {
    use gpu_diag::command::Command;
    Command::ALL
        .iter()
        .filter(|c| !matches!(c, Command::Xid | Command::Allocation | Command::Workload))
        .map(|c| c.name())
        .collect()
}
