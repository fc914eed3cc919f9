//! What each command does. Commands write through an [`Out`], so the same code serves
//! this terminal and commands forwarded from another `sotto` process.

use std::path::Path;
use std::time::Duration;

use sotto_client::app::{AppError, Client, InviteForm, Notice};
use sotto_client::relay::ConnectOptions;
use sotto_client::store::KdfParams;
use sotto_proto::RelayAddress;

use super::holder::Holder;
use super::{EXIT_QUEUED, Out, passphrase, text};

/// After the first message, `listen --once` keeps printing until the relay has been
/// quiet this long: everything that was waiting arrives in one burst.
pub const ONCE_QUIET: Duration = Duration::from_millis(700);

/// `listen` without `--timeout`: until interrupted (a century stands in for forever).
const LISTEN_FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `sotto init`.
pub async fn init(dir: &Path, relay: &RelayAddress, name: Option<&str>, options: ConnectOptions, out: &dyn Out) -> u8 {
    let pass = match passphrase(true) {
        Ok(p) => p,
        Err(e) => {
            out.err(&e);
            return 1;
        }
    };
    let result = Client::init(dir, pass.as_bytes(), relay, KdfParams::production(), options).and_then(|mut c| {
        if let Some(n) = name {
            c.set_my_name(n)?;
        }
        Ok(c)
    });
    match result {
        Ok(_) => {
            out.out(&text::profile_created(&dir.display().to_string()));
            0
        }
        Err(e) => fail(out, &e),
    }
}

/// Runs one command on an open profile. `init` and `demo` never come here.
pub async fn execute(h: &std::rc::Rc<Holder>, command: &super::Command, out: &dyn Out) -> u8 {
    use super::Command as C;
    // Whatever the command, what has expired goes first.
    let _ = h.client.lock().await.expire_now();
    match command {
        C::Invite { name, relay, no_qr, full } => {
            let mut c = h.client.lock().await;
            let form = if *full { InviteForm::Full } else { InviteForm::Short };
            match c.create_invite_as(name.as_deref(), relay.as_ref(), form).await {
                Ok(link) => {
                    // This command reached a relay: deliver anything still queued.
                    let _ = c.flush_outbox().await;
                    out.err(text::invite_created());
                    out.out(&link);
                    if !no_qr {
                        // A short link's QR code holds its compact form: a smaller code.
                        match sotto_client::wire::invite::qr_text(&sotto_client::wire::invite_qr::qr_form(&link)) {
                            Ok(qr) => qr.lines().for_each(|l| out.err(l)),
                            Err(e) => out.err(&e.to_string()),
                        }
                    }
                    0
                }
                Err(e) => fail(out, &e),
            }
        }
        C::Accept { link, name } => {
            let mut c = h.client.lock().await;
            match c.accept_invite(link, name).await {
                Ok(()) => {
                    out.out(&text::accepted(name));
                    0
                }
                Err(e) => fail(out, &e),
            }
        }
        C::Send { name, file: Some(path), .. } => super::files_cmd::send_file(h, name, path, out).await,
        C::Send { name, text: body, expire, .. } => {
            let expire = match expire.as_deref().map(super::defences::parse_duration).transpose() {
                Ok(e) => e.filter(|s| *s > 0),
                Err(e) => {
                    out.err(&e);
                    return 2;
                }
            };
            let mut c = h.client.lock().await;
            match c.send_text_expiring(name, body.as_deref().unwrap_or_default(), expire).await {
                Ok(()) => {
                    out.err(text::sent());
                    0
                }
                Err(e) => fail(out, &e),
            }
        }
        C::Listen { once, timeout, json, cover } => {
            if let Some(rate) = cover {
                let mut c = h.client.lock().await;
                match c.start_cover(*rate).await {
                    Ok(()) => out.err(&text::cover_started(*rate)),
                    Err(e) => return fail(out, &e),
                }
            }
            let code = listen(h, *once, *timeout, *json, out).await;
            if cover.is_some() {
                h.client.lock().await.stop_cover();
            }
            code
        }
        C::Timer(a) => super::defences::timer(h, a, out).await,
        C::Settings(s) => super::defences::settings(h, s, out).await,
        C::Rotate(a) => super::defences::rotate(h, a, out).await,
        C::Panic => super::defences::panic_in_holder(h, out).await,
        C::Group { action } => super::group::execute(h, action, out).await,
        C::Contacts => {
            let mut c = h.client.lock().await;
            // Deliver anything still queued while we are here, quietly.
            let _ = c.flush_outbox().await;
            match c.contact_names() {
                Ok(list) if list.is_empty() => {
                    out.err(text::no_contacts());
                    0
                }
                Ok(list) => {
                    for line in list {
                        out.out(&line);
                    }
                    0
                }
                Err(e) => fail(out, &e),
            }
        }
        C::History { name } => {
            let mut c = h.client.lock().await;
            match c.history(name) {
                Ok(messages) => {
                    for m in messages {
                        out.out(&super::holder::history_line(name, &m));
                    }
                    0
                }
                Err(e) => fail(out, &e),
            }
        }
        C::Verify { name, mark_verified, accept } => {
            let mut c = h.client.lock().await;
            if *accept {
                return match c.accept_new_identity(name).await {
                    Ok(notices) => {
                        out.out(&text::accepted_identity(name));
                        notices.iter().for_each(|n| show(n, false, out));
                        0
                    }
                    Err(e) => fail(out, &e),
                };
            }
            if *mark_verified {
                return match c.mark_verified(name) {
                    Ok(()) => {
                        out.out(&text::marked_verified(name));
                        0
                    }
                    Err(e) => fail(out, &e),
                };
            }
            match c.safety_number(name) {
                Ok(n) => {
                    out.err(&text::safety_intro(name));
                    out.out(&group_digits(&n.digits));
                    let scannable =
                        base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, &n.scannable);
                    if let Ok(qr) = sotto_client::wire::invite::qr_text(&scannable) {
                        qr.lines().for_each(|l| out.err(l));
                    }
                    out.err(text::verified_state(n.verified));
                    if n.changed {
                        out.err(&text::identity_changed(name));
                    }
                    0
                }
                Err(e) => fail(out, &e),
            }
        }
        C::Chat if out.is_terminal() => super::chat::run(h).await,
        C::Chat => {
            out.err(super::chat_text::CHAT_ELSEWHERE);
            1
        }
        C::Init { .. } | C::Demo | C::Duress(_) => 2,
    }
}

