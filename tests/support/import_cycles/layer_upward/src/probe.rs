pub fn run(_: &crate::cluster::Node) {}
