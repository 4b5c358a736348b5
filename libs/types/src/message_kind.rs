//! What a message carries, as the API spells it (`type`).

use crate::InvalidValue;

/// A message's type: text, or attachments with an optional caption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MessageKind {
    /// Text only (the default).
    #[default]
    Text,
    /// Images (each with a thumbnail).
    Image,
    /// Files of any type.
    File,
}

impl MessageKind {
    /// The API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Text => "text",
            MessageKind::Image => "image",
            MessageKind::File => "file",
        }
    }

    /// Reads the API spelling; an empty one is text (the field is optional).
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        match s {
            "" | "text" => Ok(MessageKind::Text),
            "image" => Ok(MessageKind::Image),
            "file" => Ok(MessageKind::File),
            _ => Err(InvalidValue::new("type must be text, image or file")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip_and_empty_is_text() {
        for k in [MessageKind::Text, MessageKind::Image, MessageKind::File] {
            assert_eq!(MessageKind::parse(k.as_str()), Ok(k));
        }
        assert_eq!(MessageKind::parse(""), Ok(MessageKind::Text));
        assert!(MessageKind::parse("video").is_err());
        assert!(MessageKind::parse("Text").is_err());
    }
}
