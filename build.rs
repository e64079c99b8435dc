//! Rebuild when embedded data changes: `include_dir!` does not tell cargo which files it read.
fn main() {
    println!("cargo:rerun-if-changed=stacks");
    println!("cargo:rerun-if-changed=schemas");
}
