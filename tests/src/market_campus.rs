//! A campus with a market: the energy campus (registry, oracle, energy token), a quote
//! token (6 decimals, like a campus stablecoin) every owner holds, the market, and a seat
//! per owner (seat `i` is meter `i`'s owner). What the trading tests start from.
use anchor_lang::prelude::Pubkey;
use solana_keypair::Keypair;
use solana_signer::Signer;
use trading::{IntervalBook, Market, MarketParams, Side, ORDER_OPEN, SIDE_BUY};

use crate::energy_campus::EnergyCampus;
use crate::energy_token_ix as token_ix;
use crate::trading_ix;

/// Quote tokens each owner starts with (base units: 10,000 tokens at 6 decimals).
pub const QUOTE_FUNDS: u64 = 10_000_000_000;

pub fn default_params() -> MarketParams {
    MarketParams {
        interval_s: 900,
        price_tick: 1_000,
        min_price: 1_000,
        max_price: 1_000_000,
        fee_bps: 50,
        max_orders: 128,
        min_quantity_wh: 1,
    }
}

pub struct MarketCampus {
    pub c: EnergyCampus,
    pub quote_mint: Pubkey,
    pub start_time: i64,
}

impl MarketCampus {
    /// `n` meters; meters listed in `sellers` exported and minted `grid` Wh each.
    pub async fn new(n: u8, sellers: &[usize], grid: u64) -> MarketCampus {
        let mut c = EnergyCampus::new(n).await;
        let payer = c.env.payer();
        // The quote mint, its authority the payer.
        let mint = Keypair::new();
        let rent = 1_461_600;
        let create = anchor_lang::solana_program::system_instruction::create_account(
            &payer,
            &mint.pubkey(),
            rent,
            82,
            &anchor_spl::token::ID,
        );
        let init = spl_token_interface::instruction::initialize_mint2(
            &anchor_spl::token::ID,
            &mint.pubkey(),
            &payer,
            None,
            6,
        )
        .unwrap();
        c.env.send(&[create, init], &[&mint]).await.unwrap();
        let quote_mint = mint.pubkey();
        for i in 0..usize::from(n) {
            let owner = c.owner(i);
            let ata = token_ix::ata(&owner, &quote_mint);
            let fund = spl_token_interface::instruction::mint_to(
                &anchor_spl::token::ID,
                &quote_mint,
                &ata,
                &payer,
                &[],
                QUOTE_FUNDS,
            )
            .unwrap();
            c.env
                .send(
                    &[token_ix::create_ata(&payer, &owner, &quote_mint), fund],
                    &[],
                )
                .await
                .unwrap();
        }
        // Sellers' GRID: verified export, minted.
        let mut left = grid;
        while left > 0 {
            let step = left.min(17_000);
            let deltas: Vec<(usize, u64, u64)> = sellers.iter().map(|&i| (i, 0, step)).collect();
            c.report(&deltas).await;
            left -= step;
        }
        // Legacy transactions (no lookup table): five meters each.
        for chunk in sellers.chunks(5) {
            let ix = token_ix::mint_generation(&c.meters(chunk));
            c.env.send(&[ix], &[]).await.unwrap();
        }
        let now = c.env.now().await;
        let start_time = now - now % 900;
        c.env
            .send(
                &[trading_ix::initialize_market(
                    payer,
                    quote_mint,
                    default_params(),
                    start_time,
                )],
                &[],
            )
            .await
            .unwrap();
        for i in 0..usize::from(n) {
            let owner = c.owners[i].insecure_clone();
            let lfdi = c.lfdis[i];
            c.env
                .send(&[trading_ix::claim_seat(owner.pubkey(), &lfdi)], &[&owner])
                .await
                .unwrap();
        }
        MarketCampus {
            c,
            quote_mint,
            start_time,
        }
    }

    pub async fn market(&mut self) -> Market {
        self.c.env.zero_copy(trading_ix::market_address()).await
    }

    pub async fn book(&mut self, interval: u64) -> IntervalBook {
        self.c
            .env
            .zero_copy(trading_ix::book_address(interval))
            .await
    }

    pub async fn interval(&mut self) -> u64 {
        let now = self.c.env.now().await;
        ((now - self.start_time) / 900) as u64
    }

    /// Moves the clock to the start of the next interval.
    pub async fn next_interval(&mut self) {
        let now = self.c.env.now().await;
        let into = (now - self.start_time) % 900;
        self.c.env.advance_clock(900 - into).await;
    }

    pub fn place(
        &self,
        i: usize,
        interval: u64,
        side: Side,
        quantity: u64,
        price: u64,
    ) -> solana_instruction::Instruction {
        trading_ix::place_order(
            self.c.owner(i),
            &self.quote_mint,
            i as u16,
            interval,
            side,
            quantity,
            price,
        )
    }

    /// Places an order of meter `i`'s owner; panics if refused.
    pub async fn order(&mut self, i: usize, interval: u64, side: Side, quantity: u64, price: u64) {
        let ix = self.place(i, interval, side, quantity, price);
        let owner = self.c.owners[i].insecure_clone();
        self.c.env.send(&[ix], &[&owner]).await.unwrap();
    }

    pub async fn quote_balance(&mut self, i: usize) -> u64 {
        let owner = self.c.owner(i);
        self.c
            .env
            .token_balance(token_ix::ata(&owner, &self.quote_mint))
            .await
    }

    /// The vaults hold exactly the seats' balances, the open orders' escrow and the fees;
    /// panics (with the figures) if not. `books` are the intervals with orders.
    pub async fn assert_conserved(&mut self, books: &[u64]) {
        let market = self.market().await;
        let (mut base_owed, mut quote_owed) = (0u128, u128::from(market.fees));
        for seat in market.seats() {
            base_owed += u128::from(seat.base);
            quote_owed += u128::from(seat.quote);
        }
        for &k in books {
            if !self.c.env.account_exists(trading_ix::book_address(k)).await {
                continue;
            }
            let book = self.book(k).await;
            for o in book.orders().iter().filter(|o| o.status == ORDER_OPEN) {
                if o.side == SIDE_BUY {
                    quote_owed += u128::from(o.escrow);
                } else {
                    base_owed += u128::from(o.escrow);
                }
            }
        }
        let base = self.c.env.token_balance(trading_ix::base_vault()).await;
        let quote = self.c.env.token_balance(trading_ix::quote_vault()).await;
        assert_eq!(
            u128::from(base),
            base_owed,
            "GRID vault vs seats + open sells"
        );
        assert_eq!(
            u128::from(quote),
            quote_owed,
            "quote vault vs seats + open buys + fees"
        );
    }
}
