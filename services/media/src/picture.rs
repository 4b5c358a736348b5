//! Images: dimensions read from the header before anything is decoded (so a
//! small file that would inflate into gigabytes of pixels is refused), then
//! a bounded decode into a thumbnail.

use std::path::Path;

use chatterbox_errors::{Code, Error};
use image::ImageReader;

/// Largest width or height accepted.
pub const MAX_SIDE: u32 = 12_000;
/// Most pixels accepted (about 40 megapixels: 160 MiB decoded at 4 bytes each).
pub const MAX_PIXELS: u64 = 40_000_000;
/// Thumbnails fit in this square.
pub const THUMBNAIL_SIDE: u32 = 256;

/// Width and height from the header alone.
pub fn dimensions(path: &Path, format: image::ImageFormat) -> Result<(u32, u32), Error> {
    let mut reader = ImageReader::open(path).map_err(Error::internal)?;
    reader.set_format(format);
    let (width, height) = reader.into_dimensions().map_err(|_| unreadable())?;
    if width == 0 || height == 0 {
        return Err(unreadable());
    }
    if width > MAX_SIDE || height > MAX_SIDE || u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(Error::new(
            Code::PayloadTooLarge,
            format!("images are limited to {MAX_SIDE} pixels a side and {MAX_PIXELS} pixels in all"),
        ));
    }
    Ok((width, height))
}

fn unreadable() -> Error {
    Error::new(Code::UnsupportedMediaType, "the image cannot be read")
}

/// Decodes the image at `path` (its dimensions already checked) and writes a
/// PNG thumbnail no larger than [`THUMBNAIL_SIDE`] to `out`.
pub fn thumbnail(path: &Path, format: image::ImageFormat, out: &Path) -> Result<(), Error> {
    let mut reader = ImageReader::open(path).map_err(Error::internal)?;
    reader.set_format(format);
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 4 + (16 << 20));
    reader.limits(limits);
    let picture = reader.decode().map_err(|e| match e {
        // Within the pixel count but too big decoded (e.g. 16 bits per channel).
        image::ImageError::Limits(_) => Error::new(Code::PayloadTooLarge, "the image is too large to decode"),
        _ => unreadable(),
    })?;
    let small = picture.thumbnail(THUMBNAIL_SIDE, THUMBNAIL_SIDE);
    small.save_with_format(out, image::ImageFormat::Png).map_err(Error::internal)
}
