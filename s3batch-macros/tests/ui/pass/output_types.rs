mod unit {
    #[s3batch::task]
    async fn nothing(_obj: s3batch::Object) -> Result<(), s3batch::TaskError> {
        Ok(())
    }
}

mod json {
    #[derive(serde::Serialize)]
    struct Summary {
        bytes: u64,
    }

    #[s3batch::task]
    async fn summary(_obj: s3batch::Object) -> Result<Summary, s3batch::TaskError> {
        Ok(Summary { bytes: 3 })
    }
}

mod io_error {
    // Any error convertible into `TaskError` works as the error type.
    #[s3batch::task]
    async fn read(obj: s3batch::Object) -> Result<String, std::io::Error> {
        std::fs::read_to_string(obj.key)
    }
}

fn main() {}
