//! The process kubelet: the simulator's one node and its default scheduler.
//!
//! It watches pods through the API store like any other client, binds them to the
//! node, runs their containers as isolated processes through [`crate::sim::runtime`]
//! and writes back status and Events as a real kubelet would. It never touches the
//! HTTP layer and the store knows nothing of processes.

mod config;
mod env;
mod expand;
mod image;
mod quantity;
mod schedule;
mod status;
mod transitions;
mod volumes;

pub use config::{Config, Error as ConfigError, Node};
pub use env::Objects;
