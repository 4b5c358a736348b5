//! What a file is, decided from its first bytes, never from its name or
//! what the client claims; only the kinds listed here are accepted.

/// An accepted kind of file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PNG image.
    Png,
    /// JPEG image.
    Jpeg,
    /// GIF image.
    Gif,
    /// WebP image.
    Webp,
    /// PDF document.
    Pdf,
    /// ZIP archive (also office documents).
    Zip,
    /// MP4 / QuickTime video.
    Mp4,
    /// MP3 audio.
    Mp3,
    /// Ogg audio or video.
    Ogg,
    /// UTF-8 text that is not markup.
    Text,
}

impl Kind {
    /// The `Content-Type` it is stored and served as.
    pub fn content_type(self) -> &'static str {
        match self {
            Kind::Png => "image/png",
            Kind::Jpeg => "image/jpeg",
            Kind::Gif => "image/gif",
            Kind::Webp => "image/webp",
            Kind::Pdf => "application/pdf",
            Kind::Zip => "application/zip",
            Kind::Mp4 => "video/mp4",
            Kind::Mp3 => "audio/mpeg",
            Kind::Ogg => "application/ogg",
            Kind::Text => "text/plain; charset=utf-8",
        }
    }

    /// The image format, for the raster images we decode and show inline.
    pub fn image_format(self) -> Option<image::ImageFormat> {
        match self {
            Kind::Png => Some(image::ImageFormat::Png),
            Kind::Jpeg => Some(image::ImageFormat::Jpeg),
            Kind::Gif => Some(image::ImageFormat::Gif),
            Kind::Webp => Some(image::ImageFormat::WebP),
            _ => None,
        }
    }
}

/// Whether a stored content type is a raster image safe to show inline
/// (never SVG or anything else a browser would run).
pub fn is_safe_image(content_type: &str) -> bool {
    matches!(content_type, "image/png" | "image/jpeg" | "image/gif" | "image/webp")
}

/// How many leading bytes [`sniff`] looks at.
pub const HEAD: usize = 8 * 1024;

/// The kind of a file starting with `head` (at most [`HEAD`] bytes;
/// `complete` when that is the whole file); `None` when it is not accepted.
pub fn sniff(head: &[u8], complete: bool) -> Option<Kind> {
    let starts = |magic: &[u8]| head.starts_with(magic);
    if starts(b"\x89PNG\r\n\x1a\n") {
        Some(Kind::Png)
    } else if starts(b"\xFF\xD8\xFF") {
        Some(Kind::Jpeg)
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some(Kind::Gif)
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        Some(Kind::Webp)
    } else if starts(b"%PDF-") {
        Some(Kind::Pdf)
    } else if starts(b"PK\x03\x04") {
        Some(Kind::Zip)
    } else if head.len() >= 12 && &head[4..8] == b"ftyp" {
        Some(Kind::Mp4)
    } else if starts(b"ID3") || (head.len() >= 2 && head[0] == 0xFF && matches!(head[1], 0xFB | 0xF3 | 0xF2)) {
        Some(Kind::Mp3)
    } else if starts(b"OggS") {
        Some(Kind::Ogg)
    } else if is_plain_text(head, complete) {
        Some(Kind::Text)
    } else {
        None
    }
}

/// UTF-8 without control characters (tabs and line ends aside) that does
/// not open like markup: HTML, SVG or XML are refused, whatever they claim.
fn is_plain_text(head: &[u8], complete: bool) -> bool {
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A character cut in two by the end of the head is fine.
        Err(e) if !complete && e.error_len().is_none() => match std::str::from_utf8(&head[..e.valid_up_to()]) {
            Ok(text) => text,
            Err(_) => return false,
        },
        Err(_) => return false,
    };
    if text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{c}')) {
        return false;
    }
    let opening = text.trim_start_matches('\u{feff}').trim_start();
    !opening.is_empty() && !opening.starts_with('<')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_numbers_decide() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", false), Some(Kind::Png));
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF", false), Some(Kind::Jpeg));
        assert_eq!(sniff(b"GIF89a\x01\0", false), Some(Kind::Gif));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 ", false), Some(Kind::Webp));
        assert_eq!(sniff(b"%PDF-1.7\n", false), Some(Kind::Pdf));
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42", false), Some(Kind::Mp4));
        assert_eq!(sniff(b"hello\nworld\n", true), Some(Kind::Text));
    }

    #[test]
    fn markup_and_binary_are_refused_whatever_they_claim() {
        for refused in [
            &b"<!DOCTYPE html><script>alert(1)</script>"[..],
            b"  \n<html><body>",
            b"\xEF\xBB\xBF<svg xmlns='http://www.w3.org/2000/svg'/>",
            b"<?xml version='1.0'?>",
            b"\x7FELF\x02\x01\x01",
            b"MZ\x90\0",
            b"",
            b"   ",
        ] {
            assert_eq!(sniff(refused, true), None, "{refused:?}");
        }
    }

    #[test]
    fn a_character_cut_by_the_head_is_still_text() {
        let text = "caf\u{e9}".as_bytes();
        assert_eq!(sniff(&text[..text.len() - 1], false), Some(Kind::Text));
        assert_eq!(sniff(&text[..text.len() - 1], true), None, "but not at the end of the file");
    }

    #[test]
    fn only_raster_images_are_shown_inline() {
        assert!(is_safe_image("image/png"));
        assert!(!is_safe_image("image/svg+xml"));
        assert!(!is_safe_image("text/html"));
    }
}
