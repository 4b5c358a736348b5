//! A user's presence status, as the API spells it.

use crate::InvalidValue;

/// What others see of a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceStatus {
    /// At least one live connection in use.
    Online,
    /// Connected but idle, or they said so.
    Away,
    /// No live connection, or they chose to appear offline.
    Offline,
}

impl PresenceStatus {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PresenceStatus::Online => "online",
            PresenceStatus::Away => "away",
            PresenceStatus::Offline => "offline",
        }
    }

    /// Reads the API spelling.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "online" => Ok(PresenceStatus::Online),
            "away" => Ok(PresenceStatus::Away),
            "offline" => Ok(PresenceStatus::Offline),
            _ => Err(InvalidValue::new("status must be online, away or offline")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for s in [PresenceStatus::Online, PresenceStatus::Away, PresenceStatus::Offline] {
            assert_eq!(PresenceStatus::parse(s.as_str()), Ok(s));
        }
        assert!(PresenceStatus::parse("busy").is_err());
    }
}
