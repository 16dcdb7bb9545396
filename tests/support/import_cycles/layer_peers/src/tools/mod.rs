pub mod clear;
pub mod mark;

pub fn registry() -> [fn() -> String; 2] {
    [mark::render, clear::render]
}
