//! The programs' Anchor events in a transaction's logs, as rows of `chain_events`.
//!
//! Each `Program data:` line belongs to the program on top of the invocation stack the logs
//! trace (`Program <id> invoke [n]` ... `Program <id> success`), so an event is attributed to
//! the program that emitted it even when another called it. `event_index` counts every
//! `Program data:` line of the transaction, so (signature, event_index) names one event.
use anchor_lang::prelude::Pubkey;
use anchor_lang::{AnchorDeserialize, Discriminator};
use base64::Engine;
use serde_json::{json, Value};

/// One event, with the columns the queries need and every field in `detail`.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    pub event_index: i32,
    pub program: &'static str,
    pub kind: &'static str,
    pub lfdi: Option<[u8; 20]>,
    pub owner: Option<Pubkey>,
    pub interval: Option<u64>,
    pub sequence: Option<u64>,
    /// 0 buy, 1 sell.
    pub side: Option<i16>,
    pub wh: Option<u64>,
    pub quote: Option<u64>,
    pub price: Option<u64>,
    pub detail: Value,
}

/// The GridTokenX programs, by id and name.
pub fn programs() -> [(Pubkey, &'static str); 5] {
    [
        (registry::ID, "registry"),
        (oracle::ID, "oracle"),
        (energy_token::ID, "energy_token"),
        (trading::ID, "trading"),
        (governance::ID, "governance"),
    ]
}

/// The events `program` emitted in a transaction with these `logs`, in order.
pub fn events_of(program: Pubkey, logs: &[String]) -> Vec<EventRow> {
    let name = programs()
        .iter()
        .find(|(id, _)| *id == program)
        .map(|(_, n)| *n)
        .unwrap_or("unknown");
    let mut stack: Vec<Pubkey> = Vec::new();
    let mut index = 0i32;
    let mut out = Vec::new();
    for line in logs {
        if let Some(rest) = line.strip_prefix("Program ") {
            let mut words = rest.split_whitespace();
            if let (Some(id), Some(verb)) = (words.next(), words.next()) {
                if let Ok(id) = id.parse::<Pubkey>() {
                    match verb {
                        "invoke" => {
                            stack.push(id);
                            continue;
                        }
                        "success" | "failed:" | "failed" => {
                            stack.pop();
                            continue;
                        }
                        _ => {}
                    }
                }
            }
        }
        let Some(b64) = line
            .strip_prefix("Program data: ")
            .or_else(|| line.strip_prefix("Program log: Program data: "))
        else {
            continue;
        };
        let at = index;
        index += 1;
        if stack.last() != Some(&program) {
            continue;
        }
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(b64.trim()) else {
            continue;
        };
        let mut row = decode(&bytes).unwrap_or_else(|| EventRow {
            kind: "other",
            detail: json!({ "data": b64.trim() }),
            ..empty()
        });
        row.event_index = at;
        row.program = name;
        out.push(row);
    }
    out
}

fn empty() -> EventRow {
    EventRow {
        event_index: 0,
        program: "",
        kind: "",
        lfdi: None,
        owner: None,
        interval: None,
        sequence: None,
        side: None,
        wh: None,
        quote: None,
        price: None,
        detail: Value::Null,
    }
}

fn hex(bytes: &[u8]) -> String {
    hex::encode_upper(bytes)
}

fn side(s: &trading::state::Side) -> i16 {
    match s {
        trading::state::Side::Buy => 0,
        trading::state::Side::Sell => 1,
    }
}

fn side_name(s: &trading::state::Side) -> &'static str {
    match s {
        trading::state::Side::Buy => "buy",
        trading::state::Side::Sell => "sell",
    }
}

fn capacity(c: &registry::MeterCapacity) -> Value {
    json!({"generation_w": c.generation_w, "storage_wh": c.storage_wh,
           "max_import_w": c.max_import_w, "max_discharge_w": c.max_discharge_w})
}

/// A program's authority handed from `from` to `to` (to the council, at the hand-over).
fn authority_changed(program: &str, from: Pubkey, to: Pubkey) -> EventRow {
    EventRow {
        kind: "authority_changed",
        owner: Some(to),
        detail: json!({"program": program, "from": from.to_string(), "to": to.to_string()}),
        ..empty()
    }
}

