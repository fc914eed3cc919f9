//! `sotto chat` in a real terminal: a tmux server of the test's own, keys typed with
//! `send-keys`, the screen read with `capture-pane`. tmux comes from `scripts/setup`.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::binary::PASSPHRASE;

/// The chat runs in India's time zone (UTC+5:30, as a POSIX rule): its times must be local.
pub const CHAT_TZ: &str = "TZ=IST-5:30";

/// How long the screen may take to show something.
pub const SCREEN_WAIT: Duration = Duration::from_secs(30);

/// A tmux server of our own (its own socket), killed when dropped.
pub struct Tmux {
    socket: String,
}

impl Tmux {
    pub fn start(profile: &Path, width: u16, height: u16) -> Self {
        // One server per test: tests in this file run at the same time.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!("sotto-chat-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        // The shell line prints the exit code after the chat, so the test sees it ended and
        // what the terminal shows afterwards.
        let line = format!(
            "SOTTO_PASSPHRASE='{PASSPHRASE}' '{}' --profile '{}' chat; echo CHAT-EXITED $?; sleep 60",
            env!("CARGO_BIN_EXE_sotto"),
            profile.display()
        );
        let status = Command::new("tmux")
            .args(["-L", &socket, "-f", "/dev/null", "new-session", "-d", "-s", "chat"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["env", "LANG=C.UTF-8", "LC_ALL=C.UTF-8", "TERM=xterm-256color", CHAT_TZ, "sh", "-c", &line])
            .status()
            .expect("tmux is missing: run scripts/setup");
        assert!(status.success(), "tmux could not start");
        Self { socket }
    }

    pub fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux").args(["-L", &self.socket]).args(args).output().unwrap()
    }

    /// Types text literally.
    pub fn type_text(&self, s: &str) {
        assert!(self.tmux(&["send-keys", "-t", "chat", "-l", s]).status.success());
    }

    /// Presses one key (tmux's names: Enter, F1, C-q …).
    pub fn key(&self, k: &str) {
        assert!(self.tmux(&["send-keys", "-t", "chat", k]).status.success());
        // Separate keys arrive as separate reads, as when a person types them.
        std::thread::sleep(Duration::from_millis(150));
    }

    /// Pastes text as a terminal does (bracketed paste).
    pub fn paste(&self, s: &str) {
        assert!(self.tmux(&["set-buffer", "--", s]).status.success());
        assert!(self.tmux(&["paste-buffer", "-p", "-t", "chat"]).status.success());
    }

    pub fn screen(&self) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", "chat"]).stdout).into_owned()
    }

    /// Waits until the screen shows every one of `want`; returns it.
    pub fn until(&self, want: &[&str]) -> String {
        let deadline = Instant::now() + SCREEN_WAIT;
        loop {
            let s = self.screen();
            if want.iter().all(|w| s.contains(w)) {
                return s;
            }
            assert!(Instant::now() < deadline, "the screen never showed {want:?}; it shows:\n{s}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}
