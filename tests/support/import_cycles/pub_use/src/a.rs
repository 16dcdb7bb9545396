pub use crate::b::Thing;
pub fn f() {}
