//! GridTokenX bridge: the IEEE 2030.5 server beside the campus meters. It accepts readings
//! only from registered meters over mutual TLS, stores every accepted reading durably, and
//! signs attested batches for the keeper. The simulated meters and the benchmarks live in
//! the `simulator` crate; the 2030.5 documents, which both use, in `sep2`.
//!
//! Modules: `server` (start-up and the meters' connections), `admin` (the operator's
//! commands against a running bridge: the local deny list), `keeper_api` (the keeper's
//! interface), `net` (what both listeners share: connection limits, per-address counters,
//! failure logs, the HTTP builder), `periodic` (attestation and pruning passes), `tls`
//! (rustls, CCM-8, device certificate verifier), `service` (IEEE 2030.5 resources; the
//! documents themselves are the `sep2` crate), `normalize` (readings to Wh), `store` (redb),
//! `attestor` (signed batches), `directory` (known meters), `config` (settings), `clock`
//! (the Time resource), `metrics` (Prometheus metrics and readiness). Requests flow one way: `server` -> `service` -> `store`; nothing
//! below `server` imports it.
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

pub mod admin;
pub mod attestor;
pub mod clock;
pub mod config;
pub mod directory;
pub mod keeper_api;
pub mod market;
pub mod metrics;
pub mod net;
pub mod normalize;
pub mod periodic;
pub mod server;
pub mod service;
pub mod store;
pub mod tls;

/// Lowers the calling thread's scheduling priority: sets its niceness to the process's
/// (its main thread's) plus `nice`, at most 19, whatever it inherited from the thread that
/// started it. On Linux niceness belongs to each thread, so the other threads keep theirs;
/// it needs no privilege. Elsewhere it does nothing.
pub fn lower_thread_priority(nice: i32) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    if nice != 0 {
        // SAFETY: plain system calls on the calling thread's id; errno is the thread's.
        unsafe {
            let tid = libc::gettid() as libc::id_t;
            *libc::__errno_location() = 0;
            let base = libc::getpriority(libc::PRIO_PROCESS, libc::getpid() as libc::id_t);
            if base == -1 && *libc::__errno_location() != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let target = base.saturating_add(nice).clamp(-20, 19);
            if libc::setpriority(libc::PRIO_PROCESS, tid, target) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
    Ok(())
}

/// Writes a secret (key, token) readable only by its owner; never replaces an existing file.
/// The file and then its directory are fsync'd, so that a crash cannot lose a key that was
/// already handed out (or leave a directory entry without its contents).
pub fn write_secret(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("create {}: {e}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    sync_parent_dir(path)
}

/// Reads a secret (the attestor key, the keeper token), refusing a file that others than
/// its owner may read: the bridge writes them mode 0600, so a wider mode means a copy or a
/// restore that widened it, and the secret may have leaked (rotate it if so).
pub fn read_secret(path: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))?
        .permissions()
        .mode();
    anyhow::ensure!(
        mode & 0o077 == 0,
        "{} may be read by others (mode {:o}): `chmod 600 {}`, and replace the secret if anyone else could have read it",
        path.display(),
        mode & 0o777,
        path.display()
    );
    std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("read {}: {e}", path.display()))
}

/// Fsyncs the directory holding `path`, making its creation durable.
pub fn sync_parent_dir(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| anyhow::anyhow!("fsync directory {}: {e}", dir.display()))
}

#[cfg(all(test, target_os = "linux"))]
pub(crate) mod tests {
    /// The calling thread's niceness.
    pub(crate) fn niceness() -> i32 {
        // SAFETY: a plain system call on the calling thread.
        unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) }
    }

    /// The attestor key and the keeper token are written 0600 and refused once others may
    /// read them (a copy or a restore that widened the mode), naming the fix.
    #[test]
    fn secrets_others_may_read_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("keeper.token");
        let made = crate::keeper_api::load_or_create_token(&token).unwrap();
        assert_eq!(
            crate::keeper_api::load_or_create_token(&token).unwrap(),
            made
        );
        let key = dir.path().join("attestor.key");
        let signing = crate::attestor::load_or_create_key(&key, 0).unwrap();
        for (path, mode) in [(&token, 0o640), (&key, 0o604), (&token, 0o644)] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
            let err = if path == &token {
                crate::keeper_api::load_or_create_token(path).unwrap_err()
            } else {
                crate::attestor::load_or_create_key(path, 0).unwrap_err()
            };
            let err = format!("{err:#}");
            assert!(
                err.contains(&format!("may be read by others (mode {mode:o})")),
                "{err}"
            );
            assert!(err.contains("chmod 600"), "{err}");
        }
        for path in [&token, &key] {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o400)).unwrap();
        }
        assert_eq!(
            crate::keeper_api::load_or_create_token(&token).unwrap(),
            made
        );
        let again = crate::attestor::load_or_create_key(&key, 0).unwrap();
        assert_eq!(again.to_bytes(), signing.to_bytes());
    }

    #[test]
    fn a_thread_lowers_its_own_priority_only() {
        // SAFETY: a plain system call.
        let process =
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::getpid() as libc::id_t) };
        if process > 15 {
            eprintln!("skipped: the tests already run at niceness {process}");
            return;
        }
        let before = niceness();
        let (once, twice, nested, clamped) = std::thread::spawn(move || {
            super::lower_thread_priority(3).unwrap();
            let once = niceness();
            super::lower_thread_priority(3).unwrap();
            let twice = niceness();
            // A thread started by a lowered one inherits its niceness; lowering it again
            // does not add up.
            let nested = std::thread::spawn(|| {
                super::lower_thread_priority(3).unwrap();
                niceness()
            })
            .join()
            .unwrap();
            super::lower_thread_priority(50).unwrap();
            (once, twice, nested, niceness())
        })
        .join()
        .unwrap();
        let expected = (process + 3).min(19);
        assert_eq!((once, twice, nested), (expected, expected, expected));
        assert_eq!(clamped, 19);
        assert_eq!(niceness(), before, "the calling thread keeps its priority");
    }
}
