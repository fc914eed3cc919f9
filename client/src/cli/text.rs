//! Every sentence the command line shows a person, in one place so it can be translated.

pub const PASSPHRASE_PROMPT: &str = "Passphrase: ";
pub const NEW_PASSPHRASE_PROMPT: &str = "Choose a passphrase for this profile: ";
pub const REPEAT_PASSPHRASE_PROMPT: &str = "Repeat the passphrase: ";
pub const PASSPHRASES_DIFFER: &str = "The two passphrases differ; nothing was created.";
pub const EMPTY_PASSPHRASE: &str = "A passphrase cannot be empty.";
pub const NO_PASSPHRASE: &str = "No passphrase: set SOTTO_PASSPHRASE or run in a terminal.";
pub const WAITING_FOR_HOLDER: &str = "Another sotto is using this profile; waiting for it…";

pub fn profile_created(dir: &str) -> String {
    format!("Profile created in {dir}.")
}

pub fn invite_created() -> &'static str {
    "Give this one-time link to the person you invite, through a channel you trust \
     (it works for 48 hours; `--full` makes one that lasts longer):"
}

pub fn accepted(name: &str) -> String {
    format!("Invite accepted: \"{name}\" will appear once they are online.")
}

pub fn sent() -> &'static str {
    "Sent (stored by the relay)."
}

pub fn queued(reason: &str) -> String {
    format!("Not sent yet: {reason}")
}

pub fn joined(name: &str) -> String {
    format!("* \"{name}\" accepted your invite.")
}

pub fn ready(name: &str) -> String {
    format!("* \"{name}\" answered: the conversation is set up.")
}

pub fn dropped(reason: &str) -> String {
    format!("! {reason}; it was dropped.")
}

pub fn identity_changed(name: &str) -> String {
    format!(
        "! The safety number of \"{name}\" changed. Nothing will be sent to them until you compare it \
         (`sotto verify \"{name}\"`) and accept it (`sotto verify \"{name}\" --accept`)."
    )
}

pub fn relay_trouble(reason: &str) -> String {
    format!("! relay: {reason}")
}

pub fn no_message(secs: u64) -> String {
    format!("No message arrived within {secs} s.")
}

pub fn safety_intro(name: &str) -> String {
    format!("Safety number with \"{name}\" — compare it with theirs, in person or on a call:")
}

pub fn verified_state(verified: bool) -> &'static str {
    if verified { "Status: verified." } else { "Status: not verified. If the numbers match, run with --mark-verified." }
}

pub fn marked_verified(name: &str) -> String {
    format!("\"{name}\" is now marked verified.")
}

pub fn accepted_identity(name: &str) -> String {
    format!("The new safety number of \"{name}\" is accepted; sending resumes. Verify it again when you can.")
}

pub fn no_contacts() -> &'static str {
    "No contacts yet. Make an invite with `sotto invite`, or accept one with `sotto accept LINK --name NAME`."
}

pub const DURESS_PROMPT: &str = "Choose a duress passphrase (unlocking with it destroys this profile): ";
pub const PASSPHRASES_DIFFER_DURESS: &str = "The two duress passphrases differ; nothing was changed.";
pub const DURESS_NEEDS_PROFILE: &str = "Another sotto is using this profile; stop it first (the duress passphrase is set only by the process that opens the profile).";
pub const DURESS_SET: &str =
    "Duress passphrase set. Unlocking with it destroys this profile and opens an empty one in its place.";
pub const DURESS_CLEARED: &str = "Duress passphrase removed.";
pub const WIPED: &str = "The profile was destroyed: nothing in it can be decrypted any more, with any passphrase.";
pub const NOTHING_TO_WIPE: &str = "There was no profile here; nothing was destroyed.";

pub fn bad_duration(s: &str) -> String {
    format!("\"{s}\" is not a duration: write it like 30s, 10m, 1h, 2d or 1w (at most a year), or off.")
}

pub fn timer_set(name: &str, duration: &str) -> String {
    if duration == "off" {
        format!("Messages with \"{name}\" no longer disappear (they were told).")
    } else {
        format!("Messages with \"{name}\" now disappear after {duration}, on both sides.")
    }
}

pub fn timer_changed(name: &str, duration: &str) -> String {
    if duration == "off" {
        format!("* \"{name}\" turned disappearing messages off.")
    } else {
        format!("* \"{name}\" set messages to disappear after {duration}.")
    }
}

pub fn delivered(name: &str, count: usize) -> String {
    format!("* \"{name}\" received {count} of your messages.")
}

pub fn on_or_off(s: &str) -> String {
    format!("\"{s}\": write on or off.")
}

pub fn receipts(on: bool) -> &'static str {
    if on {
        "Delivery receipts on: your contacts will learn, after a random delay, which of their messages arrived."
    } else {
        "Delivery receipts off."
    }
}

pub fn rotated(n: usize) -> String {
    format!("{n} conversation(s) moved to fresh mailboxes; the old ones are deleted once drained.")
}

pub fn cover_started(rate: f64) -> String {
    format!("Cover traffic on: about {rate} dummy cells a minute.")
}

pub fn file_sent(path: &str) -> String {
    format!("Sent {path} (stored by the relay for 48 hours).")
}

pub fn uploading(name: &str) -> String {
    format!("sending {name}")
}

pub fn downloading(name: &str) -> String {
    format!("receiving {name}")
}

