//! A PostgreSQL cluster of its own, for tests and benchmarks: `initdb` into a temporary
//! directory, `pg_ctl start` listening on a unix socket in that directory only (no TCP
//! port, so nothing else on the machine can reach it or collide with it), stopped and
//! deleted when dropped. The server binaries come from `GRIDTOKENX_PG_BINDIR`, else
//! `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin` (Debian's
//! `postgresql` package). PostgreSQL refuses to run as root: as root, the cluster runs as
//! the `postgres` user the package creates.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

pub struct Throwaway {
    dir: tempfile::TempDir,
    bin: PathBuf,
    /// `runuser -u postgres --` when this process is root.
    as_user: Option<String>,
}

/// The server binaries' directory, if PostgreSQL is installed.
pub fn bindir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("GRIDTOKENX_PG_BINDIR") {
        return Some(PathBuf::from(dir));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("pg_ctl").exists() {
            return Some(dir);
        }
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("pg_ctl").exists().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Whether a test that needs PostgreSQL can run: `false` (the test then skips, saying
/// so) without it, unless `GRIDTOKENX_REQUIRE_POSTGRES` is set (CI), which makes its absence
/// a failure.
pub fn available_or_skip(test: &str) -> bool {
    if bindir().is_some() {
        return true;
    }
    assert!(
        std::env::var_os("GRIDTOKENX_REQUIRE_POSTGRES").is_none(),
        "{test}: PostgreSQL is required (GRIDTOKENX_REQUIRE_POSTGRES) but not installed: apt-get install postgresql"
    );
    eprintln!("{test}: skipped, PostgreSQL is not installed (apt-get install postgresql)");
    false
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

impl Throwaway {
    /// Makes and starts a cluster. `durable`: fsync as a production server does (for
    /// measurements); otherwise off, for fast tests.
    pub fn start(durable: bool) -> Result<Throwaway> {
        let bin = bindir().context(
            "PostgreSQL is not installed (apt-get install postgresql, or set GRIDTOKENX_PG_BINDIR)",
        )?;
        let dir = tempfile::Builder::new().prefix("gridtokenx-pg").tempdir()?;
        let as_user = is_root().then(|| "postgres".to_string());
        if let Some(user) = &as_user {
            let status = Command::new("chown")
                .arg(user)
                .arg(dir.path())
                .status()
                .context("chown the cluster's directory")?;
            if !status.success() {
                bail!("chown {user} {} failed", dir.path().display());
            }
        }
        let t = Throwaway { dir, bin, as_user };
        t.run(
            "initdb",
            &[
                "-D",
                &t.data().to_string_lossy(),
                "-U",
                "gridtokenx",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        )?;
        let conf = format!(
            "listen_addresses = ''\nunix_socket_directories = '{}'\nfsync = {}\nsynchronous_commit = {}\nfull_page_writes = {}\nshared_buffers = 256MB\nmax_wal_size = 2GB\n",
            t.dir.path().display(),
            if durable { "on" } else { "off" },
            if durable { "on" } else { "off" },
            if durable { "on" } else { "off" },
        );
        let conf_path = t.data().join("postgresql.conf");
        let mut existing = std::fs::read_to_string(&conf_path)?;
        existing.push_str(&conf);
        std::fs::write(&conf_path, existing)?;
        t.start_server()?;
        Ok(t)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, program: &str, args: &[&str]) -> Result<()> {
        let exe = self.bin.join(program);
        let mut cmd = match &self.as_user {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .with_context(|| format!("run {}", exe.display()))?;
        if !out.status.success() {
            bail!(
                "{program} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }

    /// Starts the server (again, after [`Throwaway::stop`]).
    pub fn start_server(&self) -> Result<()> {
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-l",
                &log.to_string_lossy(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )
    }

    /// Stops the server at once (`-m immediate`: as a crash; it recovers at start).
    pub fn stop(&self) -> Result<()> {
        self.run(
            "pg_ctl",
            &[
                "-D",
                &self.data().to_string_lossy(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        )
    }

    /// The connection string (the unix socket in the cluster's directory).
    pub fn url(&self) -> String {
        format!(
            "host={} port=5432 user=gridtokenx dbname=postgres",
            self.dir.path().display()
        )
    }

    /// The cluster's directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}
