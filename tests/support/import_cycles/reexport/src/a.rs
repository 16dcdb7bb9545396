pub fn x() {}
pub fn y(_: crate::m::Item) {}
