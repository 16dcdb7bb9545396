pub struct X;
macro_rules! call_b {
    () => {
        $crate::b::f()
    };
}
pub fn g() {
    call_b!();
}
