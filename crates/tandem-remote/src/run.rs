//! One `tandem sync` of a local source with a remote target: connect, run the engine's
//! session over the remote side, close.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tandem_engine::{EngineError, Event, Report, Scope, Session, SyncSpec};

use tandem_fs::Root;

use crate::client::{Connect, ConnectError, RemoteSide, Stats};
use crate::wire::WireKeep;

/// The pair's copy of the remote listing (`crate::listing`), in its state folder.
const LISTING_FILE: &str = "remote-listing";

#[derive(Debug, thiserror::Error)]
pub enum RemoteSyncError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    State(#[from] tandem_state::StateError),
}

/// `connect`, telling the agent what the run keeps beyond content (`--owner`,
/// `--xattrs`, `--acls`, `--hard-links`): an agent that cannot is refused at connection.
fn keeping(spec: &SyncSpec, connect: &Connect) -> Connect {
    let keep = tandem_engine::keep_for_run(spec.options.keep);
    let mut connect = connect.clone();
    connect.keep = WireKeep {
        owner: keep.owner,
        numeric_ids: keep.numeric_ids,
        xattrs: keep.xattrs,
        acls: keep.acls,
        hard_links: spec.options.hard_links,
        setid: keep.setid,
        trusted: keep.trusted,
    };
    connect.listing = Some((spec.state_dir.join(LISTING_FILE), spec.rescan));
    connect
}

/// Connects to the remote side of `spec`. The remote folder is created only for a first
/// sync that is not a dry run.
fn open_target(spec: &SyncSpec, connect: &Connect) -> Result<RemoteSide, RemoteSyncError> {
    Ok(RemoteSide::connect(&connect_for(spec, connect)?)?)
}

/// How `open_target` connects: decided before the session opens its state (which makes
/// the state of a first sync).
fn connect_for(spec: &SyncSpec, connect: &Connect) -> Result<Connect, RemoteSyncError> {
    let mut connect = keeping(spec, connect);
    connect.create = !spec.dry_run && !tandem_state::state_exists(&spec.state_dir)?;
    Ok(connect)
}

/// The session of a mount's pair whose target is remote, on `src` (opened before the
/// mount hides the folder): connected as `tandem sync` connects, so that the startup
/// reconcile and every pass are the same sync. A dropped connection is made again by
/// `Session::reopen_target` (the replicator's retries), without creating the folder.
pub fn mounted_session(
    spec: &SyncSpec,
    connect: &Connect,
    src: Root,
) -> Result<Session, RemoteSyncError> {
    let remote = open_target(spec, connect)?;
    let mut session = Session::with_roots(spec, src, Box::new(remote))?;
    let mut again = keeping(spec, connect);
    again.create = false;
    session.set_target_opener(Arc::new(move || {
        let side = RemoteSide::connect(&again).map_err(std::io::Error::other)?;
        Ok(Box::new(side) as Box<dyn tandem_engine::SideRoot>)
    }));
    Ok(session)
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
    // The connection is made while the session opens its state (`with_target_from`).
    let connect = connect_for(spec, connect)?;
    let opened = std::sync::Mutex::new(None);
    let mut session = Session::with_target_from(spec, || {
        let remote = RemoteSide::connect(&connect)?;
        *opened.lock().unwrap_or_else(|p| p.into_inner()) = Some((remote.stats(), remote.created));
        Ok::<_, RemoteSyncError>(Box::new(remote) as Box<dyn tandem_engine::SideRoot>)
    })?;
    let opened = opened.into_inner().unwrap_or_else(|p| p.into_inner());
    let (stats, created) = opened.unwrap_or_default();
    session.set_stop(Arc::clone(stop));
    let mut report = session.sync(scope, on_event)?;
    if created {
        report.created_target = Some(spec.tgt.clone());
    }
    // Closes the connection: the agent ends once it has answered everything.
    drop(session);
    Ok((report, stats))
}
