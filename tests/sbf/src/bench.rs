//! The LiteSVM environment: the five programs deployed under the upgradeable loader (with
//! the payer as upgrade authority), a clock, lookup tables, and a table of results.
use std::path::Path;

use anchor_lang::prelude::Pubkey;
use litesvm::LiteSVM;
use solana_account::Account;
use solana_instruction::Instruction;
use solana_keypair::Keypair;
use solana_message::{v0, AddressLookupTableAccount, VersionedMessage};
use solana_signer::Signer;
use solana_transaction::versioned::VersionedTransaction;

pub const PROGRAMS: [(&str, Pubkey); 5] = [
    ("registry", registry::ID),
    ("oracle", oracle::ID),
    ("energy_token", energy_token::ID),
    ("trading", trading::ID),
    ("governance", governance::ID),
];

/// One measured transaction.
pub struct Row {
    pub flow: String,
    pub units: u64,
    /// What the units are divided by for the ceiling (readings, meters), and the ceiling
    /// per unit of it.
    pub per: u64,
    pub ceiling: Option<u64>,
}

impl Row {
    pub fn ok(&self) -> bool {
        self.ceiling
            .is_none_or(|c| self.units / self.per.max(1) <= c)
    }
}

pub struct Bench {
    pub svm: LiteSVM,
    pub payer: Keypair,
    pub rows: Vec<Row>,
}

/// The ProgramData metadata: enum tag 3, slot, Some(authority).
fn program_data_header(authority: &Pubkey) -> Vec<u8> {
    let mut out = Vec::with_capacity(45);
    out.extend_from_slice(&3u32.to_le_bytes());
    out.extend_from_slice(&0u64.to_le_bytes());
    out.push(1);
    out.extend_from_slice(authority.as_ref());
    out
}

impl Bench {
    pub fn load(dir: &Path) -> Result<Bench, String> {
        let mut svm = LiteSVM::new();
        let payer = Keypair::new();
        svm.airdrop(&payer.pubkey(), 100_000_000_000_000)
            .map_err(|e| format!("airdrop: {e:?}"))?;
        for (name, id) in PROGRAMS {
            let path = dir.join(format!("{name}.so"));
            svm.add_program_from_file(id, &path)
                .map_err(|e| format!("{}: {e:?}", path.display()))?;
            // Deployed by the payer: it is the upgrade authority the initialisers check.
            let data_address = sdk::ix::program_data_address(id);
            let mut account: Account = svm
                .get_account(&data_address)
                .ok_or_else(|| format!("{name}: no ProgramData"))?;
            let header = program_data_header(&payer.pubkey());
            account.data[..header.len()].copy_from_slice(&header);
            svm.set_account(data_address, account)
                .map_err(|e| format!("{name}: {e:?}"))?;
        }
        let mut bench = Bench {
            svm,
            payer,
            rows: Vec::new(),
        };
        bench.svm.warp_to_slot(100);
        bench.set_time(1_790_000_000);
        Ok(bench)
    }

    pub fn now(&self) -> i64 {
        self.svm.get_sysvar::<solana_clock::Clock>().unix_timestamp
    }

    pub fn set_time(&mut self, unix_timestamp: i64) {
        let mut clock = self.svm.get_sysvar::<solana_clock::Clock>();
        clock.unix_timestamp = unix_timestamp;
        self.svm.set_sysvar(&clock);
    }

    pub fn advance(&mut self, seconds: i64) {
        let t = self.now() + seconds;
        self.set_time(t);
    }

    pub fn fund(&mut self, key: &Pubkey) {
        self.svm.airdrop(key, 10_000_000_000).expect("airdrop");
    }

    /// A lookup table holding `addresses`, written straight into the ledger.
    pub fn lookup_table(&mut self, addresses: &[Pubkey]) -> AddressLookupTableAccount {
        use solana_address_lookup_table_interface::state::{AddressLookupTable, LookupTableMeta};
        let table = AddressLookupTable {
            meta: LookupTableMeta {
                deactivation_slot: u64::MAX,
                last_extended_slot: 1,
                last_extended_slot_start_index: 0,
                authority: Some(self.payer.pubkey()),
                _padding: 0,
            },
            addresses: addresses.to_vec().into(),
        };
        let data = table.serialize_for_tests().expect("lookup table");
        let key = Pubkey::new_unique();
        let account = Account {
            lamports: 1_000_000_000,
            data,
            owner: solana_address_lookup_table_interface::program::ID,
            executable: false,
            rent_epoch: 0,
        };
        self.svm.set_account(key, account).expect("lookup table");
        AddressLookupTableAccount {
            key,
            addresses: addresses.to_vec(),
        }
    }

