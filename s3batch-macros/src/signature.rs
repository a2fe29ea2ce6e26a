//! Checks the shape of the item: an `async fn` with no receiver and no generics, a first
//! parameter taken by value, a return type. What the types are (`Object`, extractors, a
//! `Result`) is left to the type system: the expansion asserts it at each token, so aliases
//! and renamed imports work. Every mistake is reported at its own token.

use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

/// The parameters' types and the return type, for the trait checks in the expansion.
pub struct Signature<'a> {
    pub object: Option<&'a Type>,
    pub extractors: Vec<&'a Type>,
    pub output: Option<&'a Type>,
}

pub fn check(f: &ItemFn) -> (Signature<'_>, Option<syn::Error>) {
    let mut errors: Option<syn::Error> = None;
    let mut push = |e: syn::Error| match &mut errors {
        Some(all) => all.combine(e),
        None => errors = Some(e),
    };
    let sig = &f.sig;
    if sig.asyncness.is_none() {
        push(syn::Error::new_spanned(
            sig.fn_token,
            "a task must be an `async fn`: `async fn name(obj: Object) -> Result<String, TaskError>`",
        ));
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        push(syn::Error::new_spanned(
            &sig.generics,
            "a task cannot be generic: the generated `main` must name one concrete function",
        ));
    }
    let mut object = None;
    let mut extractors = Vec::new();
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        None => push(syn::Error::new(
            sig.paren_token.span.join(),
            "a task's first parameter must be the `Object` to process: `(obj: Object)`",
        )),
        Some(FnArg::Receiver(r)) => push(syn::Error::new_spanned(
            r,
            "a task cannot take `self`: write a free `async fn`, and put shared state in an extractor (`FromTask`)",
        )),
        // A reference is never the `Object`, whatever it names; say how to take it instead.
        Some(FnArg::Typed(first)) => match &*first.ty {
            Type::Reference(r) => push(syn::Error::new_spanned(
                r,
                "take the `Object` by value: `obj: Object` (each task owns its `Object`)",
            )),
            ty => object = Some(ty),
        },
    }
    for arg in inputs {
        match arg {
            FnArg::Typed(p) => extractors.push(&*p.ty),
            FnArg::Receiver(r) => push(syn::Error::new_spanned(r, "a task cannot take `self`")),
        }
    }
    if extractors.len() > 8 {
        push(syn::Error::new(
            sig.inputs.span(),
            "a task takes at most eight parameters after the `Object`",
        ));
    }
    let output = match &sig.output {
        ReturnType::Default => {
            push(syn::Error::new_spanned(
                &sig.ident,
                "a task must return a `Result`: add `-> Result<String, TaskError>`",
            ));
            None
        }
        ReturnType::Type(_, ty) => Some(&**ty),
    };
    (
        Signature {
            object,
            extractors,
            output,
        },
        errors,
    )
}
