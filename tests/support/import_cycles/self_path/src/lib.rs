mod m;
