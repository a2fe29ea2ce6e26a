//! The JSONPath subset of Amazon States Language (JSONPath mode) that the runner evaluates:
//! reference paths (`$`, `$.a.b`, `$.a[0]`, `$['a b']`), the context object's
//! `$$.Map.Item.Value[...]` and `$$.Map.Item.Index`, and payload templates (objects whose
//! `"name.$"` keys take a path's value). Anything else (filters, wildcards, slices, other
//! context fields, intrinsic functions such as `States.Format(...)`) is an error naming it.

use serde_json::{Map, Value};
use std::fmt;

/// A path that cannot be evaluated locally, or a template that uses one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct PathError {
    /// Where the path was written (e.g. `ItemSelector.Key.$`).
    pub field: String,
    /// What is wrong with it.
    pub problem: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Field(String),
    Index(usize),
}

/// Where a path starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Root {
    /// `$`: the state's input.
    Input,
    /// `$$.Map.Item.Value`: the item being selected.
    ItemValue,
    /// `$$.Map.Item.Index`: its index.
    ItemIndex,
}

/// A parsed reference path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path {
    text: String,
    root: Root,
    steps: Vec<Step>,
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// What a path is evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// `$`.
    pub input: &'a Value,
    /// `$$.Map.Item.Value` and `$$.Map.Item.Index`, inside `ItemSelector` only.
    pub item: Option<(&'a Value, u64)>,
}

impl Path {
    /// Parses `text`; `field` names where it was written, for the error.
    pub fn parse(text: &str, field: &str, context_allowed: bool) -> Result<Self, PathError> {
        let err = |problem: String| PathError {
            field: field.to_owned(),
            problem,
        };
        if text.starts_with("States.") {
            return Err(err(format!(
                "intrinsic functions ({text}) are not emulated by the local runner"
            )));
        }
        let (root, rest) = if let Some(rest) = text.strip_prefix("$$") {
            if !context_allowed {
                return Err(err(format!(
                    "{text}: the context object ($$) is emulated only in ItemSelector \
                     ($$.Map.Item.Value and $$.Map.Item.Index)"
                )));
            }
            if let Some(r) = rest.strip_prefix(".Map.Item.Value") {
                (Root::ItemValue, r)
            } else if rest == ".Map.Item.Index" {
                (Root::ItemIndex, "")
            } else {
                return Err(err(format!(
                    "{text}: of the context object only $$.Map.Item.Value and \
                     $$.Map.Item.Index are emulated"
                )));
            }
        } else if let Some(rest) = text.strip_prefix('$') {
            (Root::Input, rest)
        } else {
            return Err(err(format!(
                "{text:?} is not a path (a path starts with $)"
            )));
        };
        let steps = parse_steps(rest).map_err(|p| err(format!("{text}: {p}")))?;
        Ok(Path {
            text: text.to_owned(),
            root,
            steps,
        })
    }

    /// The value at this path, or `None` when it is not there.
    pub fn get(&self, scope: Scope<'_>) -> Option<Value> {
        let start = match self.root {
            Root::Input => scope.input,
            Root::ItemValue => scope.item?.0,
            Root::ItemIndex => return Some(Value::from(scope.item?.1)),
        };
        let mut at = start;
        for step in &self.steps {
            at = match (step, at) {
                (Step::Field(name), Value::Object(m)) => m.get(name)?,
                (Step::Index(i), Value::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(at.clone())
    }

    /// True for `$` alone.
    pub fn is_root(&self) -> bool {
        self.root == Root::Input && self.steps.is_empty()
    }
}

fn parse_steps(mut rest: &str) -> Result<Vec<Step>, String> {
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("['") {
            let end = r
                .find("']")
                .ok_or_else(|| "an unclosed ['…'] step".to_owned())?;
            steps.push(Step::Field(r[..end].to_owned()));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or_else(|| "an unclosed [ step".to_owned())?;
            let index = r[..end].parse::<usize>().map_err(|_| {
                format!(
                    "[{}]: only a field name or an array index is emulated (no filters, \
                     wildcards or slices)",
                    &r[..end]
                )
            })?;
            steps.push(Step::Index(index));
            rest = &r[end + 1..];
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let name = &r[..end];
            if name.is_empty() || name == "*" || name.starts_with('.') {
                return Err(format!(
                    "{name:?}: only a field name is emulated (no wildcards or deep scans)"
                ));
            }
            steps.push(Step::Field(name.to_owned()));
            rest = &r[end..];
        } else {
            return Err(format!("unexpected {rest:?}"));
        }
    }
    Ok(steps)
}

/// A payload template: JSON whose `"name.$"` keys take the value at a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Template {
    /// Written as is.
    Literal(Value),
    /// An object; its fields in order.
    Object(Vec<(String, Template)>),
    /// An array of templates.
    Array(Vec<Template>),
    /// The value at a path.
    Path(Path),
}

impl Template {
    /// Compiles `value`, written at `field`; `context_allowed` permits `$$.Map.Item.*`.
    pub fn compile(value: &Value, field: &str, context_allowed: bool) -> Result<Self, PathError> {
        Ok(match value {
            Value::Object(map) => {
                let mut fields = Vec::with_capacity(map.len());
                for (key, v) in map {
                    let at = format!("{field}.{key}");
                    if let Some(name) = key.strip_suffix(".$") {
                        let Value::String(text) = v else {
                            return Err(PathError {
                                field: at,
                                problem: "a \".$\" field takes a path string".into(),
                            });
                        };
                        fields.push((
                            name.to_owned(),
                            Template::Path(Path::parse(text, &at, context_allowed)?),
                        ));
                    } else {
                        fields.push((key.clone(), Template::compile(v, &at, context_allowed)?));
                    }
                }
                Template::Object(fields)
            }
            Value::Array(items) => Template::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| Template::compile(v, &format!("{field}[{i}]"), context_allowed))
                    .collect::<Result<_, _>>()?,
            ),
            other => Template::Literal(other.clone()),
        })
    }

    /// The value for `scope`; a path that is not there is an error naming it (Step Functions'
    /// `States.Runtime`).
    pub fn eval(&self, scope: Scope<'_>) -> Result<Value, PathNotFound> {
        Ok(match self {
            Template::Literal(v) => v.clone(),
            Template::Path(p) => p.get(scope).ok_or_else(|| PathNotFound {
                path: p.to_string(),
            })?,
            Template::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|t| t.eval(scope))
                    .collect::<Result<_, _>>()?,
            ),
            Template::Object(fields) => {
                let mut map = Map::with_capacity(fields.len());
                for (k, t) in fields {
                    map.insert(k.clone(), t.eval(scope)?);
                }
                Value::Object(map)
            }
        })
    }
}

