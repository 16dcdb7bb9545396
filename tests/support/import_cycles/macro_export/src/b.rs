use crate::pick;
pub fn f() -> u8 {
    pick!()
}
