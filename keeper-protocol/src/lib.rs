//! The bridge's keeper interface, as both ends speak it: HTTP/1.1 with JSON bodies, every
//! request carrying `Authorization: Bearer <token>`. The bridge serves it
//! (`bridge/src/keeper_api.rs`), the keeper calls it (`keeper/src/bridge_api.rs`); neither
//! depends on the other, both on this crate.
//!
//! | request ([`Route`]) | answer |
//! |---|---|
//! | `GET /v1/status` | [`BridgeStatus`] |
//! | `GET /v1/batches?limit=N` | [`BatchList`]: unacknowledged, oldest first |
//! | `POST /v1/batches/{sequence}/ack` | 204 once the batch is confirmed on chain; 404 unknown |
//! | `PUT /v1/meters` [`MeterList`] | [`SyncReport`]; 400 malformed, 413 over [`MAX_METERS_BODY`] |
//! | `POST /v1/chain` [`ChainReport`] | [`ChainFloor`] |
//! | `POST /v1/batches/{sequence}/resign` | the copy, a [`SignedBatch`]; 409 above the floor |
//! | `GET /v1/denied` | [`DeniedList`]: the bridge's local deny list |
//! | `POST /v1/deny` [`DenyRequest`] | [`DeniedMeter`]; 404 unknown meter |
//! | `POST /v1/allow` [`DenyRequest`] | 204; 404 not denied |
//! | `GET /v1/export/readings?after=S&limit=N` | [`ReadingPage`]: accepted readings queued for the history exporter, in the order they were stored |
//! | `POST /v1/export/readings/ack` [`ExportAck`] | 204: the queue drops what is exported |
//! | `GET /v1/export/batches?after=S&limit=N` | [`BatchPage`]: signed batches by sequence |
//! | `POST /v1/export/batches/ack` [`ExportAck`] | 204: retention may drop them |
//! | `PUT /v1/market` [`market::MarketReport`] | 204: the campus tariff is published |
//! | `GET /v1/flow/requests?limit=N` | [`market::FlowRequestList`] |
//! | `POST /v1/flow/requests/{id}` [`market::FlowUpdate`] | the request, a [`market::FlowRequest`]; 404 unknown, 409 not in a state the update follows |
//! | `GET /v1/dr/events` | [`market::DrEventList`] |
//! | `POST /v1/dr/issue` [`market::DrEventRequest`] | the event, a [`market::DrEvent`]; 400 invalid |
//! | `POST /v1/dr/events/{id}/cancel` | the event; 404 unknown, 409 already over or cancelled |
//!
//! Another method on a route's path is answered 405, any other path 404.
//!
//! Binary fields travel as base64 (messages, keys, signatures) or upper-case hex (hashes,
//! LFDIs, as IEEE 2030.5 writes an LFDI); [`hex`] is the one fixed-size hex codec.
use base64::Engine;

pub mod market;
use serde::{Deserialize, Serialize};

/// A request of the interface: its method and path, defined once for both ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// `GET /v1/status`: the bridge's attestor key and what it attests for.
    Status,
    /// `GET /v1/batches` (`?limit=N`): unacknowledged batches.
    Batches,
    /// `POST /v1/batches/{sequence}/ack`: the batch is confirmed on chain.
    Acknowledge(u64),
    /// `PUT /v1/meters`: the registry's meters.
    Meters,
    /// `POST /v1/chain`: the chain's highest settled batch sequence ([`ChainReport`]); the
    /// bridge signs nothing at or below it ([`ChainFloor`]).
    Chain,
    /// `POST /v1/batches/{sequence}/resign`: a batch the chain settled without applying it,
    /// signed again under a new sequence (the copy, a [`SignedBatch`], is the answer).
    Resign(u64),
    /// `GET /v1/denied`: the meters the bridge refuses locally, whatever the registry says.
    Denied,
    /// `POST /v1/deny`: refuse a meter at once ([`DenyRequest`]), before governance acts.
    Deny,
    /// `POST /v1/allow`: lift a local denial ([`DenyRequest`]; the reason is ignored).
    Allow,
    /// `GET /v1/export/readings` (`?after=S&limit=N`): readings queued for export.
    ExportReadings,
    /// `POST /v1/export/readings/ack`: readings through [`ExportAck::through`] are exported.
    ExportReadingsAck,
    /// `GET /v1/export/batches` (`?after=S&limit=N`): signed batches after sequence `S`.
    ExportBatches,
    /// `POST /v1/export/batches/ack`: batches through [`ExportAck::through`] are exported.
    ExportBatchesAck,
    /// `PUT /v1/market`: the market's parameters and cleared prices ([`market::MarketReport`]).
    Market,
    /// `GET /v1/flow/requests?limit=N`: flow reservations with work for the keeper.
    FlowRequests,
    /// `POST /v1/flow/requests/{id}`: what the keeper did with one ([`market::FlowUpdate`]).
    FlowUpdate(u64),
    /// `GET /v1/dr/events`: the campus's demand-response events and responses.
    DrEvents,
    /// `POST /v1/dr/issue`: a new event ([`market::DrEventRequest`]).
    DrIssue,
    /// `POST /v1/dr/events/{id}/cancel`: cancels an event.
    DrCancel(u64),
}

