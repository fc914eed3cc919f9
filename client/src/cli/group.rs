//! `sotto group …`: the group subcommands and how group notices print.

use clap::Subcommand;
use sotto_client::app::{AppError, FanOutReport, GroupEvent, Notice};

use super::commands::fail;
use super::defences::{parse_duration, show_duration};
use super::holder::{Holder, history_line};
use super::{Out, text};
use sotto_client::app::records::{Delivery, Direction, Message};

/// What `sotto group` does.
#[derive(Subcommand, Debug)]
pub enum GroupCommand {
    /// Create a group with you as its admin.
    Create {
        /// What you call the group (only on this device; members may call it otherwise).
        group: String,
    },
    /// Add a contact to a group (admins only); they are introduced to every member.
    Add {
        group: String,
        /// The contact's name.
        name: String,
    },
    /// Remove a member from a group (admins only).
    Remove {
        group: String,
        /// The member's name, as `sotto group members` shows it.
        name: String,
    },
    /// Make a member an admin (admins only).
    Admin {
        group: String,
        /// The member's name, as `sotto group members` shows it.
        name: String,
    },
    /// Leave a group.
    Leave { group: String },
    /// List a group's members.
    Members { group: String },
    /// List your groups.
    List,
    /// Show a group's messages.
    History { group: String },
    /// Send a text message, or a file with --file, to every member of a group.
    Send {
        group: String,
        /// The message.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        text: Option<String>,
        /// Send this file (or image) instead of a text: uploaded once, for every member.
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
    /// Show or set how long the group's messages live, for every member: 1h, 2d, off.
    Timer {
        group: String,
        /// How long messages live, e.g. 30s, 10m, 1h, 2d, 1w; or `off`. Without it, show the timer.
        duration: Option<String>,
    },
}

/// Runs one `sotto group` command.
pub async fn execute(h: &std::rc::Rc<Holder>, command: &GroupCommand, out: &dyn Out) -> u8 {
    use GroupCommand as G;
    if let G::Send { group, file: Some(path), .. } = command {
        return super::group_files::send_file(h, group, path, out).await;
    }
    if let G::Timer { group, duration } = command {
        return timer(h, group, duration.as_deref(), out).await;
    }
    let mut c = h.client.lock().await;
    let result: Result<Option<FanOutReport>, AppError> = match command {
        G::Create { group } => c.group_create(group).map(|()| {
            out.out(&text::group_created(group));
            None
        }),
        G::Add { group, name } => c.group_add(group, name).await.map(|r| {
            out.out(&text::group_added(group, name));
            Some(r)
        }),
        G::Remove { group, name } => c.group_remove(group, name).await.map(|r| {
            out.out(&text::group_removed(group, name));
            Some(r)
        }),
        G::Admin { group, name } => c.group_promote(group, name).await.map(|r| {
            out.out(&text::group_promoted(group, name));
            Some(r)
        }),
        G::Leave { group } => c.group_leave(group).await.map(|r| {
            out.out(&text::group_left(group));
            Some(r)
        }),
        G::Members { group } => c.group_members(group).map(|members| {
            for m in members {
                out.out(&text::group_member_line(&m.name, m.me, m.admin, m.connected));
            }
            None
        }),
        G::List => c.group_names().map(|names| {
            if names.is_empty() {
                out.err(text::no_groups());
            }
            names.iter().for_each(|n| out.out(n));
            None
        }),
        G::History { group } => c.group_history(group).map(|entries| {
            for e in entries {
                let m = Message {
                    direction: if e.outgoing { Direction::Out } else { Direction::In },
                    text: match (&e.file_note, &e.file_name) {
                        (Some(note), _) => text::group_file_note(note, &e.text),
                        (None, Some(f)) => text::group_file_entry(f, &e.text),
                        (None, None) => e.text.clone(),
                    },
                    sent_at_ms: e.sent_at_ms,
                    seq: 0,
                    delivery: Delivery::Received,
                };
                out.out(&history_line(&e.from, &m));
            }
            None
        }),
        G::Send { group, text: body, .. } => {
            c.group_send_text(group, body.as_deref().unwrap_or_default()).await.map(Some)
        }
        G::Timer { .. } => Ok(None),
    };
    match result {
        Ok(Some(r)) => {
            if matches!(command, G::Send { .. }) {
                out.err(&text::group_sent(r.copies));
            }
            report(&r, out);
            0
        }
        Ok(None) => 0,
        Err(e) => fail(out, &e),
    }
}

/// `sotto group timer GROUP [DURATION]`: shows the group's timer, or sets it for everyone.
async fn timer(h: &std::rc::Rc<Holder>, group: &str, duration: Option<&str>, out: &dyn Out) -> u8 {
    let mut c = h.client.lock().await;
    let Some(d) = duration else {
        return match c.group_timer(group) {
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
    match c.group_set_timer(group, secs).await {
        Ok(r) => {
            out.out(&text::group_timer_set(group, &show_duration(secs)));
            report(&r, out);
            0
        }
        Err(e) => fail(out, &e),
    }
}

/// What a fan-out left waiting or could not keep, if anything.
pub fn report(r: &FanOutReport, out: &dyn Out) {
    if r.waiting > 0 {
        out.err(&text::group_waiting(r.waiting));
    }
    if r.not_kept > 0 {
        out.err(&text::group_not_kept(r.not_kept));
    }
}

/// Prints a group notice; returns false if `notice` is not about a group.
pub fn show(notice: &Notice, json: bool, out: &dyn Out) -> bool {
    match notice {
        Notice::GroupMessage { group, from, text: body, file_name, sent_at_ms } => {
            if json {
                let v = serde_json::json!({
                    "group": group, "from": from, "text": body, "file_name": file_name, "sent_at_ms": sent_at_ms,
                });
                out.out(&v.to_string());
            } else {
                match file_name {
                    Some(f) => out.out(&text::group_file_line(group, from, f)),
                    None => out.out(&format!("{group}/{from}: {body}")),
                }
            }
            true
        }
        Notice::Group { group, event } => {
            out.err(&event_line(group, event));
            true
        }
        Notice::GroupFile { .. } => {
            super::group_files::show(notice, json, out);
            true
        }
        _ => false,
    }
}

fn event_line(group: &str, event: &GroupEvent) -> String {
    match event {
        GroupEvent::AddedYou { by } => text::group_event_added_you(group, by),
        GroupEvent::Added { name } => text::group_event_added(group, name),
        GroupEvent::Removed { name } => text::group_event_removed(group, name),
        GroupEvent::Left { name } => text::group_event_left(group, name),
        GroupEvent::Promoted { name } => text::group_event_promoted(group, name),
        GroupEvent::RemovedYou => text::group_event_removed_you(group),
        GroupEvent::Introduced { name } => text::group_event_introduced(group, name),
        GroupEvent::NotAllowed { name } => text::group_event_not_allowed(group, name),
        GroupEvent::NotAMember { name } => text::group_event_not_a_member(group, name),
        GroupEvent::Malformed { name } => text::group_event_malformed(group, name),
        GroupEvent::BadIntroduction => text::group_event_bad_introduction(group),
        GroupEvent::LogFull => text::group_event_log_full(group),
        GroupEvent::TimerChanged { name, seconds } => text::group_event_timer(group, name, &show_duration(*seconds)),
        _ => text::group_event_other(group),
    }
}
