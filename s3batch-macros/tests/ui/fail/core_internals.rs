// The facade exports an explicit list: the core's envelope parsing, response helpers and
// generated-`main` entry point are not part of `s3batch`'s API.
use s3batch::Event;
use s3batch::Invocation;
use s3batch::response::truncate_result;
use s3batch::runtime::main as serve;

fn main() {}
