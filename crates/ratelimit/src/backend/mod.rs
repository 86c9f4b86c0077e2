//! Where GCRA state lives: in this process, or in Redis for a fleet.

pub mod memory;
#[cfg(feature = "redis")]
mod over_limit;
#[cfg(feature = "redis")]
pub mod redis;