/// A program's authority proposed to `pending` by `authority` (it takes effect when accepted).
fn authority_proposed(program: &str, authority: Pubkey, pending: Pubkey) -> EventRow {
    EventRow {
        kind: "authority_proposed",
        owner: Some(pending),
        detail: json!({"program": program, "authority": authority.to_string(), "pending": pending.to_string()}),
        ..empty()
    }
}

/// The event `T` in `bytes`, if its discriminator is `T`'s.
fn as_event<T: Discriminator + AnchorDeserialize>(bytes: &[u8]) -> Option<T> {
    let rest = bytes.strip_prefix(T::DISCRIMINATOR)?;
    T::deserialize(&mut &rest[..]).ok()
}

use energy_token::events as tk;
use governance::events as gv;
use oracle::events as or;
use registry::events as rg;
use trading::events as tr;

/// `decode` over the table of events, and the names of the events it maps.
macro_rules! event_table {
    ($($ty:path => |$e:ident| $row:expr;)*) => {
        /// Decodes one event of ours; `None` for one this build does not map (kept as `other`).
        pub fn decode(bytes: &[u8]) -> Option<EventRow> {
            $(if let Some($e) = as_event::<$ty>(bytes) { return Some($row); })*
            None
        }

        /// The type names of the events `decode` maps.
        pub fn mapped_events() -> Vec<&'static str> {
            vec![$(stringify!($ty).rsplit(':').next().unwrap_or_default().trim()),*]
        }
    };
}

