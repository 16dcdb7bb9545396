//! What the launcher prints about itself: `version`, `completions SHELL` and `man`, all from the clap
//! definition; none needs a cluster or the async runtime.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::cli::Cli;

/// `k8s-gpu-mcp version`.
pub fn version() -> ExitCode {
    println!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"));
    ExitCode::SUCCESS
}

/// `k8s-gpu-mcp completions SHELL`: the shell completion script.
pub fn completions(shell: clap_complete::Shell) -> ExitCode {
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "k8s-gpu-mcp", &mut std::io::stdout());
    ExitCode::SUCCESS
}

/// `k8s-gpu-mcp man`: the man page generated from the clap definition.
pub fn man_page() -> ExitCode {
    let man = clap_mangen::Man::new(Cli::command());
    match man.render(&mut std::io::stdout()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("k8s-gpu-mcp man: {e}");
            ExitCode::from(1)
        }
    }
}
