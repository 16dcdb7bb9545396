//! Every command on every built-in scenario, run through the real binary, as a reviewed snapshot under
//! `snapshots/probe/` (`<command>__<scenario>.snap`). The output is deterministic: scenarios fix the clock.

mod util;

use util::{TestCommand, commands};

#[test]
fn every_command_on_every_scenario() {
    let scenarios = util::scenarios();
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
                let out = TestCommand::new()
                    .env("NODE_PROBE_PRETTY", "1")
                    .args([cmd, "--simulate", scenario.as_str()])
                    .run();
                out.success();
                insta::assert_snapshot!(format!("{cmd}__{scenario}"), out.stdout);
            }
        }
    });
}
