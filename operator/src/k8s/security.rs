//! What `spec.tls` and `spec.users` turn into: node directives, Secret volumes, the operator's
//! own ACL user, and the ACL file every node loads at start.
//!
//! **Users.** The operator resolves each user's password from its Secret and keeps two copies
//! in step: the `<cluster>-acl` Secret (an `aclfile` holding only SHA-256 hashes, mounted into
//! every pod, so a restarted node comes back with its users) and the nodes' live ACLs, set with
//! `ACL SETUSER` by `controlplane::users` so a rotation needs no restart. The operator
//! authenticates as `shoal-operator`, whose rules allow the commands the control plane sends and
//! nothing else; its password is generated once into `<cluster>-operator`.
//!
//! **TLS.** The Secret of `spec.tls` (cert-manager's `kubernetes.io/tls` layout) is mounted
//! whole, not by `subPath`, so the kubelet swaps the files in place when the certificate is
//! renewed; the nodes re-read them every `reloadIntervalSeconds` (`tls-auto-reload-interval`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Secret, SecretVolumeSource, Volume, VolumeMount};
use k8s_openapi::ByteString;
use kube::api::ObjectMeta;
use kube::ResourceExt;

use super::crd::{ShoalCluster, TlsSpec};

/// Where the `spec.tls` Secret is mounted.
pub const TLS_DIR: &str = "/etc/shoal/tls";
/// Where the ACL file Secret is mounted.
pub const ACL_DIR: &str = "/etc/shoal/acl";
/// The key (and file name) of the ACL file in its Secret.
pub const ACL_FILE: &str = "users.acl";
/// The operator's own user.
pub const OPERATOR_USER: &str = "shoal-operator";
/// Its rules: the commands `controlplane::client` sends, no keys, no channels. `ACL SETUSER`
/// is needed to apply `spec.users`; `CONFIG SET` to change `io-threads`.
pub const OPERATOR_RULES: &str = "resetkeys resetchannels -@all +ping +hello +auth +info \
     +cluster|myid +cluster|myshardid +cluster|info +cluster|shards +cluster|gettopology \
     +cluster|settopology +cluster|migrateslots +cluster|getslotmigrations \
     +cluster|cancelslotmigrations +config|get +config|set +client|pause +client|unpause \
     +acl|setuser +acl|deluser +acl|users";
/// The key of the operator's password in `<cluster>-operator`.
pub const OPERATOR_PASSWORD_KEY: &str = "password";

/// The Secret names the operator manages for a cluster.
pub fn acl_secret_name(sc: &ShoalCluster) -> String {
    format!("{}-acl", sc.name_any())
}

pub fn operator_secret_name(sc: &ShoalCluster) -> String {
    format!("{}-operator", sc.name_any())
}

/// A user with its password read from its Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedUser {
    pub name: String,
    pub enabled: bool,
    /// `None`: `nopass` (only the `default` user of a cluster without `spec.auth`).
    pub password: Option<String>,
    /// Rule tokens, as `ACL SETUSER` takes them (one argument each).
    pub rules: Vec<String>,
}

impl ResolvedUser {
    /// The operator's own user.
    pub fn operator(password: &str) -> ResolvedUser {
        ResolvedUser {
            name: OPERATOR_USER.into(),
            enabled: true,
            password: Some(password.into()),
            rules: split_rules(OPERATOR_RULES),
        }
    }

    /// The `default` user as `spec.auth` makes it (`requirepass`). It must be in the ACL file:
    /// loading a file without it would reset `default` to `nopass`, as in Valkey.
    pub fn default_user(password: Option<&str>) -> ResolvedUser {
        ResolvedUser {
            name: "default".into(),
            enabled: true,
            password: password.map(str::to_string),
            rules: split_rules("~* &* +@all"),
        }
    }

    /// The arguments after `ACL SETUSER <name>`: everything reset first, so a rule removed
    /// from the spec is gone from the node too; the password as its hash.
    pub fn setuser_args(&self) -> Vec<String> {
        let mut args = vec!["reset".to_string(), if self.enabled { "on" } else { "off" }.to_string()];
        args.push(match &self.password {
            Some(p) => format!("#{}", sha256_hex(p.as_bytes())),
            None => "nopass".into(),
        });
        args.extend(self.rules.iter().cloned());
        args
    }

    /// The user's line in the ACL file (`user <name> <rules>`).
    pub fn acl_line(&self) -> String {
        let rules: Vec<String> = self.setuser_args().into_iter().filter(|a| a != "reset").collect();
        format!("user {} {}", self.name, rules.join(" "))
    }
}

/// Splits rules on spaces, keeping a selector `( ... )` in one token as `ACL SETUSER` wants it.
pub fn split_rules(rules: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut selector: Option<String> = None;
    for t in rules.split_whitespace() {
        match selector.as_mut() {
            Some(s) => {
                s.push(' ');
                s.push_str(t);
                if t.ends_with(')') {
                    out.extend(selector.take());
                }
            }
            None if t.starts_with('(') && !t.ends_with(')') => selector = Some(t.to_string()),
            None => out.push(t.to_string()),
        }
    }
    out.extend(selector);
    out
}

