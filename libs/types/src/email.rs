//! Email addresses: a pragmatic check (one `@`, a dotted domain, no spaces),
//! unique case-insensitively.

use std::fmt;

use crate::{InvalidValue, char_len};

/// An email address, trimmed; compare with [`Email::key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Validates an email address.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let s = s.trim();
        let invalid = || InvalidValue::new("email is not a valid address");
        if char_len(s) > 254 || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid());
        }
        let (local, domain) = s.split_once('@').ok_or_else(invalid)?;
        let domain_ok = !domain.contains('@')
            && domain.contains('.')
            && domain.split('.').all(|label| !label.is_empty() && !label.starts_with('-') && !label.ends_with('-'));
        if local.is_empty() || char_len(local) > 64 || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(s.to_owned()))
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The lower-cased form that uniqueness and login use.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        assert!(Email::parse("ann.lee+chat@example.co.uk").is_ok());
    }

    #[test]
    fn refuses_malformed_addresses() {
        for bad in ["", "plain", "a@b", "@x.io", "a@@x.io", "a b@x.io", "a@.io", "a@x..io"] {
            assert!(Email::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn key_ignores_case() {
        assert_eq!(Email::parse("Ann@X.io").unwrap().key(), "ann@x.io");
    }
}
