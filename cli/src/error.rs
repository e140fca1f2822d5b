//! The command's error: one line for the user, and the exit code.

use std::fmt;

/// What went wrong, as the user is told it.
#[derive(Debug)]
pub struct CliError {
    message: String,
    code: u8,
}

impl CliError {
    /// A misuse of the command line (exit code 2).
    pub fn usage(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: 2,
        }
    }

    /// A failure (exit code 1).
    pub fn failed(message: impl Into<String>) -> CliError {
        CliError {
            message: message.into(),
            code: 1,
        }
    }

    /// An error of the core about a value the user gave on the command line (a
    /// config entry, a topic name, an argument out of range): a usage error;
    /// anything else is a failure.
    pub fn argument(e: oncelog::Error) -> CliError {
        use oncelog::ErrorKind::{InvalidArgument, InvalidConfig, InvalidTopicName};
        match e.kind() {
            InvalidArgument | InvalidConfig | InvalidTopicName => CliError::usage(e.to_string()),
            _ => CliError::failed(e.to_string()),
        }
    }

    /// The message on one line.
    pub fn one_line(&self) -> String {
        self.message.lines().collect::<Vec<_>>().join("; ")
    }

    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        self.code
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<oncelog::Error> for CliError {
    fn from(e: oncelog::Error) -> CliError {
        CliError::failed(e.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::failed(e.to_string())
    }
}
