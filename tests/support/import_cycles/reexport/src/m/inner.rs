pub struct Item;
pub fn f() {
    crate::a::x();
}
