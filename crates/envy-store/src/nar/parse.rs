//! Reading a NAR (Nix's `parseDump`), strictly: tags in their only allowed order, file names
//! that are not empty, `.`, `..`, or contain `/` or NUL, directory entries strictly sorted,
//! zero padding, and no truncation. Objects are handed to a `NarSink` as they are read, so a
//! NAR streams from a download into the file system without being held in memory.

use std::io::{self, Read};

use super::{MAX_TOKEN, NAR_MAGIC, NarError, padding};

/// Receives the objects of a NAR in order. `path` is relative to the root, components joined
/// by `/`, empty for the root itself.
pub trait NarSink {
    fn directory(&mut self, path: &[u8]) -> Result<(), NarError>;
    /// `contents` yields exactly `size` bytes; what the sink leaves unread is skipped.
    fn regular_file(
        &mut self,
        path: &[u8],
        executable: bool,
        size: u64,
        contents: &mut dyn Read,
    ) -> Result<(), NarError>;
    fn symlink(&mut self, path: &[u8], target: &[u8]) -> Result<(), NarError>;
    /// A directory's entries are complete.
    fn end_directory(&mut self, _path: &[u8]) -> Result<(), NarError> {
        Ok(())
    }
}

/// A sink that only validates.
pub struct NullSink;

impl NarSink for NullSink {
    fn directory(&mut self, _: &[u8]) -> Result<(), NarError> {
        Ok(())
    }
    fn regular_file(
        &mut self,
        _: &[u8],
        _: bool,
        _: u64,
        _: &mut dyn Read,
    ) -> Result<(), NarError> {
        Ok(())
    }
    fn symlink(&mut self, _: &[u8], _: &[u8]) -> Result<(), NarError> {
        Ok(())
    }
}

struct Reader<R: Read> {
    input: R,
}

impl<R: Read> Reader<R> {
    fn exact(&mut self, buf: &mut [u8]) -> Result<(), NarError> {
        self.input.read_exact(buf).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                NarError::Truncated
            } else {
                NarError::Input(e)
            }
        })
    }

    fn u64(&mut self) -> Result<u64, NarError> {
        let mut buf = [0u8; 8];
        self.exact(&mut buf)?;
        Ok(u64::from_le_bytes(buf))
    }

    fn pad(&mut self, len: u64) -> Result<(), NarError> {
        let mut buf = [0u8; 8];
        let n = padding(len);
        self.exact(&mut buf[..n])?;
        if buf[..n].iter().any(|&b| b != 0) {
            return Err(NarError::NonZeroPadding);
        }
        Ok(())
    }

    /// A non-contents string (tag, name, target).
    fn token(&mut self) -> Result<Vec<u8>, NarError> {
        let len = self.u64()?;
        if len > MAX_TOKEN {
            return Err(NarError::TooLong { len });
        }
        let mut buf = vec![0u8; len as usize];
        self.exact(&mut buf)?;
        self.pad(len)?;
        Ok(buf)
    }

    fn expect(&mut self, tag: &str) -> Result<(), NarError> {
        let got = self.token()?;
        if got != tag.as_bytes() {
            return Err(NarError::ExpectedTag {
                expected: tag.to_owned(),
                got: lossy(&got),
            });
        }
        Ok(())
    }

    fn node(&mut self, path: &mut Vec<u8>, sink: &mut dyn NarSink) -> Result<(), NarError> {
        self.expect("(")?;
        self.expect("type")?;
        let ty = self.token()?;
        match ty.as_slice() {
            b"regular" => {
                let mut tag = self.token()?;
                let mut executable = false;
                if tag == b"executable" {
                    if !self.token()?.is_empty() {
                        return Err(NarError::BadExecutableMarker);
                    }
                    executable = true;
                    tag = self.token()?;
                }
                if tag != b"contents" {
                    return Err(NarError::ExpectedTag {
                        expected: "contents".to_owned(),
                        got: lossy(&tag),
                    });
                }
                let size = self.u64()?;
                let mut contents = (&mut self.input).take(size);
                sink.regular_file(path, executable, size, &mut contents)?;
                // Skip what the sink did not read; a short archive leaves the limit unspent.
                io::copy(&mut contents, &mut io::sink()).map_err(NarError::Input)?;
                if contents.limit() != 0 {
                    return Err(NarError::Truncated);
                }
                self.pad(size)?;
                self.expect(")")
            }
            b"symlink" => {
                self.expect("target")?;
                let target = self.token()?;
                sink.symlink(path, &target)?;
                self.expect(")")
            }
            b"directory" => {
                sink.directory(path)?;
                let mut previous: Option<Vec<u8>> = None;
                loop {
                    let tag = self.token()?;
                    match tag.as_slice() {
                        b")" => return sink.end_directory(path),
                        b"entry" => {}
                        _ => {
                            return Err(NarError::ExpectedTag {
                                expected: ")".to_owned(),
                                got: lossy(&tag),
                            });
                        }
                    }
                    self.expect("(")?;
                    let tag = self.token()?;
                    if tag != b"name" {
                        return Err(NarError::MissingTag {
                            expected: "name".to_owned(),
                        });
                    }
                    let name = self.token()?;
                    if name.is_empty()
                        || name == b"."
                        || name == b".."
                        || name.contains(&b'/')
                        || name.contains(&0)
                    {
                        return Err(NarError::InvalidName { name: lossy(&name) });
                    }
                    if let Some(prev) = &previous
                        && name <= *prev
                    {
                        return Err(NarError::NotSorted {
                            name: lossy(&name),
                            previous: lossy(prev),
                        });
                    }
                    self.expect("node")?;
                    let len = path.len();
                    if !path.is_empty() {
                        path.push(b'/');
                    }
                    path.extend_from_slice(&name);
                    self.node(path, sink)?;
                    path.truncate(len);
                    self.expect(")")?;
                    previous = Some(name);
                }
            }
            _ => Err(NarError::UnknownType { ty: lossy(&ty) }),
        }
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Parse one NAR from `input`, handing its objects to `sink`. Bytes after the archive are not
/// read.
pub fn parse(input: impl Read, sink: &mut dyn NarSink) -> Result<(), NarError> {
    let mut reader = Reader { input };
    let magic = reader.token().map_err(|e| match e {
        NarError::TooLong { .. } | NarError::NonZeroPadding => NarError::BadMagic,
        other => other,
    })?;
    if magic != NAR_MAGIC.as_bytes() {
        return Err(NarError::BadMagic);
    }
    reader.node(&mut Vec::new(), sink)
}
