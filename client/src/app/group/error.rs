//! Why a group command could not be carried out, in words a user can act on.

use thiserror::Error;

use super::MAX_GROUP_SIZE;

/// A group command that cannot be carried out. Nothing was changed or sent.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GroupError {
    /// No group has this name here.
    #[error("no group is called \"{0}\" (see `sotto group list`)")]
    NoSuchGroup(String),
    /// A group with this name exists already.
    #[error("a group called \"{0}\" already exists")]
    NameTaken(String),
    /// Only admins add, remove and promote.
    #[error("only an admin of \"{0}\" can do that")]
    NotAdmin(String),
    /// This device is no longer (or not yet) a member.
    #[error("you are not a member of \"{0}\"")]
    NotMember(String),
    /// Nobody in the group has this name.
    #[error("nobody in \"{0}\" is called \"{1}\" (see `sotto group members \"{0}\"`)")]
    NoSuchMember(String, String),
    /// The contact is in the group already.
    #[error("\"{1}\" is already in \"{0}\"")]
    AlreadyMember(String, String),
    /// The group is full.
    #[error("a group can have at most {MAX_GROUP_SIZE} members")]
    Full,
    /// The group's membership log reached its limit.
    #[error("this group has had too many membership changes; start a new group")]
    LogFull,
    /// Group messages carry text or a file.
    #[error("only text and files can be sent to a group")]
    UnsupportedBody,
}
