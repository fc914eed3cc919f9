//! The commands of the metadata defences: `timer`, `settings`, `rotate`, `duress`, `panic`,
//! and the `--expire` and `--cover` options.

use std::path::Path;
use std::rc::Rc;

use clap::{Args, Subcommand};
use sotto_client::app::{AppError, Client};
use sotto_client::relay::ConnectOptions;
use sotto_client::store::StoreError;
use zeroize::Zeroizing;

use super::commands::fail;
use super::holder::Holder;
use super::{Out, passphrase, text};

/// Environment variable holding the duress passphrase, for scripts and tests.
pub const DURESS_PASSPHRASE_ENV: &str = "SOTTO_DURESS_PASSPHRASE";

/// `sotto timer NAME DURATION|off`.
#[derive(Args, Debug)]
pub struct TimerArgs {
    /// The contact's name.
    pub name: String,
    /// How long messages live, e.g. 30s, 10m, 1h, 2d, 1w; or `off`. Without it, show the timer.
    pub duration: Option<String>,
}

/// `sotto settings ...`.
#[derive(Subcommand, Debug)]
pub enum SettingsCommand {
    /// Send delivery receipts (delayed at random and batched), or not (the default).
    Receipts {
        /// on or off; without it, show the setting.
        state: Option<String>,
    },
}

/// `sotto rotate [NAME]`.
#[derive(Args, Debug)]
pub struct RotateArgs {
    /// The contact whose conversation moves to a fresh mailbox (default: every contact).
    pub name: Option<String>,
}

/// `sotto duress ...`.
#[derive(Subcommand, Debug)]
pub enum DuressCommand {
    /// Choose a second passphrase that, when used to unlock, destroys this profile and opens an
    /// empty one that looks new.
    Set,
    /// Forget the duress passphrase.
    Clear,
}

/// Parses `30s`, `10m`, `1h`, `2d`, `1w` (or a number of seconds) into seconds; `off` is 0.
pub fn parse_duration(s: &str) -> Result<u32, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        return Ok(0);
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().map_err(|_| text::bad_duration(s))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return Err(text::bad_duration(s)),
    };
    let secs = n.checked_mul(mult).ok_or_else(|| text::bad_duration(s))?;
    if secs == 0 || secs > u64::from(sotto_client::wire::content::MAX_TIMER_SECONDS) {
        return Err(text::bad_duration(s));
    }
    u32::try_from(secs).map_err(|_| text::bad_duration(s))
}