    fn transaction(
        &mut self,
        ixs: &[Instruction],
        signers: &[&Keypair],
        tables: &[AddressLookupTableAccount],
    ) -> VersionedTransaction {
        self.svm.expire_blockhash();
        let message = v0::Message::try_compile(
            &self.payer.pubkey(),
            ixs,
            tables,
            self.svm.latest_blockhash(),
        )
        .expect("compile message");
        let mut all: Vec<&Keypair> = vec![&self.payer];
        all.extend_from_slice(signers);
        VersionedTransaction::try_new(VersionedMessage::V0(message), &all).expect("sign")
    }

    /// Sends a transaction that must succeed; returns its compute units.
    pub fn run(
        &mut self,
        label: &str,
        ixs: &[Instruction],
        signers: &[&Keypair],
        tables: &[AddressLookupTableAccount],
    ) -> Result<u64, String> {
        let tx = self.transaction(ixs, signers, tables);
        match self.svm.send_transaction(tx) {
            Ok(meta) => Ok(meta.compute_units_consumed),
            Err(failed) => Err(format!(
                "{label} failed: {:?}\n  {}",
                failed.err,
                failed.meta.logs.join("\n  ")
            )),
        }
    }

    /// Sends a transaction and records its compute units, with an optional ceiling per
    /// `per` (readings, meters, orders...).
    pub fn measure(
        &mut self,
        flow: &str,
        ixs: &[Instruction],
        signers: &[&Keypair],
        tables: &[AddressLookupTableAccount],
        per: u64,
        ceiling: Option<u64>,
    ) -> Result<u64, String> {
        let units = self.run(flow, ixs, signers, tables)?;
        self.rows.push(Row {
            flow: flow.to_string(),
            units,
            per,
            ceiling,
        });
        Ok(units)
    }

    /// Sends a transaction that must fail with custom error `code` (as natively), and
    /// records its compute units.
    pub fn expect_error(
        &mut self,
        flow: &str,
        ixs: &[Instruction],
        signers: &[&Keypair],
        tables: &[AddressLookupTableAccount],
        code: u32,
    ) -> Result<(), String> {
        let tx = self.transaction(ixs, signers, tables);
        match self.svm.send_transaction(tx) {
            Ok(_) => Err(format!("{flow}: succeeded, expected error {code}")),
            Err(failed) => {
                let got = format!("{:?}", failed.err);
                if got.ends_with(&format!("Custom({code}))")) {
                    self.rows.push(Row {
                        flow: format!("{flow} (refused: {code})"),
                        units: failed.meta.compute_units_consumed,
                        per: 1,
                        ceiling: None,
                    });
                    Ok(())
                } else {
                    Err(format!(
                        "{flow}: expected error {code}, got {got}\n  {}",
                        failed.meta.logs.join("\n  ")
                    ))
                }
            }
        }
    }

    /// Sends a transaction that must fail with the runtime's `InstructionError` named
    /// `error` (e.g. `PrivilegeEscalation`).
    pub fn expect_instruction_error(
        &mut self,
        flow: &str,
        ixs: &[Instruction],
        error: &str,
    ) -> Result<(), String> {
        let tx = self.transaction(ixs, &[], &[]);
        match self.svm.send_transaction(tx) {
            Ok(_) => Err(format!("{flow}: succeeded, expected {error}")),
            Err(failed) => {
                let got = format!("{:?}", failed.err);
                if got.contains(error) {
                    self.rows.push(Row {
                        flow: format!("{flow} (refused: {error})"),
                        units: failed.meta.compute_units_consumed,
                        per: 1,
                        ceiling: None,
                    });
                    Ok(())
                } else {
                    Err(format!("{flow}: expected {error}, got {got}"))
                }
            }
        }
    }

    /// Simulates a transaction and returns the return data it ended with.
    pub fn view(&mut self, label: &str, ixs: &[Instruction]) -> Result<Vec<u8>, String> {
        let tx = self.transaction(ixs, &[], &[]);
        match self.svm.simulate_transaction(tx) {
            Ok(sim) => Ok(sim.meta.return_data.data),
            Err(failed) => Err(format!("{label} failed: {:?}", failed.err)),
        }
    }

    pub fn print_table(&self) {
        println!(
            "{:<62} {:>10} {:>12} {:>10}",
            "flow", "CU", "CU per unit", "ceiling"
        );
        for row in &self.rows {
            let per = if row.per > 1 {
                format!("{}", row.units / row.per)
            } else {
                String::new()
            };
            let ceiling = row.ceiling.map(|c| c.to_string()).unwrap_or_default();
            let mark = if row.ok() { "" } else { "  !!" };
            println!(
                "{:<72} {:>8} {:>12} {:>10}{mark}",
                row.flow, row.units, per, ceiling
            );
        }
    }

    pub fn ceilings_hold(&self) -> bool {
        self.rows.iter().all(Row::ok)
    }
}
