//! GridTokenX bridge: the IEEE 2030.5 server beside the campus meters (arrives with its
//! issue), and the campus meter simulator.
pub mod sim;
