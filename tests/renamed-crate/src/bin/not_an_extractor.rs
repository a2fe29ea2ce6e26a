//! Does not compile, on purpose: a task parameter that is no extractor, under the facade's
//! default features. Built only with the feature `not-an-extractor`, by
//! `tests/renamed_crate.rs`, which checks that the error lists the extractors these features
//! give (`aws_sdk_s3::Client` among them).

use batch::{Object, TaskError};

#[batch::task(crate = "batch")]
async fn takes_string(obj: Object, name: String) -> Result<String, TaskError> {
    Ok(format!("{} {name}", obj.key))
}
