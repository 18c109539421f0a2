// A three-asset cycle through modules in separate files: a -> b -> c -> a.
#[path = "cycle_files/first.rs"]
mod first;
#[path = "cycle_files/second.rs"]
mod second;
#[path = "cycle_files/third.rs"]
mod third;

fn main() {}
