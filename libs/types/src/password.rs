//! Passwords: 8–128 characters. Never printed.

use std::fmt;

use crate::{InvalidValue, char_len};

/// A password that passed the length rule; `Debug` hides it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Validates a new password.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if !(8..=128).contains(&char_len(s)) {
            return Err(InvalidValue::new("password must be 8 to 128 characters"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The secret itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_characters() {
        assert!(Password::parse("ééééééé").is_err());
        assert!(Password::parse("éééééééé").is_ok());
        assert!(Password::parse(&"x".repeat(129)).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let p = Password::parse("hunter22hunter").unwrap();
        assert!(!format!("{p:?}").contains("hunter"));
    }
}
