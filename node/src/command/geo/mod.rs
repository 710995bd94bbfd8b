//! GEO commands (stub).
use super::Handler;
pub fn handler(_name: &str) -> Option<Handler> {
    None
}
