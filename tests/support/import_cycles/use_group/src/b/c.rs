use super::super::{a::Top};
pub struct Deep;
pub fn f(_: Top) {}
