//! Applies the `tls-*` directives: builds the rustls configs (`net::tls`) and installs them,
//! the server side in the executor's state for the next accepted TLS connection, the client
//! side in the outgoing connector (`net::dial`). Runs at start-up and on every CONFIG SET of
//! a `tls-*` directive, which is how certificates are rotated without a restart: new
//! handshakes use the new files, established connections keep their sessions.

use super::server::Server;
use crate::net::tls::{self, TlsError};

/// Re-reads the TLS files and installs the result; on error nothing changes.
pub fn install(srv: &mut Server) -> Result<(), TlsError> {
    let built = tls::build(&srv.config)?;
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

/// True for a directive whose change means rebuilding the TLS configs.
pub fn is_tls_directive(name: &str) -> bool {
    name.starts_with("tls-") && name != "tls-port" && name != "tls-handshake-timeout"
}
