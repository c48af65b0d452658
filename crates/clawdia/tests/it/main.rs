//! End-to-end tests of the real binary (filled in below).
