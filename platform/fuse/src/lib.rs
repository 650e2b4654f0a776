//! tandem's passthrough filesystem, mounted over the source folder.
//!
//! Serves the source directory from a directory fd opened before the mount hid it, and
//! reports every mutating operation as a `tandem_core::Change` to a `ChangeSink`. It never
//! decides anything about syncing; it must behave exactly like the plain folder
//! (DESIGN.md invariant 7).