impl Route {
    pub fn method(self) -> &'static str {
        match self {
            Route::Status
            | Route::Batches
            | Route::Denied
            | Route::ExportReadings
            | Route::ExportBatches
            | Route::FlowRequests
            | Route::DrEvents => "GET",
            Route::Acknowledge(_)
            | Route::Chain
            | Route::Resign(_)
            | Route::Deny
            | Route::Allow
            | Route::ExportReadingsAck
            | Route::ExportBatchesAck
            | Route::FlowUpdate(_)
            | Route::DrIssue
            | Route::DrCancel(_) => "POST",
            Route::Meters | Route::Market => "PUT",
        }
    }

    pub fn path(self) -> String {
        match self {
            Route::Status => "/v1/status".into(),
            Route::Batches => "/v1/batches".into(),
            Route::Acknowledge(sequence) => format!("/v1/batches/{sequence}/ack"),
            Route::Meters => "/v1/meters".into(),
            Route::Chain => "/v1/chain".into(),
            Route::Resign(sequence) => format!("/v1/batches/{sequence}/resign"),
            Route::Denied => "/v1/denied".into(),
            Route::Deny => "/v1/deny".into(),
            Route::Allow => "/v1/allow".into(),
            Route::ExportReadings => "/v1/export/readings".into(),
            Route::ExportReadingsAck => "/v1/export/readings/ack".into(),
            Route::ExportBatches => "/v1/export/batches".into(),
            Route::ExportBatchesAck => "/v1/export/batches/ack".into(),
            Route::Market => "/v1/market".into(),
            Route::FlowRequests => "/v1/flow/requests".into(),
            Route::FlowUpdate(id) => format!("/v1/flow/requests/{id}"),
            Route::DrEvents => "/v1/dr/events".into(),
            Route::DrIssue => "/v1/dr/issue".into(),
            Route::DrCancel(id) => format!("/v1/dr/events/{id}/cancel"),
        }
    }

    /// The route `path` names (a trailing `/` is ignored), whatever the method; `None` for
    /// no route (an acknowledgement's sequence must be a number).
    pub fn of_path(path: &str) -> Option<Route> {
        let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
        match segments.as_slice() {
            ["v1", "status"] => Some(Route::Status),
            ["v1", "batches"] => Some(Route::Batches),
            ["v1", "batches", sequence, "ack"] => sequence.parse().ok().map(Route::Acknowledge),
            ["v1", "meters"] => Some(Route::Meters),
            ["v1", "chain"] => Some(Route::Chain),
            ["v1", "batches", sequence, "resign"] => sequence.parse().ok().map(Route::Resign),
            ["v1", "denied"] => Some(Route::Denied),
            ["v1", "deny"] => Some(Route::Deny),
            ["v1", "allow"] => Some(Route::Allow),
            ["v1", "export", "readings"] => Some(Route::ExportReadings),
            ["v1", "export", "readings", "ack"] => Some(Route::ExportReadingsAck),
            ["v1", "export", "batches"] => Some(Route::ExportBatches),
            ["v1", "export", "batches", "ack"] => Some(Route::ExportBatchesAck),
            ["v1", "market"] => Some(Route::Market),
            ["v1", "flow", "requests"] => Some(Route::FlowRequests),
            ["v1", "flow", "requests", id] => id.parse().ok().map(Route::FlowUpdate),
            ["v1", "dr", "events"] => Some(Route::DrEvents),
            ["v1", "dr", "issue"] => Some(Route::DrIssue),
            ["v1", "dr", "events", id, "cancel"] => id.parse().ok().map(Route::DrCancel),
            _ => None,
        }
    }
}

