//! Rebuild when embedded data changes (`include_dir!` does not tell cargo
//! which files it read), and write the output schemas as JSON: reading JSON
//! costs a tenth of reading YAML, and the schemas are read on every run.
//! A unit test (`verify::tests`) holds the JSON equal to what kmetal reads
//! from the YAML itself.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=stacks");
    println!("cargo:rerun-if-changed=schemas");
    let mut names: Vec<String> = std::fs::read_dir("schemas")
        .expect("schemas/ is part of this repository")
        .map(|entry| entry.expect("schemas/ can be listed").file_name())
        .map(|name| name.to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    names.sort();
    let mut all = serde_json::Map::new();
    for name in names {
        let text = std::fs::read_to_string(Path::new("schemas").join(&name))
            .unwrap_or_else(|e| panic!("schemas/{name}: {e}"));
        let options = serde_saphyr::options! {
            strict_booleans: true,
            leading_zero_numbers_as_strings: true,
        };
        let schema: serde_json::Value = serde_saphyr::from_str_with_options(&text, options)
            .unwrap_or_else(|e| panic!("schemas/{name} is not YAML: {e}"));
        all.insert(name, schema);
    }
    let out =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("schemas.json");
    let json = serde_json::to_string(&all).expect("a JSON value is written");
    std::fs::write(&out, json).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
