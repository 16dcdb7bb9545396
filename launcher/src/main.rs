//! `k8s-gpu-mcp`: the MCP server (placeholder until the launcher lands).

#[allow(dead_code)]
mod cluster;
#[allow(dead_code)]
mod k8s;
#[allow(dead_code)]
mod runner;

fn main() {
    eprintln!("k8s-gpu-mcp: not implemented yet");
    std::process::exit(1);
}
