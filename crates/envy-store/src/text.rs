//! Byte strings as text. Nix strings, derivation environments and shell variables are bytes;
//! envy carries them in `String`s. Bytes that are not UTF-8 (a Latin-1 file read by the
//! evaluator) become private-use characters U+F780..U+F7FF, one per byte, and
//! [`bytes_from_text`] turns them back, so a builder or a shell gets the exact bytes.

/// The first of the 128 private-use characters that stand for bytes which are not UTF-8
/// (U+F780 + byte − 0x80, as "UTF-8b" schemes do).
const ESCAPED_BYTE_BASE: u32 = 0xF700;

/// Environment values are bytes; envy keeps them in `String`s. Bytes that are not UTF-8 (a
/// Latin-1 file read by the evaluator) become private-use characters U+F780..U+F7FF, one per
/// byte, and [`bytes_from_text`] turns them back, so the shell gets the exact bytes. A
/// genuine character of that range is escaped byte by byte too, so every byte string
/// round-trips.
#[must_use]
pub fn text_from_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    let escape = |out: &mut String, b: &[u8]| {
        for &byte in b {
            out.push(char::from_u32(ESCAPED_BYTE_BASE + u32::from(byte)).expect("private use"));
        }
    };
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if (0xF780..=0xF7FF).contains(&u32::from(c)) {
                let mut buf = [0; 4];
                escape(&mut out, c.encode_utf8(&mut buf).as_bytes());
            } else {
                out.push(c);
            }
        }
        escape(&mut out, chunk.invalid());
    }
    out
}

/// The bytes `text` stands for (see [`text_from_bytes`]).
#[must_use]
pub fn bytes_from_text(text: &str) -> std::borrow::Cow<'_, [u8]> {
    let escaped = |c: char| (0xF780..=0xF7FF).contains(&u32::from(c));
    if !text.chars().any(escaped) {
        return std::borrow::Cow::Borrowed(text.as_bytes());
    }
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        if escaped(c) {
            out.push((u32::from(c) - ESCAPED_BYTE_BASE) as u8);
        } else {
            let mut buf = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_string_round_trips_through_text() {
        for bytes in [
            &b"plain"[..],
            b"caf\xe9",
            b"\xff\xfe\x80",
            "\u{f780}\u{f7ff} literal private use".as_bytes(),
            "ok \u{e9} \u{1f600}".as_bytes(),
            b"\xef\x9e",
        ] {
            let text = text_from_bytes(bytes);
            assert_eq!(&*bytes_from_text(&text), bytes, "{text:?}");
        }
        assert_eq!(text_from_bytes(b"caf\xc3\xa9"), "caf\u{e9}");
    }
}
