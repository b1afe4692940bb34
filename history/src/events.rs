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

/// The event `T` in `bytes`, if its discriminator is `T`'s.
fn as_event<T: Discriminator + AnchorDeserialize>(bytes: &[u8]) -> Option<T> {
    let rest = bytes.strip_prefix(T::DISCRIMINATOR)?;
    T::deserialize(&mut &rest[..]).ok()
}

/// Decodes one event of ours; `None` for one this build does not map (kept as `other`).
pub fn decode(bytes: &[u8]) -> Option<EventRow> {
    use energy_token::events as tk;
    use governance::events as gv;
    use oracle::events as or;
    use trading::events as tr;
    macro_rules! map {
        ($($ty:path => |$e:ident| $row:expr;)*) => {
            $(if let Some($e) = as_event::<$ty>(bytes) { return Some($row); })*
        };
    }
    map! {
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
            detail: json!({"side": side_name(&e.side), "replaced": e.replaced}),
            ..empty()
        };
        tr::OrderCancelled => |e| EventRow {
            kind: "order_cancelled", interval: Some(e.interval), lfdi: Some(e.lfdi), owner: Some(e.owner),
            side: Some(side(&e.side)), quote: Some(e.refunded),
            detail: json!({"side": side_name(&e.side)}),
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
        gv::GuardianPaused => |e| EventRow {
            kind: "guardian_paused", owner: Some(e.guardian),
            detail: json!({"program_id": e.program_id.to_string(), "config": e.config.to_string(),
                           "paused_until": e.paused_until}),
            ..empty()
        };
    }
    None
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
