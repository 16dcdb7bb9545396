mod a;
mod b;
mod c;
macro_rules! twice {
    ($e:expr) => {
        ($e, $e)
    };
}
