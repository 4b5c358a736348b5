//! Property tests of what uploads go through before anything trusts them:
//! content sniffing and image headers, on any bytes and on real images
//! with bytes flipped. `PROPTEST_CASES` sizes them (`make bench` runs more).

#![allow(clippy::unwrap_used)] // a panic is how a test fails

mod properties {
    use std::io::Cursor;

    use chatterbox_errors::Code;
    use chatterbox_media::picture::{self, MAX_PIXELS, MAX_SIDE};
    use chatterbox_media::sniff::{Kind, sniff};
    use proptest::prelude::*;

    /// A small genuine image in `format`.
    fn image_bytes(format: image::ImageFormat, width: u32, height: u32) -> Vec<u8> {
        let picture = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, (x ^ y) as u8]));
        let mut out = Cursor::new(Vec::new());
        image::DynamicImage::ImageRgb8(picture).write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn formats() -> impl Strategy<Value = image::ImageFormat> {
        prop_oneof![
            Just(image::ImageFormat::Png),
            Just(image::ImageFormat::Jpeg),
            Just(image::ImageFormat::Gif),
            Just(image::ImageFormat::WebP),
        ]
    }

    /// A genuine image with up to 8 bytes replaced, and maybe cut short.
    fn damaged_image() -> impl Strategy<Value = (image::ImageFormat, Vec<u8>)> {
        (
            formats(),
            1u32..24,
            1u32..24,
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            any::<prop::sample::Index>(),
            any::<bool>(),
        )
            .prop_map(|(format, w, h, flips, cut, shorten)| {
                let mut bytes = image_bytes(format, w, h);
                for (at, value) in flips {
                    let i = at.index(bytes.len());
                    bytes[i] = value;
                }
                if shorten {
                    bytes.truncate(cut.index(bytes.len()).max(1));
                }
                (format, bytes)
            })
    }

    proptest! {
        /// Any bytes get a kind or a refusal; markup is never text, whatever follows.
        #[test]
        fn any_bytes_are_sniffed_without_panicking(head in prop::collection::vec(any::<u8>(), 0..512), complete in any::<bool>()) {
            let _ = sniff(&head, complete);
            let mut markup = b"  <".to_vec();
            markup.extend_from_slice(&head);
            prop_assert_ne!(sniff(&markup, complete), Some(Kind::Text));
        }

        /// Plain text stays text when the sniffed head ends inside a character.
        #[test]
        fn text_cut_anywhere_is_still_text(text in "[a-zé€😀 \n]{1,200}", cut in any::<prop::sample::Index>()) {
            let text = format!("x{text}");
            let bytes = text.as_bytes();
            let head = &bytes[..cut.index(bytes.len()).max(1)];
            prop_assert_eq!(sniff(bytes, true), Some(Kind::Text));
            prop_assert_eq!(sniff(head, false), Some(Kind::Text));
        }

        /// A damaged image's header yields dimensions within the limits or a
        /// clear refusal; what passes the header decodes to a thumbnail or is
        /// refused, never a panic and never an internal error.
        #[test]
        fn damaged_images_are_measured_or_refused((format, bytes) in damaged_image()) {
            let dir = tempfile::tempdir().unwrap();
            let (path, out) = (dir.path().join("in"), dir.path().join("out.png"));
            std::fs::write(&path, &bytes).unwrap();
            match picture::dimensions(&path, format) {
                Ok((w, h)) => {
                    prop_assert!(w >= 1 && h >= 1 && w <= MAX_SIDE && h <= MAX_SIDE);
                    prop_assert!(u64::from(w) * u64::from(h) <= MAX_PIXELS);
                    if let Err(e) = picture::thumbnail(&path, format, &out) {
                        prop_assert!(matches!(e.code(), Code::UnsupportedMediaType | Code::PayloadTooLarge), "{e}");
                    }
                }
                Err(e) => prop_assert!(matches!(e.code(), Code::UnsupportedMediaType | Code::PayloadTooLarge), "{e}"),
            }
        }
    }
}
