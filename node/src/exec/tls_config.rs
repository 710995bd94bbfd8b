//! Applies the `tls-*` directives: builds the rustls configs (`net::tls`) and installs them,
//! the server side in the executor's state for the next accepted TLS connection, the client
//! side in the outgoing connector (`net::dial`). Runs at start-up and on every CONFIG SET of
//! a `tls-*` directive, which is how certificates are rotated without a restart: new
//! handshakes use the new files, established connections keep their sessions.

use super::server::Server;
use crate::net::tls::{self, TlsError};

/// Re-reads the TLS files and installs the result; on error nothing changes.
pub fn install(srv: &mut Server) -> Result<(), TlsError> {
    // What the files look like before they are read: `auto_reload` compares with this, so a
    // change made after this point is picked up at its next check.
    let seen = signature(srv);
    let built = tls::build(&srv.config)?;
    srv.tls_reload.seen = Some(seen);
    let cluster = srv.config.get_bool("tls-cluster");
    let replication = srv.config.get_bool("tls-replication");
    match built {
        Some(b) => {
            srv.tls = Some(b.server);
            crate::net::dial::configure(b.client, cluster, replication);
        }
        None => {
            srv.tls = None;
            crate::net::dial::configure(None, false, false);
        }
    }
    Ok(())
}

/// `tls-auto-reload-interval` (Valkey 9.1): every that many seconds the cron compares the
/// certificate, key and CA files' size and modification time with the last look, and on a
/// change re-installs them, as a CONFIG SET would. A Kubernetes Secret mounted whole is
/// swapped in place by the kubelet when cert-manager renews it; this picks it up without
/// anyone calling CONFIG SET. A file caught half-written fails to load, leaves the old
/// configuration in place, and is tried again at the next interval.
pub fn auto_reload(srv: &mut Server) {
    let every = srv.config.get_i64("tls-auto-reload-interval");
    if every <= 0 || srv.tls.is_none() {
        return;
    }
    let now = std::time::Instant::now();
    if srv.tls_reload.last.is_some_and(|t| now.duration_since(t).as_secs() < every as u64) {
        return;
    }
    srv.tls_reload.last = Some(now);
    if srv.tls_reload.seen.as_ref() == Some(&signature(srv)) {
        return;
    }
    match install(srv) {
        Ok(()) => {
            log::info!("TLS certificates changed on disk: reloaded");
            srv.stats.tls_reloads += 1;
        }
        Err(e) => log::warn!("TLS certificates changed on disk but do not load (kept the old ones): {e}"),
    }
}

/// Size and modification time of each TLS file in use.
fn signature(srv: &Server) -> Vec<Option<(u64, std::time::SystemTime)>> {
    const FILES: [&str; 5] =
        ["tls-cert-file", "tls-key-file", "tls-ca-cert-file", "tls-client-cert-file", "tls-client-key-file"];
    FILES
        .iter()
        .map(|d| srv.config.get(d).filter(|p| !p.is_empty()))
        .map(|p| p.and_then(|p| std::fs::metadata(p).ok()).and_then(|m| Some((m.len(), m.modified().ok()?))))
        .collect()
}

/// What `auto_reload` saw last.
#[derive(Debug, Default)]
pub struct AutoReload {
    last: Option<std::time::Instant>,
    seen: Option<Vec<Option<(u64, std::time::SystemTime)>>>,
}

/// True for a directive whose change means rebuilding the TLS configs.
pub fn is_tls_directive(name: &str) -> bool {
    name.starts_with("tls-")
        && !matches!(name, "tls-port" | "tls-handshake-timeout" | "tls-auto-reload-interval")
}
