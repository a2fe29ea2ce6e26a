#[s3batch::task]
struct NotAFunction;
