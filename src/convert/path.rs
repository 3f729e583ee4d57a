//! Where in a value a conversion failed: `[2].name`.

use std::fmt;

/// One step into a value.
#[derive(Clone, Debug)]
pub enum Seg {
    /// A 1-based list or tuple position, as Lua indexes it.
    Index(usize),
    /// A record field, variant case or result branch.
    Field(String),
}

/// The steps from an argument to the value being converted. Only formatted on failure, so
/// the happy path pays a push and a pop per level.
#[derive(Clone, Debug, Default)]
pub struct Path(Vec<Seg>);

impl Path {
    pub fn new() -> Path {
        Path(Vec::new())
    }

    pub fn push_index(&mut self, i: usize) {
        self.0.push(Seg::Index(i));
    }

    pub fn push_field(&mut self, name: &str) {
        self.0.push(Seg::Field(name.to_string()));
    }

    pub fn pop(&mut self) {
        self.0.pop();
    }

    pub fn clear(&mut self) {
        self.0.clear();
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Index(n) => write!(f, "[{n}]")?,
                Seg::Field(name) if i == 0 => f.write_str(name)?,
                Seg::Field(name) => write!(f, ".{name}")?,
            }
        }
        Ok(())
    }
}

/// A value that does not fit its WIT type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvError {
    /// Formatted path, empty at the top of the argument.
    pub path: String,
    pub message: String,
}

impl ConvError {
    pub fn new(path: &Path, message: impl Into<String>) -> ConvError {
        ConvError { path: path.to_string(), message: message.into() }
    }

    /// An error at the value being read; enclosing values add their steps as it returns
    /// through them ([`ConvError::in_field`], [`ConvError::in_index`]), so the happy path
    /// keeps no path at all.
    pub fn here(message: impl Into<String>) -> ConvError {
        ConvError { path: String::new(), message: message.into() }
    }

    /// The error happened inside field (or case, or branch) `name`.
    pub fn in_field(mut self, name: &str) -> ConvError {
        self.path = match self.path.chars().next() {
            None => name.to_string(),
            Some('[') => format!("{name}{}", self.path),
            Some(_) => format!("{name}.{}", self.path),
        };
        self
    }

    /// The error happened inside element `i` (1-based).
    pub fn in_index(mut self, i: usize) -> ConvError {
        self.path = match self.path.chars().next() {
            None | Some('[') => format!("[{i}]{}", self.path),
            Some(_) => format!("[{i}].{}", self.path),
        };
        self
    }

    /// The error happened below `outer` (a path kept by the caller).
    pub fn under(mut self, outer: &Path) -> ConvError {
        let outer = outer.to_string();
        if !outer.is_empty() {
            self.path = match self.path.chars().next() {
                None => outer,
                Some('[') => format!("{outer}{}", self.path),
                Some(_) => format!("{outer}.{}", self.path),
            };
        }
        self
    }
}

impl fmt::Display for ConvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_indexes_and_fields() {
        let mut p = Path::new();
        p.push_index(2);
        p.push_field("name");
        assert_eq!(p.to_string(), "[2].name");
        let mut p = Path::new();
        p.push_field("user");
        p.push_field("tags");
        p.push_index(1);
        assert_eq!(p.to_string(), "user.tags[1]");
    }

    #[test]
    fn steps_added_on_the_way_out_read_like_a_path() {
        let e = ConvError::here("bad").in_field("name").in_index(2);
        assert_eq!(e.to_string(), "[2].name: bad");
        let e = ConvError::here("bad").in_index(1).in_field("tags").in_field("user");
        assert_eq!(e.to_string(), "user.tags[1]: bad");
        let mut outer = Path::new();
        outer.push_field("a");
        assert_eq!(ConvError::here("bad").in_index(3).under(&outer).to_string(), "a[3]: bad");
        assert_eq!(ConvError::here("bad").under(&Path::new()).to_string(), "bad");
    }
}
