//! Detection: model profiles, pre-processing (resize, letterbox, normalise), decoders and NMS.
