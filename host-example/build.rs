//! Embeds the release store component (`scripts/build.sh` builds it first)
//! into the library, so the CLI, the examples and any crate that depends on
//! this one carry it: nothing has to be installed beside them.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LD_DYNAMODB_COMPONENT_BUILD");
    let path = match std::env::var_os("LD_DYNAMODB_COMPONENT_BUILD") {
        Some(path) => PathBuf::from(path),
        None => PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"))
            .join("../target/component/ld_dynamodb_store.wasm"),
    };
    if !path.is_file() {
        panic!(
            "the store component {} is not built: run scripts/build.sh in the ld-dynamodb-store \
             repository first (it builds target/component/ld_dynamodb_store.wasm), or set \
             LD_DYNAMODB_COMPONENT_BUILD to a built component",
            path.display()
        );
    }
    let path = path.canonicalize().expect("the component's path");
    println!("cargo:rerun-if-changed={}", path.display());
    println!(
        "cargo:rustc-env=LD_DYNAMODB_EMBEDDED_COMPONENT={}",
        path.display()
    );
}
