//! "Did you mean" suggestions for misspelled names.

/// The candidate closest to `input`, if it is close enough to be a likely typo.
pub fn closest<I, S>(input: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::jaro_winkler(input, c.as_ref()),
                c.as_ref().to_owned(),
            )
        })
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0).then_with(|| b.1.cmp(&a.1)))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn suggests_near_misses_only() {
        let names = ["users_cleaned", "api_users_raw", "report"];
        assert_eq!(
            super::closest("user_cleaned", names).as_deref(),
            Some("users_cleaned")
        );
        assert_eq!(super::closest("reprot", names).as_deref(), Some("report"));
        assert_eq!(super::closest("zzz", names), None);
    }
}
