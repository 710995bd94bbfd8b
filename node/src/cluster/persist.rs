//! The cluster config file (`cluster-config-file` under `dir`): this node's id, the last
//! topology it accepted and the overrides of completed migrations, as JSON. Written to a
//! temporary file, synced and renamed over the old one, so a crash leaves either the old or
//! the new state, never half of one.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::topology::{valid_id, Topology};
use super::{ClusterError, ClusterState};

/// What the file holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Saved {
    pub node_id: String,
    #[serde(default)]
    pub topology: Option<Topology>,
    /// The topology was built by ADDSLOTS, not pushed.
    #[serde(default)]
    pub local: bool,
    #[serde(default)]
    pub overrides: BTreeMap<u16, String>,
}

/// A new random 40-hex id (node ids, shard ids, migration names).
pub fn random_id() -> String {
    (0..40).map(|_| char::from_digit(fastrand::u32(..16), 16).unwrap_or('0')).collect()
}

/// Reads the file; `None` when it does not exist yet.
pub fn read(path: &Path) -> Result<Option<Saved>, ClusterError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(ClusterError::Read { path: path.into(), source }),
    };
    let corrupt = |reason: String| ClusterError::Corrupt { path: path.into(), reason };
    let saved: Saved = serde_json::from_slice(&text).map_err(|e| corrupt(e.to_string()))?;
    if !valid_id(&saved.node_id) {
        return Err(corrupt(format!("bad node id '{}'", saved.node_id)));
    }
    if let Some(t) = &saved.topology {
        // A local (ADDSLOTS) topology may lack an address; only its slots must be sound.
        let check = if saved.local { t.slot_map().map(|_| ()) } else { t.validate().map(|_| ()) };
        check.map_err(|e| corrupt(e.to_string()))?;
    }
    Ok(Some(saved))
}

/// Writes the state: temporary file, fsync, rename.
pub fn write(path: &Path, st: &ClusterState) -> Result<(), ClusterError> {
    let saved = Saved {
        node_id: st.myid.clone(),
        topology: st.topology.clone(),
        local: st.local,
        overrides: st.overrides.clone(),
    };
    let err = |source| ClusterError::Write { path: path.into(), source };
    let json = serde_json::to_vec_pretty(&saved).map_err(|e| err(std::io::Error::other(e)))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(err)?;
    f.write_all(&json).map_err(err)?;
    f.write_all(b"\n").map_err(err)?;
    f.sync_all().map_err(err)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_corruption() {
        let dir = std::env::temp_dir().join(format!("shoal-persist-{}-{}", std::process::id(), random_id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("nodes.conf");
        assert!(read(&path).expect("missing is fine").is_none());
        let mut st = ClusterState::ephemeral(random_id());
        st.apply(crate::cluster::tests::two_shards(4, 1000)).expect("apply");
        st.overrides.insert(7, "2".repeat(40));
        write(&path, &st).expect("write");
        let back = read(&path).expect("read").expect("some");
        assert_eq!(back.node_id, st.myid);
        assert_eq!(back.topology, st.topology);
        assert_eq!(back.overrides, st.overrides);
        std::fs::write(&path, b"{\"node_id\": \"xyz\"}").expect("write");
        assert!(matches!(read(&path), Err(ClusterError::Corrupt { .. })));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
