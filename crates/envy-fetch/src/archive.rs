//! Unpacking archives: tar, optionally compressed with gzip, xz, bzip2 or zstd (recognised by
//! their magic bytes, not the file name). Modes are kept (the executable bit is part of a
//! NAR) for files; directories are created writable; owners are not kept. Entries that would land outside the destination are refused.

use std::fs::FileTimes;
use std::io::{BufReader, Read};
use std::path::Component;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// Unpack a tar stream into `dest` (an existing directory).
pub fn unpack_tar(reader: impl Read, dest: &Path) -> Result<(), String> {
    let mut archive = tar::Archive::new(reader);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    // Directory mtimes are set last: creating their entries would change them again.
    let mut dirs = Vec::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let is_dir = entry.header().entry_type().is_dir();
        let mtime = entry.header().mtime().unwrap_or(0);
        let path = entry.path().map_err(|e| e.to_string())?.into_owned();
        if !path
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(format!(
                "entry `{}` is outside the archive root",
                path.display()
            ));
        }
        if is_dir {
            // Created (not unpacked) so that a read-only mode cannot block its children.
            let dir = dest.join(&path);
            fs_err::create_dir_all(&dir).map_err(|e| e.to_string())?;
            dirs.push((dir, mtime));
        } else if !entry.unpack_in(dest).map_err(|e| e.to_string())? {
            return Err(format!(
                "entry `{}` is outside the archive root",
                path.display()
            ));
        }
    }
    for (dir, mtime) in dirs.into_iter().rev() {
        let time = UNIX_EPOCH + Duration::from_secs(mtime);
        let times = FileTimes::new().set_modified(time).set_accessed(time);
        // Only the mtime of the top directory is ever read (`lastModified`); a failure here
        // loses nothing else.
        if let Ok(f) = fs_err::File::open(&dir) {
            let _ = f.file().set_times(times);
        }
    }
    Ok(())
}

/// Unpack the archive file `file` into `dest`, whatever its compression.
pub fn unpack_file(file: &Path, dest: &Path) -> Result<(), String> {
    let mut magic = [0u8; 6];
    let n = {
        let mut f = fs_err::File::open(file).map_err(|e| e.to_string())?;
        let mut n = 0;
        while n < magic.len() {
            match f.read(&mut magic[n..]).map_err(|e| e.to_string())? {
                0 => break,
                k => n += k,
            }
        }
        n
    };
    let magic = &magic[..n];
    let f = BufReader::new(fs_err::File::open(file).map_err(|e| e.to_string())?);
    if magic.starts_with(&[0x1f, 0x8b]) {
        unpack_tar(flate2::read::MultiGzDecoder::new(f), dest)
    } else if magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        unpack_tar(xz2::read::XzDecoder::new_multi_decoder(f), dest)
    } else if magic.starts_with(b"BZh") {
        unpack_tar(bzip2::read::MultiBzDecoder::new(f), dest)
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        unpack_tar(
            zstd::stream::read::Decoder::new(f).map_err(|e| e.to_string())?,
            dest,
        )
    } else if magic.starts_with(b"PK\x03\x04") {
        Err("zip archives are not supported; use a tar archive".to_string())
    } else {
        unpack_tar(f, dest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn tarball() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, "top/", std::io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o755);
        h.set_size(2);
        h.set_mtime(1_700_000_000);
        b.append_data(&mut h, "top/run", &b"hi"[..]).unwrap();
        b.into_inner().unwrap()
    }

    #[test]
    fn every_compression_unpacks_the_same_tree() {
        let dir = tempfile::tempdir().unwrap();
        let plain = tarball();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let mut xz = xz2::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&plain).unwrap();
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(&plain).unwrap();
        let zst = zstd::stream::encode_all(&plain[..], 3).unwrap();
        for (name, bytes) in [
            ("plain", plain.clone()),
            ("gz", gz.finish().unwrap()),
            ("xz", xz.finish().unwrap()),
            ("bz2", bz.finish().unwrap()),
            ("zst", zst),
        ] {
            let file = dir.path().join(name);
            fs_err::write(&file, bytes).unwrap();
            let out = dir.path().join(format!("{name}.d"));
            fs_err::create_dir(&out).unwrap();
            unpack_file(&file, &out).unwrap();
            let run = out.join("top/run");
            assert_eq!(fs_err::read(&run).unwrap(), b"hi", "{name}");
            let mode = fs_err::metadata(&run).unwrap().permissions().mode();
            assert_ne!(mode & 0o100, 0, "{name}: executable bit kept");
            let mtime = fs_err::metadata(out.join("top")).unwrap();
            use std::os::unix::fs::MetadataExt;
            assert_eq!(mtime.mtime(), 1_700_000_000, "{name}: directory mtime kept");
        }
    }
}
