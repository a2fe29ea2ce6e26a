//! The generated code: the function as written, a check per parameter, for the return type
//! and for the future (so trait errors land on the user's tokens), and a `main` that calls
//! the runtime once those checks pass.

use crate::options::Options;
use crate::signature::{self, Signature};
use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
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
    let checks = checks(&f, &sig, &krate);
    if !options.generates_main() {
        return quote! {
            #f
            const _: () = { #checks };
        };
    }
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
    if let Some(e) = &options.map_key_encoding {
        calls.push(quote!(.map_key_encoding(#krate::__private::KeyEncoding::#e)));
    }
    if let Some(p) = &options.map_failure {
        calls.push(quote!(.map_failure(#krate::__private::MapFailure::#p)));
    }
    if let Some(ns) = &options.metrics_namespace {
        calls.push(quote!(.metrics_namespace(#ns)));
    }
    if let Some(s) = &options.metrics_service {
        calls.push(quote!(.metrics_service(#s)));
    }
    if let Some(on) = &options.metrics_job_dimension {
        calls.push(quote!(.metrics_job_dimension(#on)));
    }
    // The checks are the const argument of `Checked`, so a failed one silences the `TaskFn`
    // bound here instead of repeating itself as "is not a task function". When they pass and
    // the bound still fails, that one error is at the function's name.
    let krate = respan(krate, name.span());
    let served = quote_spanned! {name.span()=>
        #krate::__private::Serve::main(
            #krate::__private::Checked::<_, { #checks true }>(#name),
            #krate::__private::Options::builder() #(#calls)* .build(),
        )
    };
    quote! {
        #f
        fn main() -> ::core::result::Result<(), #krate::__private::BoxError> {
            #served
        }
    }
}

fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut t| {
            t.set_span(span);
            t
        })
        .collect()
}

/// One assertion per part of the signature, each spanned at the user's token so that rustc's
/// error lands there: the first parameter is the `Object`, the others are extractors, the
/// return type is a task return, and the future is `Send`.
fn checks(f: &ItemFn, sig: &Signature, krate: &TokenStream) -> TokenStream {
    let object = sig.object.map(|ty| {
        quote_spanned! {ty.span()=>
            #krate::__private::assert_object::<#ty>();
        }
    });
    let extractors = sig.extractors.iter().map(|ty| {
        quote_spanned! {ty.span()=>
            #krate::__private::assert_from_task::<#ty>();
        }
    });
    let output = sig.output.map(|ty| {
        quote_spanned! {ty.span()=>
            #krate::__private::assert_task_return::<#ty>();
        }
    });
    // A closure that is never called, so the future is only named, never built.
    let name = &f.sig.ident;
    let types = sig.object.iter().chain(&sig.extractors);
    let args: Vec<_> = (0..sig.extractors.len() + 1)
        .map(|i| format_ident!("__s3batch_arg{i}"))
        .collect();
    let send = quote_spanned! {name.span()=>
        let _ = |#(#args: #types),*| #krate::__private::assert_send(#name(#(#args),*));
    };
    quote! {
        #object
        #(#extractors)*
        #output
        #send
    }
}
