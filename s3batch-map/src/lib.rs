//! # s3batch-map
//!
//! Runs the Distributed Map state of a Step Functions state machine (an ASL definition in
//! JSONPath mode) on this machine: its `ItemReader` reads the items (from an S3 endpoint or a
//! local folder), `ItemSelector` and `ItemBatcher` shape each child's input, and every child
//! calls the Lambda function through one of the `s3batch-job` engine's invokers
//! ([`s3batch_job::LambdaInvoker`] for the Invoke API, e.g. `cargo lambda watch`;
//! [`s3batch_job::RuntimeHost`] for a bootstrap; [`s3batch_job::InProcess`]), with the
//! task's `Retry` and `Catch`, the Map's `MaxConcurrency` and tolerated failures, and
//! `ResultWriter`'s files.
//!
//! It is **not** a Step Functions emulator: it runs one Distributed Map state whose
//! `ItemProcessor` is one Lambda task (plus `Catch` targets that end the child), and refuses
//! every field it does not emulate with an error naming it ([`DefinitionError`]). See
//! `docs/distributed-map-local.md` for the list.
//!
//! ```
//! use s3batch_map::MapDefinition;
//!
//! let e = MapDefinition::parse(r#"{"QueryLanguage": "JSONata", "StartAt": "M", "States": {}}"#, None)
//!     .unwrap_err();
//! assert!(e.to_string().contains("JSONPath mode only"));
//! ```

#![deny(missing_docs)]

pub mod asl;
pub mod journal;
pub mod path;
pub mod reader;
pub mod results;
pub mod run;
pub mod writer;

pub use asl::{DefinitionError, MapDefinition};
pub use journal::JournalError;
pub use reader::{ReadError, Store};
pub use results::{MapResults, ResultsSource};
pub use run::{Counts, MapError, MapRun, MapRunOutcome, MapStatus};
