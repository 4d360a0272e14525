//! Option values more than one command takes, mapped onto the library's.

use std::time::Duration;

use clap::ValueEnum;
use seglog::{Durability, Preallocate};

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum DurabilityArg {
    /// Acknowledge after each group's sync.
    Sync,
    /// Sync every 10 ms in the background.
    Periodic,
    /// Let the OS write back; one sync at the end.
    None,
}

#[derive(Clone, Copy, ValueEnum)]
pub(crate) enum PreallocateArg {
    /// fallocate(2): cheap to create.
    Fallocate,
    /// Write zeros ahead of the writer.
    ZeroFill,
}

impl DurabilityArg {
    pub(crate) fn to_option(self) -> Durability {
        match self {
            DurabilityArg::Sync => Durability::Sync,
            DurabilityArg::Periodic => Durability::Periodic(Duration::from_millis(10)),
            DurabilityArg::None => Durability::None,
        }
    }
}

impl PreallocateArg {
    pub(crate) fn to_option(self) -> Preallocate {
        match self {
            PreallocateArg::Fallocate => Preallocate::Fallocate,
            PreallocateArg::ZeroFill => Preallocate::ZeroFill,
        }
    }
}
