//! A job's user arguments (`Operation/LambdaInvoke/UserArguments`), checked once against
//! S3's rules for every place that takes them: `cargo s3batch run`/`submit`'s `--user-arg`,
//! [`LocalJob::user_argument`](crate::LocalJob::user_argument), and in `s3batch-control`
//! the `submit` client (`s3batch_control::submit::create`) and `cargo s3batch serve`'s
//! `CreateJob`.
//!
//! S3's limits (the S3 Control API reference): a map of 1 to 10 entries, each key 1 to 64
//! characters, each value at most 1,024 characters, and only with invocation schema 2.0.
//! Lengths are counted in characters (Unicode scalar values, [`str::chars`]), as the API
//! reference's "length constraints" and Smithy's `@length` count a string, not in UTF-8
//! bytes. A name given twice is refused rather than one of its values being kept silently.
//! No arguments at all is allowed (the job has none).
//!
//! ```
//! use s3batch_job::{Schema, UserArguments, UserArgumentsError};
//!
//! let args = UserArguments::for_schema([("destBucket", "archive")], Schema::V2).unwrap();
//! assert_eq!(args.get("destBucket"), Some("archive"));
//!
//! let err = UserArguments::new([("k", "a"), ("k", "b")]).unwrap_err();
//! assert_eq!(err, UserArgumentsError::Repeated { name: "k".into() });
//! let err = UserArguments::for_schema([("k", "v")], Schema::V1).unwrap_err();
//! assert_eq!(err, UserArgumentsError::NeedsSchema2);
//! ```

use crate::Schema;
use serde::Serialize;
use std::collections::{btree_map, BTreeMap};

/// At most this many user arguments.
pub const MAX_ENTRIES: usize = 10;
/// A user argument's name has at most this many characters (and at least 1).
pub const MAX_NAME_CHARS: usize = 64;
/// A user argument's value has at most this many characters.
pub const MAX_VALUE_CHARS: usize = 1024;

/// Why a set of user arguments breaks S3's rules; the message names the argument and the
/// limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserArgumentsError {
    /// The same name was given more than once.
    #[error("user argument {name:?} is given more than once; give each name once")]
    Repeated {
        /// The repeated name.
        name: String,
    },
    /// An empty name.
    #[error("a user argument has an empty name; names are 1 to {MAX_NAME_CHARS} characters")]
    EmptyName,
    /// A name longer than [`MAX_NAME_CHARS`].
    #[error(
        "user argument name {name:?} has {chars} characters; names are 1 to {MAX_NAME_CHARS} characters"
    )]
    NameTooLong {
        /// The name.
        name: String,
        /// Its length in characters.
        chars: usize,
    },
    /// A value longer than [`MAX_VALUE_CHARS`].
    #[error(
        "user argument {name:?} has a value of {chars} characters; values are at most {MAX_VALUE_CHARS} characters"
    )]
    ValueTooLong {
        /// The argument's name.
        name: String,
        /// The value's length in characters.
        chars: usize,
    },
    /// More than [`MAX_ENTRIES`] arguments.
    #[error("{count} user arguments; S3 allows at most {MAX_ENTRIES}")]
    TooMany {
        /// How many were given.
        count: usize,
    },
    /// Arguments with invocation schema 1.0, which has no `userArguments`.
    #[error("user arguments need invocation schema 2.0 (S3 rejects them with 1.0)")]
    NeedsSchema2,
}

/// User arguments that keep S3's limits (see the [module](self)): distinct names, sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct UserArguments(BTreeMap<String, String>);

impl UserArguments {
    /// The arguments `(name, value)`, in any order; refused when a name repeats, a name or
    /// value is out of bounds, or there are more than [`MAX_ENTRIES`]. The first problem in
    /// the order given is reported.
    pub fn new<K, V>(pairs: impl IntoIterator<Item = (K, V)>) -> Result<Self, UserArgumentsError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let mut map = BTreeMap::new();
        for (name, value) in pairs {
            let (name, value) = (name.into(), value.into());
            check_entry(&name, &value)?;
            match map.entry(name) {
                btree_map::Entry::Occupied(e) => {
                    return Err(UserArgumentsError::Repeated {
                        name: e.key().clone(),
                    })
                }
                btree_map::Entry::Vacant(e) => {
                    e.insert(value);
                }
            }
        }
        if map.len() > MAX_ENTRIES {
            return Err(UserArgumentsError::TooMany { count: map.len() });
        }
        Ok(Self(map))
    }

    /// [`UserArguments::new`], and refused with schema 1.0 unless there are none.
    pub fn for_schema<K, V>(
        pairs: impl IntoIterator<Item = (K, V)>,
        schema: Schema,
    ) -> Result<Self, UserArgumentsError>
    where
        K: Into<String>,
        V: Into<String>,
    {
        let args = Self::new(pairs)?;
        args.check_schema(schema)?;
        Ok(args)
    }

    /// Refuses arguments with a schema that has none (1.0).
    pub fn check_schema(&self, schema: Schema) -> Result<(), UserArgumentsError> {
        if !self.0.is_empty() && !schema.has_user_arguments() {
            return Err(UserArgumentsError::NeedsSchema2);
        }
        Ok(())
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// How many arguments.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The arguments, sorted by name.
    pub fn iter(&self) -> btree_map::Iter<'_, String, String> {
        self.0.iter()
    }

    /// The arguments as a map.
    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// The arguments as a map, e.g. for [`s3batch::wire::RequestJob::with_user_arguments`].
    pub fn into_map(self) -> BTreeMap<String, String> {
        self.0
    }
}

