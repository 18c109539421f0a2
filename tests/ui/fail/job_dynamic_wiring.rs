use orch::prelude::*;

#[op]
fn list_files() -> Dynamic<String> {
    Dynamic::new()
}

#[op]
fn clean(file: &String) -> String {
    file.trim().to_owned()
}

#[op]
fn process(file: &String, other: &String) -> usize {
    file.len() + other.len()
}

#[op]
fn other() -> String {
    String::new()
}

// A mapped op takes the element itself, once; anything else is not wiring.
#[job]
fn pipeline() {
    let files = list_files();
    let o = other();
    files.map(|f| process(clean(f), o));
    files.map(|f| process(o, o));
    files.map(|f| process(f, f));
    files.map(|a, b| process(a, b));
    files.map(process, o);
    files.map(|f| process(f, o)).collect().named("all");
}

fn main() {}
