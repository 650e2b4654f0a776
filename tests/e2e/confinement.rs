//! Confinement (DESIGN.md invariant 6): nothing outside the two roots is read or written.
