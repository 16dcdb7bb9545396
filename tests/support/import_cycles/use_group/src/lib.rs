mod a;
mod b;
mod other;
