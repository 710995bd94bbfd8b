//! The security part of the `ShoalCluster` spec: TLS from a Secret (`spec.tls`) and ACL users
//! (`spec.users`). Apart from `crd.rs` because each carries its own validation rules, and the
//! code that acts on them (`security.rs`, `controlplane::users`) reads only these types.
//!
//! Passwords never appear in the resource: each user names a Secret key, as `spec.auth` does.
//! The rules a user writes are ACL rules without password tokens, checked by CEL so a password
//! cannot leak into the object (and into `kubectl get -o yaml`).

use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::crd::SecretKeyRef;

/// Users the operator reserves: its own (least privilege, see `security::OPERATOR_RULES`) and
/// the nodes' `default` user, which `spec.auth` controls.
pub const RESERVED_USERS: &[&str] = &["default", "shoal-operator"];

/// TLS for clients and for the links between nodes.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TlsSpec {
    /// A Secret of type `kubernetes.io/tls` with `tls.crt`, `tls.key` and `ca.crt`, as a
    /// cert-manager `Certificate` writes it. Its certificate must name the pods
    /// (`*.<cluster>-nodes.<namespace>.svc.cluster.local`) and the client Service. The nodes
    /// reload it when it changes, without a restart.
    pub secret_name: String,

    /// Client certificates: `no` (default), `yes` (required, mTLS) or `optional`
    /// (`tls-auth-clients`). The operator and the nodes present the Secret's own certificate.
    #[serde(default)]
    pub auth_clients: TlsAuthClients,

    /// Also listen for plaintext clients on this port (none by default: TLS only). Links
    /// between nodes always use TLS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub plaintext_port: Option<i32>,

    /// How often a node checks its certificate files for a change (`tls-auto-reload-interval`,
    /// seconds). The kubelet updates a mounted Secret within about a minute.
    #[serde(default = "reload_interval")]
    #[schemars(range(min = 1, max = 86400))]
    pub reload_interval_seconds: i32,
}

fn reload_interval() -> i32 {
    30
}

/// `tls-auth-clients`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TlsAuthClients {
    #[default]
    No,
    Yes,
    Optional,
}

impl TlsAuthClients {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsAuthClients::No => "no",
            TlsAuthClients::Yes => "yes",
            TlsAuthClients::Optional => "optional",
        }
    }
}

/// One ACL user, applied to every node at runtime (`ACL SETUSER`) and kept in the nodes'
/// `aclfile` for restarts.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!(self.name in ['default', 'shoal-operator'])")
    .message("users may not be named default (spec.auth sets it) or shoal-operator (the operator's own)"))]
#[x_kube(validation = Rule::new(
    "!self.rules.matches('(^| )([<>#!]|(nopass|resetpass|reset|on|off)( |$))')"
).message("rules may not hold passwords or on/off/reset tokens: the password comes from passwordSecretRef, enabled sets on/off"))]
pub struct UserSpec {
    /// The user name.
    #[schemars(length(min = 1, max = 128), regex(pattern = r"^[A-Za-z0-9._@-]+$"))]
    pub name: String,

    /// ACL rules, space separated, as `ACL SETUSER` takes them: commands and categories
    /// (`+@read -@dangerous +get`), keys (`~app:*`, `%R~ro:*`), channels (`&events:*`),
    /// selectors (`(~other:* +get)`).
    #[serde(default)]
    pub rules: String,

    /// The Secret key holding the password. Changing the Secret rotates the password on
    /// every node without a restart; connections already authenticated stay.
    pub password_secret_ref: SecretKeyRef,

    /// `false` turns the user off (new authentications fail) without deleting it.
    #[serde(default = "enabled")]
    pub enabled: bool,
}

fn enabled() -> bool {
    true
}
