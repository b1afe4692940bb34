//! The keeper's lookup tables on the embedded chain: grouped statically by registry index
//! so a campus of any size fits, each transaction naming only the tables of its accounts; a
//! group's table that fills up with ownership changes is rebuilt; a table whose view went
//! stale (an extend that landed unseen) is read again from the chain after its extend fails.
use anchor_lang::prelude::Pubkey;
use gridtokenx_tests::embedded::EmbeddedChain;
use keeper::table::{shared, CampusTables, TableMeter, METERS_PER_TABLE, TABLE_CAPACITY};
use registry::identity::Lfdi;
use sdk::ix::{energy_token as token_ix, oracle as oracle_ix, registry as registry_ix};

fn meters(n: usize) -> Vec<TableMeter> {
    (0..n)
        .map(|i| {
            let mut lfdi: Lfdi = [9; 20];
            lfdi[..4].copy_from_slice(&(i as u32).to_le_bytes());
            TableMeter {
                lfdi,
                owner: Pubkey::new_unique(),
                index: i as u16,
            }
        })
        .collect()
}

#[tokio::test]
async fn tables_grow_with_the_campus_and_rebuild_when_full() {
    let mut chain = EmbeddedChain::start().await;
    let quote = Some(Pubkey::new_unique());
    let mut campus = meters(100);
    let mut tables = CampusTables::default();
    assert_eq!(tables.ensure(&mut chain, &campus, quote).await.unwrap(), 0);
    // The shared table and ceil(100 / 24) = 5 groups.
    assert_eq!(tables.tables.len(), 1 + 100usize.div_ceil(METERS_PER_TABLE));
    assert_eq!(tables.tables[0].addresses, shared());
    for (position, table) in tables.tables.iter().enumerate().skip(1) {
        let members = campus
            .iter()
            .filter(|m| usize::from(m.index) / METERS_PER_TABLE + 1 == position)
            .count();
        assert_eq!(table.addresses.len(), 8 * members, "table {position}");
        // What the keeper uses is what the chain holds.
        let on_chain = keeper::table::CampusTable::load(&mut chain, table.address.unwrap())
            .await
            .unwrap();
        assert_eq!(on_chain.addresses, table.addresses);
    }
    // A transaction names only its tables: meters 3 (group 1) and 30 (group 2), and the
    // oracle's configuration (shared).
    let ix =
        oracle_ix::submit_readings(Pubkey::new_unique(), 1, &[campus[3].lfdi, campus[30].lfdi]);
    let used: Vec<Pubkey> = tables
        .for_instructions(&[ix])
        .iter()
        .map(|t| t.key)
        .collect();
    let expected: Vec<Pubkey> = [0, 1, 2]
        .iter()
        .map(|&p| tables.tables[p].address.unwrap())
        .collect();
    assert_eq!(used, expected);
    // Group 1's buildings change hands, 8 at a time (5 new addresses each): the table grows
    // from 192 to 232; the next 40 would pass 256, so it is rebuilt with what the group
    // needs now (192), the old one retired; then it grows again.
    let before = tables.tables[1].address;
    let mut sizes = Vec::new();
    for round in 0..3 {
        for m in campus.iter_mut().skip(8 * round).take(8) {
            m.owner = Pubkey::new_unique();
        }
        assert_eq!(tables.ensure(&mut chain, &campus, quote).await.unwrap(), 0);
        sizes.push(tables.tables[1].addresses.len());
    }
    assert_eq!(sizes, vec![232, 192, 232]);
    assert!(sizes.iter().all(|&n| n <= TABLE_CAPACITY));
    assert_ne!(tables.tables[1].address, before);
    assert_eq!(tables.retired, vec![before.unwrap()]);
    let group: Vec<Pubkey> = campus[..METERS_PER_TABLE]
        .iter()
        .flat_map(|m| {
            [
                registry_ix::meter_address(&m.lfdi),
                token_ix::ata(&m.owner, &token_ix::grid_mint()),
            ]
        })
        .collect();
    assert!(group.iter().all(|a| tables.tables[1].addresses.contains(a)));
    // The other groups were not touched.
    let unchanged = tables.tables[2].address;
    assert_eq!(tables.ensure(&mut chain, &campus, quote).await.unwrap(), 0);
    assert_eq!(tables.tables[2].address, unchanged);

    // The retired table's rent comes back: deactivated on the next pass, closed once it
    // has cooled down, then forgotten.
    let retired = before.unwrap();
    let payer = sdk::chain::Chain::payer_key(&chain);
    let rent = sdk::chain::Chain::account(&mut chain, retired)
        .await
        .unwrap()
        .unwrap()
        .lamports;
    let first = tables.reclaim(&mut chain).await.unwrap();
    assert_eq!(first, keeper::table::Reclaimed::default());
    assert_eq!(tables.retired, vec![retired]);
    chain.skip_slots(100).await.unwrap();
    // Too early to close: nothing sent, nothing forgotten.
    assert_eq!(tables.reclaim(&mut chain).await.unwrap().closed, 0);
    assert_eq!(tables.retired, vec![retired]);
    // Closed once the deactivation slot has left SlotHashes (512 slots of it; here each
    // slot is a warp, which adds one).
    for _ in 0..512 {
        chain.skip_slots(1).await.unwrap();
    }
    let balance = |a: Option<solana_account::Account>| a.map_or(0, |a| a.lamports);
    let before_close = balance(sdk::chain::Chain::account(&mut chain, payer).await.unwrap());
    let closed = tables.reclaim(&mut chain).await.unwrap();
    assert_eq!(closed.closed, 1);
    assert_eq!(closed.lamports, rent);
    assert!(tables.retired.is_empty());
    assert!(sdk::chain::Chain::account(&mut chain, retired)
        .await
        .unwrap()
        .is_none());
    let after_close = balance(sdk::chain::Chain::account(&mut chain, payer).await.unwrap());
    // The rent back, less the transaction's fee.
    assert!(
        after_close > before_close && after_close <= before_close + rent,
        "{before_close} -> {after_close}"
    );
    // The live tables still serve.
    for table in &tables.tables {
        assert!(
            sdk::chain::Chain::account(&mut chain, table.address.unwrap())
                .await
                .unwrap()
                .is_some()
        );
    }
}

