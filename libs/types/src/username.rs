//! Usernames: 3–32 of `[A-Za-z0-9_.-]`, unique case-insensitively.

use std::fmt;

use crate::{InvalidValue, char_len};

/// A username as the user typed it; compare with [`Username::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Validates a username.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let len = char_len(s);
        if !(3..=32).contains(&len) {
            return Err(InvalidValue::new("username must be 3 to 32 characters"));
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')) {
            return Err(InvalidValue::new("username may contain only letters, digits, '_', '.' and '-'"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The spelling the user chose.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-folded form that uniqueness and search use.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_allowed_alphabet() {
        assert!(Username::parse("Alice_01.x-y").is_ok());
    }

    #[test]
    fn refuses_short_long_and_foreign_characters() {
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("алиса").is_err());
    }

    #[test]
    fn key_is_case_insensitive() {
        assert_eq!(Username::parse("Bob").unwrap().key(), Username::parse("bOB").unwrap().key());
    }
}
