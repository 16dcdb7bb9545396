pub mod call;
pub mod check;
