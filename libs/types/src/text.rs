//! Free text with length rules: conversation names and descriptions.

use std::fmt;

use crate::unicode::{hidden_in_name, name_key};
use crate::{InvalidValue, char_len};

/// A group or room name: 1–100 characters after trimming, no control,
/// invisible or text-direction characters. Room names are unique by
/// [`DisplayName::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Validates a name.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        if !(1..=100).contains(&char_len(s)) {
            return Err(InvalidValue::new("name must be 1 to 100 characters"));
        }
        if s.chars().any(char::is_control) {
            return Err(InvalidValue::new("name may not contain control characters"));
        }
        if let Some(why) = hidden_in_name(s) {
            return Err(InvalidValue::new(why));
        }
        Ok(Self(s.to_owned()))
    }

    /// The name as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The folded form that room uniqueness and search use: names that
    /// look alike share it (see [`crate::name_key`]).
    pub fn key(&self) -> String {
        name_key(&self.0)
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A description: at most 500 characters after trimming.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description(String);

impl Description {
    /// Validates a description.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        if char_len(s) > 500 {
            return Err(InvalidValue::new("description must be at most 500 characters"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  General  ").unwrap().as_str(), "General");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"é".repeat(101)).is_err());
        assert!(DisplayName::parse("a\u{0}b").is_err());
        assert_eq!(DisplayName::parse("Café").unwrap().key(), "café");
        assert!(DisplayName::parse("General\u{200B}").is_err());
        assert_eq!(DisplayName::parse("ＧＥＮＥＲＡＬ").unwrap().key(), "general");
    }

    #[test]
    fn descriptions_may_be_empty_but_not_long() {
        assert!(Description::parse("").is_ok());
        assert!(Description::parse(&"x".repeat(501)).is_err());
    }
}
