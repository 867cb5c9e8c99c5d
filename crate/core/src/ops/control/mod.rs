//! Op family `control`: control flow. One op per file; `register` adds each to the registry.
//!
//! - [`if_op`]: `If`. Planning inlines the branch a constant condition takes (the shape tests
//!   exporters leave, e.g. `numel == 0`), so most `If` nodes never run as an op; a condition
//!   known only at run time runs the taken branch on the CPU.
//! - [`loop_op`]: `Loop`, its body planned and run on the CPU for each iteration.

pub mod if_op;
pub mod loop_op;

use super::Registry;

/// Adds this family's ops to the registry.
pub fn register(r: &mut Registry) {
    r.register("If", if_op::build);
    r.register("Loop", loop_op::build);
}
