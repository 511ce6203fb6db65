//! Key paths into a task file (`volumes[2].persistentVolumeClaim.claimName`), used to say
//! exactly where a problem is.

use std::fmt;

/// One step of a [`KeyPath`]: a map key or a list index.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seg {
    Key(String),
    Index(usize),
}

/// Where a value sits inside a task file, printed the way a user would write it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Seg>);

impl KeyPath {
    /// The document root.
    pub fn root() -> Self {
        KeyPath(Vec::new())
    }

    /// This path extended by a map key.
    pub fn key(&self, key: &str) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_string()));
        KeyPath(segs)
    }

    /// This path extended by a list index.
    pub fn index(&self, index: usize) -> Self {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        KeyPath(segs)
    }

    /// This path extended by a path that `serde_path_to_error` reported below it.
    pub(crate) fn join_serde(&self, path: &serde_path_to_error::Path) -> Self {
        let mut out = self.clone();
        for seg in path.iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => out.0.push(Seg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => out.0.push(Seg::Key(key.clone())),
                serde_path_to_error::Segment::Enum { variant } => {
                    out.0.push(Seg::Key(variant.clone()))
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        out
    }

    /// True for the document root.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

/// Keys printed bare when they look like identifiers, quoted otherwise
/// (`labels["app.kubernetes.io/name"]`).
fn plain(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if plain(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    f.write_str(k)?;
                }
                Seg::Key(k) => write!(f, "[{k:?}]")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_a_manifest_path() {
        let p = KeyPath::root()
            .key("volumes")
            .index(2)
            .key("persistentVolumeClaim")
            .key("claimName");
        assert_eq!(p.to_string(), "volumes[2].persistentVolumeClaim.claimName");
        let q = KeyPath::root().key("labels").key("app.kubernetes.io/name");
        assert_eq!(q.to_string(), "labels[\"app.kubernetes.io/name\"]");
    }
}
