//! Fuzzing of the printed-name escaping and its inverse (issue 20): `tandem resolve` reads
//! back names as tandem printed them, so the two must agree on every name, and the inverse
//! must survive whatever a user types.
#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use tandem_core::{escape_bytes, unescape_bytes};

/// Text dense in backslashes and in the letters that follow them in escapes.
fn escape_like() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            Just("\\".to_string()),
            Just("\\x".to_string()),
            Just("\\u{".to_string()),
            Just("}".to_string()),
            "[0-9a-fA-FxunrtqZ{}]",
            any::<char>().prop_map(String::from),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn issue_20_escape_then_unescape_gives_back_any_name(name in proptest::collection::vec(any::<u8>(), 0..64)) {
        let printed = escape_bytes(&name);
        prop_assert!(!printed.chars().any(|c| c.is_control()), "{printed:?}");
        prop_assert_eq!(unescape_bytes(&printed), Some(name));
    }

    #[test]
    fn issue_20_escape_then_unescape_gives_back_any_text_name(name in any::<String>()) {
        prop_assert_eq!(unescape_bytes(&escape_bytes(name.as_bytes())), Some(name.into_bytes()));
    }

    /// Never panics, and never yields more bytes than it was given (no escape expands).
    #[test]
    fn issue_20_unescape_takes_any_text(s in prop_oneof![escape_like(), any::<String>()]) {
        if let Some(bytes) = unescape_bytes(&s) {
            prop_assert!(bytes.len() <= s.len());
            // What it read is printed back to the same bytes.
            prop_assert_eq!(unescape_bytes(&escape_bytes(&bytes)), Some(bytes));
        }
    }
}
