//! Time for the services: the domain's [`Clock`] and its implementations,
//! so that services and stores format "now" the same way.

pub use entrepot_domain::clock::{now_rfc3339, now_unix, rfc3339, Clock, ManualClock, SystemClock};
