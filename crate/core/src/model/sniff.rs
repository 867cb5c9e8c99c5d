//! What a file that is neither TFLite nor ONNX is, when its first bytes say so: the files users
//! pick by mistake — a Git LFS pointer downloaded in place of the model, a source or text file,
//! a Keras HDF5 file, a ZIP archive (PyTorch's `.pt`, Keras' `.keras`) — each with what to do.
//! [`load_model`](super::load_model) asks before decoding ONNX, whose protobuf errors would
//! say nothing of the kind.

/// Why `bytes` are no model, and what to do, when their first bytes show another format.
pub fn other_format(bytes: &[u8]) -> Option<String> {
    other_format_reason(bytes).map(|why| format!("this is not a model file: {why}"))
}

fn other_format_reason(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return Some("the file is empty (0 bytes): the download or copy did not finish; get the file again".into());
    }
    if bytes.starts_with(b"version https://git-lfs.github.com/spec") {
        return Some(
            "it is a Git LFS pointer (a few lines naming the real file), not the model: the repository keeps the model \
             in Git LFS. Download the file itself (GitHub's \"Download raw file\", or `git lfs pull` in a clone)"
                .into(),
        );
    }
    if bytes.starts_with(b"\x89HDF\r\n\x1a\n") {
        return Some(
            "it is an HDF5 file (a Keras `.h5` model?): convert it to TFLite with `tf.lite.TFLiteConverter.from_keras_model` \
             or to ONNX with tf2onnx, and open that"
                .into(),
        );
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return Some(
            "it is a ZIP archive (a PyTorch `.pt`, a Keras `.keras`, or a zipped model): export the model to ONNX \
             (`torch.onnx.export`, or Ultralytics' `model.export(format=\"onnx\")`) or TFLite, or unzip it and open the \
             .onnx / .tflite inside"
                .into(),
        );
    }
    let head = &bytes[..bytes.len().min(512)];
    let text = head.iter().filter(|&&b| b == b'\n' || b == b'\r' || b == b'\t' || (0x20..0x7f).contains(&b)).count();
    if head.len() >= 16 && !head.contains(&0) && text * 100 >= head.len() * 95 {
        let line = String::from_utf8_lossy(head).lines().next().unwrap_or("").chars().take(60).collect::<String>();
        return Some(format!(
            "it is a text file (it begins `{line}`): open the `.onnx` or `.tflite` model file itself"
        ));
    }
    None
}

/// Whether `bytes` look like a binary file that went through a text conversion: invalid UTF-8
/// sequences replaced by U+FFFD (`EF BF BD`), as a model saved, copied or uploaded as text
/// comes out. Asked only when the file fails to load: a real model holds that 3-byte sequence
/// by chance about once per 16 MB.
pub fn text_mangled(bytes: &[u8]) -> bool {
    bytes.windows(3).filter(|w| *w == [0xef, 0xbf, 0xbd]).take(16).count() >= 16
}

/// The message for a model damaged by a text conversion.
pub fn text_mangled_message() -> String {
    "this model file was damaged by a text conversion: its binary bytes were replaced by U+FFFD replacement characters \
     (`EF BF BD`), as happens when a model is saved, copied or uploaded as text (an editor, `echo`, a form field, a \
     script reading it as a string). Download or copy it again as a binary file"
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_picked_by_mistake_are_named() {
        let lfs = b"version https://git-lfs.github.com/spec/v1\noid sha256:4d5e\nsize 4013541\n";
        assert!(other_format(lfs).unwrap().contains("Git LFS pointer"));
        assert!(other_format(b"\x89HDF\r\n\x1a\n\0\0\0\0").unwrap().contains("Keras"));
        assert!(other_format(b"PK\x03\x04\x14\0\0\0").unwrap().contains("ZIP archive"));
        let dart = b"import 'dart:io';\nimport 'package:tflite_flutter/tflite_flutter.dart';\n";
        let m = other_format(dart).unwrap();
        assert!(m.contains("text file") && m.contains("import 'dart:io';"), "{m}");
        // Models and random bytes are not sniffed as anything else.
        let onnx_head =
            [0x08u8, 0x07, 0x12, 0x07, b'p', b'y', b't', b'o', b'r', b'c', b'h', 0x1a, 0x03, b'2', b'.', b'0', 0x3a];
        assert_eq!(other_format(&onnx_head), None);
        let tflite_head = [0x1cu8, 0, 0, 0, b'T', b'F', b'L', b'3', 0x14, 0, 0x20, 0, 0x1c, 0, 0x18, 0, 0x14, 0];
        assert_eq!(other_format(&tflite_head), None);
        assert_eq!(other_format(b"short"), None);
        assert!(other_format(b"").unwrap().contains("empty"));
        let mangled: Vec<u8> = std::iter::repeat_n(&[0x12u8, 0xef, 0xbf, 0xbd][..], 20).flatten().copied().collect();
        assert!(text_mangled(&mangled) && !text_mangled(&mangled[..40]));
        let random: Vec<u8> = (0..600u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        assert_eq!(other_format(&random), None);
    }
}
