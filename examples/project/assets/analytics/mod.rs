//! Aggregates for reporting.
pub mod stats;
