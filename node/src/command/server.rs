//! Placeholder, filled in by its family.

use super::Handler;

pub fn handler(_name: &str) -> Option<Handler> {
    None
}
