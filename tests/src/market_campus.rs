//! A campus with a market: the energy campus (registry, oracle, energy token), a quote
//! token (6 decimals, like a campus stablecoin) every owner holds, and the market. Keeps
//! track of the orders it placed (the program test's bank cannot list accounts) so that the
//! tests can settle them and check that the vaults hold exactly what is owed. What the
//! trading tests start from.
use std::collections::BTreeSet;

use anchor_lang::prelude::Pubkey;
use solana_keypair::Keypair;
use solana_program_test::BanksClientError;
use solana_signer::Signer;
use trading::{Balance, IntervalBook, Market, MarketParams, Order, Side};

use crate::energy_campus::EnergyCampus;
use crate::energy_token_ix as token_ix;
use crate::trading_ix;

/// Quote tokens each owner starts with (base units: 10,000 tokens at 6 decimals).
pub const QUOTE_FUNDS: u64 = 10_000_000_000;

/// 15-minute intervals, gate at the start, 4 intervals ahead; prices 0.001 to 0.512 per kWh
/// in steps of 0.001; a 0.5 % fee; orders from 1 Wh.
pub fn default_params() -> MarketParams {
    MarketParams {
        interval_s: 900,
        price_tick: 1_000,
        min_price: 1_000,
        ticks: 512,
        fee_bps: 50,
        min_quantity_wh: 1,
        gate_lead_s: 0,
        horizon: 4,
    }
}

/// An order the tests placed and that is neither cancelled nor settled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placed {
    pub interval: u64,
    pub meter: usize,
    pub side: Side,
    /// Who placed it (its escrow, fills and refunds are theirs).
    pub owner: Pubkey,
}

impl Placed {
    pub fn address(&self, lfdi: &registry::identity::Lfdi) -> Pubkey {
        trading_ix::order_address(self.interval, lfdi, self.side)
    }
}

pub struct MarketCampus {
    pub c: EnergyCampus,
    pub quote_mint: Pubkey,
    pub start_time: i64,
    pub orders: Vec<Placed>,
    /// Everyone who ever placed an order (and so has a balance account).
    pub traders: BTreeSet<Pubkey>,
    /// Every interval a book was opened for.
    pub intervals: BTreeSet<u64>,
}

