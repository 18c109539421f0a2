//! Tuple outputs in op jobs: `let (rows, errors) = split_rows();` gives one handle per part,
//! a part that is a `Dynamic` can be mapped and collected, and a part whose copy panics fails
//! its consumer while the run goes on.

use orch::AssetStatus;
use orch::prelude::*;
use orch::testing::execute_job;

// --- tuple outputs: one handle per part ---------------------------------------------------------

#[op]
fn split_rows() -> (Vec<i64>, Vec<String>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for raw in ["1", "x", "3", "y", "5"] {
        match raw.parse() {
            Ok(n) => good.push(n),
            Err(_) => bad.push(raw.to_owned()),
        }
    }
    (good, bad)
}

#[op]
fn sum_rows(rows: &Vec<i64>) -> i64 {
    rows.iter().sum()
}

#[op]
fn report(errors: Vec<String>, total: &i64) -> String {
    format!("{total}, rejected {}", errors.join("+"))
}

#[op]
fn whole(parts: &(Vec<i64>, Vec<String>)) -> usize {
    parts.0.len() + parts.1.len()
}

#[job]
fn splitting() {
    let (rows, errors) = split_rows();
    report(errors, sum_rows(rows));
    let (_, again) = split_rows().named("split_again");
    report(again, sum_rows(rows)).named("report_again");
    whole(split_rows());
}

#[test]
fn a_tuple_output_gives_one_handle_per_part() {
    let result = execute_job::<splitting>().run().unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    assert_eq!(result.output::<report>(), "9, rejected x+y");
    assert_eq!(
        result
            .step_output::<String>("report_again")
            .map(String::as_str),
        Some("9, rejected x+y")
    );
    assert_eq!(*result.output::<whole>(), 5);
    // One step per call; its consumers read the parts of its one output.
    let job = orch::jobs::op_job("splitting").unwrap();
    let report = job.step("report").unwrap();
    let ups: Vec<&str> = job
        .graph()
        .node(report)
        .inputs
        .iter()
        .map(|&u| job.step_name(u))
        .collect();
    assert_eq!(ups, ["split_rows", "sum_rows"]);
}

// --- adapters on adapters: a tuple part that is a `Dynamic`, mapped and collected -----------

#[op]
fn listing() -> Result<(Dynamic<String>, u32), BoxError> {
    let names = Dynamic::try_from_keyed([("x", "ab".to_owned()), ("y", "cde".to_owned())])?;
    Ok((names, 10))
}

#[op]
fn length(name: &String) -> usize {
    name.len()
}

#[op]
fn lengths_plus(lengths: &Vec<usize>, base: &u32) -> usize {
    lengths.iter().sum::<usize>() + *base as usize
}

#[op]
fn all_names(names: &Vec<String>) -> String {
    names.join(",")
}

#[job]
fn parts_and_maps() {
    let (names, base) = listing();
    lengths_plus(names.map(length).collect(), base);
    all_names(names.collect());
}

#[test]
fn a_tuple_part_can_be_mapped_and_collected() {
    let result = execute_job::<parts_and_maps>().run().unwrap();
    assert!(result.success(), "{:?}", result.outcomes());
    assert_eq!(*result.output::<lengths_plus>(), 15);
    assert_eq!(result.output::<all_names>(), "ab,cde");
}

// --- a part that cannot be copied fails its consumer, and the run goes on ------------------------

/// A part whose copy panics.
#[derive(Debug)]
struct Fragile;

impl Clone for Fragile {
    fn clone(&self) -> Self {
        panic!("cannot copy this")
    }
}

#[op(io_manager = "memory")]
fn fragile_pair() -> (Fragile, u8) {
    (Fragile, 1)
}

#[op(io_manager = "memory")]
fn use_fragile(_part: &Fragile) -> u8 {
    1
}

#[op]
fn use_number(n: &u8) -> u8 {
    n + 1
}

#[job]
fn fragile() {
    let (part, n) = fragile_pair();
    use_fragile(part);
    use_number(n);
}

#[test]
fn a_part_whose_copy_panics_fails_its_consumer_and_the_run_ends() {
    let result = execute_job::<fragile>().run().unwrap();
    assert!(!result.success());
    let AssetStatus::Failed(error) = &result.outcome("fragile/use_fragile").unwrap().status else {
        panic!("{:?}", result.outcomes())
    };
    let text = error.to_string();
    assert!(
        text.contains("could not pass input `fragile/fragile_pair` on"),
        "{text}"
    );
    assert!(text.contains("cannot copy this"), "{text}");
    assert_eq!(*result.output::<use_number>(), 2);
}
