//! Integration tests of the brain: the database and search (`db`), the dream cycle's bookkeeping
//! (`dream`), the parsers (`parse`).

mod db;
mod dream;
mod import;
mod parse;
