//! The attribute's options: `#[s3batch::task(concurrency = 8, main = false, …)]`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, LitStr, Path, Token};

/// What the options say; `None` means "the default".
#[derive(Default)]
pub struct Options {
    pub treat_missing_keys_as: Option<Ident>,
    pub concurrency: Option<Expr>,
    pub deadline_margin_ms: Option<Expr>,
    pub max_result_len: Option<Expr>,
    /// `Some(false)` when the user opted out of the generated `main`, with its span.
    pub main: Option<(bool, Span)>,
    pub krate: Option<Path>,
}

const KNOWN: [&str; 6] = [
    "treat_missing_keys_as",
    "concurrency",
    "deadline_margin_ms",
    "max_result_len",
    "main",
    "crate",
];
const RESULT_CODES: [&str; 3] = ["Succeeded", "TemporaryFailure", "PermanentFailure"];

struct Pair {
    name: Ident,
    value: Expr,
}

impl Parse for Pair {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        // `crate` is a keyword, so read any identifier.
        let name = input.call(syn::ext::IdentExt::parse_any)?;
        input.parse::<Token![=]>()?;
        Ok(Pair {
            name,
            value: input.parse()?,
        })
    }
}

impl Options {
    /// Reads every option, collecting all the mistakes instead of stopping at the first.
    pub fn parse(args: TokenStream) -> (Options, Option<syn::Error>) {
        let mut out = Options::default();
        let mut errors: Option<syn::Error> = None;
        let mut push = |e: syn::Error| match &mut errors {
            Some(all) => all.combine(e),
            None => errors = Some(e),
        };
        let pairs =
            match syn::parse::Parser::parse2(Punctuated::<Pair, Token![,]>::parse_terminated, args)
            {
                Ok(p) => p,
                Err(e) => {
                    push(syn::Error::new(
                        e.span(),
                        format!("{e}; expected options as `name = value`"),
                    ));
                    return (out, errors);
                }
            };
        for Pair { name, value } in pairs {
            let key = name.to_string();
            let dup = syn::Error::new_spanned(&name, format!("duplicate option `{key}`"));
            let result = match key.as_str() {
                "treat_missing_keys_as" => {
                    set(&mut out.treat_missing_keys_as, result_code(&value), dup)
                }
                "concurrency" => set(&mut out.concurrency, Ok(value), dup),
                "deadline_margin_ms" => set(&mut out.deadline_margin_ms, Ok(value), dup),
                "max_result_len" => set(&mut out.max_result_len, Ok(value), dup),
                "main" => set(
                    &mut out.main,
                    bool_lit(&value).map(|b| (b, name.span())),
                    dup,
                ),
                "crate" => set(&mut out.krate, lit_str(&value).and_then(|s| s.parse()), dup),
                _ => Err(syn::Error::new_spanned(&name, unknown(&key))),
            };
            if let Err(e) = result {
                push(e);
            }
        }
        if let Some((false, span)) = out.main {
            if out.treat_missing_keys_as.is_some()
                || out.concurrency.is_some()
                || out.deadline_margin_ms.is_some()
                || out.max_result_len.is_some()
            {
                push(syn::Error::new(
                    span,
                    "with `main = false` no `main` is generated, so runtime options have nothing to apply to; pass an `s3batch::Options` to `s3batch::run` instead",
                ));
            }
        }
        (out, errors)
    }

    /// The path the generated code names the runtime by.
    pub fn krate(&self) -> TokenStream {
        match &self.krate {
            Some(p) => quote!(#p),
            None => quote!(::s3batch),
        }
    }

    pub fn generates_main(&self) -> bool {
        self.main.is_none_or(|(b, _)| b)
    }
}

/// "unknown option `concurency`; did you mean `concurrency`?", or the list of options when
/// none is close.
fn unknown(key: &str) -> String {
    let closest = KNOWN
        .iter()
        .map(|known| (strsim::damerau_levenshtein(key, known), known))
        .min();
    match closest {
        // A third of the name mistyped is still a typo; beyond that, list every option.
        Some((distance, known)) if distance <= known.len().max(3) / 3 => {
            format!("unknown option `{key}`; did you mean `{known}`?")
        }
        _ => format!(
            "unknown option `{key}`; expected one of {}",
            KNOWN.map(|k| format!("`{k}`")).join(", ")
        ),
    }
}

fn set<T>(slot: &mut Option<T>, value: syn::Result<T>, duplicate: syn::Error) -> syn::Result<()> {
    if slot.is_some() {
        return Err(duplicate);
    }
    *slot = Some(value?);
    Ok(())
}

fn lit_str(value: &Expr) -> syn::Result<LitStr> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.clone()),
        other => Err(syn::Error::new_spanned(other, "expected a string literal")),
    }
}

fn bool_lit(value: &Expr) -> syn::Result<bool> {
    match value {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.value),
        other => Err(syn::Error::new_spanned(other, "expected `true` or `false`")),
    }
}

fn result_code(value: &Expr) -> syn::Result<Ident> {
    let s = lit_str(value)?;
    if RESULT_CODES.contains(&s.value().as_str()) {
        Ok(Ident::new(&s.value(), s.span()))
    } else {
        Err(syn::Error::new_spanned(
            &s,
            "expected \"Succeeded\", \"TemporaryFailure\" or \"PermanentFailure\"",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(args: TokenStream) -> String {
        Options::parse(args).1.expect("an error").to_string()
    }

    #[test]
    fn a_misspelt_option_gets_a_suggestion() {
        assert_eq!(
            error(quote!(concurency = 8)),
            "unknown option `concurency`; did you mean `concurrency`?"
        );
        assert_eq!(
            error(quote!(deadline_margin = 8)),
            "unknown option `deadline_margin`; did you mean `deadline_margin_ms`?"
        );
        assert_eq!(
            error(quote!(mian = false)),
            "unknown option `mian`; did you mean `main`?"
        );
    }

    #[test]
    fn an_unrelated_option_gets_the_list() {
        assert_eq!(
            error(quote!(timeout = 8)),
            "unknown option `timeout`; expected one of `treat_missing_keys_as`, `concurrency`, `deadline_margin_ms`, `max_result_len`, `main`, `crate`"
        );
    }
}
