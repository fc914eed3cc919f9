//! Stand-ins where there are no Unix sockets: the same API, and every entry point answers
//! [`ControlError::Unsupported`], so a caller opens the profile itself (and, if another
//! process holds it, reports that plainly) instead of failing to build.

use std::future::Future;
use std::path::{Path, PathBuf};

use super::{ControlError, Reply};

/// Cannot exist on this platform: [`ControlServer::bind`] always fails.
pub enum ControlServer {}

/// Cannot exist on this platform: no command is ever forwarded here.
#[derive(Clone)]
pub enum Output {}

/// Cannot exist on this platform: [`ControlClient::connect`] always fails.
pub enum ControlClient {}

/// Always [`ControlError::Unsupported`].
pub fn socket_path(_profile_dir: &Path) -> Result<PathBuf, ControlError> {
    Err(ControlError::Unsupported)
}

/// Always [`ControlError::Unsupported`].
pub async fn forward(_profile_dir: &Path, _args: Vec<String>) -> Result<i32, ControlError> {
    Err(ControlError::Unsupported)
}

impl ControlServer {
    /// Always [`ControlError::Unsupported`].
    pub async fn bind(_profile_dir: &Path) -> Result<ControlServer, ControlError> {
        Err(ControlError::Unsupported)
    }

    /// Unreachable: no server exists.
    pub fn socket_path(&self) -> &Path {
        match *self {}
    }

    /// Unreachable: no server exists.
    pub async fn serve<H, F>(self, _handler: H, _shutdown: impl Future)
    where
        H: Fn(Vec<String>, Output) -> F,
        F: Future<Output = i32>,
    {
        match self {}
    }
}

impl Output {
    /// Unreachable.
    pub fn stdout(&self, _line: &str) {
        match *self {}
    }
    /// Unreachable.
    pub fn stderr(&self, _line: &str) {
        match *self {}
    }
    /// Unreachable.
    pub fn is_closed(&self) -> bool {
        match *self {}
    }
    /// Unreachable.
    pub async fn closed(&self) {
        match *self {}
    }
    /// Unreachable.
    pub fn is_interactive(&self) -> bool {
        match *self {}
    }
    /// Unreachable.
    pub async fn input(&self) -> Option<String> {
        match *self {}
    }
}

impl ControlClient {
    /// Always [`ControlError::Unsupported`].
    pub async fn connect(_profile_dir: &Path) -> Result<ControlClient, ControlError> {
        Err(ControlError::Unsupported)
    }
    /// Unreachable.
    pub async fn run(&mut self, _args: Vec<String>, _interactive: bool) -> Result<(), ControlError> {
        match *self {}
    }
    /// Unreachable.
    pub async fn send_input(&mut self, _line: String) -> Result<(), ControlError> {
        match *self {}
    }
    /// Unreachable.
    pub async fn cancel(&mut self) -> Result<(), ControlError> {
        match *self {}
    }
    /// Unreachable.
    pub async fn next(&mut self) -> Result<Option<Reply>, ControlError> {
        match *self {}
    }
}
