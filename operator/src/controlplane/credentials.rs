//! How the control plane authenticates to nodes and what TLS it speaks: an ACL user (the
//! operator's own, least privilege) or the `default` user's password, and the CA (plus a client
//! certificate for mTLS) of the nodes' TLS Secret.
//!
//! A `fallback` password lets an operator upgraded onto a running cluster keep working: nodes
//! started before they had the operator's user in their ACL file refuse it, and are reached as
//! the `default` user until they are rolled.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, TlsCertificates};

use super::model::NodeAddr;

/// PEM material for TLS connections to the nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsMaterial {
    /// The CA the nodes' certificates chain to (`ca.crt`).
    pub ca_pem: Vec<u8>,
    /// A client certificate and key, presented when the nodes ask (`tls-auth-clients`).
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

/// Who the control plane is to the nodes.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Credentials {
    /// ACL user; `None`: the `default` user.
    pub user: Option<String>,
    pub password: Option<String>,
    /// The `default` user's password, tried when `user` is refused.
    pub fallback: Option<String>,
    pub tls: Option<TlsMaterial>,
}

impl Credentials {
    /// Only a `default`-user password (`requirepass`), no TLS: what local mode uses.
    pub fn password(password: Option<String>) -> Credentials {
        Credentials { password, ..Credentials::default() }
    }
}

/// Opens a multiplexed connection to `addr` as `user`/`password` (both optional), over TLS
/// when `tls` is given, every wait bounded by `timeout`.
pub async fn open(
    addr: &NodeAddr,
    timeout: Duration,
    user: Option<&str>,
    password: Option<&str>,
    tls: Option<&TlsMaterial>,
) -> redis::RedisResult<MultiplexedConnection> {
    let host = addr.hostname.as_deref().unwrap_or(&addr.ip);
    let auth = match (user, password) {
        (Some(u), Some(p)) => format!("{}:{}@", percent_encode(u), percent_encode(p)),
        (None, Some(p)) => format!(":{}@", percent_encode(p)),
        (Some(u), None) => format!("{}@", percent_encode(u)),
        (None, None) => String::new(),
    };
    let scheme = if tls.is_some() { "rediss" } else { "redis" };
    let url = format!("{scheme}://{auth}{host}:{}/", addr.port);
    let client = match tls {
        Some(t) => redis::Client::build_with_tls(
            url,
            TlsCertificates {
                client_tls: t.client.as_ref().map(|(cert, key)| redis::ClientTlsConfig {
                    client_cert: cert.clone(),
                    client_key: key.clone(),
                }),
                root_cert: Some(t.ca_pem.clone()),
            },
        )?,
        None => redis::Client::open(url)?,
    };
    let cfg = AsyncConnectionConfig::new().set_connection_timeout(timeout).set_response_timeout(timeout);
    client.get_multiplexed_async_connection_with_config(&cfg).await
}

/// Whether a connect failed because the node refused the credentials (rather than being
/// unreachable): then the fallback is worth a try.
pub fn refused(e: &redis::RedisError) -> bool {
    let text = e.to_string();
    ["WRONGPASS", "invalid username-password", "NOPERM", "AuthenticationFailed", "NOAUTH"]
        .iter()
        .any(|m| text.contains(m))
        || e.kind() == redis::ErrorKind::AuthenticationFailed
}

/// Percent-encodes a URL user-info part (`redis://user:password@host`).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
