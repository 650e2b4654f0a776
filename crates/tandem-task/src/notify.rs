//! Who is mailed a task's result (`notify_email`, `notify_when`) and through which server
//! (the config file's `[smtp]` table): read and checked with the rest of the config, every
//! problem placed at its file, line and key. Sending is `mail`.

use std::str::FromStr;

use lettre::message::Mailbox;
use tandem_core::{NotifyWhen, SmtpSecurity};
use toml_edit::{Item, Table};

use crate::error::{Problem, TaskError};
use crate::read::{string, strings, word, Reader};
use crate::spec::TaskSpec;

/// The keys of the `[smtp]` table.
pub const SMTP_KEYS: &[&str] = &[
    "host",
    "port",
    "security",
    "user",
    "password_command",
    "password_env",
    "from",
];

/// A task's mail settings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    /// The addresses, as written (each one parses as a mailbox).
    pub to: Vec<String>,
    pub when: NotifyWhen,
    /// The config's `[smtp]` table: always there for a task with addresses.
    pub smtp: Option<Smtp>,
}

impl Notify {
    /// Whether a run whose result is `result` (`TaskReport::result`) is mailed.
    pub fn wants(&self, result: &str) -> bool {
        match self.when {
            NotifyWhen::Always => true,
            NotifyWhen::Problems => result != "ok",
            NotifyWhen::Failure => matches!(result, "failed" | "halted" | "skipped"),
        }
    }
}

/// The mail server, from the `[smtp]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Smtp {
    pub host: String,
    /// Given, or the security's usual port (465, 587, 25).
    pub port: u16,
    pub security: SmtpSecurity,
    /// Log in as this user (with the password), or not at all.
    pub user: Option<String>,
    pub password: Option<Password>,
    /// The sender, as written (it parses as a mailbox).
    pub from: String,
}

/// Where the login password comes from: never the config file itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Password {
    /// `sh -c COMMAND`, the first line of its output (`pass show mail`, `secret-tool ...`).
    Command(String),
    /// An environment variable of the process that runs the task.
    Env(String),
}

/// Reads the `[smtp]` table; `line` is its header's.
pub(crate) fn read_smtp(r: &Reader, item: &Item, line: Option<usize>) -> Result<Smtp, TaskError> {
    let Some(t) = item.as_table() else {
        let expected = "a table, written [smtp]";
        return Err(r.error(line, None, "smtp", Problem::WrongType { expected }));
    };
    let mut smtp = Smtp {
        host: String::new(),
        port: 0,
        security: SmtpSecurity::default(),
        user: None,
        password: None,
        from: String::new(),
    };
    for (key, item) in t.iter() {
        let at = r.line(t.key(key).and_then(|k| k.span())).or(line);
        read_smtp_value(&mut smtp, key, item)
            .map_err(|p| r.error(at, None, &format!("smtp.{key}"), p))?;
    }
    check_smtp(&smtp, t).map_err(|(key, p)| {
        let at = r.line(t.key(key).and_then(|k| k.span())).or(line);
        r.error(at, None, &format!("smtp.{key}"), p)
    })?;
    if smtp.port == 0 {
        smtp.port = match smtp.security {
            SmtpSecurity::Tls => 465,
            SmtpSecurity::Starttls => 587,
            SmtpSecurity::Plain => 25,
        };
    }
    Ok(smtp)
}

fn read_smtp_value(smtp: &mut Smtp, key: &str, item: &Item) -> Result<(), Problem> {
    let text = |item| -> Result<String, Problem> {
        let s = string(item)?;
        if s.trim().is_empty() {
            return Err(Problem::Value("is empty".to_string()));
        }
        Ok(s.to_string())
    };
    match key {
        "host" => smtp.host = text(item)?,
        "port" => {
            let n = item.as_integer().ok_or(Problem::WrongType {
                expected: "a port number, 1 to 65535",
            })?;
            smtp.port = u16::try_from(n)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| Problem::Value(format!("{n} is not a port number (1 to 65535)")))?;
        }
        "security" => smtp.security = word(item)?,
        "user" => smtp.user = Some(text(item)?),
        "password_command" => smtp.password = Some(Password::Command(text(item)?)),
        "password_env" => smtp.password = Some(Password::Env(text(item)?)),
        "from" => smtp.from = address(string(item)?)?,
        _ => {
            return Err(Problem::UnknownKey {
                known: SMTP_KEYS.join(", "),
            })
        }
    }
    Ok(())
}

/// What the table needs as a whole: a host, a sender, and a password for a user.
fn check_smtp(smtp: &Smtp, t: &Table) -> Result<(), (&'static str, Problem)> {
    for key in ["host", "from"] {
        if !t.contains_key(key) {
            return Err((key, Problem::Missing));
        }
    }
    if t.contains_key("password_command") && t.contains_key("password_env") {
        let why = "give password_command or password_env, not both";
        return Err(("password_env", Problem::Value(why.to_string())));
    }
    match (&smtp.user, &smtp.password) {
        (Some(_), None) => Err((
            "user",
            Problem::Value("needs password_command or password_env to log in".to_string()),
        )),
        (None, Some(p)) => Err((
            match p {
                Password::Command(_) => "password_command",
                Password::Env(_) => "password_env",
            },
            Problem::Value("a password needs a user to log in as".to_string()),
        )),
        _ => Ok(()),
    }
}

/// `notify_email`: one address or a list, each one checked.
pub(crate) fn addresses(item: &Item) -> Result<Vec<String>, Problem> {
    let list = match item.as_str() {
        Some(one) => vec![one.to_string()],
        None => strings(item)?,
    };
    if list.is_empty() {
        let why = "lists no address (remove the key for no mail)";
        return Err(Problem::Value(why.to_string()));
    }
    list.iter().map(|a| address(a)).collect()
}

fn address(a: &str) -> Result<String, Problem> {
    Mailbox::from_str(a).map_err(|e| {
        Problem::Value(format!(
            "{a:?} is not a mail address ({e}): write name@example.org or \"Name <name@example.org>\""
        ))
    })?;
    Ok(a.to_string())
}

/// Gives each task that mails its results the `[smtp]` table; a task with addresses and
/// no table is an error at its `notify_email`.
pub(crate) fn attach_smtp(tasks: &mut [TaskSpec], smtp: Option<&Smtp>) -> Result<(), TaskError> {
    for t in tasks.iter_mut().filter(|t| !t.notify.to.is_empty()) {
        let Some(smtp) = smtp else {
            let why = "mail needs an [smtp] table in the config file (host, from, ...: see README, Email)";
            return Err(t.invalid("notify_email", Problem::Value(why.to_string())));
        };
        t.notify.smtp = Some(smtp.clone());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_when_picks_results() {
        let results = ["ok", "conflicts", "problems", "failed", "halted", "skipped"];
        let table = [
            (NotifyWhen::Always, [true, true, true, true, true, true]),
            (NotifyWhen::Problems, [false, true, true, true, true, true]),
            (NotifyWhen::Failure, [false, false, false, true, true, true]),
        ];
        for (when, wanted) in table {
            let n = Notify {
                when,
                ..Notify::default()
            };
            for (result, want) in results.iter().zip(wanted) {
                assert_eq!(n.wants(result), want, "{when} {result}");
            }
        }
    }
}
