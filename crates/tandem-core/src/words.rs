//! The words users type for `Direction`, `Flavor` and `Policy`, in one place: command-line
//! flags, the task configuration and `resolve` parse with `FromStr` and print with
//! `Display`, so a word means the same thing wherever it is written.

use std::fmt;
use std::str::FromStr;

use crate::entry::Side;
use crate::plan::{Direction, Flavor, Policy};

/// How much of the machine a task's run may take: its CPU nice value and I/O class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Priority {
    /// As started: nothing changed.
    #[default]
    Normal,
    /// nice 10, best-effort I/O at level 7 (the lowest).
    Low,
    /// nice 19, idle I/O class: disk time only when no one else wants it.
    Idle,
}

/// A word that names none of a setting's values.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{word:?} is not a {setting} (use {})", expected.join(", "))]
pub struct UnknownWord {
    pub setting: &'static str,
    pub word: String,
    pub expected: &'static [&'static str],
}

/// A setting spelled as words: each value, its word and what it means.
pub trait Words: Copy + Sized + 'static {
    /// What the setting is called in messages ("direction", "conflict policy").
    const SETTING: &'static str;
    /// Every value with its word and a one-line meaning, in the order help lists them.
    const ALL: &'static [(Self, &'static str, &'static str)];
    /// Every word, in the order of `ALL`.
    const WORDS: &'static [&'static str];
}

/// The word of `value` in `T::ALL`.
fn word_of<T: Words + PartialEq>(value: T) -> &'static str {
    T::ALL
        .iter()
        .find(|(v, _, _)| *v == value)
        .map_or("?", |(_, w, _)| w)
}

fn parse_word<T: Words>(s: &str) -> Result<T, UnknownWord> {
    T::ALL
        .iter()
        .find(|(_, w, _)| *w == s)
        .map(|(v, _, _)| *v)
        .ok_or_else(|| UnknownWord {
            setting: T::SETTING,
            word: s.to_string(),
            expected: T::WORDS,
        })
}

macro_rules! words {
    ($ty:ty, $setting:literal, [$(($value:expr, $word:literal, $meaning:literal)),+ $(,)?]) => {
        impl Words for $ty {
            const SETTING: &'static str = $setting;
            const ALL: &'static [(Self, &'static str, &'static str)] =
                &[$(($value, $word, $meaning)),+];
            const WORDS: &'static [&'static str] = &[$($word),+];
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(word_of(*self))
            }
        }

        impl FromStr for $ty {
            type Err = UnknownWord;

            fn from_str(s: &str) -> Result<Self, UnknownWord> {
                parse_word(s)
            }
        }
    };
}

words!(
    Direction,
    "direction",
    [
        (Direction::Both, "both", "Changes flow both ways"),
        (Direction::Push, "push", "Source to target only"),
        (Direction::Pull, "pull", "Target to source only"),
    ]
);

words!(
    Flavor,
    "mode",
    [
        (
            Flavor::Safe,
            "safe",
            "The receiving side's own changes are left and reported"
        ),
        (
            Flavor::Replica,
            "replica",
            "The receiving side is made an exact copy (its own changes go to its trash)"
        ),
    ]
);

words!(
    Policy,
    "conflict policy",
    [
        (
            Policy::KeepBoth,
            "keep-both",
            "The newer version keeps the name; the other is kept as NAME.conflict-...-SIDE.EXT"
        ),
        (
            Policy::Newest,
            "newest",
            "The newer version wins; the other goes to trash"
        ),
        (
            Policy::Source,
            "source",
            "The source wins; the target's version goes to trash"
        ),
        (
            Policy::Target,
            "target",
            "The target wins; the source's version goes to trash"
        ),
        (
            Policy::Flag,
            "flag",
            "Leave both sides as they are and list the conflict"
        ),
    ]
);

impl Policy {
    /// The policy that keeps one side's version (`tandem resolve --keep source|target`), or
    /// both (`None`).
    pub fn keeping(side: Option<Side>) -> Policy {
        match side {
            Some(Side::Source) => Policy::Source,
            Some(Side::Target) => Policy::Target,
            None => Policy::KeepBoth,
        }
    }
}

words!(
    Priority,
    "priority",
    [
        (Priority::Normal, "normal", "As started: nothing changed"),
        (
            Priority::Low,
            "low",
            "nice 10 and best-effort I/O at level 7, for the whole run and its hooks"
        ),
        (
            Priority::Idle,
            "idle",
            "nice 19 and the idle I/O class, for the whole run and its hooks"
        ),
    ]
);

/// Which runs of a task are mailed to its `notify_email` addresses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NotifyWhen {
    /// Every run.
    Always,
    /// Runs that did not end in sync: conflicts, problems, failed, halted, skipped.
    #[default]
    Problems,
    /// Runs that did not sync: failed, halted, skipped.
    Failure,
}

words!(
    NotifyWhen,
    "notify-when",
    [
        (NotifyWhen::Always, "always", "Mail the result of every run"),
        (
            NotifyWhen::Problems,
            "problems",
            "Mail a run with conflicts, problems, or one that failed, halted or was skipped"
        ),
        (
            NotifyWhen::Failure,
            "failure",
            "Mail a run that failed, halted or was skipped"
        ),
    ]
);

/// How the connection to the mail server is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// TLS from the first byte (port 465).
    Tls,
    /// A plain connection upgraded with STARTTLS, refused if the server cannot (port 587).
    #[default]
    Starttls,
    /// No encryption at all (port 25): only for a server on this machine or network.
    Plain,
}

words!(
    SmtpSecurity,
    "security",
    [
        (
            SmtpSecurity::Tls,
            "tls",
            "TLS from the first byte (port 465)"
        ),
        (
            SmtpSecurity::Starttls,
            "starttls",
            "A plain connection upgraded with STARTTLS, which the server must offer (port 587)"
        ),
        (
            SmtpSecurity::Plain,
            "plain",
            "No encryption (port 25): for a server on this machine or a trusted network"
        ),
    ]
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn round_trip<T: Words + PartialEq + fmt::Debug + fmt::Display + FromStr>() {
        for (value, word, _) in T::ALL {
            assert_eq!(value.to_string(), *word);
            assert_eq!(word.parse::<T>().ok(), Some(*value));
        }
        assert_eq!(T::ALL.len(), T::WORDS.len());
    }

    #[test]
    fn every_word_round_trips() {
        round_trip::<Direction>();
        round_trip::<Flavor>();
        round_trip::<Policy>();
        round_trip::<NotifyWhen>();
        round_trip::<SmtpSecurity>();
    }

    #[test]
    fn an_unknown_word_names_the_setting_and_the_words() {
        let e = "keepboth".parse::<Policy>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "\"keepboth\" is not a conflict policy (use keep-both, newest, source, target, flag)"
        );
        assert!("Both".parse::<Direction>().is_err());
    }
}