/// A path of a template that names nothing in the input it was evaluated over.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the JSONPath '{path}' could not be found in the input")]
pub struct PathNotFound {
    /// The path, as written in the definition.
    pub path: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_reach_fields_indexes_and_the_item() {
        let input = json!({"a": {"b c": [10, {"d": "x"}]}, "Bucket": "photos"});
        let item = json!({"Key": "k1"});
        let scope = Scope {
            input: &input,
            item: Some((&item, 7)),
        };
        let get = |p: &str| Path::parse(p, "f", true).unwrap().get(scope);
        assert_eq!(get("$"), Some(input.clone()));
        assert_eq!(get("$.Bucket"), Some(json!("photos")));
        assert_eq!(get("$.a['b c'][1].d"), Some(json!("x")));
        assert_eq!(get("$.a['b c'][5]"), None);
        assert_eq!(get("$$.Map.Item.Value"), Some(item.clone()));
        assert_eq!(get("$$.Map.Item.Value.Key"), Some(json!("k1")));
        assert_eq!(get("$$.Map.Item.Index"), Some(json!(7)));
    }

    #[test]
    fn unsupported_paths_are_errors_naming_them() {
        for (text, needle) in [
            ("$.a[*]", "[*]"),
            ("$..a", "deep scans"),
            ("$.a[?(@.b)]", "filters"),
            ("$$.Execution.Id", "$$.Execution.Id"),
            ("States.Format('{}', $.a)", "intrinsic"),
            ("a.b", "starts with $"),
        ] {
            let e = Path::parse(text, "ItemSelector.x.$", true).unwrap_err();
            assert_eq!(e.field, "ItemSelector.x.$");
            assert!(e.problem.contains(needle), "{text}: {e}");
        }
        let e = Path::parse("$$.Map.Item.Value", "Parameters.Payload.$", false).unwrap_err();
        assert!(e.problem.contains("only in ItemSelector"), "{e}");
    }

    #[test]
    fn templates_keep_literal_keys_and_evaluate_dollar_keys() {
        let t = Template::compile(
            &json!({
                "Bucket.$": "$.Bucket",
                "Key.$": "$$.Map.Item.Value.Key",
                "Index.$": "$$.Map.Item.Index",
                "Literal": "$.Bucket",
                "Nested": {"Deep.$": "$.a", "n": 1},
                "List": [{"x.$": "$.a"}, 2]
            }),
            "ItemSelector",
            true,
        )
        .unwrap();
        let input = json!({"Bucket": "b", "a": true});
        let item = json!({"Key": "k"});
        let out = t
            .eval(Scope {
                input: &input,
                item: Some((&item, 3)),
            })
            .unwrap();
        assert_eq!(
            out,
            json!({"Bucket": "b", "Key": "k", "Index": 3, "Literal": "$.Bucket",
                   "Nested": {"Deep": true, "n": 1}, "List": [{"x": true}, 2]})
        );
        let missing = Template::compile(&json!({"x.$": "$.nope"}), "P", false).unwrap();
        let e = missing
            .eval(Scope {
                input: &input,
                item: None,
            })
            .unwrap_err();
        assert_eq!(
            e,
            PathNotFound {
                path: "$.nope".into()
            }
        );
        assert_eq!(
            e.to_string(),
            "the JSONPath '$.nope' could not be found in the input"
        );
    }
}
