//! A writer that hands its bytes to another thread: the thread producing a NAR (walking the
//! tree, reading files) and the one consuming it (hashing, compressing) then run at the same
//! time, on different cores.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Bytes are sent in chunks of this size.
const CHUNK: usize = 1 << 18;
/// Chunks in flight at most.
const DEPTH: usize = 8;

/// Runs `inner` on a worker thread; `finish` returns it.
pub struct PipeWriter<W: Write + Send + 'static> {
    buf: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    spare: Receiver<Vec<u8>>,
    worker: Option<JoinHandle<io::Result<W>>>,
}

impl<W: Write + Send + 'static> PipeWriter<W> {
    pub fn new(mut inner: W) -> PipeWriter<W> {
        let (tx, rx) = sync_channel::<Vec<u8>>(DEPTH);
        // Emptied buffers travel back, so steady state allocates nothing.
        let (spare_tx, spare) = sync_channel::<Vec<u8>>(DEPTH + 2);
        let worker = std::thread::spawn(move || {
            for mut chunk in rx {
                inner.write_all(&chunk)?;
                chunk.clear();
                let _ = spare_tx.try_send(chunk);
            }
            inner.flush()?;
            Ok(inner)
        });
        PipeWriter {
            buf: Vec::with_capacity(CHUNK),
            tx: Some(tx),
            spare,
            worker: Some(worker),
        }
    }

    fn send(&mut self) -> io::Result<()> {
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let full = std::mem::replace(&mut self.buf, next);
        let tx = self.tx.as_ref().expect("not finished");
        if tx.send(full).is_err() {
            // The worker stopped on an error: `finish` reports it.
            return Err(self.join_error());
        }
        Ok(())
    }

    fn join_error(&mut self) -> io::Error {
        self.tx = None;
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            _ => io::Error::other("the consuming thread stopped"),
        }
    }

    /// Flush what is buffered, wait for the worker, and return the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        self.tx = None;
        match self.worker.take().expect("worker").join() {
            Ok(result) => result,
            Err(_) => Err(io::Error::other("the consuming thread panicked")),
        }
    }
}

impl<W: Write + Send + 'static> Write for PipeWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut rest = data;
        while !rest.is_empty() {
            let room = CHUNK - self.buf.len();
            let n = room.min(rest.len());
            self.buf.extend_from_slice(&rest[..n]);
            rest = &rest[n..];
            if self.buf.len() == CHUNK {
                self.send()?;
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<W: Write + Send + 'static> Drop for PipeWriter<W> {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_everything_in_order() {
        let mut p = PipeWriter::new(Vec::new());
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 253) as u8).collect();
        for piece in data.chunks(7919) {
            p.write_all(piece).unwrap();
        }
        assert!(p.finish().unwrap() == data);
    }
}
