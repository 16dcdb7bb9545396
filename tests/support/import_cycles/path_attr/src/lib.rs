#[path = "elsewhere.rs"]
mod a;
#[cfg(test)]
#[path = "../tests.rs"]
mod tests;
