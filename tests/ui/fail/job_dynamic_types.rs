use orch::prelude::*;

#[op]
fn list_files() -> Dynamic<String> {
    Dynamic::new()
}

#[op]
fn count() -> u32 {
    3
}

#[op]
fn by_size(size: &u64) -> u64 {
    *size
}

#[op]
fn shorten(file: &String) -> usize {
    file.len()
}

#[op]
fn sum(sizes: &Vec<u64>) -> u64 {
    sizes.iter().sum()
}

/// Not `Clone`: its elements cannot be copied into a `Vec`.
struct Handle(u8);

#[op(io_manager = "memory")]
fn open(file: &String) -> Handle {
    Handle(file.len() as u8)
}

#[op(io_manager = "memory")]
fn close_all(handles: &Vec<Handle>) -> u8 {
    handles.iter().map(|h| h.0).sum()
}

// `.map` needs a `Dynamic`; the element must fit the mapped op's input; `.collect()` copies
// the elements, so they must be `Clone`; and a collected `Vec` has the op's output type.
#[job]
fn pipeline() {
    let files = list_files();
    count().map(shorten);
    files.map(by_size);
    sum(files.map(shorten).collect());
    close_all(files.map(open).collect());
}

fn main() {}
