//! One `tandem sync` of a local source with a remote target: connect, run the engine's
//! session over the remote side, close.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tandem_engine::{EngineError, Event, Report, Scope, Session, SyncSpec};

use crate::client::{Connect, ConnectError, RemoteSide, Stats};

#[derive(Debug, thiserror::Error)]
pub enum RemoteSyncError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    State(#[from] tandem_state::StateError),
    #[error("{0} is not supported with a remote target yet")]
    Unsupported(&'static str),
}

/// What a remote side does not keep yet: refused before anything is changed.
fn refuse_unsupported(spec: &SyncSpec) -> Result<(), RemoteSyncError> {
    let keep = &spec.options.keep;
    let unsupported = [
        (keep.owner, "--owner"),
        (keep.xattrs, "--xattrs"),
        (keep.acls, "--acls"),
        (spec.options.hard_links, "--hard-links"),
    ];
    match unsupported.into_iter().find(|(on, _)| *on) {
        Some((_, flag)) => Err(RemoteSyncError::Unsupported(flag)),
        None => Ok(()),
    }
}

/// Syncs `spec.src` with the remote folder `connect` reaches, as `tandem_engine::sync_until`
/// does for two local folders; returns the report and what crossed the wire. The remote
/// folder is created only by a first sync that is not a dry run.
pub fn sync_until(
    spec: &SyncSpec,
    connect: &Connect,
    stop: &Arc<AtomicBool>,
    on_event: &dyn Fn(Event),
) -> Result<(Report, Arc<Stats>), RemoteSyncError> {
    sync_scoped(spec, connect, stop, &Scope::All, on_event)
}

/// [`sync_until`] of the paths `scope` names (`tandem resolve`).
pub fn sync_scoped(
    spec: &SyncSpec,
    connect: &Connect,
    stop: &Arc<AtomicBool>,
    scope: &Scope,
    on_event: &dyn Fn(Event),
) -> Result<(Report, Arc<Stats>), RemoteSyncError> {
    refuse_unsupported(spec)?;
    let mut connect = connect.clone();
    connect.create = !spec.dry_run && !tandem_state::state_exists(&spec.state_dir)?;
    let remote = RemoteSide::connect(&connect)?;
    let (stats, created) = (remote.stats(), remote.created);
    let mut session = Session::with_target(spec, Box::new(remote))?;
    session.set_stop(Arc::clone(stop));
    let mut report = session.sync(scope, on_event)?;
    if created {
        report.created_target = Some(spec.tgt.clone());
    }
    // Closes the connection: the agent ends once it has answered everything.
    drop(session);
    Ok((report, stats))
}
