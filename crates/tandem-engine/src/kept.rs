//! What a run was asked to keep beyond content, mode and times (`--owner`, ...), and the
//! files where a side could not keep it: counted per kind while the steps are applied and
//! reported once per run, not once per file (a non-root run with `--owner` would otherwise
//! list every file it copies).

use std::collections::BTreeMap;
use std::sync::Mutex;

use tandem_core::{Action, BaseEntry, Keep, RelPath, Side};

use crate::spec::{PathProblem, Report};

/// The run's `Keep` with what only the engine can know filled in: the setuid and setgid
/// bits travel only with `--owner` and when tandem runs as root (a setuid program must
/// not arrive owned by the user running tandem).
pub fn keep_for_run(mut keep: Keep) -> Keep {
    keep.setid = keep.owner && running_as_root();
    keep.trusted = keep.xattrs && running_as_root();
    keep
}

#[cfg(unix)]
fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// No root on Windows: owners and trusted attributes are not kept there.
#[cfg(not(unix))]
fn running_as_root() -> bool {
    false
}

/// Per kind of thing not kept: the first path it happened to, how many, and why.
#[derive(Default)]
pub(crate) struct NotKept {
    kinds: Mutex<BTreeMap<&'static str, (RelPath, u64, String)>>,
}

impl NotKept {
    /// Looks at a step done and the baseline entry it led to: did the receiving side keep
    /// what the sending side had?
    pub(crate) fn check(&self, keep: &Keep, a: &Action, agreed: &BaseEntry) {
        let from = match a {
            Action::Copy { from, .. } => *from,
            Action::Mkdir { side, .. } | Action::SetMeta { side, .. } => side.other(),
            _ => return,
        };
        let (sent, got) = (agreed.seen(from), agreed.seen(from.other()));
        if keep.owner {
            if let Some(owner) = sent.owner {
                if got.owner != Some(keep.ids().to_receiver(owner)) {
                    self.note("owner", a.path(), owner_reason(from.other()));
                }
            }
        }
    }

    fn note(&self, kind: &'static str, path: &RelPath, why: String) {
        let mut kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        let slot = kinds.entry(kind).or_insert_with(|| (path.clone(), 0, why));
        slot.1 += 1;
    }

    /// One line per kind, under the first path it happened to: `owner not kept on 3 files:
    /// not running as root`. Listed as skipped: the rest synced, the run says so (exit 1).
    pub(crate) fn report_into(&self, report: &mut Report) {
        let kinds = self.kinds.lock().unwrap_or_else(|e| e.into_inner());
        for (kind, (path, n, why)) in kinds.iter() {
            let files = if *n == 1 { "file" } else { "files" };
            report.skipped.push(PathProblem::new(
                path.clone(),
                format!("{kind} not kept on {n} {files}: {why}"),
            ));
        }
    }
}

/// What a side refused to hold during the run (extended attributes, ACLs), one line per
/// kind and reason under the first path: `extended attributes not kept on 2 files of the
/// target: the file system does not hold them`.
pub(crate) fn refusals_into(report: &mut Report, side: Side, refusals: Vec<tandem_fs::Refusal>) {
    for r in refusals {
        let files = if r.count == 1 { "file" } else { "files" };
        report.skipped.push(PathProblem::new(
            r.first,
            format!(
                "{} not kept on {} {files} of the {side}: {}",
                r.kind, r.count, r.why
            ),
        ));
    }
}

fn owner_reason(to: Side) -> String {
    if running_as_root() {
        format!("the {to}'s file system does not hold owners")
    } else {
        "not running as root".to_string()
    }
}