/// Creates a 6-decimal mint whose authority is the payer.
async fn quote_mint(c: &mut EnergyCampus) -> Pubkey {
    let payer = c.env.payer();
    let mint = Keypair::new();
    let create = anchor_lang::solana_program::system_instruction::create_account(
        &payer,
        &mint.pubkey(),
        1_461_600,
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
    mint.pubkey()
}

impl MarketCampus {
    /// `n` meters; meters listed in `sellers` exported and minted `grid` Wh each.
    pub async fn new(n: u8, sellers: &[usize], grid: u64) -> MarketCampus {
        Self::with_params(n, sellers, grid, default_params()).await
    }

    pub async fn with_params(
        n: u8,
        sellers: &[usize],
        grid: u64,
        params: MarketParams,
    ) -> MarketCampus {
        let mut c = EnergyCampus::new(n).await;
        let payer = c.env.payer();
        let quote_mint = quote_mint(&mut c).await;
        for i in 0..usize::from(n) {
            let owner = c.owner(i);
            c.env
                .send(
                    &[
                        token_ix::create_ata(&payer, &owner, &quote_mint),
                        mint_to(&quote_mint, &token_ix::ata(&owner, &quote_mint), &payer),
                    ],
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
        // Ten intervals before the current one (so that tests can name earlier intervals).
        let now = c.env.now().await;
        let interval_s = i64::from(params.interval_s);
        let start_time = now - now % interval_s - 10 * interval_s;
        c.env
            .send(
                &[trading_ix::initialize_market(
                    payer, quote_mint, params, start_time,
                )],
                &[],
            )
            .await
            .unwrap();
        MarketCampus {
            c,
            quote_mint,
            start_time,
            orders: Vec::new(),
            traders: BTreeSet::new(),
            intervals: BTreeSet::new(),
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

    pub async fn balance(&mut self, owner: &Pubkey) -> Balance {
        self.c
            .env
            .zero_copy(trading_ix::balance_address(owner))
            .await
    }

    pub async fn order_account(&mut self, interval: u64, meter: usize, side: Side) -> Order {
        let address = trading_ix::order_address(interval, &self.c.lfdis[meter], side);
        self.c.env.zero_copy(address).await
    }

    /// The interval open now.
    pub async fn interval(&mut self) -> u64 {
        let now = self.c.env.now().await;
        self.market().await.interval_at(now)
    }

    /// The next interval whose gate is open: where orders go.
    pub async fn trading_interval(&mut self) -> u64 {
        let now = self.c.env.now().await;
        let market = self.market().await;
        let mut k = market.interval_at(now);
        while market.gate(k).unwrap() <= now {
            k += 1;
        }
        k
    }

    /// Moves the clock to the start of the next interval.
    pub async fn next_interval(&mut self) {
        let now = self.c.env.now().await;
        let interval_s = i64::from(self.market().await.interval_s);
        let into = (now - self.start_time) % interval_s;
        self.c.env.advance_clock(interval_s - into).await;
    }

    /// Moves the clock to the moment interval `k`'s gate closes (if it is still open).
    pub async fn close_gate(&mut self, k: u64) {
        let gate = self.market().await.gate(k).unwrap();
        let now = self.c.env.now().await;
        if gate > now {
            self.c.env.advance_clock(gate - now).await;
        }
    }

    /// Opens interval `k`'s book (paid by the payer) unless it is open.
    pub async fn open(&mut self, k: u64) {
        if !self.c.env.account_exists(trading_ix::book_address(k)).await {
            let payer = self.c.env.payer();
            self.c
                .env
                .send(&[trading_ix::open_interval(payer, k)], &[])
                .await
                .unwrap();
        }
        self.intervals.insert(k);
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
            &self.c.lfdis[i],
            interval,
            side,
            quantity,
            price,
        )
    }

    /// Meter `i`'s owner places (or replaces) its order; the book is opened first if need be.
    pub async fn try_order(
        &mut self,
        i: usize,
        interval: u64,
        side: Side,
        quantity: u64,
        price: u64,
    ) -> Result<(), BanksClientError> {
        self.open(interval).await;
        let ix = self.place(i, interval, side, quantity, price);
        let owner = self.c.owners[i].insecure_clone();
        self.c.env.send(&[ix], &[&owner]).await?;
        let placed = Placed {
            interval,
            meter: i,
            side,
            owner: owner.pubkey(),
        };
        if !self.orders.contains(&placed) {
            self.orders.push(placed);
        }
        self.traders.insert(owner.pubkey());
        Ok(())
    }

    /// `try_order`; panics if refused.
    pub async fn order(&mut self, i: usize, interval: u64, side: Side, quantity: u64, price: u64) {
        self.try_order(i, interval, side, quantity, price)
            .await
            .unwrap_or_else(|e| panic!("order of meter {i}: {e:?}"));
    }

    /// The owner of meter `i` cancels its order on `side` of `interval`.
    pub async fn cancel(
        &mut self,
        i: usize,
        interval: u64,
        side: Side,
    ) -> Result<(), BanksClientError> {
        let owner = self.c.owners[i].insecure_clone();
        let ix = trading_ix::cancel_order(
            owner.pubkey(),
            &self.quote_mint,
            &self.c.lfdis[i],
            interval,
            side,
        );
        self.c.env.send(&[ix], &[&owner]).await?;
        self.orders
            .retain(|o| !(o.interval == interval && o.meter == i && o.side == side));
        Ok(())
    }

    pub async fn clear(&mut self, interval: u64) -> Result<(), BanksClientError> {
        self.c
            .env
            .send(&[trading_ix::clear_interval(interval)], &[])
            .await
    }

    /// Settles every recorded order of `interval` (12 per transaction).
    pub async fn settle(&mut self, interval: u64) {
        let due: Vec<Placed> = self
            .orders
            .iter()
            .filter(|o| o.interval == interval)
            .copied()
            .collect();
        for chunk in due.chunks(12) {
            let pairs: Vec<(Pubkey, Pubkey)> = chunk
                .iter()
                .map(|o| (o.address(&self.c.lfdis[o.meter]), o.owner))
                .collect();
            self.c
                .env
                .send(&[trading_ix::settle_orders(interval, &pairs)], &[])
                .await
                .unwrap();
        }
        self.orders.retain(|o| o.interval != interval);
    }

    /// Closes and clears interval `k` at its gate, and settles its orders.
    pub async fn run_interval(&mut self, k: u64) {
        self.close_gate(k).await;
        let next_clear = self.market().await.next_clear;
        for j in next_clear..=k {
            self.clear(j).await.unwrap();
        }
        self.settle(k).await;
    }

    pub async fn quote_balance(&mut self, i: usize) -> u64 {
        let owner = self.c.owner(i);
        self.c
            .env
            .token_balance(token_ix::ata(&owner, &self.quote_mint))
            .await
    }

    pub async fn grid_balance(&mut self, i: usize) -> u64 {
        self.c.grid_balance(i).await
    }

    /// The vaults hold exactly what the market owes: open orders' escrow, claimable
    /// balances, fees and dust, and the rounding of books not yet closed (what their
    /// settled orders put in minus what they took out); panics (with the figures) if not.
    pub async fn assert_conserved(&mut self) {
        let market = self.market().await;
        let (mut base_owed, mut quote_owed) = (i128::from(market.dust_wh), i128::from(market.fees));
        for o in self.orders.clone() {
            let order = self.order_account(o.interval, o.meter, o.side).await;
            match o.side {
                Side::Buy => quote_owed += i128::from(order.escrow),
                Side::Sell => base_owed += i128::from(order.escrow),
            }
        }
        for owner in self.traders.clone() {
            let balance = self.balance(&owner).await;
            base_owed += i128::from(balance.base);
            quote_owed += i128::from(balance.quote);
        }
        for k in self.intervals.clone() {
            if !self.c.env.account_exists(trading_ix::book_address(k)).await {
                continue;
            }
            let book = self.book(k).await;
            base_owed += i128::from(book.base_in) - i128::from(book.base_out);
            quote_owed += i128::from(book.quote_in) - i128::from(book.quote_out);
        }
        let base = self.c.env.token_balance(trading_ix::base_vault()).await;
        let quote = self.c.env.token_balance(trading_ix::quote_vault()).await;
        assert_eq!(
            i128::from(base),
            base_owed,
            "GRID vault vs open sells + balances + dust + open books' rounding"
        );
        assert_eq!(
            i128::from(quote),
            quote_owed,
            "quote vault vs open buys + balances + fees + open books' rounding"
        );
    }
}

fn mint_to(mint: &Pubkey, to: &Pubkey, authority: &Pubkey) -> solana_instruction::Instruction {
    spl_token_interface::instruction::mint_to(
        &anchor_spl::token::ID,
        mint,
        to,
        authority,
        &[],
        QUOTE_FUNDS,
    )
    .unwrap()
}
