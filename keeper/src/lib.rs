//! GridTokenX keeper: carries the bridge's attested readings and the market's cranks into
//! transactions. What it needs of a chain (`Chain`, sending with confirmation, JSON-RPC) is
//! the SDK's (`sdk::chain`, `sdk::rpc`); the tests and the demo give it the embedded chain
//! (`gridtokenx_tests::embedded`), which the keeper binary never links.
//!
//! - `bridge_api`: a client of the bridge's keeper interface (`keeper_protocol`);
//! - `table`: the keeper's address lookup table;
//! - `keeper`: one pass of work (`Keeper::tick`) and the operator's status;
//! - `config`: the binary's settings and the state it keeps between runs;
//! - `consistency`: bridge, chain and oracle checked against each other every pass;
//! - `flows`: buildings' IEEE 2030.5 flow reservations carried into delegated orders, and
//!   the market's clearings reported to the bridge (its tariff);
//! - `metrics`: Prometheus metrics and readiness (`/metrics`, `/ready`).
pub mod bridge_api;
pub mod config;
pub mod consistency;
pub mod flows;
pub mod governance;
pub mod keeper;
pub mod metrics;
pub mod table;

pub use keeper::{Keeper, Progress, Status};
