//! `RemoteProcess`: the local end of a remote store spoken to over a child process's stdin
//! and stdout (`ssh HOST nix-store --serve --write`, `ssh HOST nix-daemon --stdio`). What the
//! child writes on stderr (ssh's own errors, the serve protocol's build logs) is collected
//! by a thread, the oldest bytes dropped past a limit. Dropping it ends the child and reaps
//! it and the reader.

use std::io::{self, Read};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Most of the child's stderr kept (older bytes are dropped).
const MAX_LOG: usize = 8 * 1024 * 1024;

/// A running child whose stderr is collected.
pub struct RemoteProcess {
    child: Child,
    stderr: Arc<Mutex<Vec<u8>>>,
    stderr_thread: Option<JoinHandle<()>>,
}

impl RemoteProcess {
    /// Start `command` with its stdin, stdout and stderr piped; returns the process and the
    /// two ends to speak a protocol on.
    ///
    /// # Errors
    /// The command cannot start.
    pub fn spawn(mut command: Command) -> io::Result<(Self, ChildStdin, ChildStdout)> {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut pipe = child.stderr.take().expect("stderr is piped");
        let sink = Arc::clone(&stderr);
        let stderr_thread = std::thread::spawn(move || {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let mut log = sink.lock().expect("stderr buffer");
                log.extend_from_slice(&buf[..n]);
                if log.len() > MAX_LOG {
                    let excess = log.len() - MAX_LOG;
                    log.drain(..excess);
                }
            }
        });
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        Ok((
            Self {
                child,
                stderr,
                stderr_thread: Some(stderr_thread),
            },
            stdin,
            stdout,
        ))
    }

    /// Everything the child wrote on stderr since the last call.
    #[must_use]
    pub fn take_stderr(&self) -> Vec<u8> {
        std::mem::take(&mut *self.stderr.lock().expect("stderr buffer"))
    }

    /// What the child wrote on stderr and nobody took yet, after giving the reader a moment
    /// to collect its last words (ssh's reason for a lost connection).
    #[must_use]
    pub fn stderr_text(&self) -> String {
        if let Some(t) = &self.stderr_thread {
            for _ in 0..20 {
                if t.is_finished() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr buffer")).into_owned()
    }

    /// End the child now (the stream is out of step and cannot be used again).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }
}

impl Drop for RemoteProcess {
    fn drop(&mut self) {
        // Nothing is in flight between commands: end the remote (or ssh) and reap it and the
        // stderr reader.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = self.stderr_thread.take() {
            let _ = t.join();
        }
    }
}
