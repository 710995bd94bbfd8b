//! Runs the planned-failover state machine ([`super::failover::Planned`]) against real nodes:
//! each command it asks for is one RESP exchange, and each answer is fed back as an event. The
//! only wait is the bounded poll of the replica's offset while the primary's writes are paused.

use std::time::{Duration, Instant};

use super::client::ClientError;
use super::failover::{
    self, Cause, Command, Event, FailoverError, FailoverRecord, Planned, PlannedOptions, Stage,
};
use super::model::{FailoverKind, NodeAddr, NodeId, ObservedState, ShardId};
use super::observe::ClientPool;

/// How often the replica's offset is read while writes are paused.
const POLL: Duration = Duration::from_millis(2);

/// Planned failover of `shard` to `to` (default: the best in-sync replica), from the observed
/// state `obs`. The topology is pushed at `obs.max_epoch() + 1`.
pub(super) async fn planned(
    pool: &mut ClientPool,
    obs: &ObservedState,
    shard: &ShardId,
    to: Option<&NodeId>,
    requested: bool,
    opts: &PlannedOptions,
) -> Result<FailoverRecord, FailoverError> {
    let started = Instant::now();
    let topo = obs.topology.clone().ok_or_else(|| FailoverError::NoShard(shard.clone()))?;
    let s = topo.shard(shard).ok_or_else(|| FailoverError::NoShard(shard.clone()))?;
    let p = s.primary().ok_or_else(|| FailoverError::NoPrimary(shard.clone()))?.clone();
    let (to, _) = match to {
        Some(id) => (id.clone(), 0),
        None => failover::candidate(s, &obs.nodes, &[p.id.clone()].into())
            .ok_or_else(|| FailoverError::NoCandidate(shard.clone()))?,
    };
    let r = s
        .replicas()
        .find(|n| n.id == to)
        .ok_or_else(|| FailoverError::NotAReplica(to.clone(), shard.clone()))?
        .clone();
    let mut next = topo.clone();
    failover::promote(&mut next, shard, &to)?;
    next.epoch = obs.max_epoch() + 1;
    next.validate()?;
    let (p_addr, r_addr) = (p.addr(), r.addr());
    let rest: Vec<NodeAddr> = obs
        .nodes
        .iter()
        .filter(|n| n.reachable() && n.addr != p_addr && n.addr != r_addr)
        .map(|n| n.addr.clone())
        .collect();

    let mut m = Planned::new(opts.catch_up);
    let mut ev = Event::Start;
    let mut replica_offset = 0;
    loop {
        let stage = match m.next(ev, started.elapsed()) {
            Command::Run(stage) => stage,
            Command::Promoted => break,
            Command::Aborted(why) => return Err(FailoverError::Aborted(why)),
            Command::Unsettled(why) => return Err(FailoverError::Unsettled(why)),
        };
        if opts.abandon_at == Some(stage) {
            return Err(FailoverError::Abandoned(stage));
        }
        let addr = match stage {
            Stage::Pause | Stage::ReadPrimaryOffset | Stage::PushOldPrimary | Stage::Unpause => &p_addr,
            Stage::PollReplica | Stage::PushNewPrimary => &r_addr,
            Stage::PushRest => {
                for a in &rest {
                    let res = match pool.get(a).await {
                        Ok(mut c) => c.set_topology(&next).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = res {
                        // A laggard: the next step brings it up to date.
                        tracing::warn!(node = %a, error = %e, "pushing the promotion");
                        pool.drop_client(a);
                    }
                }
                ev = Event::Done;
                continue;
            }
        };
        if stage == Stage::PollReplica {
            tokio::time::sleep(POLL).await;
        }
        let res: Result<Event, ClientError> = async {
            let mut c = pool.get(addr).await?;
            Ok(match stage {
                Stage::Pause => c.pause_writes(opts.pause_ms()).await.map(|_| Event::Done)?,
                Stage::ReadPrimaryOffset => Event::PrimaryOffset(c.replication().await?.master_repl_offset),
                Stage::PollReplica => {
                    let info = c.replication().await?;
                    replica_offset = info.offset();
                    Event::Replica(info)
                }
                Stage::PushNewPrimary | Stage::PushOldPrimary => {
                    c.set_topology(&next).await.map(|_| Event::Done)?
                }
                Stage::Unpause => c.unpause().await.map(|_| Event::Done)?,
                Stage::PushRest => Event::Done,
            })
        }
        .await;
        ev = match res {
            Ok(ev) => ev,
            Err(e) => {
                if e.server_message().is_some() {
                    Event::Refused(e.to_string())
                } else {
                    pool.drop_client(addr);
                    Event::Lost(e.to_string())
                }
            }
        };
    }
    Ok(FailoverRecord {
        shard: shard.clone(),
        old_primary: p.id,
        new_primary: to,
        cause: if requested { Cause::Requested(FailoverKind::Default) } else { Cause::Planned },
        epoch: next.epoch,
        offset: replica_offset,
        recovered_in: started.elapsed(),
    })
}
