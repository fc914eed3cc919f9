//! Readings from /proc: CPU time and resident memory of a process, or of some of this
//! process's threads (the in-process relay runs on threads of its own name).

use std::path::Path;

/// Linux reports CPU times in /proc in clock ticks of 1/100 s (USER_HZ, fixed at 100 on
/// every architecture Linux supports for user space).
const TICKS_PER_SECOND: f64 = 100.0;

/// A /proc reading that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("unexpected format in {0}")]
    Format(String),
}

fn read(path: &Path) -> Result<String, ProcError> {
    std::fs::read_to_string(path).map_err(|source| ProcError::Read { path: path.display().to_string(), source })
}

/// (command name, user + system CPU seconds) from a `stat` file.
fn parse_stat(path: &Path) -> Result<(String, f64), ProcError> {
    let text = read(path)?;
    let bad = || ProcError::Format(path.display().to_string());
    // The command name is in parentheses and may itself contain spaces or parentheses.
    let open = text.find('(').ok_or_else(bad)?;
    let close = text.rfind(')').ok_or_else(bad)?;
    let comm = text.get(open + 1..close).ok_or_else(bad)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..).ok_or_else(bad)?.split_whitespace().collect();
    // After the name: state is field 3 of proc(5), utime 14 and stime 15.
    let utime: f64 = rest.get(11).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    let stime: f64 = rest.get(12).and_then(|s| s.parse().ok()).ok_or_else(bad)?;
    Ok((comm, (utime + stime) / TICKS_PER_SECOND))
}

/// CPU seconds (user + system) a process has used.
pub fn process_cpu_s(pid: u32) -> Result<f64, ProcError> {
    Ok(parse_stat(Path::new(&format!("/proc/{pid}/stat")))?.1)
}

/// CPU seconds used by this process's threads whose name satisfies `keep`. Threads that
/// have exited are not counted, so call it around runs during which they live.
pub fn threads_cpu_s(keep: impl Fn(&str) -> bool) -> Result<f64, ProcError> {
    let dir = Path::new("/proc/self/task");
    let entries =
        std::fs::read_dir(dir).map_err(|source| ProcError::Read { path: dir.display().to_string(), source })?;
    let mut total = 0.0;
    for entry in entries.flatten() {
        // A thread may exit between listing and reading: skip it.
        if let Ok((comm, cpu)) = parse_stat(&entry.path().join("stat"))
            && keep(&comm)
        {
            total += cpu;
        }
    }
    Ok(total)
}

/// A `Vm*` line of /proc/PID/status, in KiB (`field` is e.g. "VmRSS" or "VmHWM").
pub fn status_kib(pid: u32, field: &str) -> Result<u64, ProcError> {
    let path = format!("/proc/{pid}/status");
    let text = read(Path::new(&path))?;
    text.lines()
        .find_map(|l| l.strip_prefix(field).and_then(|r| r.strip_prefix(':')))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .ok_or(ProcError::Format(path))
}

/// Resets a process's peak resident size (VmHWM) to its current size, so a run's peak
/// is its own. Linux 4.0 and later; failure leaves the older peak in place.
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(status_kib(pid, "VmRSS").unwrap_or(0) > 0);
        assert!(status_kib(pid, "VmHWM").unwrap_or(0) > 0);
        assert!(process_cpu_s(pid).is_ok());
        assert!(threads_cpu_s(|_| true).is_ok());
        assert!(matches!(status_kib(pid, "NoSuchField"), Err(ProcError::Format(_))));
    }

    #[test]
    fn parses_a_name_with_spaces_and_parentheses() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("stat");
        std::fs::write(&p, "42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0").unwrap_or_else(|e| panic!("{e}"));
        let (comm, cpu) = parse_stat(&p).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(comm, "a (b) c");
        assert!((cpu - 3.0).abs() < 1e-9);
    }
}