/// Shortest keeper token accepted (the bridge makes 64 hex digits, 256 bits).
pub const MIN_TOKEN_LEN: usize = 32;

/// Largest `PUT /v1/meters` body (10,000 meters take about 2 MiB).
pub const MAX_METERS_BODY: usize = 4 << 20;

/// Base64 as the interface writes it (standard alphabet, padded).
pub const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Fixed-size binary values written as hex: upper case out, either case in.
pub mod hex {
    /// Upper-case hex.
    pub fn encode(bytes: &[u8]) -> String {
        ::hex::encode_upper(bytes)
    }

    /// Exactly `N` bytes written as `2 N` hex digits, either case.
    pub fn decode_array<const N: usize>(text: &str) -> Result<[u8; N], HexError> {
        if text.len() != 2 * N {
            return Err(HexError::Length {
                expected: 2 * N,
                found: text.len(),
            });
        }
        let mut out = [0u8; N];
        ::hex::decode_to_slice(text, &mut out).map_err(|_| HexError::Digit)?;
        Ok(out)
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
    pub enum HexError {
        #[error("expected {expected} hex digits, found {found} characters")]
        Length { expected: usize, found: usize },
        #[error("not a hex digit")]
        Digit,
    }
}

/// What `GET /v1/status` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeStatus {
    /// The bridge's attestor key (Ed25519, 32 bytes), base64.
    pub attestor: String,
    /// The oracle program and the registry campus the batches are for (base58).
    pub oracle_program: String,
    pub campus: String,
    /// The attestor's last round, once one has run (absent from older bridges).
    #[serde(default)]
    pub attestation: Option<AttestationStatus>,
    /// The chain's highest settled sequence as last reported: nothing is signed at or
    /// below it (0: never reported).
    #[serde(default)]
    pub chain_floor: u64,
    /// The genesis hash (base58) of the cluster the bridge signs for; `None` when it has
    /// none configured (it signs nothing) or is older than this field.
    #[serde(default)]
    pub cluster: Option<String>,
    /// The oracle's reading limits as the bridge applies them before signing; `None` from
    /// bridges older than this field.
    #[serde(default)]
    pub limits: Option<Limits>,
    /// The history exporter's queue, when the bridge keeps one (`export.enabled`).
    #[serde(default)]
    pub export: Option<ExportStatus>,
}

/// The bridge's export queue (`BridgeStatus::export`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportStatus {
    /// Readings stored and not yet exported.
    pub readings_waiting: u64,
    /// When the oldest of them was received (Unix seconds).
    pub oldest_waiting_received_at: Option<i64>,
    /// Readings dropped from the queue unexported because it was over its cap, ever.
    pub readings_dropped: u64,
    /// Readings the exporter acknowledged (in the history database), ever.
    #[serde(default)]
    pub readings_exported: u64,
    /// The queue's cap (readings).
    pub max_waiting: u64,
    /// Batches exported through this sequence; the last signed.
    pub batches_exported_through: u64,
    pub last_batch: u64,
}

/// Largest body of an export acknowledgement.
pub const MAX_EXPORT_ACK_BODY: usize = 1 << 10;

/// Most readings or batches one export page carries.
pub const MAX_EXPORT_PAGE: usize = 20_000;

/// One accepted register reading, as the bridge stored it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportedReading {
    /// Its place in the export queue (increasing in the order readings were stored).
    pub seq: u64,
    /// The meter's LFDI (40 hex digits) and the MirrorMeterReading's mRID.
    pub lfdi: String,
    pub mmr: String,
    /// `true` for the export (received) register, `false` for import (delivered).
    pub export: bool,
    /// The reading's time and its interval's start (Unix seconds), its value (Wh) and
    /// quality flags, and when the bridge received it.
    pub timestamp: u32,
    pub start: u32,
    pub wh: u64,
    pub quality: u8,
    pub received_at: i64,
}

