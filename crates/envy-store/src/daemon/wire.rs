//! The worker protocol's framing: every number is a little-endian `u64`, every string a
//! length followed by its bytes padded with zeros to a multiple of 8, every set a count
//! followed by its strings. Data streamed to the daemon (`addToStore`'s NAR) is "framed":
//! chunks each preceded by its length, ended by an empty chunk.

use std::io::{self, Read, Write};

/// Longest string envy accepts from a daemon (log lines and error messages included), so a
/// corrupt length cannot make it allocate gigabytes.
const MAX_STRING: u64 = 64 * 1024 * 1024;

/// Largest chunk written in a framed stream.
pub(crate) const FRAME: usize = 32 * 1024;

pub(crate) fn write_u64(out: &mut impl Write, n: u64) -> io::Result<()> {
    out.write_all(&n.to_le_bytes())
}

pub(crate) fn write_bool(out: &mut impl Write, b: bool) -> io::Result<()> {
    write_u64(out, u64::from(b))
}

pub(crate) fn write_bytes(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    write_u64(out, bytes.len() as u64)?;
    out.write_all(bytes)?;
    let pad = (8 - bytes.len() % 8) % 8;
    out.write_all(&[0u8; 8][..pad])
}

pub(crate) fn write_str(out: &mut impl Write, s: &str) -> io::Result<()> {
    write_bytes(out, s.as_bytes())
}

pub(crate) fn write_strings<'a>(
    out: &mut impl Write,
    items: impl ExactSizeIterator<Item = &'a str>,
) -> io::Result<()> {
    write_u64(out, items.len() as u64)?;
    for item in items {
        write_str(out, item)?;
    }
    Ok(())
}

/// A path's info as both protocols send it with its NAR (`addToStoreNar`, serve's
/// `cmdAddToStoreNar`): path, deriver (or ""), NAR hash in hex, references, registration
/// time, NAR size, ultimate, signatures, content address (or "").
pub(crate) fn write_path_info(
    out: &mut impl Write,
    store_dir: &crate::store_dir::StoreDir,
    info: &crate::path_info::ValidPathInfo,
) -> io::Result<()> {
    write_str(out, &store_dir.print(&info.path))?;
    let deriver = info.deriver.as_ref().map(|d| store_dir.print(d));
    write_str(out, deriver.as_deref().unwrap_or_default())?;
    write_str(out, &info.nar_hash.to_hex())?;
    let refs: Vec<String> = info.references.iter().map(|p| store_dir.print(p)).collect();
    write_strings(out, refs.iter().map(String::as_str))?;
    write_u64(out, u64::try_from(info.registration_time).unwrap_or(0))?;
    write_u64(out, info.nar_size)?;
    write_bool(out, info.ultimate)?;
    write_strings(out, info.signatures.iter().map(String::as_str))?;
    let ca = info.ca.as_ref().map(ToString::to_string);
    write_str(out, ca.as_deref().unwrap_or_default())
}

pub(crate) fn read_u64(input: &mut impl Read) -> io::Result<u64> {
    let mut buf = [0u8; 8];
    input.read_exact(&mut buf)?;
    Ok(u64::from_le_bytes(buf))
}

pub(crate) fn read_bool(input: &mut impl Read) -> io::Result<bool> {
    Ok(read_u64(input)? != 0)
}

pub(crate) fn read_bytes(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let len = read_u64(input)?;
    if len > MAX_STRING {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("string of {len} bytes is longer than the protocol allows"),
        ));
    }
    let len = usize::try_from(len).map_err(|_| io::ErrorKind::InvalidData)?;
    let mut buf = vec![0u8; len];
    input.read_exact(&mut buf)?;
    let pad = (8 - len % 8) % 8;
    let mut padding = [0u8; 8];
    input.read_exact(&mut padding[..pad])?;
    if padding.iter().any(|&b| b != 0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "non-zero padding after a string",
        ));
    }
    Ok(buf)
}

pub(crate) fn read_string(input: &mut impl Read) -> io::Result<String> {
    String::from_utf8(read_bytes(input)?)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "string is not UTF-8"))
}

pub(crate) fn read_strings(input: &mut impl Read) -> io::Result<Vec<String>> {
    let count = read_u64(input)?;
    // Each string takes at least 8 bytes, so a huge count fails on read, not on allocation.
    let mut items = Vec::with_capacity(usize::try_from(count.min(1024)).unwrap_or(0));
    for _ in 0..count {
        items.push(read_string(input)?);
    }
    Ok(items)
}

/// A writer that sends what it is given as framed chunks; `finish` writes the empty chunk
/// that ends the stream.
pub(crate) struct FramedWriter<'w, W: Write> {
    out: &'w mut W,
    buf: Vec<u8>,
}

impl<'w, W: Write> FramedWriter<'w, W> {
    pub(crate) fn new(out: &'w mut W) -> Self {
        FramedWriter {
            out,
            buf: Vec::with_capacity(FRAME),
        }
    }

    fn flush_frame(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            write_u64(self.out, self.buf.len() as u64)?;
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    pub(crate) fn finish(mut self) -> io::Result<()> {
        self.flush_frame()?;
        write_u64(self.out, 0)
    }
}

impl<W: Write> Write for FramedWriter<'_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let room = FRAME - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == FRAME {
            self.flush_frame()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_padded_to_eight_bytes() {
        let mut out = Vec::new();
        write_str(&mut out, "abc").unwrap();
        assert_eq!(
            out,
            [3, 0, 0, 0, 0, 0, 0, 0, b'a', b'b', b'c', 0, 0, 0, 0, 0]
        );
        assert_eq!(read_string(&mut out.as_slice()).unwrap(), "abc");
        let mut empty = Vec::new();
        write_str(&mut empty, "").unwrap();
        assert_eq!(empty.len(), 8);
    }

    #[test]
    fn non_zero_padding_is_rejected() {
        let bytes = [1, 0, 0, 0, 0, 0, 0, 0, b'a', 1, 0, 0, 0, 0, 0, 0];
        assert!(read_string(&mut bytes.as_slice()).is_err());
    }

    #[test]
    fn framed_stream_ends_with_an_empty_frame() {
        let mut out = Vec::new();
        let mut framed = FramedWriter::new(&mut out);
        framed.write_all(&vec![7u8; FRAME + 3]).unwrap();
        framed.finish().unwrap();
        let mut input = out.as_slice();
        assert_eq!(read_u64(&mut input).unwrap(), FRAME as u64);
        input = &input[FRAME..];
        assert_eq!(read_u64(&mut input).unwrap(), 3);
        input = &input[3..];
        assert_eq!(read_u64(&mut input).unwrap(), 0);
        assert!(input.is_empty());
    }
}
