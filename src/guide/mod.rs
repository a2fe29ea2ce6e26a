//! The task author's guide, one page per topic; the [crate root](crate) is the overview and
//! its index.
//!
//! These modules hold documentation only, no items. Each page is a Markdown file next to
//! this one (`src/guide/*.md`), so it reads the same in `cargo doc -p s3batch --open` and in
//! the repository, and every example in it is a doc test.

#[doc = include_str!("errors.md")]
pub mod errors {}

#[doc = include_str!("extractors.md")]
pub mod extractors {}

#[doc = include_str!("options.md")]
pub mod options {}

#[doc = include_str!("features.md")]
pub mod features {}

#[doc = include_str!("logging.md")]
pub mod logging {}

#[doc = include_str!("testing.md")]
pub mod testing {}
