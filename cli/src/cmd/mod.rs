//! One module per subcommand.

pub mod bench;
pub mod consume;
pub mod demo;
pub mod describe;
pub mod dump;
pub mod groups;
pub mod produce;
pub mod topics;
pub mod verify;
