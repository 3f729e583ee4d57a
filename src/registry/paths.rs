//! Path helpers: lexical normalisation and the load-root escape check.
//!
//! Paths stay as the caller wrote them (relative stays relative) so diagnostics show
//! `app/files/x.wat`, not an absolute path of the machine that ran the check.

use std::path::{Component, Path, PathBuf};

/// Removes `.` and resolves `..` lexically; leading `..` of a relative path are kept.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                // `/..` is `/`.
                Some(Component::RootDir) | Some(Component::Prefix(_)) => {}
                _ => out.push(component),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

/// The directory a file lives in (`.` for a bare file name).
pub fn parent_dir(file: &Path) -> PathBuf {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether `path` lies outside `root`, after normalising `..` and, when both exist,
/// following symbolic links.
pub fn escapes(root: &Path, path: &Path) -> bool {
    let absolute = |p: &Path| match std::env::current_dir() {
        Ok(cwd) if p.is_relative() => normalize(&cwd.join(p)),
        _ => normalize(p),
    };
    let (root, path) = (absolute(root), absolute(path));
    if !path.starts_with(&root) {
        return true;
    }
    match (root.canonicalize(), path.canonicalize()) {
        (Ok(root), Ok(path)) => !path.starts_with(root),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        let cases = [
            ("a/./b/../c", "a/c"),
            ("./a", "a"),
            ("a/..", "."),
            ("../a/../../b", "../../b"),
            ("/a/../../b", "/b"),
            ("tests/ui/files/../x.wat", "tests/ui/x.wat"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize(Path::new(input)), PathBuf::from(expected), "{input}");
        }
    }

    #[test]
    fn parents() {
        assert_eq!(parent_dir(Path::new("x.yaml")), PathBuf::from("."));
        assert_eq!(parent_dir(Path::new("a/x.yaml")), PathBuf::from("a"));
    }

    #[test]
    fn escape_checks() {
        assert!(!escapes(Path::new("a"), Path::new("a/b/c.txt")));
        assert!(!escapes(Path::new("."), Path::new("x.txt")));
        assert!(escapes(Path::new("a"), Path::new("a/../b.txt")));
        assert!(escapes(Path::new("a/b"), Path::new("a/bc/x")));
        assert!(escapes(Path::new("."), Path::new("../x")));
        assert!(escapes(Path::new("a"), Path::new("/etc/passwd")));
    }
}
