//! Encrypted profile store (in progress).
