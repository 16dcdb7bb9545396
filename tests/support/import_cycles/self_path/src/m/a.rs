pub fn f(_: &super::Options) {}
