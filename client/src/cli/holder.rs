//! The process holding the profile.
//!
//! Only one process can open a profile. It runs its own command and, meanwhile, serves
//! commands that later `sotto` processes forward to it over the profile's control
//! socket, so `listen` in one terminal and `send` in another work together. Received
//! notices are broadcast to every `listen` running in it; deliveries are pulled from the
//! relays only while someone listens, so messages are never consumed unseen.

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use clap::Parser;
use sotto_client::app::records::{Delivery, Direction, Message};
use sotto_client::app::{AppError, Client, Notice};
use sotto_client::relay::ConnectOptions;
use sotto_client::store::StoreError;
use tokio::sync::{Mutex, broadcast};

use super::{Cli, Out, Terminal, commands, passphrase, text};

/// How long the pump holds the client per poll: forwarded commands wait at most this.
pub const PUMP_SLICE: Duration = Duration::from_millis(200);
/// How often relays that could not be reached are tried again while listening.
pub const RESUBSCRIBE_INTERVAL: Duration = Duration::from_secs(5);
/// Notices kept for listeners that fall behind.
pub const NOTICE_BACKLOG: usize = 4096;
/// How long a later process waits for the holder to finish before giving up.
pub const WAIT_FOR_HOLDER: Duration = Duration::from_secs(120);

/// The open profile, shared by the commands running in this process.
pub struct Holder {
    pub client: Mutex<Client>,
    notices: broadcast::Sender<Notice>,
    listeners: Cell<usize>,
    pumping: Cell<bool>,
    failures: RefCell<Vec<(String, String)>>,
}

impl Holder {
    fn new(client: Client) -> Rc<Self> {
        let (notices, _) = broadcast::channel(NOTICE_BACKLOG);
        Rc::new(Self {
            client: Mutex::new(client),
            notices,
            listeners: Cell::new(0),
            pumping: Cell::new(false),
            failures: RefCell::new(Vec::new()),
        })
    }

    /// Registers a listener, subscribes to every mailbox, sends what is queued, and
    /// starts the pump.
    pub async fn listen_start(self: &Rc<Self>) -> broadcast::Receiver<Notice> {
        let rx = self.notices.subscribe();
        self.listeners.set(self.listeners.get() + 1);
        {
            let mut c = self.client.lock().await;
            match c.subscribe_all().await {
                Ok(f) => self.failures.borrow_mut().extend(f.into_iter().map(|(r, e)| (r, e.to_string()))),
                Err(e) => self.failures.borrow_mut().push((String::new(), e.to_string())),
            }
            let _ = c.flush_outbox().await;
        }
        if !self.pumping.get() {
            self.pumping.set(true);
            tokio::task::spawn_local(pump(self.clone()));
        }
        rx
    }

    /// Relays that could not be subscribed at the last attempt (the pump keeps retrying
    /// them).
    pub async fn take_subscribe_failures(&self) -> Vec<(String, String)> {
        self.failures.borrow().clone()
    }

    /// Unregisters a listener.
    pub fn listen_stop(&self) {
        self.listeners.set(self.listeners.get().saturating_sub(1));
    }

    /// Resolves when `out`'s reader went away (never, for this terminal).
    pub async fn output_closed(&self, out: &dyn Out) {
        loop {
            if out.closed() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Pulls deliveries while anyone listens and broadcasts what they show.
async fn pump(h: Rc<Holder>) {
    let mut last_retry = tokio::time::Instant::now();
    while h.listeners.get() > 0 {
        let notices = {
            let mut c = h.client.lock().await;
            // Relays that could not be reached when listening started are tried again
            // (a relay that drops later is reconnected by `poll` itself).
            if !h.failures.borrow().is_empty() && last_retry.elapsed() >= RESUBSCRIBE_INTERVAL {
                last_retry = tokio::time::Instant::now();
                let failed = c.subscribe_all().await.map(|f| f.into_iter().map(|(r, e)| (r, e.to_string())).collect());
                *h.failures.borrow_mut() = failed.unwrap_or_else(|e| vec![(String::new(), e.to_string())]);
                let _ = c.flush_outbox().await;
            }
            match c.poll(PUMP_SLICE).await {
                Ok(n) => n,
                Err(e) => vec![Notice::RelayTrouble(e.to_string())],
            }
        };
        for n in notices {
            let _ = h.notices.send(n);
        }
        // Let forwarded commands take the client between slices.
        tokio::task::yield_now().await;
    }
    h.pumping.set(false);
}

/// Runs a command on the profile in `dir`: forwarded to the process holding it, or run
/// here after opening it (and then serving others' commands until done).
pub async fn run_on_profile(dir: &Path, options: ConnectOptions, cli: &Cli, raw_args: Vec<String>) -> u8 {
    let deadline = tokio::time::Instant::now() + WAIT_FOR_HOLDER;
    let mut told = false;
    loop {
        let args = super::files::absolute_args(cli, raw_args.clone());
        match super::forward::try_forward(dir, args, super::forward::repeatable(&cli.command)).await {
            super::forward::Forwarded::Done(code) => return code,
            super::forward::Forwarded::NoHolder => {}
        }
        let pass = match passphrase(false) {
            Ok(p) => p,
            Err(e) => {
                Terminal.err(&e);
                return 1;
            }
        };
        match Client::open(dir, pass.as_bytes(), options.clone()) {
            Ok(mut client) => {
                client.set_file_settings(super::files::settings(cli, dir));
                return hold(dir, client, cli).await;
            }
            Err(AppError::Store(StoreError::Locked(_))) if tokio::time::Instant::now() < deadline => {
                if !told {
                    Terminal.err(text::WAITING_FOR_HOLDER);
                    told = true;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => return commands::fail(&Terminal, &e),
        }
    }
}

/// Holds the profile: serves forwarded commands while running our own.
async fn hold(dir: &Path, client: Client, cli: &Cli) -> u8 {
    let h = Holder::new(client);
    let server = super::forward::serve(dir, h.clone());
    let code = commands::execute(&h, &cli.command, &Terminal).await;
    server.stop().await;
    code
}

/// Parses a forwarded command line the same way as our own.
pub fn parse_forwarded(args: &[String]) -> Result<Cli, String> {
    let argv = std::iter::once("sotto".to_string()).chain(args.iter().cloned());
    Cli::try_parse_from(argv).map_err(|e| e.to_string())
}

/// One line of `sotto history`.
pub fn history_line(name: &str, m: &Message) -> String {
    let who = match m.direction {
        Direction::In => name.to_string(),
        Direction::Out => "me".to_string(),
    };
    let state = match m.delivery {
        Delivery::Queued => " [queued]",
        Delivery::Failed => " [failed]",
        Delivery::Delivered => " [delivered]",
        Delivery::Stored | Delivery::Received => "",
    };
    format!("{} {who}: {}{state}", format_time(m.sent_at_ms), m.text)
}

/// `YYYY-MM-DD HH:MM` in the user's time zone.
pub fn format_time(ms: u64) -> String {
    super::local_time::format_local(ms)
}
