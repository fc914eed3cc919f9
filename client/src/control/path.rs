//! Where a profile's control socket lives, and keeping it private to its user.
//!
//! The socket is `<profile>/control.sock`. A Unix socket address holds at most 104–108
//! bytes, though, and profiles can sit deep in a home directory; then the socket goes in a
//! directory named by a hash of the profile's canonical path, under
//! `$XDG_RUNTIME_DIR/sotto/` (per-user, 0700, cleaned at logout) or else `/tmp/sotto-<uid>/`.
//! Both processes derive the same place from the same profile, and the client tries every
//! candidate, so a holder that could not use the first one is still found.
//!
//! Every directory we put the socket in must be ours and 0700, so nobody else can even
//! reach the socket; the socket itself is 0600 as a second fence. A directory under `/tmp`
//! that another user created first is refused, not used.

use std::fs::{DirBuilder, Permissions};
use std::io::ErrorKind;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{ControlError, SOCKET_NAME};

/// Longest socket path we use, in bytes: `sun_path` is 104 bytes on macOS and the BSDs
/// (108 on Linux) including the terminating NUL.
pub const MAX_SOCKET_PATH: usize = 103;

/// Hex digits of the profile-path hash naming a fallback directory (128 bits: no two
/// profiles collide in practice, and the path stays short).
const HASH_HEX_LEN: usize = 32;

/// Mode of every directory holding a socket: only its owner may enter.
pub(crate) const DIR_MODE: u32 = 0o700;

/// Mode of the socket file: only its owner may connect.
pub(crate) const SOCKET_MODE: u32 = 0o600;

/// Environment variable naming the per-user runtime directory (XDG Base Directory spec).
const RUNTIME_DIR_ENV: &str = "XDG_RUNTIME_DIR";

/// The last resort, shared by all users: not `$TMPDIR`, which may differ between two
/// shells of one user (and is long on macOS).
const SHARED_TMP: &str = "/tmp";

/// Subdirectory of the runtime directory holding Sotto's fallback directories.
const RUNTIME_SUBDIR: &str = "sotto";

/// Where a socket may be: the directories to create and check (outermost first) and the
/// socket path itself.
#[derive(Debug, Clone)]
pub(crate) struct Place {
    /// Directories we own that lead to the socket, outermost first.
    pub dirs: Vec<PathBuf>,
    /// The socket.
    pub socket: PathBuf,
}

/// The socket path a holder of `profile_dir` would use first (for messages and tests).
pub fn socket_path(profile_dir: &Path) -> Result<PathBuf, ControlError> {
    candidates(profile_dir)?.into_iter().next().map(|p| p.socket).ok_or_else(|| too_long(profile_dir))
}

/// Every place the socket of `profile_dir` may be, preferred first. The profile directory
/// must exist (an I/O `NotFound` otherwise).
pub(crate) fn candidates(profile_dir: &Path) -> Result<Vec<Place>, ControlError> {
    let profile = std::fs::canonicalize(profile_dir)?;
    let direct = profile.join(SOCKET_NAME);
    if fits(&direct) {
        return Ok(vec![Place { dirs: vec![profile], socket: direct }]);
    }
    let hash = hex::encode(Sha256::digest(profile.as_os_str().as_bytes()));
    let name = &hash[..HASH_HEX_LEN];
    let mut places = Vec::new();
    if let Some(runtime) = std::env::var_os(RUNTIME_DIR_ENV).map(PathBuf::from).filter(|p| p.is_absolute()) {
        let base = runtime.join(RUNTIME_SUBDIR);
        let dir = base.join(name);
        places.push(Place { socket: dir.join(SOCKET_NAME), dirs: vec![base, dir] });
    }
    let base = Path::new(SHARED_TMP).join(format!("sotto-{}", rustix::process::getuid().as_raw()));
    let dir = base.join(name);
    places.push(Place { socket: dir.join(SOCKET_NAME), dirs: vec![base, dir] });
    places.retain(|p| fits(&p.socket));
    if places.is_empty() {
        return Err(too_long(&direct));
    }
    Ok(places)
}

/// Creates (where missing) and checks the directories leading to a socket: each must be a
/// real directory owned by us; a looser mode is tightened to 0700.
pub(crate) fn prepare(place: &Place) -> Result<(), ControlError> {
    for dir in &place.dirs {
        match DirBuilder::new().mode(DIR_MODE).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e.into()),
        }
        // symlink_metadata: a symlink planted here by someone else must not be followed.
        let meta = std::fs::symlink_metadata(dir)?;
        if !meta.file_type().is_dir() {
            return Err(insecure(dir, "it is not a directory"));
        }
        if meta.uid() != rustix::process::getuid().as_raw() {
            return Err(insecure(dir, "it belongs to another user"));
        }
        if meta.mode() & 0o777 != DIR_MODE {
            std::fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))?;
        }
    }
    Ok(())
}

/// Removes the fallback directory named after the profile once the socket is gone, so
/// `/tmp` does not collect one per profile ever used. The shared base stays.
pub(crate) fn tidy(place: &Place) {
    if let [_, .., dir] = place.dirs.as_slice() {
        let _ = std::fs::remove_dir(dir);
    }
}

/// An [`ControlError::Insecure`] for `path`.
pub(crate) fn insecure(path: &Path, reason: &str) -> ControlError {
    ControlError::Insecure { path: path.to_path_buf(), reason: reason.to_owned() }
}

fn fits(path: &Path) -> bool {
    path.as_os_str().len() <= MAX_SOCKET_PATH
}

fn too_long(path: &Path) -> ControlError {
    ControlError::PathTooLong(path.to_path_buf())
}
