//! The history's tables: migrations, day partitions, retention.
use std::collections::HashSet;

use anyhow::{Context, Result};
use tokio_postgres::Client;

mod embedded {
    refinery::embed_migrations!("migrations");
}

/// The tables split by day, with their time column.
pub const DAILY_TABLES: [(&str, &str); 3] = [
    ("readings", "reading_time"),
    ("batches", "created_at"),
    ("chain_events", "block_time"),
];

/// The latest schema version in this build.
pub fn latest_version() -> u32 {
    embedded::migrations::runner()
        .get_migrations()
        .iter()
        .map(|m| m.version())
        .max()
        .unwrap_or(0)
}

/// Brings the schema up to date (each migration once, in order, recorded in
/// `refinery_schema_history`); returns the versions applied now.
pub async fn migrate(client: &mut Client) -> Result<Vec<u32>> {
    migrate_to(client, None).await
}

/// The advisory lock migrations hold, so that exporters starting together migrate one
/// after the other.
const MIGRATION_LOCK: i64 = 0x6772_6964_7478_6831; // "gridtxh1"

/// Brings the schema up to `version` (all when `None`).
pub async fn migrate_to(client: &mut Client, version: Option<u32>) -> Result<Vec<u32>> {
    let mut runner = embedded::migrations::runner();
    if let Some(v) = version {
        runner = runner.set_target(refinery::Target::Version(v));
    }
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .context("wait for the migration lock")?;
    let report = runner.run_async(client).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let report = report.context("migrate the history schema")?;
    unlocked.context("release the migration lock")?;
    Ok(report
        .applied_migrations()
        .iter()
        .map(|m| m.version())
        .collect())
}

/// How the tables are split: plain partitions, or TimescaleDB chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    Partitioned,
    Hypertables,
}

pub async fn layout(client: &Client) -> Result<Layout> {
    let row = client
        .query_one(
            "SELECT relkind::text FROM pg_class WHERE relname = 'readings' AND relnamespace = current_schema()::regnamespace",
            &[],
        )
        .await
        .context("the readings table (is the schema migrated?)")?;
    let kind: String = row.get(0);
    Ok(if kind == "p" {
        Layout::Partitioned
    } else {
        Layout::Hypertables
    })
}

/// The civil (UTC) date of Unix day `day`: (year, month, day). Howard Hinnant's algorithm.
pub fn civil(day: i64) -> (i64, u32, u32) {
    let z = day + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// The partition of `table` holding Unix day `day`: `<table>_dYYYYMMDD`.
pub fn partition_name(table: &str, day: i64) -> String {
    let (y, m, d) = civil(day);
    format!("{table}_d{y:04}{m:02}{d:02}")
}

/// The Unix day of a partition's name, if it is one of `table`'s.
fn partition_day(table: &str, name: &str) -> Option<i64> {
    let digits = name.strip_prefix(table)?.strip_prefix("_d")?;
    if digits.len() != 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (
        digits[..4].parse().ok()?,
        digits[4..6].parse().ok()?,
        digits[6..].parse().ok()?,
    );
    // Days from civil (the inverse of `civil`).
    let y = y - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

/// The day partitions known to exist (made here or found), so that a page's rows need no
/// catalogue query once their days are made.
#[derive(Debug, Default)]
pub struct Partitions {
    layout: Option<Layout>,
    made: HashSet<(&'static str, i64)>,
}

impl Partitions {
    /// Makes sure `table` has a partition for every Unix day in `days` (nothing to do for
    /// hypertables: TimescaleDB makes its chunks).
    pub async fn ensure(
        &mut self,
        client: &Client,
        table: &'static str,
        days: impl IntoIterator<Item = i64>,
    ) -> Result<()> {
        let layout = match self.layout {
            Some(l) => l,
            None => *self.layout.insert(layout(client).await?),
        };
        if layout == Layout::Hypertables {
            return Ok(());
        }
        for day in days {
            if self.made.contains(&(table, day)) {
                continue;
            }
            let (from, to) = (day * 86_400, (day + 1) * 86_400);
            let sql = format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF {table} FOR VALUES FROM ('{}') TO ('{}')",
                partition_name(table, day),
                utc_literal(from),
                utc_literal(to),
            );
            if let Err(e) = client.batch_execute(&sql).await {
                // Another exporter may have made it at the same moment.
                let exists = client
                    .query_opt(
                        "SELECT 1 FROM pg_class WHERE relname = $1",
                        &[&partition_name(table, day)],
                    )
                    .await?
                    .is_some();
                if !exists {
                    return Err(anyhow::Error::new(e)
                        .context(format!("make {}", partition_name(table, day))));
                }
            }
            self.made.insert((table, day));
        }
        Ok(())
    }

    /// Forgets what was made (after the tables were dropped or the database replaced).
    pub fn forget(&mut self) {
        self.made.clear();
        self.layout = None;
    }
}

/// `YYYY-MM-DD HH:MM:SS+00` for a whole-day Unix time.
fn utc_literal(unix_s: i64) -> String {
    let (y, m, d) = civil(unix_s.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02} 00:00:00+00")
}

/// Drops every day of the history before Unix day `before` (whole partitions or chunks);
/// returns the partitions dropped (for hypertables, the chunks).
pub async fn drop_days_before(client: &Client, before: i64) -> Result<Vec<String>> {
    let mut dropped = Vec::new();
    match layout(client).await? {
        Layout::Hypertables => {
            for (table, _) in DAILY_TABLES {
                let rows = client
                    .query(
                        "SELECT drop_chunks($1::text::regclass, older_than => $2::timestamptz)::text",
                        &[&table, &crate::at(before * 86_400)],
                    )
                    .await?;
                dropped.extend(rows.iter().map(|r| r.get::<_, String>(0)));
            }
        }
        Layout::Partitioned => {
            for (table, _) in DAILY_TABLES {
                for name in partitions_of(client, table).await? {
                    if partition_day(table, &name).is_some_and(|d| d < before) {
                        client
                            .batch_execute(&format!("DROP TABLE {name}"))
                            .await
                            .with_context(|| format!("drop {name}"))?;
                        dropped.push(name);
                    }
                }
            }
        }
    }
    Ok(dropped)
}

/// The partitions of `table`, by name.
pub async fn partitions_of(client: &Client, table: &str) -> Result<Vec<String>> {
    let rows = client
        .query(
            "SELECT c.relname::text FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
             WHERE p.relname = $1 ORDER BY 1",
            &[&table],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_partition_names_round_trip() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(civil(20_792), (2026, 12, 5));
        assert_eq!(civil(11_016), (2000, 2, 29));
        assert_eq!(partition_name("readings", 20_792), "readings_d20261205");
        for day in (0..800_000).step_by(997) {
            let name = partition_name("chain_events", day);
            assert_eq!(partition_day("chain_events", &name), Some(day), "{name}");
        }
        assert_eq!(partition_day("readings", "readings_d2026120"), None);
        assert_eq!(partition_day("readings", "batches_d20261205"), None);
        assert_eq!(utc_literal(20_792 * 86_400), "2026-12-05 00:00:00+00");
    }
}
