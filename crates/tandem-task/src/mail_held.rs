//! Mailing a continuous task's user when its mount's delete brake holds a burst of
//! deletions (issue 18): one message per burst, once it has stopped growing for a moment
//! (`SETTLE`, at most `LONGEST` after it began), saying how many, by which program, since
//! when, and the commands that release or restore them. A mount with several targets
//! holds a burst through it once per target: holds that begin while another's message
//! waits, within the brake's window of its first, go out in that one message, each
//! listed. The replicator only hands the brake's notices to a thread of this module: it
//! never waits for a mail server.

use std::collections::HashSet;
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

/// One hold (a target's burst), as told so far.
struct Burst {
    first: HoldNotice,
    count: usize,
}

impl Burst {
    fn key(&self) -> (String, i64) {
        (self.first.target.clone(), self.first.batch)
    }
}

/// The holds of one message, not mailed yet.
struct Group {
    bursts: Vec<Burst>,
    began: Instant,
    last: Instant,
}

impl Group {
    fn due(&self, now: Instant) -> bool {
        now.duration_since(self.last) >= SETTLE || now.duration_since(self.began) >= LONGEST
    }

    /// Whether a hold beginning `now` goes in this message: within the brake's window of
    /// the first hold.
    fn takes(&self, now: Instant) -> bool {
        let window = self.bursts.first().map_or(SETTLE, |b| b.first.window);
        now.duration_since(self.began) <= window.max(SETTLE)
    }
}

/// Gathers the notices of each burst and mails each burst once, together with the holds
/// that begin with it; what is pending when the mount stops (the hook dropped) is mailed
/// at once.
fn serve(task: &TaskSpec, rx: &Receiver<HoldNotice>) {
    let mut pending: Vec<Group> = Vec::new();
    let mut mailed: HashSet<(String, i64)> = HashSet::new();
    loop {
        let now = Instant::now();
        let wait = pending
            .iter()
            .map(|g| {
                (g.last + SETTLE)
                    .min(g.began + LONGEST)
                    .saturating_duration_since(now)
            })
            .min()
            .unwrap_or(IDLE);
        let stopping = match rx.recv_timeout(wait) {
            Ok(n) => {
                take_notice(&mut pending, &mailed, n);
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let now = Instant::now();
        let (due, waiting): (Vec<Group>, Vec<Group>) =
            pending.into_iter().partition(|g| stopping || g.due(now));
        pending = waiting;
        for g in due {
            mail_group(task, &g);
            mailed.extend(g.bursts.iter().map(Burst::key));
        }
        if stopping {
            return;
        }
    }
}

/// Counts a notice in its burst's message, or starts a burst in the newest message that
/// takes it, or in a message of its own.
fn take_notice(pending: &mut Vec<Group>, mailed: &HashSet<(String, i64)>, n: HoldNotice) {
    let key = (n.target.clone(), n.batch);
    if mailed.contains(&key) {
        return;
    }
    let now = Instant::now();
    let known = pending
        .iter_mut()
        .find_map(|g| g.bursts.iter().position(|b| b.key() == key).map(|i| (g, i)));
    if let Some((g, i)) = known {
        g.bursts[i].count += n.count;
        g.last = now;
        return;
    }
    let burst = Burst {
        count: n.count,
        first: n,
    };
    match pending.last_mut().filter(|g| g.takes(now)) {
        Some(g) => {
            g.bursts.push(burst);
            g.last = now;
        }
        None => pending.push(Group {
            bursts: vec![burst],
            began: now,
            last: now,
        }),
    }
}

fn mail_group(task: &TaskSpec, g: &Group) {
    let n = &task.notify;
    let Some(smtp) = n.smtp.as_ref() else {
        return;
    };
    let total: usize = g.bursts.iter().map(|b| b.count).sum();
    let subject = match g.bursts.len() {
        1 => format!("[tandem] {}: {total} deletions held", task.name),
        k => format!(
            "[tandem] {}: {total} deletions held in {k} holds",
            task.name
        ),
    };
    let body = group_body(task, g, &TimeZone::system());
    let sent = message(smtp, &n.to, subject, body).and_then(|m| send_twice(task, smtp, &m));
    let to = n.to.join(", ");
    let batches: Vec<String> = g.bursts.iter().map(|b| b.first.batch.to_string()).collect();
    match sent {
        Ok(()) => tracing::info!(
            "task {}: the {total} held deletions of burst {} were mailed to {to}",
            task.name,
            batches.join(", ")
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

/// The message: each hold, how many, by whom, since when, and what to do about it.
fn group_body(task: &TaskSpec, g: &Group, tz: &TimeZone) -> String {
    let Some(one) = g.bursts.first() else {
        return String::new();
    };
    if g.bursts.len() == 1 {
        return held_body(task, &one.first, one.count, tz);
    }
    let total: usize = g.bursts.iter().map(|b| b.count).sum();
    let mut body = format!(
        "Task {name}: the delete brake of the mount of {src} holds {total} deletions, in\n\
         {k} holds (each target, and each side, holds its own).\n",
        name = task.name,
        src = folder(&one.first.source),
        k = g.bursts.len(),
    );
    for (i, b) in g.bursts.iter().enumerate() {
        body.push_str(&format!(
            "\n--- Hold {} of {}: {} deletions, target {}\n",
            i + 1,
            g.bursts.len(),
            b.count,
            clean(&b.first.target)
        ));
        body.push_str(&hold_text(&b.first, tz));
    }
    body
}

/// The message of one hold: how many, by whom, since when, and what to do about it.
fn held_body(task: &TaskSpec, first: &HoldNotice, count: usize, tz: &TimeZone) -> String {
    format!(
        "Task {name}: the delete brake of the mount of {shown_src} holds {count} deletions.\n{}",
        hold_text(first, tz),
        name = task.name,
        shown_src = folder(&first.source),
    )
}

/// One hold in words, from where it was made to the commands that settle it.
fn hold_text(first: &HoldNotice, tz: &TimeZone) -> String {
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
            tandem_engine::UNNAMED.to_string(),
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
        "{made}\n\
         \n\
         By:     {by}\n\
         Since:  {since}\n\
         Burst:  {batch}\n\
         \n\
         {release}:\n    tandem release {src} {tgt} --batch {batch}\n\
         To bring the files back into the {back} instead:\n    tandem restore {src} {tgt} --held --batch {batch}\n\
         To list them:\n    tandem held {src} {tgt}\n"
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

    fn notice(side: Side, target: &str) -> HoldNotice {
        HoldNotice {
            source: "/home/a/Docs".into(),
            target: target.into(),
            batch: 3,
            side,
            count: 12,
            first: tandem_state::Record {
                seq: 0,
                time_ns: 0,
                change: tandem_core::Change {
                    op: tandem_core::ChangeOp::Unlink,
                    path: tandem_core::RelPath::from_str_lossless("a"),
                    to: None,
                    pid: 0,
                    uid: 0,
                },
                program: None,
            },
            window: Duration::from_secs(60),
        }
    }

    /// A hold made in a target says that tandem cannot name who made it, not "pid 0".
    #[test]
    fn issue_18_a_hold_in_a_target_says_who_cannot_be_named() {
        let text = hold_text(&notice(Side::Target, "/media/usb/Docs"), &TimeZone::UTC);
        assert!(
            text.contains(
                "By:     a program tandem cannot name (changes made in the target are seen by inotify)\n"
            ),
            "{text}"
        );
        assert!(!text.contains("pid"), "{text}");
    }

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
