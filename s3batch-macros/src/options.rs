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
    /// `map_key_encoding = "raw" | "url"`: the variant of `KeyEncoding`.
    pub map_key_encoding: Option<Ident>,
    /// `map_failure = "report" | "fail_batch"`: the variant of `MapFailure`.
    pub map_failure: Option<Ident>,
    /// `metrics_namespace = "…"`, `metrics_service = "…"`, `metrics_job_dimension = bool`.
    pub metrics_namespace: Option<LitStr>,
    pub metrics_service: Option<LitStr>,
    pub metrics_job_dimension: Option<bool>,
    /// `Some(false)` when the user opted out of the generated `main`, with its span.
    pub main: Option<(bool, Span)>,
    pub krate: Option<Path>,
}

const KNOWN: [&str; 11] = [
    "treat_missing_keys_as",
    "concurrency",
    "deadline_margin_ms",
    "max_result_len",
    "map_key_encoding",
    "map_failure",
    "metrics_namespace",
    "metrics_service",
    "metrics_job_dimension",
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
                "map_key_encoding" => set(
                    &mut out.map_key_encoding,
                    variant(&value, &[("raw", "Raw"), ("url", "Url")]),
                    dup,
                ),
                "map_failure" => set(
                    &mut out.map_failure,
                    variant(&value, &[("report", "Report"), ("fail_batch", "FailBatch")]),
                    dup,
                ),
                "metrics_namespace" => set(
                    &mut out.metrics_namespace,
                    lit_str(&value).and_then(namespace),
                    dup,
                ),
                "metrics_service" => set(
                    &mut out.metrics_service,
                    lit_str(&value).and_then(service),
                    dup,
                ),
                "metrics_job_dimension" => {
                    set(&mut out.metrics_job_dimension, bool_lit(&value), dup)
                }
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
                || out.map_key_encoding.is_some()
                || out.map_failure.is_some()
                || out.metrics_namespace.is_some()
                || out.metrics_service.is_some()
                || out.metrics_job_dimension.is_some()
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

/// A CloudWatch namespace (CloudWatch's rules, checked again by `MetricsConfig::new`).
fn namespace(s: LitStr) -> syn::Result<LitStr> {
    let v = s.value();
    let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_/#: ".contains(c);
    if v.trim().is_empty() || v.len() > 255 || !v.chars().all(allowed) || v.starts_with("AWS/") {
        return Err(syn::Error::new_spanned(
            &s,
            "a CloudWatch namespace is 1 to 255 characters of A-Z a-z 0-9 . - _ / # : and space, not only spaces, and does not start with `AWS/`",
        ));
    }
    Ok(s)
}

/// A dimension value: 1 to 1,024 bytes.
fn service(s: LitStr) -> syn::Result<LitStr> {
    let v = s.value();
    if v.is_empty() || v.len() > 1024 {
        return Err(syn::Error::new_spanned(
            &s,
            "a metrics service name is 1 to 1024 bytes long",
        ));
    }
    Ok(s)
}

/// A string literal naming one of `choices` (its text, then its enum variant): the variant.
fn variant(value: &Expr, choices: &[(&str, &str)]) -> syn::Result<Ident> {
    let s = lit_str(value)?;
    match choices.iter().find(|(text, _)| *text == s.value()) {
        Some((_, v)) => Ok(Ident::new(v, s.span())),
        None => Err(syn::Error::new_spanned(
            &s,
            format!(
                "expected {}",
                choices
                    .iter()
                    .map(|(t, _)| format!("{t:?}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            ),
        )),
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

    /// The Distributed Map options take their listed strings only, and are runtime options
    /// (refused beside `main = false`).
    #[test]
    fn map_options_take_their_names() {
        let (o, e) = Options::parse(quote!(map_failure = "report", map_key_encoding = "url"));
        assert!(e.is_none());
        assert_eq!(o.map_failure.unwrap().to_string(), "Report");
        assert_eq!(o.map_key_encoding.unwrap().to_string(), "Url");
        let (o, _) = Options::parse(quote!(map_failure = "fail_batch", map_key_encoding = "raw"));
        assert_eq!(o.map_failure.unwrap().to_string(), "FailBatch");
        assert_eq!(o.map_key_encoding.unwrap().to_string(), "Raw");
        assert_eq!(
            error(quote!(map_failure = "Report")),
            "expected \"report\" or \"fail_batch\""
        );
        assert!(error(quote!(main = false, map_key_encoding = "url"))
            .starts_with("with `main = false` no `main` is generated"));
    }

    #[test]
    fn an_unrelated_option_gets_the_list() {
        assert_eq!(
            error(quote!(timeout = 8)),
            "unknown option `timeout`; expected one of `treat_missing_keys_as`, `concurrency`, `deadline_margin_ms`, `max_result_len`, `map_key_encoding`, `map_failure`, `metrics_namespace`, `metrics_service`, `metrics_job_dimension`, `main`, `crate`"
        );
    }
}
