//! Bad input: a clear message, exit 2 or 3, nothing changed.
