//! Mailing a continuous task's user when its mount's delete brake holds a burst of
//! deletions (issue 18): one message per burst, once it has stopped growing for a moment
//! (`SETTLE`, at most `LONGEST` after it began), saying how many, by which program, since
//! when, and the commands that release or restore them. The replicator only hands the
//! brake's notices to a thread of this module: it never waits for a mail server.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use jiff::Timestamp;
use tandem_core::Side;
use tandem_engine::{HoldNotice, OnHold};

use crate::mail::{message, record_failure, send_twice};
use crate::mail_text::{clean, folder, local};
use crate::spec::TaskSpec;

/// A burst is mailed once no part of it came for this long...
const SETTLE: Duration = Duration::from_secs(3);
/// ...or once it began this long ago (deletions that keep coming).
const LONGEST: Duration = Duration::from_secs(60);
/// The wait when no burst is pending.
const IDLE: Duration = Duration::from_secs(3600);

/// The hook a continuous task's mount gives its replicators, when the task mails anyone:
/// a hold asks for the user whatever `notify_when` says (it stops short of replicating,
/// like a halt), so only a task without mail has none.
pub fn held_mailer(task: &TaskSpec) -> Option<OnHold> {
    let n = &task.notify;
    if n.smtp.is_none() || n.to.is_empty() || !n.wants("halted") {
        return None;
    }
    let (tx, rx) = mpsc::channel::<HoldNotice>();
    let spec = task.clone();
    let started = std::thread::Builder::new()
        .name("held-mail".into())
        .spawn(move || serve(&spec, &rx));
    if let Err(e) = started {
        tracing::warn!("task {}: held deletions will not be mailed: {e}", task.name);
        return None;
    }
    Some(OnHold(Arc::new(move |notice: &HoldNotice| {
        let _ = tx.send(notice.clone());
    })))
}

/// A burst being held, not mailed yet.
struct Burst {
    first: HoldNotice,
    count: usize,
    began: Instant,
    last: Instant,
}

impl Burst {
    fn due(&self, now: Instant) -> bool {
        now.duration_since(self.last) >= SETTLE || now.duration_since(self.began) >= LONGEST
    }
}

/// Gathers the notices of each burst and mails each burst once; what is pending when the
/// mount stops (the hook dropped) is mailed at once.
fn serve(task: &TaskSpec, rx: &Receiver<HoldNotice>) {
    let mut pending: BTreeMap<(String, i64), Burst> = BTreeMap::new();
    let mut mailed: HashSet<(String, i64)> = HashSet::new();
    loop {
        let now = Instant::now();
        let wait = pending
            .values()
            .map(|b| {
                (b.last + SETTLE)
                    .min(b.began + LONGEST)
                    .saturating_duration_since(now)
            })
            .min()
            .unwrap_or(IDLE);
        let stopping = match rx.recv_timeout(wait) {
            Ok(n) => {
                let key = (n.target.clone(), n.batch);
                if !mailed.contains(&key) {
                    let now = Instant::now();
                    let b = pending.entry(key).or_insert_with(|| Burst {
                        first: n.clone(),
                        count: 0,
                        began: now,
                        last: now,
                    });
                    b.count += n.count;
                    b.last = now;
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let now = Instant::now();
        let due: Vec<(String, i64)> = pending
            .iter()
            .filter(|(_, b)| stopping || b.due(now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(b) = pending.remove(&key) {
                mail_burst(task, &b);
                mailed.insert(key);
            }
        }
        if stopping {
            return;
        }
    }
}

fn mail_burst(task: &TaskSpec, b: &Burst) {
    let n = &task.notify;
    let Some(smtp) = n.smtp.as_ref() else {
        return;
    };
    let subject = format!("[tandem] {}: {} deletions held", task.name, b.count);
    let body = held_body(task, &b.first, b.count, &TimeZone::system());
    let sent = message(smtp, &n.to, subject, body).and_then(|m| send_twice(task, smtp, &m));
    let to = n.to.join(", ");
    match sent {
        Ok(()) => tracing::info!(
            "task {}: the {} held deletions of burst {} were mailed to {to}",
            task.name,
            b.count,
            b.first.batch
        ),
        Err(e) => {
            tracing::warn!(
                "task {}: the held deletions could not be mailed to {to}: {e}",
                task.name
            );
            record_failure(&task.name, &n.to, &e.to_string());
        }
    }
}

/// The message: how many, by whom, since when, and what to do about it.
fn held_body(task: &TaskSpec, first: &HoldNotice, count: usize, tz: &TimeZone) -> String {
    let c = &first.first.change;
    let (made, by, back) = match first.side {
        Side::Source => (
            format!(
                "They are done in the source, and not replayed to {} until you decide.",
                clean(&first.target)
            ),
            format!(
                "{} (pid {}, uid {})",
                clean(first.first.program.as_deref().unwrap_or("?")),
                c.pid,
                c.uid
            ),
            "source",
        ),
        Side::Target => (
            format!(
                "They were made in {}, and are not applied to the source (nor to its\n\
                 other targets) until you decide.",
                clean(&first.target)
            ),
            "a program in the target (only the mount can tell which)".to_string(),
            "target",
        ),
    };
    let release = match first.side {
        Side::Source => "To let them through to the target",
        Side::Target => "To apply them to the source too",
    };
    let since = Timestamp::from_nanosecond(i128::from(first.first.time_ns))
        .map_or_else(|_| "?".to_string(), |t| local(t, tz));
    let (src, tgt) = (
        shell_word(&first.source),
        shell_word(Path::new(&first.target)),
    );
    let batch = first.batch;
    format!(
        "Task {name}: the delete brake of the mount of {shown_src} holds {count} deletions.\n\
         {made}\n\
         \n\
         By:     {by}\n\
         Since:  {since}\n\
         Burst:  {batch}\n\
         \n\
         {release}:\n    tandem release {src} {tgt} --batch {batch}\n\
         To bring the files back into the {back} instead:\n    tandem restore {src} {tgt} --held --batch {batch}\n\
         To list them:\n    tandem held {src} {tgt}\n",
        name = task.name,
        shown_src = folder(&first.source),
    )
}

/// A path as one word for a shell: as is when plain, else in single quotes.
fn shell_word(p: &Path) -> String {
    let text = folder(p);
    let plain = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c));
    if plain && !text.is_empty() {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_one_shell_word() {
        assert_eq!(shell_word(Path::new("/home/a/Docs")), "/home/a/Docs");
        assert_eq!(
            shell_word(Path::new("/home/a/My Docs")),
            "'/home/a/My Docs'"
        );
        assert_eq!(shell_word(Path::new("/a/it's")), r"'/a/it'\''s'");
    }
}
