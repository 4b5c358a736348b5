//! The little of RESP2 a subscribed connection speaks: commands out as
//! arrays of bulk strings; replies and pushes in as frames.

use tokio::io::{AsyncBufRead, AsyncBufReadExt as _, AsyncReadExt as _};

/// The largest bulk string accepted (an event is far smaller).
const MAX_BULK: usize = 64 * 1024 * 1024;
/// The most elements one array may hold.
const MAX_ARRAY: usize = 1024;

/// One RESP2 value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Frame {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Option<Vec<u8>>),
    Array(Option<Vec<Frame>>),
}

impl Frame {
    /// The bytes of a bulk string.
    pub(super) fn bytes(&self) -> Option<&[u8]> {
        match self {
            Frame::Bulk(Some(b)) => Some(b),
            _ => None,
        }
    }
}

/// `args` as a command.
pub(super) fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, format!("malformed reply from Redis: {what}"))
}

/// One line without its CRLF.
async fn line<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<String> {
    let mut buf = Vec::new();
    if reader.read_until(b'\n', &mut buf).await? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    if buf.pop() != Some(b'\n') || buf.pop() != Some(b'\r') {
        return Err(invalid("a line without CRLF"));
    }
    String::from_utf8(buf).map_err(|_| invalid("a line that is not UTF-8"))
}

fn length(text: &str, max: usize) -> std::io::Result<Option<usize>> {
    let n: i64 = text.parse().map_err(|_| invalid("a length that is not a number"))?;
    match n {
        -1 => Ok(None),
        n if n < 0 || n as u64 > max as u64 => Err(invalid("a length out of range")),
        n => Ok(Some(n as usize)),
    }
}

/// Reads one frame. Not cancel-safe: a reader owns its connection's read
/// half and is never raced against anything else.
pub(super) async fn read<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Frame> {
    let first = line(reader).await?;
    let (kind, rest) = first.split_at_checked(1).ok_or_else(|| invalid("an empty line"))?;
    match kind {
        "+" => Ok(Frame::Simple(rest.to_owned())),
        "-" => Ok(Frame::Error(rest.to_owned())),
        ":" => rest.parse().map(Frame::Integer).map_err(|_| invalid("an integer that is not one")),
        "$" => match length(rest, MAX_BULK)? {
            None => Ok(Frame::Bulk(None)),
            Some(n) => {
                let mut data = vec![0; n + 2];
                reader.read_exact(&mut data).await?;
                if data.split_off(n) != b"\r\n" {
                    return Err(invalid("a bulk string without CRLF"));
                }
                Ok(Frame::Bulk(Some(data)))
            }
        },
        "*" => match length(rest, MAX_ARRAY)? {
            None => Ok(Frame::Array(None)),
            Some(n) => {
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(Box::pin(read(reader)).await?);
                }
                Ok(Frame::Array(Some(items)))
            }
        },
        _ => Err(invalid("an unknown type")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn parse(bytes: &[u8]) -> std::io::Result<Frame> {
        read(&mut tokio::io::BufReader::new(bytes)).await
    }

    #[tokio::test]
    async fn pushes_and_replies_parse() {
        let push = b"*3\r\n$8\r\nsmessage\r\n$2\r\nch\r\n$5\r\nhe\r\nl\r\n";
        assert_eq!(
            parse(push).await.unwrap(),
            Frame::Array(Some(vec![
                Frame::Bulk(Some(b"smessage".to_vec())),
                Frame::Bulk(Some(b"ch".to_vec())),
                Frame::Bulk(Some(b"he\r\nl".to_vec())),
            ]))
        );
        assert_eq!(
            parse(b"-MOVED 3999 127.0.0.1:6381\r\n").await.unwrap(),
            Frame::Error("MOVED 3999 127.0.0.1:6381".into())
        );
        assert_eq!(parse(b":12\r\n").await.unwrap(), Frame::Integer(12));
        assert_eq!(parse(b"+OK\r\n").await.unwrap(), Frame::Simple("OK".into()));
        assert_eq!(parse(b"$-1\r\n").await.unwrap(), Frame::Bulk(None));
    }

    #[tokio::test]
    async fn malformed_input_is_an_error_not_a_panic() {
        for bad in [&b"?x\r\n"[..], b"$5\r\nab\r\n", b"*9999999\r\n", b"$-7\r\n", b":x\r\n", b"+OK\n", b""] {
            assert!(parse(bad).await.is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        assert_eq!(command(&[b"SSUBSCRIBE", b"a:b"]), b"*2\r\n$10\r\nSSUBSCRIBE\r\n$3\r\na:b\r\n");
    }
}
