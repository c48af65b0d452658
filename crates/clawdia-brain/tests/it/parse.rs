//! Parser integration tests.
