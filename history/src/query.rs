//! What the console reads from the history: a building's energy per interval over a period,
//! and an interval's trades.
use anyhow::Result;
use serde::Serialize;
use tokio_postgres::Client;

/// A building's energy over one interval, from its cumulative registers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IntervalEnergy {
    /// The interval's start (Unix seconds).
    pub start: i64,
    /// Energy delivered to the building (import) and received from it (export) in the
    /// interval, Wh: the register's last reading in the interval less its last reading
    /// before it (for the first interval of the period, the last in the two days before
    /// the period; without one, its own first reading). After intervals without readings,
    /// their energy shows in the next interval that has some.
    pub import_wh: i64,
    pub export_wh: i64,
    /// Readings in the interval.
    pub readings: i64,
}

/// `lfdi`'s energy per `interval_s` interval from `from` to `to` (Unix seconds).
pub async fn building_energy(
    db: &Client,
    lfdi: &[u8; 20],
    from: i64,
    to: i64,
    interval_s: i64,
) -> Result<Vec<IntervalEnergy>> {
    let rows = db
        .query(
            "WITH base AS ( \
               SELECT DISTINCT ON (register) register, wh FROM readings \
               WHERE lfdi = $1 AND reading_time < $2 AND reading_time >= $2 - interval '2 days' \
               ORDER BY register, reading_time DESC), \
             per AS ( \
               SELECT floor(extract(epoch FROM reading_time) / $4::bigint)::bigint * $4::bigint AS start, \
                      register, max(wh) AS last_wh, min(wh) AS first_wh, count(*) AS n \
               FROM readings \
               WHERE lfdi = $1 AND reading_time >= $2 AND reading_time < $3 \
               GROUP BY 1, 2), \
             delta AS ( \
               SELECT p.start, p.register, p.n, \
                      p.last_wh - coalesce(lag(p.last_wh) OVER (PARTITION BY p.register ORDER BY p.start), \
                                           b.wh, p.first_wh) AS wh \
               FROM per p LEFT JOIN base b USING (register)) \
             SELECT start, \
                    coalesce(sum(wh) FILTER (WHERE register = 0), 0)::bigint, \
                    coalesce(sum(wh) FILTER (WHERE register = 1), 0)::bigint, \
                    sum(n)::bigint \
             FROM delta GROUP BY start ORDER BY start",
            &[
                &lfdi.as_slice(),
                &crate::at(from),
                &crate::at(to),
                &interval_s,
            ],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| IntervalEnergy {
            start: r.get(0),
            import_wh: r.get(1),
            export_wh: r.get(2),
            readings: r.get(3),
        })
        .collect())
}

/// One building's settlement in an interval.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Trade {
    /// The building's LFDI (40 hex digits).
    pub lfdi: String,
    pub side: &'static str,
    pub filled_wh: i64,
    /// Quote paid (buy) or received (sell), base units.
    pub quote: i64,
    pub signature: String,
}

/// An interval's clearing and its settlements.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IntervalTrades {
    pub interval: i64,
    /// The clearing price and volume, once cleared.
    pub price: Option<i64>,
    pub volume_wh: Option<i64>,
    pub orders_placed: i64,
    pub trades: Vec<Trade>,
}

/// Interval `interval`'s events; `around` (its start, Unix seconds), when known, keeps the
/// search to the days within a week of it (the table is split by day), else every day is
/// searched.
pub async fn interval_trades(
    db: &Client,
    interval: u64,
    around: Option<i64>,
) -> Result<IntervalTrades> {
    let k = i64::try_from(interval)?;
    let (from, to) = match around {
        Some(t) => (
            crate::at(t.saturating_sub(7 * 86_400)),
            crate::at(t.saturating_add(7 * 86_400)),
        ),
        None => (crate::at(0), crate::at(i64::from(u32::MAX))),
    };
    let cleared = db
        .query_opt(
            "SELECT price, wh FROM chain_events WHERE interval_index = $1 AND kind = 'interval_cleared' \
             AND block_time >= $2 AND block_time < $3 LIMIT 1",
            &[&k, &from, &to],
        )
        .await?;
    let placed: i64 = db
        .query_one(
            "SELECT count(*) FROM chain_events WHERE interval_index = $1 AND kind = 'order_placed' \
             AND block_time >= $2 AND block_time < $3",
            &[&k, &from, &to],
        )
        .await?
        .get(0);
    let rows = db
        .query(
            "SELECT lfdi, side, wh, quote, signature FROM chain_events \
             WHERE interval_index = $1 AND kind = 'order_settled' AND wh > 0 \
             AND block_time >= $2 AND block_time < $3 ORDER BY side, lfdi",
            &[&k, &from, &to],
        )
        .await?;
    Ok(IntervalTrades {
        interval: k,
        price: cleared.as_ref().map(|r| r.get(0)),
        volume_wh: cleared.as_ref().map(|r| r.get(1)),
        orders_placed: placed,
        trades: rows
            .iter()
            .map(|r| Trade {
                lfdi: hex::encode_upper(r.get::<_, Vec<u8>>(0)),
                side: if r.get::<_, i16>(1) == 0 {
                    "buy"
                } else {
                    "sell"
                },
                filled_wh: r.get(2),
                quote: r.get(3),
                signature: bs58_signature(&r.get::<_, Vec<u8>>(4)),
            })
            .collect(),
    })
}

fn bs58_signature(bytes: &[u8]) -> String {
    <[u8; 64]>::try_from(bytes)
        .map(|b| solana_signature::Signature::from(b).to_string())
        .unwrap_or_default()
}
