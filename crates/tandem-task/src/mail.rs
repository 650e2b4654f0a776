//! Mailing a task's result to its `notify_email` addresses through the `[smtp]` server
//! (`lettre`, TLS by rustls).
//!
//! A mail reports on a run and is never part of it: one that cannot be sent is logged,
//! tried once more, and recorded in the task's `email.json` (for `tandem status`); the
//! run's result and exit code stay what they were. The next mail sent removes the record.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use serde_json::json;
use tandem_core::SmtpSecurity;

use crate::mail_text::{headline, result_body, test_body};
use crate::notify::{Password, Smtp};
use crate::report::TaskReport;
use crate::run::task_state_dir;
use crate::spec::TaskSpec;

/// The file, in the task's state folder (`task_state_dir`), that records the last mail
/// that could not be sent: `{"at": RFC 3339, "error": "...", "to": ["...", ...]}`. It is
/// written whole (a new file renamed over the old) and removed once a mail is sent.
pub const EMAIL_FAILURE_FILE: &str = "email.json";

/// How long the server may take to answer.
const TIMEOUT: Duration = Duration::from_secs(30);
/// The pause before the second try.
const RETRY_PAUSE: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("task {task} mails no one: add an address with `tandem task edit {task} --notify-email ADDRESS`")]
    NoAddress { task: String },
    #[error("the SMTP password: {0}")]
    Password(String),
    #[error("the message could not be made: {0}")]
    Message(String),
    #[error("the mail server {server}: {}", smtp_reason(source))]
    Smtp {
        server: String,
        source: lettre::transport::smtp::Error,
    },
}

/// The server's reason, with what a refused certificate most often means.
fn smtp_reason(e: &lettre::transport::smtp::Error) -> String {
    let text = e.to_string();
    if e.is_tls() || text.contains("certificate") {
        format!("{text} (the TLS connection was refused: the server's certificate is not trusted here; it may be self-signed, expired, or made for another host name)")
    } else {
        text
    }
}

/// Mails the result of a run (never a dry run) when the task has addresses and its
/// `notify_when` wants this result. Cannot fail the run: see the module's note.
pub(crate) fn mail_result(task: &TaskSpec, report: &TaskReport, started: Timestamp) {
    let n = &task.notify;
    let Some(smtp) = n.smtp.as_ref() else {
        return;
    };
    if n.to.is_empty() || !n.wants(report.result()) {
        return;
    }
    let subject = format!("[tandem] {}: {}", task.name, headline(report));
    let body = result_body(task, report, started, Timestamp::now());
    let sent = message(smtp, &n.to, subject, body).and_then(|m| send_twice(task, smtp, &m));
    let to = n.to.join(", ");
    match sent {
        Ok(()) => {
            tracing::info!("task {}: the result was mailed to {to}", task.name);
            clear_failure(&task.name);
        }
        Err(e) => {
            tracing::warn!(
                "task {}: the result could not be mailed to {to}: {e}",
                task.name
            );
            record_failure(&task.name, &n.to, &e.to_string());
        }
    }
}

/// Sends `tandem task test-email NAME`'s message, once; a success removes the record of
/// a mail that failed.
pub fn send_test(task: &TaskSpec) -> Result<(), MailError> {
    let n = &task.notify;
    let no_address = || MailError::NoAddress {
        task: task.name.clone(),
    };
    let smtp = n.smtp.as_ref().ok_or_else(no_address)?;
    if n.to.is_empty() {
        return Err(no_address());
    }
    let subject = format!("[tandem] {}: test message", task.name);
    let m = message(smtp, &n.to, subject, test_body(task, smtp))?;
    send(smtp, &m)?;
    clear_failure(&task.name);
    Ok(())
}

pub(crate) fn message(
    smtp: &Smtp,
    to: &[String],
    subject: String,
    body: String,
) -> Result<Message, MailError> {
    let mailbox = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|e| MailError::Message(format!("{a:?}: {e}")))
    };
    let mut b = Message::builder()
        .from(mailbox(&smtp.from)?)
        .subject(subject)
        .header(ContentType::TEXT_PLAIN);
    for a in to {
        b = b.to(mailbox(a)?);
    }
    b.body(body).map_err(|e| MailError::Message(e.to_string()))
}

pub(crate) fn send_twice(task: &TaskSpec, smtp: &Smtp, m: &Message) -> Result<(), MailError> {
    send(smtp, m).or_else(|e| {
        tracing::warn!(
            "task {}: a mail was not sent, trying again in {}s: {e}",
            task.name,
            RETRY_PAUSE.as_secs()
        );
        std::thread::sleep(RETRY_PAUSE);
        send(smtp, m)
    })
}

