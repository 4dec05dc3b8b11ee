//! Flakes for envy (work in progress).
