//! The reconcile-time half of `security`: reads the Secrets `spec.auth`, `spec.users` and
//! `spec.tls` name, creates the operator's own password once, applies the `<cluster>-acl`
//! Secret, and hands the control plane its credentials and the users to keep on the nodes.
//! Every Secret is read on every reconcile, so a rotated password or certificate reaches the
//! nodes (and the operator's own connections) at the next one.

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};

use super::crd::ShoalCluster;
use super::error::{kube as kerr, Error, Result};
use super::reconcile::{Context, FIELD_MANAGER};
use super::security::{
    acl_secret, acl_secret_name, generate_password, operator_secret, operator_secret_name, split_rules,
    ResolvedUser, OPERATOR_PASSWORD_KEY, OPERATOR_USER,
};
use crate::controlplane::credentials::{Credentials, TlsMaterial};
use crate::controlplane::users::DesiredUsers;

/// What the control plane needs from the cluster's Secrets.
pub struct Security {
    pub credentials: Credentials,
    pub users: DesiredUsers,
}

/// Reads and writes the Secrets; see the module docs.
pub async fn prepare(sc: &ShoalCluster, ctx: &Context, ns: &str) -> Result<Security> {
    let api = Api::<Secret>::namespaced(ctx.client.clone(), ns);
    let default_password = match &sc.spec.auth {
        Some(auth) => {
            Some(read_key(&api, &auth.secret_ref.name, &auth.secret_ref.key).await.map_err(|e| match e {
                KeyError::Kube(e) => kerr("get secret")(e),
                KeyError::Bad(detail) => {
                    Error::AuthSecret { secret: format!("{ns}/{}", auth.secret_ref.name), detail }
                }
            })?)
        }
        None => None,
    };
    let operator_password = operator_password(sc, &api).await?;
    let mut resolved = vec![ResolvedUser::operator(&operator_password)];
    let default_user = ResolvedUser::default_user(default_password.as_deref());
    for u in &sc.spec.users {
        let r = &u.password_secret_ref;
        let password = read_key(&api, &r.name, &r.key).await.map_err(|e| match e {
            KeyError::Kube(kube::Error::Api(s)) if s.code == 404 => Error::UserSecret {
                user: u.name.clone(),
                secret: format!("{ns}/{}", r.name),
                detail: "not found".into(),
            },
            KeyError::Kube(e) => kerr("get secret")(e),
            KeyError::Bad(detail) => {
                Error::UserSecret { user: u.name.clone(), secret: format!("{ns}/{}", r.name), detail }
            }
        })?;
        resolved.push(ResolvedUser {
            name: u.name.clone(),
            enabled: u.enabled,
            password: Some(password),
            rules: split_rules(&u.rules),
        });
    }
    // The file has `default` too (see `ResolvedUser::default_user`); at runtime `requirepass`
    // keeps it, so it is not among the users the control plane sets.
    let file_users: Vec<ResolvedUser> =
        std::iter::once(default_user).chain(resolved.iter().cloned()).collect();
    let secret = acl_secret(sc, &file_users);
    api.patch(&acl_secret_name(sc), &PatchParams::apply(FIELD_MANAGER).force(), &Patch::Apply(&secret))
        .await
        .map_err(kerr("apply ACL Secret"))?;
    let tls = match &sc.spec.tls {
        Some(t) => {
            let bad = |detail: String| Error::TlsSecret { secret: format!("{ns}/{}", t.secret_name), detail };
            let s = api.get(&t.secret_name).await.map_err(|e| match e {
                kube::Error::Api(s) if s.code == 404 => bad("not found".into()),
                e => kerr("get secret")(e),
            })?;
            let key = |k: &str| -> Result<Vec<u8>> {
                s.data
                    .as_ref()
                    .and_then(|d| d.get(k))
                    .map(|b| b.0.clone())
                    .ok_or_else(|| bad(format!("no key {k:?}")))
            };
            let ca = key("ca.crt")?;
            let client = (t.auth_clients != super::crd::TlsAuthClients::No)
                .then(|| Ok::<_, Error>((key("tls.crt")?, key("tls.key")?)))
                .transpose()?;
            Some(TlsMaterial { ca_pem: ca, client })
        }
        None => None,
    };
    let users = DesiredUsers {
        users: resolved.iter().map(|u| (u.name.clone(), u.setuser_args())).collect(),
        keep: vec!["default".into()],
    };
    let credentials = Credentials {
        user: Some(OPERATOR_USER.into()),
        password: Some(operator_password),
        fallback: default_password,
        tls,
    };
    Ok(Security { credentials, users })
}

/// The operator's password, from `<cluster>-operator`; created (once) when missing.
async fn operator_password(sc: &ShoalCluster, api: &Api<Secret>) -> Result<String> {
    let name = operator_secret_name(sc);
    if let Some(s) = api.get_opt(&name).await.map_err(kerr("get operator Secret"))? {
        if let Some(b) = s.data.as_ref().and_then(|d| d.get(OPERATOR_PASSWORD_KEY)) {
            if let Ok(p) = String::from_utf8(b.0.clone()) {
                if !p.is_empty() {
                    return Ok(p);
                }
            }
        }
    }
    let password = generate_password().map_err(|_| Error::Random)?;
    let secret = operator_secret(sc, &password);
    match api
        .create(&PostParams { field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }, &secret)
        .await
    {
        Ok(_) => Ok(password),
        // Someone (an earlier reconcile of another replica) created it first: use theirs.
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let s = api.get(&name).await.map_err(kerr("get operator Secret"))?;
            s.data
                .as_ref()
                .and_then(|d| d.get(OPERATOR_PASSWORD_KEY))
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .ok_or(Error::Incomplete("operator password"))
        }
        Err(e) => Err(kerr("create operator Secret")(e)),
    }
}

enum KeyError {
    Kube(kube::Error),
    Bad(String),
}

/// A UTF-8 value of a Secret key, without the trailing newline `kubectl create secret
/// --from-file` leaves.
async fn read_key(api: &Api<Secret>, name: &str, key: &str) -> std::result::Result<String, KeyError> {
    let secret = api.get(name).await.map_err(KeyError::Kube)?;
    let bytes = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .ok_or_else(|| KeyError::Bad(format!("no key {key:?}")))?;
    let pw =
        String::from_utf8(bytes.0.clone()).map_err(|_| KeyError::Bad("the password is not UTF-8".into()))?;
    Ok(pw.trim_end_matches(['\r', '\n']).to_string())
}
