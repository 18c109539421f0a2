//! Compile-time checks: every graph or signature mistake is a compile error at the token to
//! fix. Regenerate the pinned `.stderr` files with `TRYBUILD=overwrite cargo test --test ui`
//! and review them by eye; they are tied to the toolchain in `rust-toolchain.toml`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
