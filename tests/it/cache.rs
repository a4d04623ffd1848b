//! The host's compile cache: the first load compiles and stores the artifact,
//! later loads use it, and a damaged artifact is compiled again and replaced.

use std::path::PathBuf;

use ld_dynamodb_host::embed::Runtime;
use ld_dynamodb_tests::cli_binary;
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

/// An artifact that another user owns is refused, by an unprivileged process.
/// When the tests run as root (as CI does), the CLI runs as `nobody` through
/// `setpriv`, on a private cache folder that `nobody` owns: it stores an
/// artifact and loads it again (the control), then, once root has given the
/// artifact to root, refuses it. Run as another user, the test is itself
/// unprivileged: the artifact is replaced by a link to a file root owns.
#[test]
fn an_artifact_another_user_owns_is_refused() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::process::Command;
    const NOBODY: u32 = 65534;
    let dir = std::env::temp_dir().join(format!("ld-dynamodb-cache-owner-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc_geteuid() } == 0;
    if root {
        std::os::unix::fs::chown(&dir, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    // The CLI against a closed port: it loads the component (from the cache
    // when it can), then fails to connect, unless the load is refused.
    let status = || {
        let mut command = if root {
            let mut setpriv = Command::new("setpriv");
            setpriv.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"]);
            setpriv.arg(cli_binary());
            setpriv
        } else {
            Command::new(cli_binary())
        };
        let out = command
            .arg("status")
            .env_clear()
            .env("HOME", &dir)
            .env("LD_DYNAMODB_CACHE_DIR", &dir)
            .env("LD_DYNAMODB_TABLE", "cache-owner")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "AKIDCACHETEST")
            .env("AWS_SECRET_ACCESS_KEY", "cache-test-secret")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8(out.stderr).unwrap()
    };
    let first = status();
    assert!(first.contains("connection-refused"), "{first}");
    let stored = artifacts(&dir);
    assert_eq!(stored.len(), 1, "{stored:?}: {first}");
    let artifact = &stored[0];
    let owner = std::fs::metadata(artifact).unwrap().uid();
    assert_eq!(
        owner,
        if root {
            NOBODY
        } else {
            unsafe { libc_geteuid() }
        }
    );
    // The control: the process's own artifact is loaded.
    let again = status();
    assert!(again.contains("connection-refused"), "{again}");
    if root {
        std::os::unix::fs::chown(artifact, Some(0), Some(0)).unwrap();
    } else {
        std::fs::remove_file(artifact).unwrap();
        std::os::unix::fs::symlink("/", artifact).unwrap();
    }
    let refused = status();
    assert!(
        refused.contains("belongs to another user (uid 0)")
            && refused.contains("refusing to load native code"),
        "{refused}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
