//! The host's compile cache: the first load compiles and stores the artifact,
//! later loads use it, and a damaged artifact is compiled again and replaced.

use std::path::PathBuf;

use ld_dynamodb_host::embed::{default_component_path, Runtime};

fn component() -> PathBuf {
    std::env::var_os("LD_DYNAMODB_COMPONENT")
        .map(PathBuf::from)
        .unwrap_or_else(default_component_path)
}

fn artifacts(dir: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn compiled_components_are_cached_and_damaged_ones_replaced() {
    let dir = std::env::temp_dir().join(format!("ld-dynamodb-cache-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let imports = Runtime::load_with_cache(&component(), Some(&dir))
        .unwrap()
        .imports();
    let stored = artifacts(&dir);
    assert_eq!(stored.len(), 1, "one artifact: {stored:?}");
    assert!(stored[0].extension().is_some_and(|e| e == "cwasm"));
    let modified = std::fs::metadata(&stored[0]).unwrap().modified().unwrap();

    let second = Runtime::load_with_cache(&component(), Some(&dir)).unwrap();
    assert_eq!(second.imports(), imports);
    // A loaded artifact is mapped into memory: damage the file only once it is dropped.
    drop(second);
    assert_eq!(
        std::fs::metadata(&stored[0]).unwrap().modified().unwrap(),
        modified,
        "reused, not rewritten"
    );

    std::fs::write(&stored[0], b"not a compiled component").unwrap();
    let third = Runtime::load_with_cache(&component(), Some(&dir)).unwrap();
    assert_eq!(third.imports(), imports);
    assert!(
        std::fs::read(&stored[0]).unwrap().len() > 1000,
        "the damaged artifact was replaced"
    );
    assert_eq!(artifacts(&dir).len(), 1, "no temporary files left");
    std::fs::remove_dir_all(&dir).unwrap();
}