async fn listen(h: &std::rc::Rc<Holder>, once: bool, timeout: Option<u64>, json: bool, out: &dyn Out) -> u8 {
    let mut notices = h.listen_start().await;
    for (relay, e) in h.take_subscribe_failures().await {
        out.err(&text::relay_trouble(&format!("{relay}: {e}")));
    }
    let mut got_first = false;
    let result = loop {
        let wait = match (once && got_first, timeout) {
            (true, _) => ONCE_QUIET,
            (false, Some(s)) => Duration::from_secs(s),
            (false, None) => LISTEN_FOREVER,
        };
        let next = tokio::select! {
            n = tokio::time::timeout(wait, notices.recv()) => n,
            () = interrupted(out) => break 0,
            () = h.output_closed(out) => break 0,
        };
        match next {
            Ok(Ok(notice)) => {
                if matches!(notice, Notice::Message { .. } | Notice::GroupMessage { .. })
                    || super::files_cmd::is_file_notice(&notice)
                {
                    got_first = true;
                }
                show(&notice, json, out);
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => continue,
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break 1,
            // A file still downloading keeps listening going.
            Err(_) if h.client.lock().await.downloads_busy() => continue,
            Err(_) if once && !got_first => {
                out.err(&text::no_message(timeout.unwrap_or(0)));
                break 1;
            }
            Err(_) => break 0,
        }
    };
    h.listen_stop();
    result
}

/// Resolves on Ctrl-C when `out` is this process's terminal; never otherwise.
async fn interrupted(out: &dyn Out) {
    if out.is_terminal() {
        let _ = tokio::signal::ctrl_c().await;
    } else {
        std::future::pending::<()>().await;
    }
}

/// Prints a notice: messages on stdout (text or JSON), everything else on stderr.
pub fn show(notice: &Notice, json: bool, out: &dyn Out) {
    if super::group::show(notice, json, out) {
        return;
    }
    match notice {
        Notice::Message { from, text: body, sent_at_ms, seq } => {
            if json {
                let v = serde_json::json!({ "from": from, "text": body, "sent_at_ms": sent_at_ms, "seq": seq });
                out.out(&v.to_string());
            } else {
                out.out(&format!("{from}: {body}"));
            }
        }
        Notice::Joined { name } => out.err(&text::joined(name)),
        Notice::Ready { name } => out.err(&text::ready(name)),
        Notice::Dropped { reason } => out.err(&text::dropped(reason)),
        Notice::IdentityChanged { name } => out.err(&text::identity_changed(name)),
        Notice::RelayTrouble(reason) => out.err(&text::relay_trouble(reason)),
        Notice::TimerChanged { name, seconds } => {
            out.err(&text::timer_changed(name, &super::defences::show_duration(*seconds)));
        }
        Notice::Delivered { name, count } => out.err(&text::delivered(name, *count)),
        n => super::files_cmd::show(n, json, out),
    }
}

/// 60 digits in twelve groups of five, as Signal shows them.
fn group_digits(d: &str) -> String {
    d.as_bytes().chunks(5).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
}

/// Reports an error; returns the exit code.
pub fn fail(out: &dyn Out, e: &AppError) -> u8 {
    match e {
        AppError::Queued(reason) => {
            out.err(&text::queued(&reason.to_string()));
            EXIT_QUEUED
        }
        e => {
            out.err(&format!("error: {e}"));
            1
        }
    }
}
