mod cli;
mod cluster;
mod commands;
mod mcp;
mod probe;

fn main() {
    commands::call::run(cli::Config::default());
}
