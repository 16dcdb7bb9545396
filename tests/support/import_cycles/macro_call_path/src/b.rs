#[macro_export]
macro_rules! shout {
    () => {
        "HEY"
    };
}
pub fn f() -> crate::a::Loud {
    crate::a::Loud
}
