//! Integration tests of the composition root: a gateway built from a real config in a temporary
//! home (real SQLite files), talking to the scriptable mock LLM over loopback HTTP.

mod dream;