event_table! {
        or::BatchApplied => |e| EventRow {
            kind: "batch_applied", sequence: Some(e.sequence),
            detail: json!({"hash": hex(&e.hash), "applied": e.applied, "skipped": e.skipped, "attestors": e.attestors}),
            ..empty()
        };
        or::ReadingSkipped => |e| EventRow {
            kind: "reading_skipped", sequence: Some(e.sequence), lfdi: Some(e.lfdi),
            detail: json!({"position": e.position, "meter_state": e.meter_state.to_string(), "reason": e.reason}),
            ..empty()
        };
        or::BatchesSkipped => |e| EventRow {
            kind: "batches_skipped", sequence: Some(e.through),
            detail: json!({"from": e.from, "through": e.through}),
            ..empty()
        };
        tk::GenerationMinted => |e| EventRow {
            kind: "grid_minted", lfdi: Some(e.lfdi), owner: Some(e.owner), wh: Some(e.amount),
            detail: json!({"total_minted_wh": e.total_minted_wh}),
            ..empty()
        };
        tk::MeterSkipped => |e| EventRow {
            kind: "mint_skipped", lfdi: Some(e.lfdi), detail: json!({"reason": e.reason}), ..empty()
        };
        tk::ConsumptionRedeemed => |e| EventRow {
            kind: "consumption_redeemed", lfdi: Some(e.lfdi), owner: Some(e.owner), wh: Some(e.amount),
            detail: json!({"total_redeemed_wh": e.total_redeemed_wh}),
            ..empty()
        };
        tk::RecsIssued => |e| EventRow {
            kind: "recs_issued", lfdi: Some(e.lfdi), owner: Some(e.owner), wh: Some(e.amount),
            detail: json!({"total_certified_wh": e.total_certified_wh}),
            ..empty()
        };
        tk::RecsRetired => |e| EventRow {
            kind: "recs_retired", owner: Some(e.holder), wh: Some(e.amount),
            detail: json!({"retirement": e.retirement.to_string(), "index": e.index, "id": e.id,
                           "beneficiary": e.beneficiary, "reason": e.reason}),
            ..empty()
        };
        tr::IntervalOpened => |e| EventRow {
            kind: "interval_opened", interval: Some(e.interval), detail: json!({"payer": e.payer.to_string()}), ..empty()
        };
        tr::OrderPlaced => |e| EventRow {
            kind: "order_placed", interval: Some(e.interval), lfdi: Some(e.lfdi), owner: Some(e.owner),
            side: Some(side(&e.side)), wh: Some(e.quantity_wh), price: Some(e.limit_price), quote: Some(e.escrow),
            detail: json!({"side": side_name(&e.side), "replaced": e.replaced, "by": e.by.to_string()}),
            ..empty()
        };
        tr::OrderCancelled => |e| EventRow {
            kind: "order_cancelled", interval: Some(e.interval), lfdi: Some(e.lfdi), owner: Some(e.owner),
            side: Some(side(&e.side)), quote: Some(e.refunded),
            detail: json!({"side": side_name(&e.side), "by": e.by.to_string()}),
            ..empty()
        };
        tr::IntervalCleared => |e| EventRow {
            kind: "interval_cleared", interval: Some(e.interval), wh: Some(e.volume_wh), price: Some(e.price),
            detail: json!({"buy_orders": e.buy_orders, "sell_orders": e.sell_orders,
                           "buy_volume_offered": e.buy_volume_offered, "sell_volume_offered": e.sell_volume_offered}),
            ..empty()
        };
        tr::OrderSettled => |e| EventRow {
            kind: "order_settled", interval: Some(e.interval), lfdi: Some(e.lfdi), owner: Some(e.owner),
            side: Some(side(&e.side)), wh: Some(e.filled_wh), quote: Some(e.quote),
            detail: json!({"side": side_name(&e.side), "refund": e.refund}),
            ..empty()
        };
        tr::IntervalClosed => |e| EventRow {
            kind: "interval_closed", interval: Some(e.interval), wh: Some(e.dust_wh), quote: Some(e.fees),
            detail: json!({"quote_surplus": e.quote_surplus}),
            ..empty()
        };
        tr::OrderEvicted => |e| EventRow {
            kind: "order_evicted", interval: Some(e.interval), lfdi: Some(e.lfdi), owner: Some(e.owner),
            side: Some(side(&e.side)), quote: Some(e.credited),
            detail: json!({"side": side_name(&e.side), "by": e.by.to_string()}),
            ..empty()
        };
        tr::DelegateAuthorized => |e| EventRow {
            kind: "delegate_authorized", lfdi: Some(e.lfdi), owner: Some(e.owner),
            detail: json!({"delegate": e.delegate.to_string(), "replaced": e.replaced.map(|k| k.to_string())}),
            ..empty()
        };
        tr::DelegateRevoked => |e| EventRow {
            kind: "delegate_revoked", lfdi: Some(e.lfdi), owner: Some(e.owner),
            detail: json!({"delegate": e.delegate.to_string(), "by": e.by.to_string()}),
            ..empty()
        };
        tr::Withdrawn => |e| EventRow {
            kind: "withdrawn", owner: Some(e.owner), wh: Some(e.base), quote: Some(e.quote),
            detail: json!({"lamports": e.lamports}),
            ..empty()
        };
        tr::MarketPauseChanged => |e| EventRow {
            kind: "market_pause_changed", detail: json!({"paused_until": e.paused_until}), ..empty()
        };
        gv::ProposalCreated => |e| EventRow {
            kind: "proposal_created", owner: Some(e.proposer),
            detail: json!({"proposal": e.proposal.to_string(), "index": e.index, "program_id": e.program_id.to_string()}),
            ..empty()
        };
        gv::ProposalVoted => |e| EventRow {
            kind: "proposal_voted", owner: Some(e.member),
            detail: json!({"proposal": e.proposal.to_string(), "approve": e.approve,
                           "approvals": e.approvals, "rejections": e.rejections}),
            ..empty()
        };
        gv::ProposalApproved => |e| EventRow {
            kind: "proposal_approved",
            detail: json!({"proposal": e.proposal.to_string(), "executable_at": e.executable_at}),
            ..empty()
        };
        gv::ProposalRejected => |e| EventRow {
            kind: "proposal_rejected", detail: json!({"proposal": e.proposal.to_string()}), ..empty()
        };
        gv::ProposalExecuted => |e| EventRow {
            kind: "proposal_executed", owner: Some(e.executor),
            detail: json!({"proposal": e.proposal.to_string(), "program_id": e.program_id.to_string()}),
            ..empty()
        };
        gv::ProposalCancelled => |e| EventRow {
            kind: "proposal_cancelled", detail: json!({"proposal": e.proposal.to_string()}), ..empty()
        };
        rg::CampusInitialized => |e| EventRow {
            kind: "campus_initialized", owner: Some(e.authority),
            detail: json!({"campus": e.campus.to_string(), "name": e.name}), ..empty()
        };
        rg::MeterRegistered => |e| EventRow {
            kind: "meter_registered", lfdi: Some(e.lfdi), owner: Some(e.owner),
            detail: json!({"meter": e.meter.to_string(), "sfdi": e.sfdi, "index": e.index,
                           "building_kind": format!("{:?}", e.building_kind),
                           "capacity": capacity(&e.capacity)}),
            ..empty()
        };
        rg::MeterStatusChanged => |e| EventRow {
            kind: "meter_status_changed", lfdi: Some(e.lfdi),
            detail: json!({"meter": e.meter.to_string(), "from": format!("{:?}", e.from),
                           "to": format!("{:?}", e.to), "at": e.at}),
            ..empty()
        };
        rg::MeterCapacityUpdated => |e| EventRow {
            kind: "meter_capacity_updated", lfdi: Some(e.lfdi),
            detail: json!({"meter": e.meter.to_string(), "capacity": capacity(&e.capacity)}),
            ..empty()
        };
        rg::MeterOwnershipTransferred => |e| EventRow {
            kind: "meter_ownership_transferred", lfdi: Some(e.lfdi), owner: Some(e.to),
            detail: json!({"meter": e.meter.to_string(), "from": e.from.to_string()}),
            ..empty()
        };
        rg::RegistryPauseChanged => |e| EventRow {
            kind: "registry_pause_changed", detail: json!({"paused_until": e.paused_until}), ..empty()
        };
        rg::CampusAuthorityProposed => |e| authority_proposed("registry", e.authority, e.pending);
        or::OracleAuthorityProposed => |e| authority_proposed("oracle", e.authority, e.pending);
        tk::TokenAuthorityProposed => |e| authority_proposed("energy_token", e.authority, e.pending);
        tr::MarketAuthorityProposed => |e| authority_proposed("trading", e.authority, e.pending);
        or::OracleInitialized => |e| EventRow {
            kind: "oracle_initialized", owner: Some(e.authority),
            detail: json!({"campus": e.campus.to_string(), "domain": hex(&e.domain)}), ..empty()
        };
        tk::EnergyTokenInitialized => |e| EventRow {
            kind: "energy_token_initialized", owner: Some(e.authority),
            detail: json!({"campus": e.campus.to_string(), "grid_mint": e.grid_mint.to_string(),
                           "rec_mint": e.rec_mint.to_string()}),
            ..empty()
        };
        tr::MarketInitialized => |e| EventRow {
            kind: "market_initialized", owner: Some(e.authority),
            detail: json!({"market": e.market.to_string(), "base_mint": e.base_mint.to_string(),
                           "quote_mint": e.quote_mint.to_string(), "start_time": e.start_time,
                           "params": format!("{:?}", e.params)}),
            ..empty()
        };
        rg::CampusAuthorityChanged => |e| authority_changed("registry", e.from, e.to);
        or::OracleAuthorityChanged => |e| authority_changed("oracle", e.from, e.to);
        tk::TokenAuthorityChanged => |e| authority_changed("energy_token", e.from, e.to);
        tr::MarketAuthorityChanged => |e| authority_changed("trading", e.from, e.to);
        or::AttestorsUpdated => |e| EventRow {
            kind: "attestors_updated",
            detail: json!({"attestors": e.attestors.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
                           "quorum": e.quorum}),
            ..empty()
        };
        or::OracleParamsUpdated => |e| EventRow {
            kind: "oracle_params_updated", detail: json!({"params": format!("{:?}", e.params)}), ..empty()
        };
        or::OraclePauseChanged => |e| EventRow {
            kind: "oracle_pause_changed", detail: json!({"paused_until": e.paused_until}), ..empty()
        };
        or::MeterStateInitialized => |e| EventRow {
            kind: "meter_state_initialized", lfdi: Some(e.lfdi), detail: json!({}), ..empty()
        };
        tk::LedgerInitialized => |e| EventRow {
            kind: "ledger_initialized", lfdi: Some(e.lfdi), detail: json!({}), ..empty()
        };
        tk::TokenPauseChanged => |e| EventRow {
            kind: "token_pause_changed", detail: json!({"paused_until": e.paused_until}), ..empty()
        };
        tr::MarketParamsUpdated => |e| EventRow {
            kind: "market_params_updated", detail: json!({"params": format!("{:?}", e.params)}), ..empty()
        };
        tr::FeesWithdrawn => |e| EventRow {
            kind: "fees_withdrawn", wh: Some(e.base), quote: Some(e.quote), detail: json!({}), ..empty()
        };
        tr::SweepSkipped => |e| EventRow {
            kind: "sweep_skipped", owner: Some(e.owner), detail: json!({}), ..empty()
        };
        gv::CouncilConfigured => |e| EventRow {
            kind: "council_configured",
            detail: json!({"members": e.members.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                           "guardians": e.guardians.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
                           "threshold": e.threshold, "timelock_seconds": e.timelock_seconds,
                           "max_guardian_pause_s": e.max_guardian_pause_s,
                           "guardian_cooldown_s": e.guardian_cooldown_s}),
            ..empty()
        };
        gv::GuardianPaused => |e| EventRow {
            kind: "guardian_paused", owner: Some(e.guardian),
            detail: json!({"program_id": e.program_id.to_string(), "config": e.config.to_string(),
                           "paused_until": e.paused_until}),
            ..empty()
        };
}

