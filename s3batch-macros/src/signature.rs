//! Checks that the item is a task function: `async fn name(obj: Object, …) -> Result<…>`,
//! no receiver, no generics. Every mistake is reported at its own token.

use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, ReturnType, Type};

/// The extra parameters' types and the return type, for the trait checks in the expansion.
pub struct Signature<'a> {
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
        Some(FnArg::Typed(first)) => {
            if !is_object(&first.ty) {
                push(syn::Error::new_spanned(
                    &first.ty,
                    "a task's first parameter must be the `Object` to process; extractors (`Client`, `Job`, `UserArgs<T>`, …) come after it",
                ));
            }
        }
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
        ReturnType::Type(_, ty) => {
            if !is_result(ty) {
                push(syn::Error::new_spanned(
                    ty,
                    "a task must return `Result<T, E>` (`T: Serialize`, `E: Into<TaskError>`), e.g. `Result<String, TaskError>`",
                ));
            }
            Some(&**ty)
        }
    };
    (Signature { extractors, output }, errors)
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        Type::Group(g) => last_segment(&g.elem),
        Type::Paren(p) => last_segment(&p.elem),
        _ => None,
    }
}

fn is_object(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "Object" && s.arguments.is_none())
}

fn is_result(ty: &Type) -> bool {
    last_segment(ty).is_some_and(|s| s.ident == "Result")
}
