mod a;
mod m;
