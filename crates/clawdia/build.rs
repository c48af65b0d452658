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
    // The list is copied into OUT_DIR and linked from there: a build cache shared by two
    // checkouts (CI reuses one across clones) may replay this script's output from the other
    // checkout without running it again, and a path into that checkout would break the link
    // once it is gone; OUT_DIR lives in the cache itself.
    let (Ok(manifest_dir), Ok(out_dir)) = (std::env::var("CARGO_MANIFEST_DIR"), std::env::var("OUT_DIR"))
    else {
        return;
    };
    let Ok(order) = std::fs::read(std::path::Path::new(&manifest_dir).join("startup.order")) else {
        return;
    };
    let copy = std::path::Path::new(&out_dir).join("startup.order");
    if std::fs::write(&copy, order).is_err() {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", copy.display());
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}
