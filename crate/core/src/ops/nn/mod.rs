//! Op family `nn`: one file per op; `register` adds each to the registry.

use super::Registry;

/// Adds this family's ops to the registry.
pub fn register(_r: &mut Registry) {}
