//! Link options of the release binary that keep an idle daemon small. Most of an idle
//! gateway's memory is pages of this binary mapped from the page cache, not heap: the dynamic
//! loader reads every relocation at start-up, and the kernel maps code in 64 KiB windows
//! around each page start-up and the idle loop touch. So: relocations in the compact RELR form
//! (`-z pack-relative-relocs`: the binary needs glibc 2.36 or later, Debian 12's), and the
//! functions start-up and an idle daemon run laid out next to each other
//! (`--symbol-ordering-file startup.order`, made by `scripts/startup-order.sh`; a name the build
//! no longer has is skipped, so a stale list only costs memory, never correctness).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=startup.order");
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    if !(release && linux) {
        return;
    }
    println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    let order = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("startup.order");
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", order.display());
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}
