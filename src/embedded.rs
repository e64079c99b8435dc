//! Data compiled into the binary: the built-in `stacks/` and the output `schemas/`.

use include_dir::{Dir, include_dir};

static STACKS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/stacks");
/// The schemas as written, for the test that holds the JSON to them.
#[cfg(test)]
static SCHEMAS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/schemas");

/// `(path relative to stacks/ with '/', text)` of every built-in stack file, sorted.
pub fn stack_files() -> Vec<(String, &'static str)> {
    files(&STACKS)
}

/// Every embedded schema by its file name in `schemas/`, sorted, as build.rs
/// wrote them: JSON.
pub fn schemas() -> serde_json::Map<String, serde_json::Value> {
    serde_json::from_str(include_str!(concat!(env!("OUT_DIR"), "/schemas.json")))
        .expect("build.rs writes the schemas as one JSON object")
}

/// `(path relative to schemas/ with '/', text)` of every embedded schema, sorted.
#[cfg(test)]
pub fn schema_files() -> Vec<(String, &'static str)> {
    files(&SCHEMAS)
}

fn files(root: &'static Dir<'static>) -> Vec<(String, &'static str)> {
    fn walk(dir: &'static Dir<'static>, out: &mut Vec<(String, &'static str)>) {
        for file in dir.files() {
            let text = file
                .contents_utf8()
                .expect("embedded data files are UTF-8: they are part of this repository");
            out.push((file.path().to_string_lossy().replace('\\', "/"), text));
        }
        for sub in dir.dirs() {
            walk(sub, out);
        }
    }
    let mut out = Vec::new();
    walk(root, &mut out);
    out.sort();
    out
}
