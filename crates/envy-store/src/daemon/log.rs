//! What the daemon says while it works on an operation: log lines (`STDERR_NEXT`), activities
//! (`START_ACTIVITY` / `RESULT` / `STOP_ACTIVITY`: builds, substitutions, downloads, with
//! their build log lines as results), until `STDERR_LAST` (done) or `STDERR_ERROR` (failed,
//! with Nix's message). The client hands each event to a [`LogSink`]; it never prints.

use std::io::Read;

use super::wire::{read_string, read_u64};

/// Nix's verbosity levels (`lvlError` … `lvlVomit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Error = 0,
    Warn = 1,
    Notice = 2,
    Info = 3,
    Talkative = 4,
    Chatty = 5,
    Debug = 6,
    Vomit = 7,
}

impl Verbosity {
    fn from_wire(n: u64) -> Verbosity {
        match n {
            0 => Verbosity::Error,
            1 => Verbosity::Warn,
            2 => Verbosity::Notice,
            3 => Verbosity::Info,
            4 => Verbosity::Talkative,
            5 => Verbosity::Chatty,
            6 => Verbosity::Debug,
            _ => Verbosity::Vomit,
        }
    }
}

/// Nix's activity types (`actBuild` …), the ones envy tells apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActivityKind {
    CopyPath,
    FileTransfer,
    Realise,
    CopyPaths,
    Builds,
    Build,
    OptimiseStore,
    VerifyPaths,
    Substitute,
    QueryPathInfo,
    PostBuildHook,
    BuildWaiting,
    Other(u64),
}

impl ActivityKind {
    fn from_wire(n: u64) -> ActivityKind {
        match n {
            100 => ActivityKind::CopyPath,
            101 => ActivityKind::FileTransfer,
            102 => ActivityKind::Realise,
            103 => ActivityKind::CopyPaths,
            104 => ActivityKind::Builds,
            105 => ActivityKind::Build,
            106 => ActivityKind::OptimiseStore,
            107 => ActivityKind::VerifyPaths,
            108 => ActivityKind::Substitute,
            109 => ActivityKind::QueryPathInfo,
            110 => ActivityKind::PostBuildHook,
            111 => ActivityKind::BuildWaiting,
            n => ActivityKind::Other(n),
        }
    }
}

/// Nix's result types (`resBuildLogLine` …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultKind {
    FileLinked,
    BuildLogLine,
    UntrustedPath,
    CorruptedPath,
    SetPhase,
    Progress,
    SetExpected,
    PostBuildLogLine,
    Other(u64),
}

impl ResultKind {
    fn from_wire(n: u64) -> ResultKind {
        match n {
            100 => ResultKind::FileLinked,
            101 => ResultKind::BuildLogLine,
            102 => ResultKind::UntrustedPath,
            103 => ResultKind::CorruptedPath,
            104 => ResultKind::SetPhase,
            105 => ResultKind::Progress,
            106 => ResultKind::SetExpected,
            107 => ResultKind::PostBuildLogLine,
            n => ResultKind::Other(n),
        }
    }
}

/// A field of an activity or result: a number or a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Int(u64),
    String(String),
}

impl Field {
    #[must_use]
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Field::String(s) => Some(s),
            Field::Int(_) => None,
        }
    }
}

/// One message of the daemon's log stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEvent {
    /// A log line (warnings, `building '…'`, …).
    Message { text: String },
    /// An activity started: for [`ActivityKind::Build`] the first field is the `.drv` path,
    /// for [`ActivityKind::Substitute`] the store path and the cache.
    Start {
        id: u64,
        level: Verbosity,
        kind: ActivityKind,
        text: String,
        fields: Vec<Field>,
        parent: u64,
    },
    /// An activity produced a result: for [`ResultKind::BuildLogLine`] the line.
    Result {
        id: u64,
        kind: ResultKind,
        fields: Vec<Field>,
    },
    /// An activity ended.
    Stop { id: u64 },
}

/// Where the client hands the daemon's log events.
pub trait LogSink {
    fn event(&mut self, event: LogEvent);
}

/// Drops every event.
pub struct DiscardLog;

impl LogSink for DiscardLog {
    fn event(&mut self, _: LogEvent) {}
}

/// Keeps every event (tests, and callers that show them afterwards).
#[derive(Debug, Default)]
pub struct CollectLog {
    pub events: Vec<LogEvent>,
}

impl CollectLog {
    /// The plain log lines and build log lines, in order.
    #[must_use]
    pub fn lines(&self) -> Vec<String> {
        self.events
            .iter()
            .filter_map(|e| match e {
                LogEvent::Message { text } => Some(text.clone()),
                LogEvent::Result {
                    kind: ResultKind::BuildLogLine,
                    fields,
                    ..
                } => fields.first().and_then(Field::as_str).map(str::to_owned),
                _ => None,
            })
            .collect()
    }
}

impl LogSink for CollectLog {
    fn event(&mut self, event: LogEvent) {
        self.events.push(event);
    }
}

impl<F: FnMut(LogEvent)> LogSink for F {
    fn event(&mut self, event: LogEvent) {
        self(event);
    }
}

pub(crate) fn read_fields(input: &mut impl Read) -> std::io::Result<Vec<Field>> {
    let count = read_u64(input)?;
    let mut fields = Vec::new();
    for _ in 0..count {
        fields.push(match read_u64(input)? {
            0 => Field::Int(read_u64(input)?),
            1 => Field::String(read_string(input)?),
            other => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("unknown log field type {other}"),
                ));
            }
        });
    }
    Ok(fields)
}

pub(crate) fn read_start(input: &mut impl Read) -> std::io::Result<LogEvent> {
    let id = read_u64(input)?;
    let level = Verbosity::from_wire(read_u64(input)?);
    let kind = ActivityKind::from_wire(read_u64(input)?);
    let text = read_string(input)?;
    let fields = read_fields(input)?;
    let parent = read_u64(input)?;
    Ok(LogEvent::Start {
        id,
        level,
        kind,
        text: strip_ansi(&text),
        fields,
        parent,
    })
}

pub(crate) fn read_result(input: &mut impl Read) -> std::io::Result<LogEvent> {
    let id = read_u64(input)?;
    let kind = ResultKind::from_wire(read_u64(input)?);
    let fields = read_fields(input)?;
    Ok(LogEvent::Result { id, kind, fields })
}

/// Nix colours its messages (`ESC[…m`); envy's callers get plain text.
#[must_use]
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_stripped() {
        assert_eq!(
            strip_ansi("builder for '\u{1b}[35;1m/s/x.drv\u{1b}[0m' failed"),
            "builder for '/s/x.drv' failed"
        );
    }
}
