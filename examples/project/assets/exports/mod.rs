//! Files written for other systems.
pub mod files;
