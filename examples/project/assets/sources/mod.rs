//! Assets that read the outside world.
pub mod api;
