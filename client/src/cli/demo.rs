//! `sotto demo`: a relay on loopback and two throw-away profiles talking, showing what
//! each side sees and what the relay saw (counts only).

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sotto_client::app::{AppError, Client, Notice};
use sotto_client::relay::ConnectOptions;
use sotto_client::store::KdfParams;
use sotto_proto::RelayAddress;

use super::Out;

/// The relay binary, expected next to `sotto`.
const RELAY_BIN: &str = "sotto-relay";
/// Time allowed for each step of the conversation.
const STEP_TIMEOUT: Duration = Duration::from_secs(20);
/// The demo profiles' passphrase: they are deleted at the end.
const DEMO_PASSPHRASE: &[u8] = b"demo profile, deleted afterwards";

const MESSAGES: &[(bool, &str)] = &[
    (true, "Hello Bob! This is end-to-end encrypted, post-quantum."),
    (false, "Hi Alice 👋 你好！"),
    (true, "ئەسسالامۇ ئەلەيكۇم — Uyghur in Arabic script round-trips byte-exact."),
    (false, "བཀྲ་ཤིས་བདེ་ལེགས། — and Tibetan too."),
    (true, "The relay saw only fixed-size cells. See you."),
];

/// Runs the demo; returns the exit code.
pub async fn run(out: &dyn Out) -> u8 {
    match demo(out).await {
        Ok(()) => 0,
        Err(e) => {
            out.err(&format!("demo failed: {e}"));
            1
        }
    }
}

struct Relay {
    child: Child,
    address: RelayAddress,
}

impl Relay {
    fn start() -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let bin = exe.with_file_name(RELAY_BIN);
        if !bin.exists() {
            return Err(format!("{} not found next to sotto; build it with `cargo build --bins`", bin.display()));
        }
        let mut child = Command::new(&bin)
            .args(["--ephemeral", "--listen", "127.0.0.1:0", "--log-level", "info"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("relay has no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map_err(|e| e.to_string())?;
        let address = line.trim().parse().map_err(|e| format!("relay printed {line:?}: {e}"))?;
        Ok(Self { child, address })
    }

    /// Stops the relay and returns its final summary of counts.
    fn stop(mut self) -> String {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let mut log = String::new();
        if let Some(mut e) = self.child.stderr.take() {
            let _ = e.read_to_string(&mut log);
        }
        let _ = self.child.wait();
        log.lines()
            .find_map(|l| l.split_once("summary=").map(|(_, s)| s.trim().trim_matches('"').to_string()))
            .unwrap_or_default()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Result<Self, String> {
        let mut rnd = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut rnd);
        let p = std::env::temp_dir().join(format!("sotto-demo-{tag}-{}", hex::encode(rnd)));
        Ok(Self(p))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn demo(out: &dyn Out) -> Result<(), String> {
    let e = |e: AppError| e.to_string();
    out.out("Sotto demo: a relay on loopback and two new profiles, Alice and Bob.");
    let relay = Relay::start()?;
    out.out(&format!("Relay started (in memory, nothing on disk): {}", relay.address));

    let (dir_a, dir_b) = (TempDir::new("alice")?, TempDir::new("bob")?);
    let params = KdfParams::production();
    let mut alice =
        Client::init(&dir_a.0, DEMO_PASSPHRASE, &relay.address, params, ConnectOptions::default()).map_err(e)?;
    let mut bob =
        Client::init(&dir_b.0, DEMO_PASSPHRASE, &relay.address, params, ConnectOptions::default()).map_err(e)?;
    alice.set_my_name("Alice").map_err(e)?;
    bob.set_my_name("Bob").map_err(e)?;
    out.out("Profiles created: each a random master key wrapped with Argon2id, every record sealed.");

    let link = alice.create_invite(Some("Bob"), None).await.map_err(e)?;
    out.out(&format!("Alice makes a one-time invite ({} characters): {}…", link.len(), &link[..link.len().min(60)]));
    bob.accept_invite(&link, "Alice").await.map_err(e)?;
    out.out("Bob accepts it: a PQXDH session (X25519 + ML-KEM-1024) and a mailbox for Alice's answers.");

    alice.subscribe_all().await.map_err(e)?;
    bob.subscribe_all().await.map_err(e)?;
    until(&mut alice, |n| matches!(n, Notice::Joined { .. })).await?;
    out.out("Alice receives Bob's first message and locks her mailbox to Bob's sender key.");
    until(&mut bob, |n| matches!(n, Notice::Ready { .. })).await?;
    out.out("Bob receives Alice's answer and locks his mailbox in turn.");

    let sa = alice.safety_number("Bob").map_err(e)?;
    let sb = bob.safety_number("Alice").map_err(e)?;
    out.out(&format!("Safety number on Alice's side: {}", sa.digits));
    out.out(&format!("Safety number on Bob's side:   {}", sb.digits));
    if sa.digits != sb.digits {
        return Err("the safety numbers differ".into());
    }
    alice.mark_verified("Bob").map_err(e)?;
    bob.mark_verified("Alice").map_err(e)?;
    out.out("They match: both mark each other verified.");
    out.out("");

    for (from_alice, text) in MESSAGES {
        let (sender, receiver, to) =
            if *from_alice { (&mut alice, &mut bob, "Bob") } else { (&mut bob, &mut alice, "Alice") };
        sender.send_text(to, text).await.map_err(e)?;
        let got = until(receiver, |n| matches!(n, Notice::Message { .. })).await?;
        if let Notice::Message { from, text: t, .. } = got {
            out.out(&format!("  {from} → {to}: {t}"));
            if t != *text {
                return Err("a message changed on the way".into());
            }
        }
    }
    out.out("");
    out.out("Alice's history with Bob:");
    for m in alice.history("Bob").map_err(e)? {
        out.out(&format!("  {}", super::holder::history_line("Bob", &m)));
    }
    drop((alice, bob));
    let summary = relay.stop();
    out.out("");
    out.out("What the relay saw — counts only, no names, no keys, no addresses, nothing readable:");
    for item in summary.split_whitespace() {
        out.out(&format!("  {item}"));
    }
    out.out("Every frame it carried was one 16,376-byte cell. The profiles have been deleted.");
    Ok(())
}

/// Polls `client` until a notice matches.
async fn until(client: &mut Client, want: impl Fn(&Notice) -> bool) -> Result<Notice, String> {
    let deadline = tokio::time::Instant::now() + STEP_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        for n in client.poll(Duration::from_millis(200)).await.map_err(|e| e.to_string())? {
            if want(&n) {
                return Ok(n);
            }
        }
    }
    Err("timed out waiting for the other side".into())
}
