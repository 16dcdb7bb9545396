use crate::b::Thing;
pub fn f(_: Thing) {}