/// What `GET /v1/export/readings` answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadingPage {
    /// After the `after` asked for, in queue order.
    pub readings: Vec<ExportedReading>,
    /// The last queue position assigned so far.
    pub last: u64,
    /// Queue positions through this one were dropped unexported (the queue was over its
    /// cap): an exporter behind it lost them.
    pub dropped_through: u64,
}

/// What `GET /v1/export/batches` answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPage {
    /// Signed batches after the `after` asked for, by sequence (acknowledged or not).
    pub batches: Vec<SignedBatch>,
    /// The last sequence signed.
    pub last: u64,
}

/// `POST /v1/export/{readings,batches}/ack`: everything through `through` is in the
/// history database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportAck {
    pub through: u64,
}

/// The oracle's reading limits, as a bridge applies them (`BridgeStatus::limits`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    pub max_future_skew_s: u32,
    pub min_interval_s: u32,
    pub max_age_s: u32,
    pub tolerance_bps: u16,
}

/// What `POST /v1/chain` carries: what the keeper read from the oracle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainReport {
    /// The oracle's highest settled batch sequence (`OracleConfig::highest_sequence`).
    pub highest_sequence: u64,
}

/// What `POST /v1/chain` answers: the floor the bridge keeps (never lowered).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainFloor {
    pub floor: u64,
}

/// The body of a 409 from the keeper interface: why, and for an acknowledgement out of
/// order, the batch to acknowledge first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<u64>,
}

/// `POST /v1/deny` and `POST /v1/allow`: a meter by its building code or LFDI (40 hex
/// digits), and why (kept with the denial, for the operator).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenyRequest {
    pub meter: String,
    #[serde(default)]
    pub reason: String,
}

/// A meter the bridge refuses locally: its LFDI (hex), building code, why and since when
/// (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeniedMeter {
    pub lfdi: String,
    pub code: String,
    pub reason: String,
    pub since: i64,
}

/// What `GET /v1/denied` answers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeniedList {
    pub denied: Vec<DeniedMeter>,
}

/// Largest `POST /v1/deny` or `/v1/allow` body.
pub const MAX_DENY_BODY: usize = 4 << 10;

/// Largest `POST /v1/chain` body.
pub const MAX_CHAIN_BODY: usize = 1 << 10;

/// What the attestor's last round did and left waiting.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttestationStatus {
    /// When the round ran (Unix seconds).
    pub at: i64,
    pub batches_signed: u64,
    pub readings_signed: u64,
    /// Signed batches the keeper has not acknowledged yet.
    pub pending_batches: u64,
    /// The round stopped at the backlog bound (`max_pending_batches`).
    pub backlog_full: bool,
    /// Meters with a reading newer than the chain's that is not attested yet, and the age
    /// in seconds of the oldest such reading (None: none waits).
    pub waiting_meters: u64,
    pub oldest_unattested_s: Option<i64>,
    /// Meters whose latest reading the oracle's rules refuse (never signed as it stands).
    pub refused_meters: u64,
}

/// A signed batch of readings, as the bridge stores and serves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedBatch {
    pub sequence: u64,
    /// SHA-256 of the message, hex: the oracle names applied batches by it.
    pub hash: String,
    /// The attestation message (`oracle::attestation`), base64.
    pub message: String,
    /// The attestor's Ed25519 public key (32 bytes), base64.
    pub attestor: String,
    /// Ed25519 signature over `message`, base64.
    pub signature: String,
    /// The LFDIs (hex) of the readings' meters, in order: the keeper passes their registry
    /// `Meter` and oracle `MeterState` accounts (the message commits to the latter).
    pub meters: Vec<String>,
    pub readings: u16,
    pub created_at: i64,
    /// Confirmed on chain (the keeper acknowledged it); the interface serves only batches
    /// that are not.
    #[serde(default)]
    pub acknowledged: bool,
    /// Re-signed under this sequence (the chain had settled this one without it: a store
    /// restored from a backup, a governance skip); set with `acknowledged`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced_by: Option<u64>,
}

