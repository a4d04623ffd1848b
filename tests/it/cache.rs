//! The host's compile cache: the first load compiles and stores the artifact,
//! later loads use it, and a damaged artifact is compiled again and replaced.

use std::path::PathBuf;

use ld_dynamodb_host::embed::Runtime;
use ld_dynamodb_tests::component_path as component;

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

#[test]
fn the_cache_folder_is_private_and_a_shared_one_is_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let root = std::env::temp_dir().join(format!("ld-dynamodb-cache-perm-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);

    // A new folder is created private.
    let fresh = root.join("fresh/nested");
    Runtime::load_with_cache(&component(), Some(&fresh)).unwrap();
    assert_eq!(
        std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777,
        0o700
    );

    // A folder others can write to is refused before anything is loaded from it.
    let shared = root.join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let err = Runtime::load_with_cache(&component(), Some(&shared))
        .err()
        .expect("refused");
    assert!(
        format!("{err:#}").contains("writable by other users"),
        "{err:#}"
    );
    assert!(artifacts(&shared).is_empty());

    // So is a folder that belongs to another user (the tests may run as root).
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } == 0 {
        let foreign = root.join("foreign");
        std::fs::create_dir_all(&foreign).unwrap();
        std::os::unix::fs::chown(&foreign, Some(4242), Some(4242)).unwrap();
        assert_eq!(std::fs::metadata(&foreign).unwrap().uid(), 4242);
        let err = Runtime::load_with_cache(&component(), Some(&foreign))
            .err()
            .expect("refused");
        assert!(
            format!("{err:#}").contains("belongs to another user"),
            "{err:#}"
        );
    }
    std::fs::remove_dir_all(&root).unwrap();
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}
