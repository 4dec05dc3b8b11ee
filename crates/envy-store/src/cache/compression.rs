//! NAR compression in binary caches: `xz` (Nix's default), `zstd`, or `none`.

use std::io::{self, Read, Write};
use std::str::FromStr;

/// A compression method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Xz,
    Zstd,
    None,
}

impl Compression {
    /// The `Compression:` value.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Compression::Xz => "xz",
            Compression::Zstd => "zstd",
            Compression::None => "none",
        }
    }

    /// The NAR file's extension (`.nar.xz`).
    #[must_use]
    pub fn extension(self) -> &'static str {
        match self {
            Compression::Xz => ".nar.xz",
            Compression::Zstd => ".nar.zst",
            Compression::None => ".nar",
        }
    }

    /// Wrap a reader of compressed bytes.
    pub fn decoder<'a>(self, input: impl Read + 'a) -> io::Result<Box<dyn Read + 'a>> {
        Ok(match self {
            Compression::Xz => Box::new(xz2::read::XzDecoder::new_multi_decoder(input)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(input)?),
            Compression::None => Box::new(input),
        })
    }

    /// Compress everything written to the returned writer into `out`; call `finish`.
    pub fn encoder<'a, W: Write + 'a>(self, out: W) -> io::Result<Encoder<'a, W>> {
        Ok(match self {
            Compression::Xz => Encoder::Xz(xz2::write::XzEncoder::new(out, 6)),
            Compression::Zstd => Encoder::Zstd(zstd::stream::write::Encoder::new(out, 3)?),
            Compression::None => Encoder::None(out),
        })
    }
}

impl FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "xz" => Ok(Compression::Xz),
            "zstd" => Ok(Compression::Zstd),
            "none" | "" => Ok(Compression::None),
            other => Err(other.to_owned()),
        }
    }
}

/// A compressing writer.
pub enum Encoder<'a, W: Write> {
    Xz(xz2::write::XzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'a, W>),
    None(W),
}

impl<W: Write> Encoder<'_, W> {
    /// Flush the compressed stream's end and return the inner writer.
    pub fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Xz(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::None(w) => Ok(w),
        }
    }
}

impl<W: Write> Write for Encoder<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Xz(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::None(w) => w.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Xz(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::None(w) => w.flush(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        for c in [Compression::Xz, Compression::Zstd, Compression::None] {
            let mut enc = c.encoder(Vec::new()).unwrap();
            enc.write_all(&data).unwrap();
            let compressed = enc.finish().unwrap();
            let mut back = Vec::new();
            c.decoder(compressed.as_slice())
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert!(back == data, "{c:?}");
        }
    }
}
