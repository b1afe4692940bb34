//! GridTokenX IEEE 2030.5 bridge (arrives with its own issue).