/// Shows a number of seconds the way a person would write it.
pub fn show_duration(secs: u32) -> String {
    match secs {
        0 => "off".into(),
        s if s % 604_800 == 0 => format!("{}w", s / 604_800),
        s if s % 86_400 == 0 => format!("{}d", s / 86_400),
        s if s % 3600 == 0 => format!("{}h", s / 3600),
        s if s % 60 == 0 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

/// `sotto timer`.
pub async fn timer(h: &Rc<Holder>, a: &TimerArgs, out: &dyn Out) -> u8 {
    let mut c = h.client.lock().await;
    let Some(d) = &a.duration else {
        return match c.timer(&a.name) {
            Ok(s) => {
                out.out(&show_duration(s));
                0
            }
            Err(e) => fail(out, &e),
        };
    };
    let secs = match parse_duration(d) {
        Ok(s) => s,
        Err(e) => {
            out.err(&e);
            return 2;
        }
    };
    match c.set_timer(&a.name, secs).await {
        Ok(()) => {
            out.out(&text::timer_set(&a.name, &show_duration(secs)));
            0
        }
        Err(e) => fail(out, &e),
    }
}

/// `sotto settings`.
pub async fn settings(h: &Rc<Holder>, s: &SettingsCommand, out: &dyn Out) -> u8 {
    let mut c = h.client.lock().await;
    let SettingsCommand::Receipts { state } = s;
    let on = match state.as_deref() {
        None => {
            return match c.receipts_enabled() {
                Ok(on) => {
                    out.out(if on { "on" } else { "off" });
                    0
                }
                Err(e) => fail(out, &e),
            };
        }
        Some("on") => true,
        Some("off") => false,
        Some(other) => {
            out.err(&text::on_or_off(other));
            return 2;
        }
    };
    match c.set_receipts(on) {
        Ok(()) => {
            out.out(text::receipts(on));
            0
        }
        Err(e) => fail(out, &e),
    }
}

/// `sotto rotate`.
pub async fn rotate(h: &Rc<Holder>, a: &RotateArgs, out: &dyn Out) -> u8 {
    let mut c = h.client.lock().await;
    match c.rotate(a.name.as_deref()).await {
        Ok(n) => {
            out.out(&text::rotated(n));
            0
        }
        Err(e) => fail(out, &e),
    }
}

/// `sotto duress set|clear`: opens the profile here (the duress passphrase never travels over
/// the control socket), so no other `sotto` may hold it.
pub async fn duress(dir: &Path, cmd: &DuressCommand, options: ConnectOptions, out: &dyn Out) -> u8 {
    let pass = match passphrase(false) {
        Ok(p) => p,
        Err(e) => {
            out.err(&e);
            return 1;
        }
    };
    let mut client = match Client::open(dir, pass.as_bytes(), options) {
        Ok(c) => c,
        Err(AppError::Store(StoreError::Locked(_))) => {
            out.err(text::DURESS_NEEDS_PROFILE);
            return 1;
        }
        Err(e) => return fail(out, &e),
    };
    let result = match cmd {
        DuressCommand::Clear => client.profile.store.clear_duress().map(|()| text::DURESS_CLEARED),
        DuressCommand::Set => {
            let duress = match duress_passphrase() {
                Ok(p) => p,
                Err(e) => {
                    out.err(&e);
                    return 1;
                }
            };
            let relay = {
                let txn = client.profile.store.txn();
                match sotto_client::app::profile::settings(&txn) {
                    Ok(s) => s.relay,
                    Err(e) => return fail(out, &e),
                }
            };
            client.profile.store.set_duress(duress.as_bytes(), &relay).map(|()| text::DURESS_SET)
        }
    };
    match result {
        Ok(msg) => {
            out.out(msg);
            0
        }
        Err(e) => fail(out, &AppError::Store(e)),
    }
}

fn duress_passphrase() -> Result<Zeroizing<String>, String> {
    if let Ok(p) = std::env::var(DURESS_PASSPHRASE_ENV) {
        return if p.is_empty() { Err(text::EMPTY_PASSPHRASE.into()) } else { Ok(Zeroizing::new(p)) };
    }
    let first =
        Zeroizing::new(rpassword::prompt_password(text::DURESS_PROMPT).map_err(|_| text::NO_PASSPHRASE.to_string())?);
    let second = Zeroizing::new(
        rpassword::prompt_password(text::REPEAT_PASSPHRASE_PROMPT).map_err(|_| text::NO_PASSPHRASE.to_string())?,
    );
    if first.is_empty() {
        return Err(text::EMPTY_PASSPHRASE.into());
    }
    if *first != *second {
        return Err(text::PASSPHRASES_DIFFER_DURESS.into());
    }
    Ok(first)
}

/// `sotto panic`: no passphrase needed. A process holding the profile is told first (it wipes
/// and exits); then the files are destroyed here too, whatever happened there.
pub async fn panic(dir: &Path, out: &dyn Out) -> u8 {
    let had_profile = dir.join(sotto_client::store::HEADER_FILE).exists();
    // The holder prints its own confirmation when it did the work.
    let holder_wiped = matches!(sotto_client::control::forward(dir, vec!["panic".into()]).await, Ok(0));
    match sotto_client::store::wipe::wipe_profile(dir) {
        Ok(()) => {
            if !holder_wiped {
                out.out(if had_profile { text::WIPED } else { text::NOTHING_TO_WIPE });
            }
            0
        }
        Err(e) => fail(out, &AppError::Store(e)),
    }
}

/// `panic` forwarded to the process holding the profile: wipe, keep the client locked so
/// nothing writes again, and end the process once the answer is on its way.
pub async fn panic_in_holder(h: &Rc<Holder>, out: &dyn Out) -> u8 {
    let c = h.client.lock().await;
    let dir = c.profile.store.dir().to_path_buf();
    let result = sotto_client::store::wipe::wipe_profile(&dir);
    // The guard is never released: no command may touch the profile again in this process.
    std::mem::forget(c);
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_millis(300));
        std::process::exit(0);
    });
    match result {
        Ok(()) => {
            out.out(text::WIPED);
            0
        }
        Err(e) => fail(out, &AppError::Store(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("off"), Ok(0));
        assert_eq!(parse_duration("90"), Ok(90));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("2d"), Ok(172_800));
        assert_eq!(parse_duration("1w"), Ok(604_800));
        for bad in ["", "h", "1y", "-1h", "0", "0h", "99999w", "1 h", "１h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(show_duration(3600), "1h");
        assert_eq!(show_duration(90), "90s");
    }
}
