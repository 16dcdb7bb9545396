pub struct Other;
