//! Every sentence `sotto chat` shows, in one place so it can be translated (the rest of
//! the command line's sentences are in `text.rs`).

use super::chat::backend::Feature;
use super::chat::state::GroupAction;

pub const NEEDS_TERMINAL: &str = "sotto chat needs a terminal: run it in one (not through a pipe).";
pub const CHAT_ELSEWHERE: &str = "sotto chat cannot run while another sotto process (such as `sotto listen`) uses \
     this profile: stop that one first.";

pub const CONNECTING: &str = "connecting…";
pub const NO_RELAY_YET: &str = "no relay in use yet";
pub const TITLE_HELP: &str = "F1 or ? help ";
pub const CHATS_TITLE: &str = " Chats ";
pub const NO_CHATS: &str = "No conversations yet. Press F2 (or Ctrl-N) to make an invite for someone, \
     or F3 (or Ctrl-O) to accept theirs. F1 shows every key.";
pub const VERIFIED_TAG: &str = "✓ verified ";
pub const NOT_VERIFIED_TAG: &str = "not verified (F4) ";
pub const LOADING: &str = "loading…";
pub const ME: &str = "me";
pub const MARK_QUEUED: &str = "  ◷ queued";
pub const MARK_STORED: &str = "  ✓";
pub const MARK_FAILED: &str = "  ✗ failed";
pub const HINTS: &str = "Enter send · Alt-Enter new line · Tab next chat · PgUp/PgDn scroll · F2 invite · Ctrl-Q quit";
pub const QUEUED_TOAST: &str = "The relay cannot be reached: the message is queued and goes out when it is back.";
pub const NO_CHAT_SELECTED: &str = "No conversation is open: make or accept an invite first (F2, F3).";
pub const SAFETY_NEEDS_CONTACT: &str = "Safety numbers are per person: open the conversation with one member.";
pub const FILE_SENT: &str = "File sent.";
pub const GROUP_DONE: &str = "Group updated.";

pub fn online(queued: usize) -> String {
    if queued == 0 { "online".to_string() } else { format!("online · sending {queued}") }
}

pub fn offline(unreachable: usize, relays: usize, queued: usize) -> String {
    let what =
        if relays > 1 { format!("{unreachable} of {relays} relays unreachable") } else { "relay unreachable".into() };
    if queued == 0 { what } else { format!("{what} · {queued} waiting, sent when it is back") }
}

pub fn relay_problem(reason: &str) -> String {
    format!("Relay: {reason}. Retrying; you can keep writing.")
}

pub fn members(m: &[String]) -> String {
    format!("· {} ", m.join(", "))
}

pub fn timer_tag(secs: u64) -> String {
    format!("· ⏱ {} ", duration(secs))
}

pub fn scrolled(rows: usize) -> String {
    format!(" ↓ {rows} more rows (PgDn, Esc) ")
}

pub fn input_title(name: &str) -> String {
    format!(" to {name} ")
}

pub fn identity_banner(name: &str) -> String {
    format!(
        "⚠ The safety number of {name} changed. Their new messages are held and nothing is sent to them until \
         you compare the number with them (F4) and accept it."
    )
}

pub fn not_ready_banner(name: &str) -> String {
    format!("{name} has not answered the invite yet: you can write once their first message arrives.")
}

pub fn not_available(f: Feature) -> String {
    let what = match f {
        Feature::GroupTimer => "A disappearing-message timer for a whole group",
    };
    format!("{what}: not available in this version of sotto yet.")
}

pub fn queued(reason: &str) -> String {
    format!("queued: the relay cannot be reached right now ({reason})")
}

pub fn accepted(name: &str) -> String {
    format!("Invite accepted: {name} appears once they are online.")
}

pub fn marked_verified(name: &str) -> String {
    format!("{name} is now marked verified.")
}

pub fn identity_accepted(name: &str) -> String {
    format!("The new safety number of {name} is accepted; sending resumes. Verify it again when you can.")
}

pub fn identity_changed_toast(name: &str) -> String {
    format!("The safety number of {name} changed: press F4 in their conversation.")
}

pub fn joined(name: &str) -> String {
    format!("{name} accepted your invite.")
}

pub fn ready(name: &str) -> String {
    format!("{name} answered: the conversation is set up.")
}

pub fn dropped(reason: &str) -> String {
    format!("{reason}; it was dropped.")
}

pub fn timer_set(secs: Option<u64>) -> String {
    match secs {
        None => "Messages here no longer disappear.".to_string(),
        Some(s) => format!("Messages here now disappear after {}.", duration(s)),
    }
}

pub fn timer_changed(name: &str, secs: Option<u64>) -> String {
    match secs {
        None => format!("{name} turned disappearing messages off."),
        Some(s) => format!("{name} set messages to disappear after {}.", duration(s)),
    }
}

pub fn file_saved(from: &str, file: &str, path: &str) -> String {
    format!("{from} sent {file}: saved to {path}")
}

pub fn file_failed(from: &str, file: &str, reason: &str) -> String {
    format!("The file {file} from {from} could not be received: {reason}")
}

pub fn group_changed(group: &str) -> String {
    format!("The group {group} changed.")
}

pub fn timer_choice(secs: Option<u64>) -> String {
    secs.map_or_else(|| "off".to_string(), duration)
}

fn duration(secs: u64) -> String {
    match secs {
        s if s >= 604_800 && s % 604_800 == 0 => format!("{} week(s)", s / 604_800),
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} day(s)", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{} hour(s)", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} minute(s)", s / 60),
        s => format!("{s} seconds"),
    }
}

