//! The library's version: macros for the header (compile time) and
//! `oncelog_version()` (run time), so a program can check that the library it loaded
//! is the one it was compiled against.

use std::ffi::c_char;

use crate::panic::infallible;

/// Major version of the header. The shared library's SONAME carries it
/// (`liboncelog.so.<major>`); it changes only when the ABI breaks (docs/ABI.md).
pub const ONCELOG_VERSION_MAJOR: u32 = 0;
/// Minor version of the header: raised when functions, codes or config keys are
/// added.
pub const ONCELOG_VERSION_MINOR: u32 = 1;
/// Patch version of the header: fixes only.
pub const ONCELOG_VERSION_PATCH: u32 = 0;

/// The version of the loaded library, "MAJOR.MINOR.PATCH". A static string: never
/// freed, never NULL.
#[no_mangle]
pub extern "C" fn oncelog_version() -> *const c_char {
    const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    infallible(VERSION.as_ptr().cast(), || VERSION.as_ptr().cast())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_macros_and_the_string_follow_cargo_toml() {
        let parse = |s: &str| s.parse::<u32>().unwrap();
        assert_eq!(
            ONCELOG_VERSION_MAJOR,
            parse(env!("CARGO_PKG_VERSION_MAJOR"))
        );
        assert_eq!(
            ONCELOG_VERSION_MINOR,
            parse(env!("CARGO_PKG_VERSION_MINOR"))
        );
        assert_eq!(
            ONCELOG_VERSION_PATCH,
            parse(env!("CARGO_PKG_VERSION_PATCH"))
        );
        // SAFETY: a static NUL-terminated string.
        let v = unsafe { std::ffi::CStr::from_ptr(oncelog_version()) };
        assert_eq!(
            v.to_str().unwrap(),
            format!("{ONCELOG_VERSION_MAJOR}.{ONCELOG_VERSION_MINOR}.{ONCELOG_VERSION_PATCH}")
        );
    }
}
