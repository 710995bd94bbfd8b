//! Keeps every node's ACL users equal to the desired set, at runtime: `ACL SETUSER` for each
//! desired user (the arguments start with `reset`, so the node ends up with exactly the spec's
//! rules and password), `ACL DELUSER` for any other user but the kept ones (`default`, the
//! operator's own).
//!
//! A node is written only when something changed for it: the desired set (its hash) differs from
//! what this process last applied to that address, or the node's `ACL USERS` does not list
//! exactly the desired names (a restarted node, or an edit by hand). Re-applying identical
//! rules would be harmless, but costs a round of commands per node per reconcile.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

use super::model::NodeAddr;
use super::observe::ClientPool;

/// The users every node should have.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DesiredUsers {
    /// Name and `ACL SETUSER` arguments (after the name).
    pub users: Vec<(String, Vec<String>)>,
    /// Users never deleted even when not in `users` (`default`).
    pub keep: Vec<String>,
}

impl DesiredUsers {
    fn fingerprint(&self) -> u64 {
        let mut h = DefaultHasher::new();
        self.hash(&mut h);
        h.finish()
    }
}

impl Hash for DesiredUsers {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.users.hash(state);
        self.keep.hash(state);
    }
}

/// What a sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsersReport {
    /// Nodes whose users were written.
    pub updated: Vec<NodeAddr>,
    /// Users deleted, with the node.
    pub deleted: Vec<(NodeAddr, String)>,
    /// Nodes that could not be brought in line, and why (retried next time).
    pub failed: Vec<(NodeAddr, String)>,
}

/// What was last applied, per node address.
#[derive(Default)]
pub struct UsersState {
    applied: HashMap<NodeAddr, u64>,
}

/// Brings the users of every node in `addrs` in line with `desired`.
pub async fn sync(
    pool: &mut ClientPool,
    state: &mut UsersState,
    addrs: &[NodeAddr],
    desired: &DesiredUsers,
) -> UsersReport {
    let fp = desired.fingerprint();
    let want: BTreeSet<&str> = desired.users.iter().map(|(n, _)| n.as_str()).collect();
    let mut report = UsersReport::default();
    state.applied.retain(|a, _| addrs.contains(a));
    for addr in addrs {
        let mut c = match pool.get(addr).await {
            Ok(c) => c,
            Err(e) => {
                report.failed.push((addr.clone(), e.to_string()));
                continue;
            }
        };
        let result: Result<bool, String> = async {
            let have = c.acl_users().await.map_err(|e| e.to_string())?;
            let extra: Vec<&String> =
                have.iter().filter(|u| !want.contains(u.as_str()) && !desired.keep.contains(u)).collect();
            let missing = want.iter().any(|w| !have.iter().any(|h| h == w));
            if state.applied.get(addr) == Some(&fp) && extra.is_empty() && !missing {
                return Ok(false);
            }
            for (name, args) in &desired.users {
                c.acl_setuser(name, args).await.map_err(|e| e.to_string())?;
            }
            for name in extra {
                c.acl_deluser(name).await.map_err(|e| e.to_string())?;
                report.deleted.push((addr.clone(), name.clone()));
            }
            Ok(true)
        }
        .await;
        match result {
            Ok(true) => {
                state.applied.insert(addr.clone(), fp);
                report.updated.push(addr.clone());
            }
            Ok(false) => {}
            Err(e) => {
                state.applied.remove(addr);
                pool.drop_client(addr);
                report.failed.push((addr.clone(), e));
            }
        }
    }
    report
}
