use crate::{b::{self as bee, c::{Deep}}, other::X};
pub struct Top(Deep);