#[tokio::test]
async fn a_table_whose_extend_fails_is_read_again_from_the_chain() {
    let mut chain = EmbeddedChain::start().await;
    let quote = Some(Pubkey::new_unique());
    let campus = meters(METERS_PER_TABLE);
    let mut tables = CampusTables::default();
    tables.ensure(&mut chain, &campus, quote).await.unwrap();
    let full = tables.tables[1].addresses.clone();
    // The keeper lost track of its extends (say, a crash before it saw them confirmed) and
    // then 10 more meters' worth of owners: extending would pass the table's capacity.
    tables.tables[1].addresses.truncate(8);
    let mut moved = campus.clone();
    for m in moved.iter_mut().take(10) {
        m.owner = Pubkey::new_unique();
    }
    let failed = tables.ensure(&mut chain, &moved, quote).await.unwrap();
    // The extend passed the capacity part way (the chain held 192, not 8): it failed, and
    // the table was read again: the keeper's view is the chain's.
    let on_chain = keeper::table::CampusTable::load(&mut chain, tables.tables[1].address.unwrap())
        .await
        .unwrap();
    assert_eq!(tables.tables[1].addresses, on_chain.addresses);
    assert_eq!(failed, 1);
    assert!(full.iter().all(|a| on_chain.addresses.contains(a)));
    // The next pass completes it (rebuilding if it is full).
    assert_eq!(tables.ensure(&mut chain, &moved, quote).await.unwrap(), 0);
    let wanted_owner = token_ix::ata(&moved[0].owner, &token_ix::grid_mint());
    assert!(tables.tables[1].addresses.contains(&wanted_owner));
}

#[tokio::test]
async fn forty_tables_are_built_in_one_pass_each_from_a_slot_of_its_own() {
    // (The embedded chain's SlotHashes holds one slot after each warp, so here the pass
    // waits a slot per table; a validator's holds 512 and the pass creates them together.)
    let mut chain = EmbeddedChain::start().await;
    let quote = Some(Pubkey::new_unique());
    let campus = meters(40 * METERS_PER_TABLE);
    let mut tables = CampusTables::default();
    assert_eq!(tables.ensure(&mut chain, &campus, quote).await.unwrap(), 0);
    assert_eq!(tables.tables.len(), 41);
    let addresses: std::collections::HashSet<Pubkey> =
        tables.tables.iter().map(|t| t.address.unwrap()).collect();
    assert_eq!(addresses.len(), 41, "every table has an address of its own");
    for table in &tables.tables[1..] {
        assert_eq!(table.addresses.len(), 8 * METERS_PER_TABLE);
        let on_chain = keeper::table::CampusTable::load(&mut chain, table.address.unwrap())
            .await
            .unwrap();
        assert_eq!(on_chain.addresses, table.addresses);
    }
    assert!(tables.retired.is_empty());
}
