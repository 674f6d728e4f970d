//! What servers sharing one database do to act as one registry: drop the
//! caches another server's change made stale ([`stale`]), and take turns at
//! background work ([`jobs`]). Single flight of fills across servers is the
//! remote cache's (`remote::lease`).

pub mod jobs;
pub mod stale;

/// This server's name among those sharing the database, as lease holders
/// are named: the process id and a random part, new at every start (a
/// restarted server does not inherit the leases of its former self).
pub fn node_id() -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("node-{}-{}", std::process::id(), &random[..12])
}
