//! The plan file as the user wrote it: serde types, source text, spans and diagnostics.
