//! The `#[s3batch::task]` attribute. Use it through the `s3batch` crate.
//!
//! The pipeline is in the file names: `options.rs` reads the attribute's options,
//! `signature.rs` checks the function, `expand.rs` writes the generated code.

#![deny(missing_docs)]

use proc_macro::TokenStream;

mod expand;
mod options;
mod signature;

/// Turns `async fn name(obj: Object, …) -> Result<T, E>` into an S3 Batch Operations Lambda.
/// See the `s3batch` crate for the options and the guide.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::task(args.into(), item.into()).into()
}
