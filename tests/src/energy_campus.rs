//! A campus whose meters produce verified energy: registry, oracle (one attestor), energy
//! token, each meter's oracle state and ledger, and each owner's GRID and REC accounts.
//! What the energy-token and trading tests start from.
use anchor_lang::prelude::Pubkey;
use oracle::attestation::Reading;
use oracle::MeterState;
use registry::identity::Lfdi;
use solana_keypair::Keypair;
use solana_signer::Signer;

use crate::energy_token_ix as token_ix;
use crate::registry_ix::test_lfdi;
use crate::{fixtures, oracle_ix, TestEnv};

pub struct EnergyCampus {
    pub env: TestEnv,
    pub attestor: Keypair,
    pub lfdis: Vec<Lfdi>,
    pub owners: Vec<Keypair>,
    /// Each meter's cumulative registers (import, export) as last reported.
    pub registers: Vec<(u64, u64)>,
    /// The last batch sequence submitted.
    pub sequence: u64,
}

impl EnergyCampus {
    pub async fn new(n: u8) -> EnergyCampus {
        let mut env = TestEnv::start().await;
        fixtures::campus(&mut env).await;
        let lfdis: Vec<Lfdi> = (0..n).map(test_lfdi).collect();
        let mut owners = Vec::new();
        for lfdi in &lfdis {
            owners.push(fixtures::meter(&mut env, *lfdi).await);
        }
        let attestor = Keypair::new();
        let payer = env.payer();
        env.send(
            &[oracle_ix::initialize_oracle(
                payer,
                vec![attestor.pubkey()],
                1,
            )],
            &[],
        )
        .await
        .expect("initialize oracle");
        env.send(&[token_ix::initialize(payer)], &[])
            .await
            .expect("initialize energy token");
        for (lfdi, owner) in lfdis.iter().zip(&owners) {
            env.send(
                &[
                    oracle_ix::init_meter_state(payer, lfdi),
                    token_ix::init_ledger(payer, lfdi),
                    token_ix::create_ata(&payer, &owner.pubkey(), &token_ix::grid_mint()),
                    token_ix::create_ata(&payer, &owner.pubkey(), &token_ix::rec_mint()),
                ],
                &[],
            )
            .await
            .expect("meter accounts");
        }
        let registers = vec![(1_000_000, 2_000_000); lfdis.len()];
        let mut campus = EnergyCampus {
            env,
            attestor,
            lfdis,
            owners,
            registers,
            sequence: 0,
        };
        // Baselines for every meter.
        let all: Vec<(usize, u64, u64)> = (0..campus.lfdis.len()).map(|i| (i, 0, 0)).collect();
        campus.report(&all).await;
        campus
    }

    pub fn owner(&self, i: usize) -> Pubkey {
        self.owners[i].pubkey()
    }

    /// `(lfdi, owner)` of meters `indices`, as `mint_generation` and `issue_rec` take them.
    pub fn meters(&self, indices: &[usize]) -> Vec<(Lfdi, Pubkey)> {
        indices
            .iter()
            .map(|&i| (self.lfdis[i], self.owner(i)))
            .collect()
    }

    /// Moves the clock on by 15 minutes and reports, for each `(meter, import, export)`,
    /// that much more imported and exported energy in attested batches (of 10 readings:
    /// each a legacy transaction). Deltas within capacity are verified by the oracle (a
    /// 15-minute export of up to 17,875 Wh with the test capacity).
    pub async fn report(&mut self, deltas: &[(usize, u64, u64)]) {
        self.env.advance_clock(900).await;
        for chunk in deltas.chunks(10) {
            self.report_batch(chunk).await;
        }
    }

    async fn report_batch(&mut self, deltas: &[(usize, u64, u64)]) {
        let now = self.env.now().await as u32;
        let mut readings = Vec::new();
        let mut lfdis = Vec::new();
        for &(i, import, export) in deltas {
            let (ri, re) = &mut self.registers[i];
            *ri += import;
            *re += export;
            readings.push(Reading {
                timestamp: now,
                import_wh: *ri,
                export_wh: *re,
                quality: 0,
            });
            lfdis.push(self.lfdis[i]);
        }
        self.sequence += 1;
        let payer = self.env.payer();
        let ixs =
            oracle_ix::attested_batch(payer, self.sequence, &readings, &lfdis, &[&self.attestor]);
        self.env.send(&ixs, &[]).await.expect("oracle batch");
    }

    pub async fn state(&mut self, i: usize) -> MeterState {
        let lfdi = self.lfdis[i];
        self.env
            .zero_copy(oracle_ix::meter_state_address(&lfdi))
            .await
    }

    pub async fn ledger(&mut self, i: usize) -> energy_token::MeterLedger {
        let lfdi = self.lfdis[i];
        self.env.zero_copy(token_ix::ledger_address(&lfdi)).await
    }

    pub async fn grid_balance(&mut self, i: usize) -> u64 {
        let owner = self.owner(i);
        self.env
            .token_balance(token_ix::ata(&owner, &token_ix::grid_mint()))
            .await
    }

    pub async fn rec_balance(&mut self, i: usize) -> u64 {
        let owner = self.owner(i);
        self.env
            .token_balance(token_ix::ata(&owner, &token_ix::rec_mint()))
            .await
    }

    pub async fn grid_supply(&mut self) -> u64 {
        self.env.mint_info(token_ix::grid_mint()).await.supply
    }
}
