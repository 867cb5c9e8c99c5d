//! A small reader for FlexBuffer maps of scalars: the `custom_options` TFLite's converter writes
//! for custom ops (`TFLite_Detection_PostProcess`'s `max_detections`, `nms_iou_threshold`, …).
//!
//! FlexBuffers are self-describing and read from the end: the last byte is the root's byte
//! width, the one before it the root's packed type (type << 2 | bit-width code), and before that
//! the root value (an offset, at the root's byte width). A map's byte width is its packed
//! type's bit-width code; its value is an offset back to its values vector, preceded by the vector's
//! length, the keys vector's byte width and an offset back to the keys vector (offsets to
//! NUL-terminated key strings); the values are followed by one packed type byte each. Scalars are
//! stored inline at the vector's byte width; the `INDIRECT_*` types store an offset to a scalar of
//! their own width.
//!
//! Every read is bounds-checked and every offset checked to stay inside the buffer, so truncated
//! or random bytes give an error, never a panic; the work is linear in the buffer's size (keys
//! are read up to 256 bytes).

/// A scalar value of a map entry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Scalar {
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
}

impl Scalar {
    /// As an integer (floats truncated, as flexbuffers' `AsInt64`).
    pub fn as_i64(self) -> i64 {
        match self {
            Scalar::Int(v) => v,
            Scalar::UInt(v) => i64::try_from(v).unwrap_or(i64::MAX),
            Scalar::Float(v) => v as i64,
            Scalar::Bool(b) => i64::from(b),
        }
    }

    /// As a float.
    pub fn as_f64(self) -> f64 {
        match self {
            Scalar::Int(v) => v as f64,
            Scalar::UInt(v) => v as f64,
            Scalar::Float(v) => v,
            Scalar::Bool(b) => f64::from(u8::from(b)),
        }
    }

    /// As a boolean (non-zero is true, as flexbuffers' `AsBool`).
    pub fn as_bool(self) -> bool {
        self.as_f64() != 0.0
    }
}

/// The longest key read, in bytes.
const MAX_KEY: usize = 256;

const INT: u8 = 1;
const UINT: u8 = 2;
const FLOAT: u8 = 3;
const INDIRECT_INT: u8 = 6;
const INDIRECT_UINT: u8 = 7;
const INDIRECT_FLOAT: u8 = 8;
const MAP: u8 = 9;
const BOOL: u8 = 26;

/// The entries of the root map: `(key, value)` for each scalar; entries of other types (strings,
/// vectors, nested maps) and null values are left out.
pub(super) fn scalar_map(buf: &[u8]) -> Result<Vec<(String, Scalar)>, String> {
    let n = buf.len();
    if n < 3 {
        return Err(format!("{n} bytes: too short for a FlexBuffer (at least 3)"));
    }
    let root_width = usize::from(buf[n - 1]);
    if !matches!(root_width, 1 | 2 | 4 | 8) {
        return Err(format!("root byte width {root_width} (the last byte): not a FlexBuffer"));
    }
    let packed = buf[n - 2];
    let root_pos = (n - 2).checked_sub(root_width).ok_or("the root value lies before the buffer's start")?;
    if packed >> 2 != MAP {
        return Err(format!("the root is of FlexBuffer type {}, not a map", packed >> 2));
    }
    let values = indirect(buf, root_pos, root_width)?;
    // A map's (vector's) own byte width is its packed type's bit-width code.
    let width = 1usize << (packed & 3);
    let len = usize::try_from(uint(buf, values.checked_sub(width).ok_or("the map's length lies outside")?, width)?)
        .map_err(|_| "the map's length does not fit")?;
    let keys_width = uint(buf, values.checked_sub(2 * width).ok_or("the map's key width lies outside")?, width)?;
    let keys_width = match keys_width {
        1 | 2 | 4 | 8 => keys_width as usize,
        w => return Err(format!("key byte width {w}")),
    };
    let keys = indirect(buf, values.checked_sub(3 * width).ok_or("the map's keys lie outside")?, width)?;
    // Every entry takes at least its value, its type byte and a key offset: bounds `len`.
    let types = len.checked_mul(width).and_then(|b| b.checked_add(values)).filter(|&t| t <= n).ok_or_else(|| {
        format!("the map claims {len} entries, more than its {} bytes can hold", n.saturating_sub(values))
    })?;
    if types.checked_add(len).is_none_or(|end| end > n) {
        return Err(format!("the map's {len} type bytes run past the end"));
    }
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        let key = indirect(buf, keys + i * keys_width, keys_width)?;
        // Keys are short names: looking for the NUL within 256 bytes keeps the work linear.
        let end = buf[key..].iter().take(MAX_KEY).position(|&b| b == 0).ok_or("a key is not NUL-terminated")?;
        let key = std::str::from_utf8(&buf[key..key + end]).map_err(|_| "a key is not UTF-8")?.to_string();
        let t = buf[types + i];
        let (ty, own) = (t >> 2, 1usize << (t & 3));
        let at = values + i * width;
        let v = match ty {
            INT => Scalar::Int(int(buf, at, width)?),
            UINT => Scalar::UInt(uint(buf, at, width)?),
            FLOAT => Scalar::Float(float(buf, at, width)?),
            BOOL => Scalar::Bool(uint(buf, at, width)? != 0),
            INDIRECT_INT => Scalar::Int(int(buf, indirect(buf, at, width)?, own)?),
            INDIRECT_UINT => Scalar::UInt(uint(buf, indirect(buf, at, width)?, own)?),
            INDIRECT_FLOAT => Scalar::Float(float(buf, indirect(buf, at, width)?, own)?),
            // Null (a key without a value) and non-scalars (strings, vectors, maps): left out.
            _ => continue,
        };
        out.push((key, v));
    }
    Ok(out)
}

