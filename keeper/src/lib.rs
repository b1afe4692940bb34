//! GridTokenX keeper (arrives with its own issue).
