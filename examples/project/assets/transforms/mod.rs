//! Cleaning and validation.
pub mod cleaning;
