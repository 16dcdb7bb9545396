#[macro_export]
macro_rules! pick {
    () => {
        1
    };
}
pub fn g() -> u8 {
    crate::b::f()
}
