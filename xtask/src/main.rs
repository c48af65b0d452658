//! Developer tasks (`cargo xtask ...`).

fn main() {}
