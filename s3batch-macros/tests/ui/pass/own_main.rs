use s3batch::{Handler, Object, Options, TaskError};

#[s3batch::task(main = false)]
async fn own(obj: Object) -> Result<String, TaskError> {
    Ok(obj.key)
}

// With `main = false` the function is served from the user's own `main` (here it only builds
// a handler; a real one would call `s3batch::run(own, options).await`).
#[tokio::main]
async fn main() {
    let handler = Handler::new(own, Options::builder().concurrency(2).build()).await.unwrap();
    let event = s3batch::testing::EventBuilder::v1().object("b", "a b");
    let response = handler.handle(serde_json::from_value(event.build()).unwrap(), &Default::default()).await.unwrap();
    assert_eq!(response.results[0].result_string, "a b");
    let _serve = s3batch::run(own, Options::new());
}
