//! Registry files: find `_index.yaml` files, parse them, validate entries, resolve IDs and
//! references. Knows nothing of wasmtime or Lua, so it can be tested (and fuzzed) alone.
//!
//! Pipeline: YAML text -> [`value::Node`] tree with lines -> small checks that each push
//! [`Diagnostic`]s -> [`model::Entry`]. Every problem of every file is reported at once.

mod id;
mod load;
pub mod model;
mod paths;
mod profile;
mod validate;
pub mod value;
pub mod yaml;

pub use id::{is_name, is_namespace, parse_id};
pub use load::{entry_from_node, load_batch, load_path, Batch, INDEX_FILE};
pub use model::*;
pub use profile::{parse_profile, Profiles, PROFILE_NAMES};

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// One problem, printed as `FILE:LINE: ENTRY: message` (`FILE: ENTRY: message` when the
/// problem has no line, like a directory that cannot be read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// `None` for entries added from Lua (`registry:add`): printed as `ENTRY: message`.
    pub file: Option<PathBuf>,
    /// 1-based; 0 when there is no line to point at.
    pub line: u32,
    /// The entry ID, or `entries[N]` (0-based) when the entry has no valid ID, or `-` for
    /// problems of the file itself (bad YAML, missing namespace).
    pub entry: String,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One problem, one line: a line break inside a message (a path or name quoted from
        // the file) is written `\n` (found by fuzzing the loader).
        let message = self.message.replace('\n', "\\n");
        match &self.file {
            Some(file) if self.line == 0 => {
                write!(f, "{}: {}: {}", file.display(), self.entry, message)
            }
            Some(file) => write!(f, "{}:{}: {}: {}", file.display(), self.line, self.entry, message),
            None => write!(f, "{}: {}", self.entry, message),
        }
    }
}

/// Every problem found, in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {}

/// Entries already in the registry, for resolving references across loads.
pub trait Known {
    fn get(&self, id: &Id) -> Option<Arc<Entry>>;
}

impl Known for () {
    fn get(&self, _: &Id) -> Option<Arc<Entry>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_print_one_per_line() {
        let d = |file: Option<&str>, line, entry: &str| Diagnostic {
            file: file.map(PathBuf::from),
            line,
            entry: entry.into(),
            message: "boom".into(),
        };
        let all =
            Diagnostics(vec![d(Some("app/_index.yaml"), 3, "app:x"), d(Some("app"), 0, "-"), d(None, 0, "app:y")]);
        assert_eq!(all.to_string(), "app/_index.yaml:3: app:x: boom\napp: -: boom\napp:y: boom");
    }

    #[test]
    fn a_line_break_in_a_message_stays_on_its_line() {
        let d = Diagnostic {
            file: Some(PathBuf::from("a/_index.yaml")),
            line: 5,
            entry: "a:e".into(),
            message: "wasm file a/(module\n  (func) not found".into(),
        };
        assert_eq!(d.to_string(), "a/_index.yaml:5: a:e: wasm file a/(module\\n  (func) not found");
    }
}
