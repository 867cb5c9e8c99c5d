//! Op family `detect`: detection post-processing that models carry as an op of their own —
//! TFLite's `TFLite_Detection_PostProcess` custom op (SSD box decoding against anchors, then the
//! fast or the regular multi-class NMS), exactly as LiteRT computes it.
//!
//! - [`detection_postprocess`]: the op, its options and their limits.
//! - [`nms`]: the box decoding, IoU and the two NMS variants.
//! - [`sort`]: LiteRT's orderings (stable sort, first arg-max, libstdc++'s partial sort), so ties
//!   come out in LiteRT's order (checked on tied scores against LiteRT in `tests/tflite_ssd.rs`).

pub mod detection_postprocess;
pub mod nms;
pub mod sort;

use super::Registry;

/// Adds this family's ops to the registry.
pub fn register(r: &mut Registry) {
    r.register(detection_postprocess::TFLITE_DETECTION_POSTPROCESS, detection_postprocess::build);
}