/// The bytes `pos..pos + width`.
fn bytes(buf: &[u8], pos: usize, width: usize) -> Result<&[u8], String> {
    pos.checked_add(width)
        .and_then(|end| buf.get(pos..end))
        .ok_or_else(|| format!("a {width}-byte value at byte {pos} runs past the end ({} bytes)", buf.len()))
}

fn uint(buf: &[u8], pos: usize, width: usize) -> Result<u64, String> {
    let b = bytes(buf, pos, width)?;
    let mut v = [0u8; 8];
    v[..width.min(8)].copy_from_slice(&b[..width.min(8)]);
    Ok(u64::from_le_bytes(v))
}

fn int(buf: &[u8], pos: usize, width: usize) -> Result<i64, String> {
    let b = bytes(buf, pos, width)?;
    Ok(match width {
        1 => i64::from(b[0] as i8),
        2 => i64::from(i16::from_le_bytes([b[0], b[1]])),
        4 => i64::from(i32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        8 => i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        w => return Err(format!("integer byte width {w}")),
    })
}

fn float(buf: &[u8], pos: usize, width: usize) -> Result<f64, String> {
    let b = bytes(buf, pos, width)?;
    Ok(match width {
        4 => f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])),
        8 => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        w => return Err(format!("float byte width {w}")),
    })
}

/// The position an offset stored at `pos` points to (offsets point backwards).
fn indirect(buf: &[u8], pos: usize, width: usize) -> Result<usize, String> {
    let off = uint(buf, pos, width)?;
    usize::try_from(off)
        .ok()
        .and_then(|o| pos.checked_sub(o))
        .ok_or_else(|| format!("an offset at byte {pos} points before the buffer's start"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The custom options of the committed fixture's regular-NMS op (written by TFLiteConverter).
    const OPTIONS: &str = "6d61785f646574656374696f6e73006d61785f636c61737365735f7065725f646574656374696f6e006e756d5f\
        636c6173736573006e6d735f73636f72655f7468726573686f6c64006e6d735f696f755f7468726573686f6c6400795f7363616c650078\
        5f7363616c6500685f7363616c6500775f7363616c65007573655f726567756c61725f6e6d73000a217e8e465b681720313a00000c0000\
        00010000000a0000000000a040010000000c0000000000003fcdcccc3d03000000010000000000a04000002041000020410e06060e0e0606\
        0e0e0e322601";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn reads_the_converters_options() {
        let m = scalar_map(&hex(OPTIONS)).unwrap();
        let get = |k: &str| m.iter().find(|(n, _)| n == k).unwrap().1;
        assert_eq!(get("max_detections"), Scalar::Int(12));
        assert_eq!(get("num_classes"), Scalar::Int(3));
        assert!(get("use_regular_nms").as_bool());
        assert_eq!(get("nms_score_threshold").as_f64() as f32, 0.1);
        assert_eq!(get("y_scale").as_f64(), 10.0);
        assert_eq!(m.len(), 10);
    }

    #[test]
    fn every_truncation_and_corruption_is_an_error_or_a_value_never_a_panic() {
        let b = hex(OPTIONS);
        for cut in 0..b.len() {
            let _ = scalar_map(&b[..cut]);
            let _ = scalar_map(&b[cut..]);
        }
        for i in 0..b.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut c = b.clone();
                c[i] = v;
                let _ = scalar_map(&c);
            }
        }
        assert!(scalar_map(&[]).is_err() && scalar_map(&[1, 2, 3]).is_err());
    }
}