/// A batch decoded into what a transaction needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedBatch {
    pub sequence: u64,
    pub hash: [u8; 32],
    pub message: Vec<u8>,
    pub attestor: [u8; 32],
    pub signature: [u8; 64],
    /// The readings' meters (LFDIs), in order.
    pub meters: Vec<[u8; 20]>,
}

/// Why a served batch could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{field}: not base64 ({source})")]
    Base64 {
        field: &'static str,
        source: base64::DecodeError,
    },
    #[error("{field}: {len} bytes, expected {expected}")]
    Length {
        field: &'static str,
        len: usize,
        expected: usize,
    },
    #[error("{field}: {source}")]
    Hex {
        field: String,
        source: hex::HexError,
    },
    #[error("empty message")]
    EmptyMessage,
}

fn base64_array<const N: usize>(field: &'static str, text: &str) -> Result<[u8; N], DecodeError> {
    let bytes = B64
        .decode(text)
        .map_err(|source| DecodeError::Base64 { field, source })?;
    let len = bytes.len();
    bytes.try_into().map_err(|_| DecodeError::Length {
        field,
        len,
        expected: N,
    })
}

impl SignedBatch {
    pub fn decode(&self) -> Result<DecodedBatch, DecodeError> {
        let message = B64
            .decode(&self.message)
            .map_err(|source| DecodeError::Base64 {
                field: "message",
                source,
            })?;
        if message.is_empty() {
            return Err(DecodeError::EmptyMessage);
        }
        let hash = hex::decode_array(&self.hash).map_err(|source| DecodeError::Hex {
            field: "hash".into(),
            source,
        })?;
        let meters = self
            .meters
            .iter()
            .enumerate()
            .map(|(i, m)| {
                hex::decode_array(m).map_err(|source| DecodeError::Hex {
                    field: format!("meters[{i}]"),
                    source,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(DecodedBatch {
            sequence: self.sequence,
            hash,
            message,
            attestor: base64_array("attestor", &self.attestor)?,
            signature: base64_array("signature", &self.signature)?,
            meters,
        })
    }
}

/// What `GET /v1/batches` answers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchList {
    pub batches: Vec<SignedBatch>,
}

/// A meter as the registry on chain has it (`PUT /v1/meters`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterRecord {
    /// 40 hex digits, either case.
    pub lfdi: String,
    pub index: u16,
    pub active: bool,
    /// Since when the oracle verifies the meter under its current status and capacity
    /// (the registry's `Meter::active_since`: the later of `status_changed_at` and
    /// `capacity_changed_at`), Unix seconds.
    pub since: i64,
    pub generation_w: u64,
    pub storage_wh: u64,
    pub max_import_w: u64,
    pub max_discharge_w: u64,
}

/// The body of `PUT /v1/meters`: every meter the registry has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeterList {
    pub meters: Vec<MeterRecord>,
}

/// What a `PUT /v1/meters` changed at the bridge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// Registered on chain, new to the bridge.
    pub added: usize,
    /// Known, with a new index, capacity, status or start.
    pub changed: usize,
    /// Known to the bridge but not registered: refused until they are.
    pub unregistered: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> SignedBatch {
        SignedBatch {
            sequence: 7,
            hash: "AB".repeat(32),
            message: B64.encode([1u8, 2, 3]),
            attestor: B64.encode([9u8; 32]),
            signature: B64.encode([5u8; 64]),
            meters: vec!["0a".repeat(20), "FF".repeat(20)],
            readings: 2,
            created_at: 1_700_000_000,
            acknowledged: false,
            replaced_by: None,
        }
    }

    #[test]
    fn a_batch_decodes_into_its_bytes() {
        let decoded = batch().decode().unwrap();
        assert_eq!(
            decoded,
            DecodedBatch {
                sequence: 7,
                hash: [0xAB; 32],
                message: vec![1, 2, 3],
                attestor: [9; 32],
                signature: [5; 64],
                meters: vec![[0x0A; 20], [0xFF; 20]],
            }
        );
    }