/// The ACL file: `users` in order (the caller puts `default` and the operator's user first).
/// No comment line: an ACL file holds `user` lines only (Valkey refuses anything else).
pub fn acl_file(users: &[ResolvedUser]) -> String {
    let mut text = String::new();
    for u in users {
        text.push_str(&u.acl_line());
        text.push('\n');
    }
    text
}

/// The `<cluster>-acl` Secret holding the ACL file.
pub fn acl_secret(sc: &ShoalCluster, users: &[ResolvedUser]) -> Secret {
    Secret {
        metadata: secret_meta(sc, acl_secret_name(sc)),
        data: Some(BTreeMap::from([(ACL_FILE.to_string(), ByteString(acl_file(users).into_bytes()))])),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

/// The `<cluster>-operator` Secret with a new random password.
pub fn operator_secret(sc: &ShoalCluster, password: &str) -> Secret {
    Secret {
        metadata: secret_meta(sc, operator_secret_name(sc)),
        data: Some(BTreeMap::from([(
            OPERATOR_PASSWORD_KEY.to_string(),
            ByteString(password.as_bytes().to_vec()),
        )])),
        type_: Some("Opaque".into()),
        ..Default::default()
    }
}

fn secret_meta(sc: &ShoalCluster, name: String) -> ObjectMeta {
    let mut m = super::resources::owned_meta(sc, name, "security");
    m.labels.get_or_insert_default().insert("shoal.dev/managed".into(), "true".into());
    m
}

/// 32 random bytes from the operating system, hex: the operator's password.
pub fn generate_password() -> Result<String, ring::error::Unspecified> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut bytes)?;
    Ok(hex(&bytes))
}

/// SHA-256 in lowercase hex, the form `#<hash>` takes in ACL rules.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(ring::digest::digest(&ring::digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Node directives for TLS: the TLS port takes the client port; plaintext only if asked for.
pub fn tls_config_lines(tls: &TlsSpec, port: i32) -> Vec<String> {
    vec![
        format!("port {}", tls.plaintext_port.unwrap_or(0)),
        format!("tls-port {port}"),
        format!("tls-cert-file {TLS_DIR}/tls.crt"),
        format!("tls-key-file {TLS_DIR}/tls.key"),
        format!("tls-ca-cert-file {TLS_DIR}/ca.crt"),
        format!("tls-auth-clients {}", tls.auth_clients.as_str()),
        "tls-cluster yes".into(),
        "tls-replication yes".into(),
        format!("tls-auto-reload-interval {}", tls.reload_interval_seconds),
    ]
}

/// The Secret volumes of a node pod: the ACL file always, the TLS Secret with `spec.tls`.
pub fn volumes(sc: &ShoalCluster) -> Vec<Volume> {
    let secret = |name: &str, secret_name: String| Volume {
        name: name.into(),
        secret: Some(SecretVolumeSource {
            secret_name: Some(secret_name),
            // Group-readable for the pod's fsGroup; nobody else.
            default_mode: Some(0o440),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut v = vec![secret("acl", acl_secret_name(sc))];
    if let Some(tls) = &sc.spec.tls {
        v.push(secret("tls", tls.secret_name.clone()));
    }
    v
}

/// Where [`volumes`] are mounted in the node container.
pub fn mounts(sc: &ShoalCluster) -> Vec<VolumeMount> {
    let ro = |name: &str, path: &str| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(true),
        ..Default::default()
    };
    let mut v = vec![ro("acl", ACL_DIR)];
    if sc.spec.tls.is_some() {
        v.push(ro("tls", TLS_DIR));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_split_on_spaces_and_keep_selectors_whole() {
        assert_eq!(
            split_rules("  ~app:*  +@read (~other:* +get -set) &ch "),
            ["~app:*", "+@read", "(~other:* +get -set)", "&ch"]
        );
    }

    #[test]
    fn passwords_become_hashes_and_every_line_starts_from_reset() {
        let u = ResolvedUser {
            name: "app".into(),
            enabled: true,
            password: Some("secret".into()),
            rules: split_rules("~app:* +@all"),
        };
        // echo -n secret | sha256sum
        let h = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b";
        assert_eq!(u.setuser_args(), ["reset", "on", &format!("#{h}"), "~app:*", "+@all"]);
        assert_eq!(u.acl_line(), format!("user app on #{h} ~app:* +@all"));
        let off = ResolvedUser { enabled: false, ..u };
        assert!(off.acl_line().starts_with("user app off #"));
        assert_eq!(ResolvedUser::default_user(None).acl_line(), "user default on nopass ~* &* +@all");
    }

    #[test]
    fn generated_passwords_are_long_and_differ() {
        let (a, b) = (generate_password().expect("random"), generate_password().expect("random"));
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }
}
