//! The default code version: a stable hash of the function's tokens.

/// FNV-1a, 64-bit: stable across compilers and platforms (unlike `DefaultHasher`), so a code
/// version only changes when the code does.
pub(crate) fn code_version(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn stable_and_sensitive() {
        assert_eq!(super::code_version(""), "cbf29ce484222325");
        assert_eq!(super::code_version("a"), "af63dc4c8601ec8c");
        assert_ne!(
            super::code_version("fn a() {}"),
            super::code_version("fn a() { }x")
        );
    }
}
