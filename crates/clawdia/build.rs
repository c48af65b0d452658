//! The release link lays out the functions that start-up and an idle daemon run next to each
//! other. Most of an idle gateway's memory is pages of this binary mapped from the page cache,
//! and the kernel maps code in 64 KiB windows around each page that runs: start-up code spread
//! over 22 MB of `.text` kept about 10 MB of it resident. `startup.order` (made by
//! `scripts/startup-order.sh`) lists those functions for lld's `--symbol-ordering-file`; a name
//! the build no longer has is skipped, so a stale list costs memory, never correctness. Only for
//! x86_64 Linux with glibc, where rustc links with its own lld by default.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=startup.order");
    let var = |key: &str| std::env::var(key).unwrap_or_default();
    let target = (var("CARGO_CFG_TARGET_ARCH"), var("CARGO_CFG_TARGET_OS"), var("CARGO_CFG_TARGET_ENV"));
    if var("PROFILE") != "release" || target != ("x86_64".into(), "linux".into(), "gnu".into()) {
        return;
    }
    let order = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("startup.order");
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}
