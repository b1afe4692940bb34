//! GridTokenX bridge: the IEEE 2030.5 server beside the campus meters (arrives with its
//! issue), and the campus meter simulator.
pub mod directory;
pub mod normalize;
pub mod sim;
pub mod store;
pub mod tls;
pub mod xml;
