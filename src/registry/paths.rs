//! Path helpers: lexical normalisation, where paths really are (symbolic links followed), and
//! the checks that keep a path inside a directory.
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

/// A path written relative to a directory's root, as the path inside it: a leading `/` is the
/// root of the directory (`/x.wasm` is `x.wasm`), `.` and `..` are resolved. `None` when `..`
/// climbs out of the directory (`../x`, `a/../../x`, `/../x`).
pub fn inside(path: &Path) -> Option<PathBuf> {
    let relative: PathBuf =
        path.components().filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_))).collect();
    let relative = normalize(&relative);
    match relative.components().next() {
        Some(Component::ParentDir) => None,
        _ => Some(relative),
    }
}

/// Why a path is not inside a directory (see [`outside`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outside {
    /// After normalising `..`, the path is not under the directory.
    Lexically,
    /// The path is under the directory as written, but following symbolic links it is here:
    /// relative to the current directory when it was written relative and lies below it, else
    /// absolute.
    Link(PathBuf),
}

/// Whether `path` lies outside `dir`: after normalising `..`, then following symbolic links
/// (of the path and of its parent directories; for a path that does not exist yet, as far as
/// it exists).
pub fn outside(dir: &Path, path: &Path) -> Option<Outside> {
    let cwd = std::env::current_dir().ok();
    let absolute = |p: &Path| match &cwd {
        Some(cwd) if p.is_relative() => normalize(&cwd.join(p)),
        _ => normalize(p),
    };
    let (abs_dir, abs_path) = (absolute(dir), absolute(path));
    if !abs_path.starts_with(&abs_dir) {
        return Some(Outside::Lexically);
    }
    let real = real_location(&abs_path);
    if real.starts_with(real_location(&abs_dir)) {
        return None;
    }
    let base = cwd.filter(|_| path.is_relative()).and_then(|cwd| cwd.canonicalize().ok());
    Some(Outside::Link(match base {
        Some(base) => shown_from(&real, &base),
        None => real,
    }))
}

/// An absolute, normalised path with its symbolic links resolved: the longest part of it that
/// exists is canonicalised, the rest is appended as it is.
fn real_location(absolute: &Path) -> PathBuf {
    let mut rest = Vec::new();
    let mut existing = absolute;
    loop {
        if let Ok(mut real) = existing.canonicalize() {
            real.extend(rest.iter().rev());
            return real;
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                rest.push(name);
                existing = parent;
            }
            // Nothing of it exists (or can be read): take it as written.
            _ => return absolute.to_path_buf(),
        }
    }
}

/// `path` relative to `base` when it lies below it, else `path` itself.
fn shown_from(path: &Path, base: &Path) -> PathBuf {
    match path.strip_prefix(base) {
        Ok(rest) if rest.as_os_str().is_empty() => PathBuf::from("."),
        Ok(rest) => rest.to_path_buf(),
        Err(_) => path.to_path_buf(),
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
        let escapes = |dir: &str, path: &str| outside(Path::new(dir), Path::new(path)).is_some();
        assert!(!escapes("a", "a/b/c.txt"));
        assert!(!escapes(".", "x.txt"));
        assert!(escapes("a", "a/../b.txt"));
        assert!(escapes("a/b", "a/bc/x"));
        assert!(escapes(".", "../x"));
        assert!(escapes("a", "/etc/passwd"));
        assert_eq!(outside(Path::new("a"), Path::new("a/../b.txt")), Some(Outside::Lexically));
        assert_eq!(outside(Path::new("a"), Path::new("a/./b/../c.txt")), None);
    }

    #[test]
    fn paths_inside_a_directory() {
        let cases = [
            ("/compute.wasm", Some("compute.wasm")),
            ("compute.wasm", Some("compute.wasm")),
            ("./sub/x.wasm", Some("sub/x.wasm")),
            ("/sub/./x.wasm", Some("sub/x.wasm")),
            ("//x.wasm", Some("x.wasm")),
            ("a/../b.wasm", Some("b.wasm")),
            ("/", Some(".")),
            ("../x.wasm", None),
            ("../../outside.wasm", None),
            ("a/../../x.wasm", None),
            ("/../x.wasm", None),
            ("./..", None),
        ];
        for (input, expected) in cases {
            assert_eq!(inside(Path::new(input)), expected.map(PathBuf::from), "{input}");
        }
    }

    #[test]
    fn shown_relative_to_a_base_below_it() {
        let base = Path::new("/work/app");
        assert_eq!(shown_from(Path::new("/work/app/tests/x.wasm"), base), PathBuf::from("tests/x.wasm"));
        assert_eq!(shown_from(Path::new("/work/app"), base), PathBuf::from("."));
        assert_eq!(shown_from(Path::new("/work/apple/x"), base), PathBuf::from("/work/apple/x"));
        assert_eq!(shown_from(Path::new("/etc/passwd"), base), PathBuf::from("/etc/passwd"));
    }

    #[test]
    fn real_locations_of_missing_paths_resolve_as_far_as_they_exist() {
        let tmp = std::env::temp_dir().canonicalize().unwrap();
        assert_eq!(real_location(&tmp.join("wippy-no-such-dir/a/b")), tmp.join("wippy-no-such-dir/a/b"));
        assert_eq!(real_location(Path::new("/")), PathBuf::from("/"));
    }

    #[cfg(unix)]
    #[test]
    fn symbolic_links_out_of_a_directory_are_outside() {
        use std::os::unix::fs::symlink;
        let tmp = std::env::temp_dir().join(format!("wippy-paths-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let (dir, elsewhere) = (tmp.join("dir"), tmp.join("elsewhere"));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        std::fs::write(dir.join("in.wasm"), b"").unwrap();
        std::fs::write(elsewhere.join("x.wasm"), b"").unwrap();
        symlink("../elsewhere/x.wasm", dir.join("link.wasm")).unwrap();
        symlink("in.wasm", dir.join("alias.wasm")).unwrap();
        symlink("../../dir/in.wasm", dir.join("sub/back.wasm")).unwrap();
        symlink("../elsewhere", dir.join("linked_dir")).unwrap();
        symlink("../elsewhere/none.wasm", dir.join("dangling.wasm")).unwrap();
        symlink("dir", tmp.join("dir_link")).unwrap();
        let real = elsewhere.canonicalize().unwrap();

        for fine in ["in.wasm", "alias.wasm", "sub/back.wasm", "new/x.wasm", "sub/../in.wasm", "dangling.wasm"] {
            assert_eq!(outside(&dir, &dir.join(fine)), None, "{fine}");
        }
        let cases = [
            ("link.wasm", real.join("x.wasm")),
            ("linked_dir/x.wasm", real.join("x.wasm")),
            ("linked_dir/missing.wasm", real.join("missing.wasm")),
            ("linked_dir", real.clone()),
        ];
        for (path, expected) in cases {
            assert_eq!(outside(&dir, &dir.join(path)), Some(Outside::Link(expected)), "{path}");
        }
        assert_eq!(outside(&dir, &dir.join("../elsewhere/x.wasm")), Some(Outside::Lexically));
        // A directory reached through a link: what is inside its real location is inside.
        let via_link = tmp.join("dir_link");
        assert_eq!(outside(&via_link, &via_link.join("in.wasm")), None);
        assert_eq!(outside(&via_link, &via_link.join("link.wasm")), Some(Outside::Link(real.join("x.wasm"))));
        std::fs::remove_dir_all(&tmp).unwrap();
    }
}
