//! Sharing one profile between `sotto` processes, over the control socket.
//!
//! A process that finds a holder forwards its command line and relays the output. The
//! holder runs forwarded commands with the same code as its own.

use std::path::Path;
use std::rc::Rc;

use sotto_client::control::{ControlError, ControlServer, Output, forward};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::holder::{Holder, parse_forwarded};
use super::{Command, Out, Terminal, commands};

/// What became of a command offered to a holder.
pub enum Forwarded {
    /// The holder ran it; this is its exit code.
    Done(u8),
    /// Nobody holds the profile: open it here.
    NoHolder,
}

/// Offers the command to the process holding the profile. `repeatable` commands (those
/// that only read, or `listen`) are run here instead if the holder exits midway; others
/// are not, since they may already have taken effect.
pub async fn try_forward(dir: &Path, args: Vec<String>, repeatable: bool) -> Forwarded {
    match forward(dir, args).await {
        Ok(code) => Forwarded::Done(u8::try_from(code).unwrap_or(1)),
        Err(ControlError::NoHolder | ControlError::Unsupported) => Forwarded::NoHolder,
        Err(ControlError::HolderGone) if repeatable => Forwarded::NoHolder,
        Err(e) => {
            Terminal.err(&format!("error: {e}"));
            Forwarded::Done(1)
        }
    }
}

/// Whether running `command` a second time is harmless.
pub fn repeatable(command: &Command) -> bool {
    matches!(command, Command::Listen { .. } | Command::Contacts | Command::History { .. } | Command::Verify { .. })
}

/// Serving forwarded commands, until [`Serving::stop`].
pub struct Serving {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Serving {
    /// Stops serving; commands still running for other processes end (their processes
    /// are told the holder went away).
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// Serves the control socket of `dir` for the holder `h`. If the socket cannot be bound,
/// the holder runs its own command anyway; later processes then wait for it.
pub fn serve(dir: &Path, h: Rc<Holder>) -> Serving {
    let (stop, stopped) = oneshot::channel::<()>();
    let dir = dir.to_path_buf();
    let task = tokio::task::spawn_local(async move {
        let Ok(server) = ControlServer::bind(&dir).await else { return };
        let handler = move |args: Vec<String>, output: Output| {
            let h = h.clone();
            async move { i32::from(run_forwarded(&h, &args, output).await) }
        };
        server
            .serve(handler, async {
                let _ = stopped.await;
            })
            .await;
    });
    Serving { stop: Some(stop), task: Some(task) }
}

async fn run_forwarded(h: &Rc<Holder>, args: &[String], output: Output) -> u8 {
    let out = Remote(output);
    let cli = match parse_forwarded(args) {
        Ok(c) => c,
        Err(usage) => {
            usage.lines().for_each(|l| out.err(l));
            return 2;
        }
    };
    if matches!(cli.command, Command::Init { .. } | Command::Demo | Command::Duress(_)) {
        out.err("error: this command cannot run while another sotto process uses the profile");
        return 1;
    }
    commands::execute(h, &cli.command, &out).await
}

/// Output going back to the forwarding process.
struct Remote(Output);

impl Out for Remote {
    fn out(&self, line: &str) {
        self.0.stdout(line);
    }

    fn err(&self, line: &str) {
        self.0.stderr(line);
    }

    fn closed(&self) -> bool {
        self.0.is_closed()
    }
}
