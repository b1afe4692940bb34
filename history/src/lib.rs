//! History beyond the bridge's retention: PostgreSQL.
//!
//! - [`schema`]: the tables (migrations in `history/migrations`, run by refinery), split by
//!   day (declarative partitions, or TimescaleDB hypertables when the server has the
//!   extension), partitions made ahead of the rows and dropped for retention;
//! - [`write`]: rows in, exactly once: each page of a source is copied in (binary `COPY`)
//!   in one transaction with its cursor, which moves only from the position it was read at;
//! - [`events`]: the programs' Anchor events in a transaction's logs, as rows;
//! - [`export`]: the exporter's sources (the bridge's export queue and signed batches, each
//!   program's transactions) and their passes;
//! - [`query`]: what the console asks (a building's month, an interval's trades);
//! - [`throwaway`]: a PostgreSQL cluster of its own for tests and benchmarks.
pub mod config;
pub mod events;
pub mod export;
pub mod metrics;
pub mod query;
pub mod schema;
pub mod throwaway;
pub mod write;

pub use tokio_postgres::Client;

/// Connects to `url` (a libpq connection string or URL; a unix socket directory as
/// `host=/path`), the connection driven by a task of its own. Without TLS: a database on
/// this host or on the operator's own network.
pub async fn connect(url: &str) -> anyhow::Result<Client> {
    use anyhow::Context;
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .context("connect to PostgreSQL")?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// Most seconds from the Unix epoch a time may be, either way (PostgreSQL's `timestamptz`
/// ends in the year 294276; its client counts microseconds in an i64).
pub const MAX_UNIX_S: i64 = 9_000_000_000_000;

/// Unix seconds as a `timestamptz` value (beyond [`MAX_UNIX_S`], held at it).
pub fn at(unix_s: i64) -> std::time::SystemTime {
    let unix_s = unix_s.clamp(-MAX_UNIX_S, MAX_UNIX_S);
    if unix_s >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix_s as u64)
    } else {
        std::time::UNIX_EPOCH - std::time::Duration::from_secs(unix_s.unsigned_abs())
    }
}

/// A `timestamptz` value as Unix seconds.
pub fn unix(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}
