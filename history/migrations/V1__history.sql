-- GridTokenX history: what the bridge accepted and signed, and what the programs said.
-- Every large table is split by day on its time column: declarative range partitions, one
-- per UTC day, created by the exporter ahead of the rows (history::schema); or, when the
-- TimescaleDB extension is created in this database (by its administrator, before the first
-- migration: CREATE EXTENSION timescaledb), a hypertable with one-day chunks.
-- Retention drops whole days (DROP TABLE of a partition, or drop_chunks).

-- Creates table `name` with `columns`, split by day on `time_column`.
CREATE FUNCTION gridtokenx_history_table(name text, columns text, time_column text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        EXECUTE format('CREATE TABLE %I (%s)', name, columns);
        PERFORM create_hypertable(name::regclass, time_column::name,
                                  chunk_time_interval => INTERVAL '1 day');
    ELSE
        EXECUTE format('CREATE TABLE %I (%s) PARTITION BY RANGE (%I)', name, columns, time_column);
    END IF;
END $$;

-- One accepted register reading (IEEE 2030.5 MirrorMeterReading), as the bridge stored it.
SELECT gridtokenx_history_table('readings', $cols$
    reading_time   timestamptz NOT NULL,
    lfdi           bytea       NOT NULL CHECK (length(lfdi) = 20),
    mirror_mrid    text        NOT NULL,
    -- 0 import (energy delivered to the building), 1 export (received from it)
    register       smallint    NOT NULL CHECK (register IN (0, 1)),
    wh             bigint      NOT NULL CHECK (wh >= 0),
    interval_start timestamptz NOT NULL,
    quality        smallint    NOT NULL,
    received_at    timestamptz NOT NULL,
    -- the bridge's export queue position: the order it stored readings in
    bridge_seq     bigint      NOT NULL,
    PRIMARY KEY (lfdi, reading_time, mirror_mrid)
$cols$, 'reading_time');

-- A batch the bridge's attestor signed (the message the oracle verifies).
SELECT gridtokenx_history_table('batches', $cols$
    created_at timestamptz NOT NULL,
    sequence   bigint      NOT NULL,
    hash       bytea       NOT NULL CHECK (length(hash) = 32),
    attestor   bytea       NOT NULL,
    signature  bytea       NOT NULL,
    message    bytea       NOT NULL,
    meters     bytea[]     NOT NULL,
    readings   integer     NOT NULL,
    PRIMARY KEY (sequence, created_at)
$cols$, 'created_at');
CREATE INDEX batches_hash ON batches (hash);

-- An event a GridTokenX program emitted, in a successful transaction. The columns every
-- query needs are filled where the event has them; `detail` holds all its fields.
SELECT gridtokenx_history_table('chain_events', $cols$
    block_time     timestamptz NOT NULL,
    slot           bigint      NOT NULL,
    signature      bytea       NOT NULL CHECK (length(signature) = 64),
    event_index    integer     NOT NULL,
    program        text        NOT NULL,
    kind           text        NOT NULL,
    lfdi           bytea,
    owner          bytea,
    interval_index bigint,
    sequence       bigint,
    -- 0 buy, 1 sell
    side           smallint,
    wh             bigint,
    quote          bigint,
    price          bigint,
    detail         jsonb       NOT NULL,
    PRIMARY KEY (signature, event_index, block_time)
$cols$, 'block_time');
CREATE INDEX chain_events_meter ON chain_events (lfdi, block_time) WHERE lfdi IS NOT NULL;
CREATE INDEX chain_events_interval ON chain_events (interval_index, kind) WHERE interval_index IS NOT NULL;
CREATE INDEX chain_events_kind ON chain_events (kind, block_time);

-- Where each source's export stands: the bridge's queue position, the last batch, the last
-- transaction read per program. Moved in the same transaction as the rows it covers.
CREATE TABLE export_cursors (
    source     text        PRIMARY KEY,
    position   text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- What the export could not bring: readings the bridge dropped over its queue's cap,
-- transactions a node no longer served. Never silent.
CREATE TABLE export_gaps (
    id        bigserial   PRIMARY KEY,
    source    text        NOT NULL,
    from_position text    NOT NULL,
    through_position text NOT NULL,
    noted_at  timestamptz NOT NULL DEFAULT now()
);
