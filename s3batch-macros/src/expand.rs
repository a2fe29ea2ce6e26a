//! The generated code: the function as written, a check per parameter and for the return
//! type (so trait errors land on the user's tokens), and a `main` that calls the runtime.

use crate::options::Options;
use crate::signature;
use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::ItemFn;

pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    let (options, option_errors) = Options::parse(args);
    let f: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(_) => {
            let e = syn::Error::new_spanned(&item, "#[s3batch::task] goes on an `async fn`")
                .to_compile_error();
            let main = options.generates_main().then(|| {
                quote!(
                    fn main() {}
                )
            });
            return quote!(#item #e #main);
        }
    };
    let (sig, sig_errors) = signature::check(&f);
    let errors = match (option_errors, sig_errors) {
        (Some(mut a), Some(b)) => {
            a.combine(b);
            Some(a)
        }
        (a, b) => a.or(b),
    };
    if let Some(e) = errors {
        // Keep the function so the rest of the crate (and the IDE) still sees it, and an empty
        // `main` so the only errors shown are the ones above, not a missing entry point.
        let e = e.to_compile_error();
        let main = options.generates_main().then(|| {
            quote!(
                fn main() {}
            )
        });
        return quote!(#f #e #main);
    }
    let krate = options.krate();
    let checks = sig.extractors.iter().map(|ty| {
        quote_spanned! {ty.span()=>
            const _: () = #krate::__private::assert_from_task::<#ty>();
        }
    });
    let output_check = sig.output.map(|ty| {
        quote_spanned! {ty.span()=>
            const _: () = #krate::__private::assert_task_return::<#ty>();
        }
    });
    let main = options.generates_main().then(|| {
        let name = &f.sig.ident;
        let mut calls = Vec::new();
        if let Some(code) = &options.treat_missing_keys_as {
            calls.push(quote!(.treat_missing_keys_as(#krate::__private::ResultCode::#code)));
        }
        if let Some(n) = &options.concurrency {
            calls.push(quote!(.concurrency(#n)));
        }
        if let Some(ms) = &options.deadline_margin_ms {
            calls.push(quote!(.deadline_margin(::core::time::Duration::from_millis(#ms))));
        }
        if let Some(n) = &options.max_result_len {
            calls.push(quote!(.max_result_len(#n)));
        }
        quote! {
            fn main() -> ::core::result::Result<(), #krate::__private::BoxError> {
                #krate::__private::main(#name, #krate::__private::Options::new() #(#calls)*)
            }
        }
    });
    quote! {
        #f
        #(#checks)*
        #output_check
        #main
    }
}
