mod cli;
mod cluster;
mod commands;
mod config;
mod mcp;
mod readiness;

fn main() {
    let cfg = cli::Args.config();
    commands::call::run(&cfg);
    commands::check::run(&cfg);
}
