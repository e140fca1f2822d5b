//! Gives the shared library its SONAME, `liboncelog.so.<major>`: programs linked
//! against it load any later library of the same major version.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").expect("cargo sets it");
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,liboncelog.so.{major}");
    println!("cargo:rerun-if-changed=build.rs");
}