#[cfg(test)]
mod tests {
    use super::*;
    use anchor_lang::Event;

    fn line(data: &[u8]) -> String {
        format!(
            "Program data: {}",
            base64::engine::general_purpose::STANDARD.encode(data)
        )
    }

    /// Every event in the five programs' IDLs (idl/*.json, kept current by CI) is mapped.
    #[test]
    fn every_event_of_the_programs_is_mapped() {
        let mapped = mapped_events();
        let idl = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../idl");
        let mut names = Vec::new();
        for program in [
            "registry",
            "oracle",
            "energy_token",
            "trading",
            "governance",
        ] {
            let text = std::fs::read_to_string(idl.join(format!("{program}.json"))).unwrap();
            let json: Value = serde_json::from_str(&text).unwrap();
            for event in json["events"].as_array().unwrap() {
                names.push(event["name"].as_str().unwrap().to_string());
            }
        }
        let missing: Vec<_> = names
            .iter()
            .filter(|n| !mapped.contains(&n.as_str()))
            .collect();
        assert!(missing.is_empty(), "events not mapped: {missing:?}");
        assert_eq!(names.len(), mapped.len(), "mapped events not in the IDLs");
    }

    #[test]
    fn events_belong_to_the_program_that_emitted_them() {
        let settled = trading::events::OrderSettled {
            interval: 7,
            lfdi: [3; 20],
            owner: Pubkey::new_from_array([4; 32]),
            side: trading::state::Side::Sell,
            filled_wh: 1_500,
            quote: 6_000,
            refund: 0,
        };
        let minted = energy_token::events::GenerationMinted {
            lfdi: [3; 20],
            owner: Pubkey::new_from_array([4; 32]),
            amount: 900,
            total_minted_wh: 9_000,
        };
        let logs = vec![
            format!("Program {} invoke [1]", trading::ID),
            line(&settled.data()),
            format!("Program {} invoke [2]", energy_token::ID),
            format!("Program log: {}", line(&minted.data())),
            format!("Program {} success", energy_token::ID),
            "Program data: not base64 at all!".to_string(),
            line(&[9, 9, 9, 9, 9, 9, 9, 9, 1]),
            format!("Program {} success", trading::ID),
        ];
        let market = events_of(trading::ID, &logs);
        assert_eq!(market.len(), 2, "{market:?}");
        assert_eq!(
            (market[0].kind, market[0].event_index, market[0].program),
            ("order_settled", 0, "trading")
        );
        assert_eq!(
            (
                market[0].interval,
                market[0].side,
                market[0].wh,
                market[0].quote
            ),
            (Some(7), Some(1), Some(1_500), Some(6_000))
        );
        assert_eq!(market[1].kind, "other");
        assert_eq!(market[1].event_index, 3);
        let token = events_of(energy_token::ID, &logs);
        assert_eq!(token.len(), 1);
        assert_eq!(
            (
                token[0].kind,
                token[0].event_index,
                token[0].wh,
                token[0].lfdi
            ),
            ("grid_minted", 1, Some(900), Some([3; 20]))
        );
        assert!(events_of(oracle::ID, &logs).is_empty());
    }
}