fn send(smtp: &Smtp, m: &Message) -> Result<(), MailError> {
    let failed = |source| MailError::Smtp {
        server: format!("{}:{}", smtp.host, smtp.port),
        source,
    };
    let tls = match smtp.security {
        SmtpSecurity::Plain => Tls::None,
        SmtpSecurity::Tls => Tls::Wrapper(TlsParameters::new(smtp.host.clone()).map_err(failed)?),
        SmtpSecurity::Starttls => {
            Tls::Required(TlsParameters::new(smtp.host.clone()).map_err(failed)?)
        }
    };
    let mut b = SmtpTransport::builder_dangerous(&smtp.host)
        .port(smtp.port)
        .tls(tls)
        .timeout(Some(TIMEOUT));
    if let (Some(user), Some(p)) = (&smtp.user, &smtp.password) {
        b = b.credentials(Credentials::new(user.clone(), password(p)?));
    }
    b.build().send(m).map(drop).map_err(failed)
}

/// The login password, from its command or variable (never in a message).
fn password(p: &Password) -> Result<String, MailError> {
    let cmd = match p {
        Password::Env(name) => {
            return std::env::var(name).map_err(|_| {
                MailError::Password(format!("the variable {name} (password_env) is not set"))
            })
        }
        Password::Command(cmd) => cmd,
    };
    let failed = |why: String| MailError::Password(format!("password_command `{cmd}` {why}"));
    let out = output_within(cmd, PASSWORD_TIMEOUT).map_err(failed)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return Err(failed(format!("failed ({}): {}", out.status, err.trim())));
    }
    let text = String::from_utf8(out.stdout).map_err(|_| failed("printed no text".into()))?;
    match text.lines().next() {
        Some(first) if !first.is_empty() => Ok(first.to_string()),
        _ => Err(failed("printed nothing".into())),
    }
}

/// How long `password_command` may take (a keyring that waits for a prompt nobody
/// answers must not hold the run, or the daemon's next one, forever).
const PASSWORD_TIMEOUT: Duration = Duration::from_secs(30);

/// The output of `sh -c cmd`, or why there is none: killed with its whole process group
/// when it has not ended within `limit`.
fn output_within(cmd: &str, limit: Duration) -> Result<std::process::Output, String> {
    let child = crate::sys::own_group(
        Command::new("sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .spawn()
    .map_err(|e| format!("could not be started: {e}"))?;
    let group = crate::sys::group_of(&child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.map_err(|e| format!("could not be read: {e}")),
        Err(_) => {
            crate::sys::kill_group(group);
            Err(format!(
                "did not end within {}s: it was killed",
                limit.as_secs()
            ))
        }
    }
}

/// Writes `email.json` for a mail not sent; a record that cannot be written is logged.
pub(crate) fn record_failure(task: &str, to: &[String], error: &str) {
    let dir = task_state_dir(task);
    let now = Timestamp::from_second(Timestamp::now().as_second()).unwrap_or(Timestamp::UNIX_EPOCH);
    let at = now.display_with_offset(TimeZone::system().to_offset(now));
    let record = json!({"at": at.to_string(), "error": error, "to": to});
    if let Err(e) = write_whole(&dir, EMAIL_FAILURE_FILE, &record.to_string()) {
        let path = dir.join(EMAIL_FAILURE_FILE);
        tracing::warn!(
            "could not record the mail's failure in {}: {e}",
            path.display()
        );
    }
}

fn clear_failure(task: &str) {
    let path = task_state_dir(task).join(EMAIL_FAILURE_FILE);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            tracing::warn!("could not remove {}: {e}", path.display());
        }
        _ => {}
    }
}

/// `dir/name` written to a new file, synced, then renamed over the old one: a reader sees
/// a whole record, never half of one.
fn write_whole(dir: &Path, name: &str, text: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!("{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    writeln!(f, "{text}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(name))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_password_command_that_hangs_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let cmd = format!("sleep 100 & echo $! > {}; wait", pid_file.display());
        let started = std::time::Instant::now();
        let err = output_within(&cmd, Duration::from_millis(300)).unwrap_err();
        assert!(err.contains("did not end within"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let gone = |pid: &str| {
            std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).map_or(true, |s| {
                s.rsplit_once(") ").is_some_and(|(_, r)| r.starts_with('Z'))
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !gone(&pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(gone(&pid), "the command's child {pid} still runs");
        let out = output_within("echo secret", Duration::from_secs(10)).unwrap();
        assert_eq!(out.stdout, b"secret\n");
    }
}