    #[test]
    fn a_malformed_batch_says_which_field() {
        type Spoil = fn(&mut SignedBatch);
        let cases: [(Spoil, &str); 6] = [
            (|b| b.message = String::new(), "empty message"),
            (|b| b.message = "!".into(), "message: not base64"),
            (
                |b| b.hash = "AB".into(),
                "hash: expected 64 hex digits, found 2",
            ),
            (
                |b| b.meters[1] = "ZZ".repeat(20),
                "meters[1]: not a hex digit",
            ),
            (
                |b| b.attestor = B64.encode([1u8; 31]),
                "attestor: 31 bytes, expected 32",
            ),
            (
                |b| b.signature = B64.encode([1u8; 65]),
                "signature: 65 bytes, expected 64",
            ),
        ];
        for (spoil, expected) in cases {
            let mut b = batch();
            spoil(&mut b);
            let err = b.decode().unwrap_err().to_string();
            assert!(err.starts_with(expected), "{err:?} vs {expected:?}");
        }
    }

    /// The wire format of a batch, as the bridge has stored and served it since the first
    /// release: changing a name breaks a keeper talking to an older bridge.
    #[test]
    fn the_batch_json_is_pinned() {
        let json = serde_json::to_string(&batch()).unwrap();
        assert_eq!(
            json,
            format!(
                "{{\"sequence\":7,\"hash\":\"{}\",\"message\":\"AQID\",\"attestor\":\"{}\",\"signature\":\"{}\",\"meters\":[\"{}\",\"{}\"],\"readings\":2,\"created_at\":1700000000,\"acknowledged\":false}}",
                "AB".repeat(32),
                B64.encode([9u8; 32]),
                B64.encode([5u8; 64]),
                "0a".repeat(20),
                "FF".repeat(20)
            )
        );
        // A keeper reads what an older server wrote without the flag.
        let without: SignedBatch =
            serde_json::from_str(&json.replace(",\"acknowledged\":false", "")).unwrap();
        assert_eq!(without, batch());
    }

    #[test]
    fn hex_is_upper_case_out_and_either_case_in() {
        assert_eq!(hex::encode(&[0xab, 0x01]), "AB01");
        assert_eq!(hex::decode_array::<2>("aB01"), Ok([0xAB, 0x01]));
        assert_eq!(
            hex::decode_array::<2>("AB0"),
            Err(hex::HexError::Length {
                expected: 4,
                found: 3
            })
        );
        assert_eq!(hex::decode_array::<2>("AB0G"), Err(hex::HexError::Digit));
        assert_eq!(hex::decode_array::<1>("é"), Err(hex::HexError::Digit));
    }

    #[test]
    fn routes_round_trip_through_their_paths() {
        for route in [
            Route::Status,
            Route::Batches,
            Route::Acknowledge(42),
            Route::Meters,
            Route::Chain,
            Route::Resign(9),
            Route::Denied,
            Route::Deny,
            Route::Allow,
            Route::ExportReadings,
            Route::ExportReadingsAck,
            Route::ExportBatches,
            Route::ExportBatchesAck,
            Route::Market,
            Route::FlowRequests,
            Route::FlowUpdate(12),
            Route::DrEvents,
            Route::DrIssue,
            Route::DrCancel(3),
        ] {
            assert_eq!(Route::of_path(&route.path()), Some(route));
            assert_eq!(Route::of_path(&format!("{}/", route.path())), Some(route));
        }
        assert_eq!(Route::Acknowledge(42).path(), "/v1/batches/42/ack");
        assert_eq!(Route::Acknowledge(7).method(), "POST");
        assert_eq!(Route::Meters.method(), "PUT");
        assert_eq!(Route::Resign(9).path(), "/v1/batches/9/resign");
        assert_eq!(Route::Chain.method(), "POST");
        assert_eq!(Route::ExportReadings.method(), "GET");
        assert_eq!(Route::ExportBatchesAck.path(), "/v1/export/batches/ack");
        assert_eq!(Route::of_path("/v1/export"), None);
        assert_eq!(Route::of_path("/v1/flow/requests/x"), None);
        assert_eq!(Route::FlowUpdate(12).path(), "/v1/flow/requests/12");
        assert_eq!(Route::Market.method(), "PUT");
        assert_eq!(Route::of_path("/v1/batches/x/ack"), None);
        assert_eq!(Route::of_path("/v1/batches/x/resign"), None);
        assert_eq!(Route::of_path("/v1/batches/-1/ack"), None);
        assert_eq!(Route::of_path("/v2/status"), None);
        assert_eq!(Route::of_path(""), None);
    }
}