impl<'a> IntoIterator for &'a UserArguments {
    type Item = (&'a String, &'a String);
    type IntoIter = btree_map::Iter<'a, String, String>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

fn check_entry(name: &str, value: &str) -> Result<(), UserArgumentsError> {
    let chars = name.chars().count();
    if chars == 0 {
        return Err(UserArgumentsError::EmptyName);
    }
    if chars > MAX_NAME_CHARS {
        return Err(UserArgumentsError::NameTooLong {
            name: name.to_owned(),
            chars,
        });
    }
    let chars = value.chars().count();
    if chars > MAX_VALUE_CHARS {
        return Err(UserArgumentsError::ValueTooLong {
            name: name.to_owned(),
            chars,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn within_the_limits_is_kept_sorted() {
        let long_name = "n".repeat(MAX_NAME_CHARS);
        let long_value = "v".repeat(MAX_VALUE_CHARS);
        let args = UserArguments::for_schema(
            [
                ("b", ""),
                ("a", "1"),
                (long_name.as_str(), long_value.as_str()),
            ],
            Schema::V2,
        )
        .unwrap();
        let got: Vec<(&str, &str)> = args.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            got,
            [
                ("a", "1"),
                ("b", ""),
                (long_name.as_str(), long_value.as_str())
            ]
        );
        assert_eq!(
            UserArguments::for_schema(Vec::<(String, String)>::new(), Schema::V1).unwrap(),
            UserArguments::default()
        );
    }

    #[test]
    fn a_repeated_name_is_refused_naming_it() {
        let err = UserArguments::new([("a", "1"), ("dest", "x"), ("dest", "y")]).unwrap_err();
        assert_eq!(
            err,
            UserArgumentsError::Repeated {
                name: "dest".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "user argument \"dest\" is given more than once; give each name once"
        );
        // Even with the same value twice.
        assert!(matches!(
            UserArguments::new([("k", "v"), ("k", "v")]),
            Err(UserArgumentsError::Repeated { .. })
        ));
    }

    /// Lengths are characters, not bytes: 64 `é` (128 bytes) is a valid name, 65 is not.
    #[test]
    fn lengths_are_characters() {
        let name = "é".repeat(64);
        assert!(UserArguments::new([(name.as_str(), "v")]).is_ok());
        let value = "é".repeat(1024);
        assert!(UserArguments::new([("k", value.as_str())]).is_ok());

        let name = "é".repeat(65);
        let err = UserArguments::new([(name.as_str(), "v")]).unwrap_err();
        assert_eq!(
            err,
            UserArgumentsError::NameTooLong {
                name: name.clone(),
                chars: 65
            }
        );
        assert!(
            err.to_string()
                .ends_with("has 65 characters; names are 1 to 64 characters"),
            "{err}"
        );
        let value = "é".repeat(1025);
        let err = UserArguments::new([("k", value.as_str())]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "user argument \"k\" has a value of 1025 characters; values are at most 1024 characters"
        );
        let err = UserArguments::new([("", "v")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "a user argument has an empty name; names are 1 to 64 characters"
        );
    }

    #[test]
    fn at_most_ten_and_only_with_schema_2_0() {
        let eleven: Vec<(String, String)> =
            (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        let err = UserArguments::new(eleven.clone()).unwrap_err();
        assert_eq!(err, UserArgumentsError::TooMany { count: 11 });
        assert_eq!(err.to_string(), "11 user arguments; S3 allows at most 10");
        assert_eq!(UserArguments::new(eleven[..10].to_vec()).unwrap().len(), 10);

        let err = UserArguments::for_schema([("k", "v")], Schema::V1).unwrap_err();
        assert_eq!(err, UserArgumentsError::NeedsSchema2);
        assert!(
            err.to_string().contains("need invocation schema 2.0"),
            "{err}"
        );
    }
}
