use crate::Options;
pub fn run(_: &Options) {}
