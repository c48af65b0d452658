//! Integration tests of the brain: the database and search (`db`), the parsers (`parse`).

mod db;
mod parse;
