//! Database and search integration tests.
