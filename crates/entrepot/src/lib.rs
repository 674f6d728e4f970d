//! The `entrepot` server as a library: configuration, the application built
//! from it ([`app::App`]), the accept loop and `entrepot serve`, and the
//! maintenance commands run against a data directory. The binary
//! (`src/main.rs`) adds the CLI; integration tests build an [`app::App`] and
//! drive its router in-process.

pub mod admin;
pub mod app;
pub mod bootstrap;
pub mod config;
pub mod connections;
pub mod data_dir_lock;
pub mod serve;
pub mod tls;
