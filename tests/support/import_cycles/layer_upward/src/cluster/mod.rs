pub struct Node;

pub fn audit(l: &super::mcp::server::Launcher) {
    let _ = l;
}
