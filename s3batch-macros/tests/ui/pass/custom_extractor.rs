mod lambda {
    use s3batch::{BoxError, FromTask, Object, TaskError, TaskParts};
    use std::sync::Arc;

    struct Config(Arc<String>);

    impl FromTask for Config {
        type State = Arc<String>;
        async fn init() -> Result<Self::State, BoxError> {
            Ok(Arc::new("from cold start".to_string()))
        }
        fn from_task(state: &Self::State, _: &TaskParts<'_>) -> Result<Self, TaskError> {
            Ok(Config(state.clone()))
        }
    }

    #[s3batch::task]
    async fn with_config(obj: Object, config: Config) -> Result<String, TaskError> {
        Ok(format!("{} {}", obj.key, config.0))
    }
}

fn main() {}
