//! Comparisons and logic as [`Binary`] instances: Equal, Greater, Less, GreaterOrEqual,
//! LessOrEqual, And, Or, Xor. All produce bool tensors.

use super::binary::{Binary, BinaryOp, Kernel};
use crate::ops::Registry;

/// Adds the comparison and logic ops to the registry.
pub fn register(r: &mut Registry) {
    // Equal also accepts bools (opset 11+); the orderings are numeric only.
    r.register("Equal", |_, _| {
        Binary::new(BinaryOp::Equal, Kernel::Compare { float: |a, b| a == b, int: |a, b| a == b, bools: true }).boxed()
    });
    r.register("Greater", |_, _| {
        Binary::new(BinaryOp::Greater, Kernel::Compare { float: |a, b| a > b, int: |a, b| a > b, bools: false }).boxed()
    });
    r.register("Less", |_, _| {
        Binary::new(BinaryOp::Less, Kernel::Compare { float: |a, b| a < b, int: |a, b| a < b, bools: false }).boxed()
    });
    r.register("GreaterOrEqual", |_, _| {
        Binary::new(
            BinaryOp::GreaterOrEqual,
            Kernel::Compare { float: |a, b| a >= b, int: |a, b| a >= b, bools: false },
        )
        .boxed()
    });
    r.register("LessOrEqual", |_, _| {
        Binary::new(BinaryOp::LessOrEqual, Kernel::Compare { float: |a, b| a <= b, int: |a, b| a <= b, bools: false })
            .boxed()
    });
    r.register("And", |_, _| Binary::new(BinaryOp::And, Kernel::Logic(|a, b| a & b)).boxed());
    r.register("Or", |_, _| Binary::new(BinaryOp::Or, Kernel::Logic(|a, b| a | b)).boxed());
    r.register("Xor", |_, _| Binary::new(BinaryOp::Xor, Kernel::Logic(|a, b| a ^ b)).boxed());
}
