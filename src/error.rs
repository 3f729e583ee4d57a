//! The runtime error of a call: what Lua sees as an error object (SPEC §2.1).

use std::fmt;

/// The kind of a runtime failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// Bad input: a malformed target, a Lua value of the wrong type, an invalid registry.
    Invalid,
    /// No such entry.
    NotFound,
    /// The security context does not allow the call.
    PermissionDenied,
    /// The entry exists but cannot run here (not executable, no handler in this Lua state).
    Unavailable,
    /// The guest trapped or the host failed.
    Internal,
    /// The call was canceled.
    Canceled,
    /// The call ran out of time.
    Timeout,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Invalid => "INVALID",
            Kind::NotFound => "NOT_FOUND",
            Kind::PermissionDenied => "PERMISSION_DENIED",
            Kind::Unavailable => "UNAVAILABLE",
            Kind::Internal => "INTERNAL",
            Kind::Canceled => "CANCELED",
            Kind::Timeout => "TIMEOUT",
        }
    }
}

/// Why a guest stopped, for `err:details().reason`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    Trap,
    OutOfFuel,
    MemoryLimit,
    StackOverflow,
    Exit,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Trap => "trap",
            Reason::OutOfFuel => "out_of_fuel",
            Reason::MemoryLimit => "memory_limit",
            Reason::StackOverflow => "stack_overflow",
            Reason::Exit => "exit",
        }
    }
}

/// Extra facts about a failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Details {
    pub reason: Reason,
    /// The trap message as wasmtime gives it.
    pub trap: String,
    /// The exit code, for reason `exit` (`proc_exit`, `wasi:cli/exit`).
    pub code: Option<i32>,
    /// The last lines the guest wrote to stderr during the call (at most 2 KB).
    pub stderr: Option<String>,
}

/// A runtime failure with everything Lua's error object exposes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    pub retryable: bool,
    pub details: Option<Details>,
    /// The WebAssembly backtrace, one frame a line.
    pub stack: Option<String>,
}

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            retryable: matches!(kind, Kind::Unavailable | Kind::Timeout),
            details: None,
            stack: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(Kind::Invalid, message)
    }

    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(Kind::Internal, message)
    }

    /// Prefixes the message with the entry ID, as every call error names its entry.
    pub fn in_entry(mut self, id: &str) -> Error {
        self.message = format!("{id}: {}", self.message);
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}
