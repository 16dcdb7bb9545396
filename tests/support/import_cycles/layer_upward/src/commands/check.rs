pub fn run() -> bool {
    crate::probe::run(&crate::cluster::Node);
    true
}
