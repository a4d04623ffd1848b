//! The report file: sections that separate commands write.

use std::path::Path;

use anyhow::Result;

/// Replaces the section `name` of the report at `path` with `text` (between
/// `<!-- begin NAME -->` and `<!-- end NAME -->`), or appends it.
pub fn replace_section(path: &Path, name: &str, text: &str) -> Result<()> {
    let begin = format!("<!-- begin {name} -->");
    let end = format!("<!-- end {name} -->");
    let section = format!("{begin}\n{}\n{end}", text.trim_end());
    let current = std::fs::read_to_string(path).unwrap_or_default();
    let updated = match (current.find(&begin), current.find(&end)) {
        (Some(from), Some(to)) if from < to => {
            format!(
                "{}{section}{}",
                &current[..from],
                &current[to + end.len()..]
            )
        }
        _ => format!("{}\n\n{section}\n", current.trim_end()),
    };
    std::fs::write(path, updated)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_section_is_appended_then_replaced() {
        let path = std::env::temp_dir().join(format!("ld-report-{}.md", std::process::id()));
        std::fs::write(&path, "# Report\n").unwrap();
        replace_section(&path, "a", "first").unwrap();
        replace_section(&path, "b", "other").unwrap();
        replace_section(&path, "a", "second").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("second") && !text.contains("first") && text.contains("other"));
        assert_eq!(text.matches("<!-- begin a -->").count(), 1);
        std::fs::remove_file(path).unwrap();
    }
}
