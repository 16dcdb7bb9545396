mod framework;
mod tools;