pub const HELP_TITLE: &str = "Keys";
pub const HELP: &[&str] = &[
    "Writing",
    "  Enter              send the message",
    "  Alt-Enter, Ctrl-J  new line in the message",
    "  ←→ Home End        move; Ctrl-A / Ctrl-E start / end of line",
    "  Ctrl-W / Ctrl-U    delete a word / the whole message",
    "Conversations",
    "  Tab, Shift-Tab     next / previous conversation (also Alt-↓ / Alt-↑)",
    "  PgUp PgDn, ↑ ↓     scroll back; Esc back to the newest",
    "Actions",
    "  F2  Ctrl-N         make an invite (link and QR code)",
    "  F3  Ctrl-O         accept someone's invite",
    "  F4  Ctrl-S         safety number: compare it, mark verified",
    "  F5  Ctrl-F         send a file",
    "  F6  Ctrl-G         groups: create, add or remove members",
    "  F7  Ctrl-T         disappearing messages in this conversation",
    "  F1, ? (empty line) this help",
    "  Ctrl-Q, Ctrl-C     quit (the screen is wiped)",
    "Marks",
    "  ✓ after a message  stored by the relay, waiting for them",
    "  ◷ queued           not sent yet: goes out when the relay is back",
    "  ✗ failed           the relay refused it for good",
    "  ✓ before a name    verified",
    "  ! before a name    safety number changed: open it, F4, compare, A",
    "  … before a name    has not answered the invite yet",
    "",
    "Esc closes this.",
];

pub const INVITE_TITLE: &str = "New invite";
pub const INVITE_NAME_PROMPT: &str = "What will you call the person you invite? (empty: the name they suggest)";
pub const INVITE_NAME_KEYS: &str = "Enter make the invite · Esc cancel";
pub const INVITE_WAITING: &str = "Making the invite on the relay…";
pub const INVITE_INTRO: &str = "Give this one-time invite to one person, through a channel you trust: let them scan \
     the QR code, or copy the link below (line breaks in a copied link do not matter). Whoever uses it first \
     becomes your contact.";
pub const DOC_KEYS: &str = "↑↓ PgUp PgDn scroll · Esc close";

pub fn invite_qr_too_big(w: usize, h: usize) -> String {
    if w == 0 {
        return "(This link is too long for a QR code: copy the link.)".to_string();
    }
    format!(
        "(The QR code needs a window of at least {w}×{h}: make the window larger or the font smaller, or copy the link.)"
    )
}

pub const ACCEPT_TITLE: &str = "Accept an invite";
pub const ACCEPT_LINK_PROMPT: &str = "Paste the invite link (sotto:invite#…):";
pub const ACCEPT_NAME_PROMPT: &str = "What will you call them?";
pub const ACCEPT_WAITING: &str = "Accepting: reaching the relays…";
pub const FORM_KEYS: &str = "Tab next field · Enter accept · Esc cancel";

pub const SAFETY_TITLE: &str = "Safety number";

pub fn safety_intro(name: &str) -> String {
    format!(
        "Compare this number with the one {name} sees, in person or on a call. If they match, nobody is in between."
    )
}

pub const SAFETY_VERIFIED: &str = "Status: verified.";
pub const SAFETY_NOT_VERIFIED: &str = "Status: not verified.";
pub const SAFETY_CHANGED: &str = "Their key CHANGED. Compare the new number before accepting it.";
pub const SAFETY_KEYS: &str = "V mark verified (only if the numbers match) · Esc close";
pub const SAFETY_KEYS_CHANGED: &str = "A accept the new number (after comparing it) · Esc close";

pub fn safety_qr_too_big(w: usize, h: usize) -> String {
    format!("(A window of at least {w}×{h} shows the number as a QR code.)")
}

pub const FILE_TITLE: &str = "Send a file";
pub const FILE_PROMPT: &str = "Path of the file to send:";
pub const FILE_KEYS: &str = "Enter send · Esc cancel";
pub const FILE_SENDING: &str = "Sending… (Esc hides this; the file keeps going)";

pub fn progress(done: u64, total: u64) -> String {
    format!("{} / {} KiB", done / 1024, total / 1024)
}

pub const GROUP_TITLE: &str = "Groups";
pub const GROUP_NAME_PROMPT: &str = "Group name:";
pub const GROUP_MEMBERS_PROMPT: &str = "Contacts, separated by commas:";
pub const GROUP_KEYS: &str = "Ctrl-←/→ create/add/remove · Tab next field · Enter do it · Esc cancel";
pub const GROUP_WAITING: &str = "Telling the members…";

pub fn group_action(a: GroupAction) -> &'static str {
    match a {
        GroupAction::Create => "Create",
        GroupAction::Add => "Add members",
        GroupAction::Remove => "Remove members",
    }
}

pub const TIMER_TITLE: &str = "Disappearing messages";
pub const TIMER_PROMPT: &str = "New messages in this conversation disappear, on both sides, after:";
pub const TIMER_KEYS: &str = "↑↓ choose · Enter set · Esc cancel";
pub const TIMER_WAITING: &str = "Setting the timer…";

/// How a file appears in a conversation.
pub fn file_entry(name: &str) -> String {
    format!("[file] {name}")
}

pub fn timer_too_long() -> String {
    "That timer is too long.".to_string()
}