pub fn file_incoming(from: &str, name: &str, size: &str) -> String {
    format!("* \"{from}\" is sending {name} ({size}); downloading…")
}

pub fn file_saved(from: &str, name: &str, size: &str, path: &str) -> String {
    format!("{from}: [file] {name} ({size}) saved to {path}")
}

pub fn file_failed(from: &str, name: &str, reason: &str) -> String {
    format!("! The file {name} from \"{from}\" was not saved: {reason}")
}

// Groups.

pub fn group_created(group: &str) -> String {
    format!("Group \"{group}\" created. Add people with `sotto group add \"{group}\" NAME`.")
}

pub fn group_added(group: &str, name: &str) -> String {
    format!("\"{name}\" was added to \"{group}\".")
}

pub fn group_removed(group: &str, name: &str) -> String {
    format!("\"{name}\" was removed from \"{group}\".")
}

pub fn group_promoted(group: &str, name: &str) -> String {
    format!("\"{name}\" is now an admin of \"{group}\".")
}

pub fn group_left(group: &str) -> String {
    format!("You left \"{group}\".")
}

pub fn group_member_line(name: &str, me: bool, admin: bool, connected: bool) -> String {
    let mut notes = Vec::new();
    if me {
        notes.push("you");
    }
    if admin {
        notes.push("admin");
    }
    if !connected {
        notes.push("introduction under way");
    }
    if notes.is_empty() { name.to_string() } else { format!("{name} ({})", notes.join(", ")) }
}

pub fn no_groups() -> &'static str {
    "No groups yet. Create one with `sotto group create NAME`."
}

pub fn group_sent(copies: usize) -> String {
    format!("Sent to {copies} member(s) (stored by the relay).")
}

pub fn group_waiting(n: usize) -> String {
    format!("{n} member(s) are still being introduced; their copies will be sent once that is done.")
}

pub fn group_not_kept(n: usize) -> String {
    format!("! {n} copies could not be kept: too many are waiting for introductions to finish.")
}

pub fn group_file_line(group: &str, from: &str, file: &str) -> String {
    format!("{group}/{from}: [file] {file}")
}

pub fn group_file_note(note: &str, text: &str) -> String {
    if text.is_empty() { note.to_string() } else { format!("{note} {text}") }
}

pub fn group_file_sent(path: &str, copies: usize) -> String {
    format!("Sent {path} to {copies} member(s) (stored by the relay for 48 hours).")
}

pub fn group_file_incoming(group: &str, from: &str, name: &str, size: &str) -> String {
    format!("* {group}/{from} is sending {name} ({size}); downloading…")
}

pub fn group_file_saved(group: &str, from: &str, name: &str, size: &str, path: &str) -> String {
    format!("{group}/{from}: [file] {name} ({size}) saved to {path}")
}

pub fn group_file_failed(group: &str, from: &str, name: &str, reason: &str) -> String {
    format!("! {group}: the file {name} from \"{from}\" was not saved: {reason}")
}

pub fn group_file_entry(file: &str, text: &str) -> String {
    if text.is_empty() { format!("[file] {file}") } else { format!("[file] {file} {text}") }
}

pub fn group_event_added_you(group: &str, by: &str) -> String {
    format!("* \"{by}\" added you to the group \"{group}\".")
}

pub fn group_event_added(group: &str, name: &str) -> String {
    format!("* {group}: \"{name}\" joined.")
}

pub fn group_event_removed(group: &str, name: &str) -> String {
    format!("* {group}: \"{name}\" was removed.")
}

pub fn group_event_left(group: &str, name: &str) -> String {
    format!("* {group}: \"{name}\" left.")
}

pub fn group_event_promoted(group: &str, name: &str) -> String {
    format!("* {group}: \"{name}\" is now an admin.")
}

pub fn group_event_removed_you(group: &str) -> String {
    format!("* You were removed from \"{group}\"; nothing more will arrive from it.")
}

pub fn group_event_introduced(group: &str, name: &str) -> String {
    format!("* {group}: you were introduced to \"{name}\" (now a contact).")
}

pub fn group_event_not_allowed(group: &str, name: &str) -> String {
    format!("! {group}: a change sent by \"{name}\" was ignored: they are not allowed to make it.")
}

pub fn group_event_not_a_member(group: &str, name: &str) -> String {
    format!("! {group}: a message from \"{name}\", who is not a member, was dropped.")
}

pub fn group_event_malformed(group: &str, name: &str) -> String {
    format!("! {group}: a malformed group change from \"{name}\" was ignored.")
}

pub fn group_event_bad_introduction(group: &str) -> String {
    format!("! {group}: an introduction did not match the member it named and was ignored.")
}

pub fn group_event_log_full(group: &str) -> String {
    format!("! {group}: too many membership changes; a change was ignored. Start a new group.")
}

pub fn group_timer_set(group: &str, duration: &str) -> String {
    if duration == "off" {
        format!("Messages in \"{group}\" no longer disappear (every member was told).")
    } else {
        format!("Messages in \"{group}\" now disappear after {duration}, for every member.")
    }
}

pub fn group_event_timer(group: &str, name: &str, duration: &str) -> String {
    if duration == "off" {
        format!("* {group}: \"{name}\" turned disappearing messages off.")
    } else {
        format!("* {group}: \"{name}\" set messages to disappear after {duration}.")
    }
}

pub fn group_event_other(group: &str) -> String {
    format!("* {group}: something changed.")
}
