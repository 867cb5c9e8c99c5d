//! NumPy `.npy` files: the exchange format for test fixtures and tensor dumps.
//!
//! Reads format versions 1, 2 and 3 (3 only differs by allowing UTF-8 in the header), C order,
//! little-endian `<f4`, `<i8`, `<i4`, `<i2`, `<u2` and one-byte `|u1`, `|i1`, `|b1`. Anything
//! else is an error that says what to convert to. The data size is checked against the header
//! before anything is allocated, so a hostile header cannot make the reader allocate more than
//! the file's size.
//! Writes version 1 (version 2 for headers too long for it), 64-byte aligned, as `np.save` does.
//!
//! Why not a crate (issue #14 asked for npyz or ndarray-npy unless a measured reason says
//! otherwise), measured with npyz 0.9.1, `default-features = false`: it reads and writes every
//! dtype used here (and f64; f16 with its `half` feature), but it adds 20 crates that are not in
//! Cargo.lock (its header parser `py_literal` brings pest, pest_derive/generator/meta, num-bigint,
//! num-complex, num-integer, ucd-trie, byteorder, and for the build host stacker, psm, cc, object…
//! with C/assembly build scripts), 21 s of CPU to build them from clean (dev profile; 16.5 s wall
//! on 2 cores for npyz and all its dependencies), in the crate the wasm module is built from too.
//! This file (reader and writer) is about 250 lines without dependencies, checks sizes before
//! allocating and says how to convert what it does not read.

use super::{numel, Data, ModelError, Tensor};

const MAGIC: &[u8; 6] = b"\x93NUMPY";

/// Builds a tensor of one dtype from a shape and its little-endian bytes.
type Decode = fn(Vec<usize>, &[u8]) -> Result<Tensor, ModelError>;

fn err(msg: impl std::fmt::Display) -> ModelError {
    ModelError::Other(format!("npy: {msg}"))
}

/// Parses a `.npy` file into a tensor.
pub fn read_npy(bytes: &[u8]) -> Result<Tensor, ModelError> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(err("not a .npy file (it does not start with \\x93NUMPY); save arrays with numpy.save"));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, start): (usize, usize) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(err("the file is truncated inside its header"));
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        _ => {
            return Err(err(format!(
                "format version {major}.{minor} is not supported: save with numpy's default (1.0)"
            )))
        }
    };
    let end = start.checked_add(header_len).filter(|&e| e <= bytes.len()).ok_or_else(|| {
        err(format!("the header claims {header_len} bytes but the file has {} after the preamble", bytes.len() - start))
    })?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| err("the header is not valid text"))?;
    let h = parse_header(header)?;
    if h.fortran {
        return Err(err("the array is in Fortran order: save it with numpy.save(path, numpy.ascontiguousarray(a))"));
    }
    let (size, make): (usize, Decode) = match h.descr.as_str() {
        "<f4" => (4, |s, b| Tensor::f32(s, b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())),
        "<i4" => (4, |s, b| Tensor::i32(s, b.chunks_exact(4).map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())),
        "<i8" => (8, |s, b| {
            Tensor::i64(s, b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
        }),
        "|u1" => (1, |s, b| Tensor::u8(s, b.to_vec())),
        "<u2" => (2, |s, b| Tensor::u16(s, b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect())),
        "<i2" => (2, |s, b| Tensor::i16(s, b.chunks_exact(2).map(|c| i16::from_le_bytes([c[0], c[1]])).collect())),
        "|i1" => (1, |s, b| Tensor::i8(s, b.iter().map(|&v| v as i8).collect())),
        "|b1" => (1, |s, b| {
            if let Some(v) = b.iter().find(|&&v| v > 1) {
                return Err(err(format!("a bool element holds {v}; bools must be 0 or 1")));
            }
            Tensor::bool(s, b.iter().map(|&v| v == 1).collect())
        }),
        other => {
            return Err(err(format!(
                "dtype '{other}' is not supported: convert with a.astype(numpy.float32) (or int64, int32, uint8, int8, bool), little-endian"
            )))
        }
    };
    let n = numel(&h.shape)?;
    let need = n.checked_mul(size).ok_or_else(|| ModelError::Overflow(h.shape.clone()))?;
    let data = &bytes[end..];
    if data.len() < need {
        return Err(err(format!(
            "the data is truncated: shape {:?} of '{}' needs {need} bytes, the file has {}",
            h.shape,
            h.descr,
            data.len()
        )));
    }
    if data.len() > need {
        return Err(err(format!(
            "{} bytes follow the data of shape {:?}: the file is not one array (or its header is wrong)",
            data.len() - need,
            h.shape
        )));
    }
    make(h.shape, data)
}

/// Serialises a tensor as a version-1 `.npy` file (`np.load` reads it back bit for bit).
pub fn write_npy(t: &Tensor) -> Vec<u8> {
    let descr = match &t.data {
        Data::F32(_) => "<f4",
        Data::I32(_) => "<i4",
        Data::I64(_) => "<i8",
        Data::U8(_) => "|u1",
        Data::I8(_) => "|i1",
        Data::U16(_) => "<u2",
        Data::I16(_) => "<i2",
        Data::Bool(_) => "|b1",
        Data::U4(_) => "|u1",
        Data::I4(_) => "|i1",
    };
    let shape = match t.shape.as_slice() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        s => format!("({})", s.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // Pad with spaces so magic + version + length + header + '\n' is a multiple of 64; version 2
    // (4-byte length) only when the padded header does not fit version 1's 2-byte length.
    let padded = |pre: usize| (pre + header.len() + 1).div_ceil(64) * 64;
    let v1 = padded(10) - 10 <= u16::MAX as usize;
    let pre = if v1 { 10 } else { 12 };
    let total = padded(pre);
    header.extend(std::iter::repeat_n(' ', total - pre - header.len() - 1));
    header.push('\n');

    let mut out = Vec::with_capacity(total + t.byte_size());
    out.extend_from_slice(MAGIC);
    if v1 {
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&[2, 0]);
        out.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(header.as_bytes());
    match &t.data {
        Data::F32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::I32(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::I64(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::U8(v) => out.extend_from_slice(v),
        Data::I8(v) => out.extend(v.iter().map(|&x| x as u8)),
        Data::U16(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::I16(v) => v.iter().for_each(|x| out.extend_from_slice(&x.to_le_bytes())),
        Data::Bool(v) => out.extend(v.iter().map(|&x| x as u8)),
        Data::U4(v) => out.extend_from_slice(v),
        Data::I4(v) => out.extend(v.iter().map(|&x| x as u8)),
    }
    out
}

struct Header {
    descr: String,
    fortran: bool,
    shape: Vec<usize>,
}

/// Parses the Python dict literal numpy writes, e.g.
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 300, 300), }`.
/// Keys may come in any order; unknown keys are an error (they would change the meaning).
fn parse_header(s: &str) -> Result<Header, ModelError> {
    let mut p = Parser { s: s.trim_end().as_bytes(), i: 0 };
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    p.expect(b'{')?;
    loop {
        p.ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.ws();
        p.expect(b':')?;
        p.ws();
        match key.as_str() {
            "descr" => descr = Some(p.string()?),
            "fortran_order" => fortran = Some(p.boolean()?),
            "shape" => shape = Some(p.tuple()?),
            other => return Err(err(format!("unexpected header key '{other}'"))),
        }
        p.ws();
        if !p.eat(b',') {
            p.ws();
            p.expect(b'}')?;
            break;
        }
    }
    p.ws();
    if p.i != p.s.len() {
        return Err(err("unexpected text after the header dictionary"));
    }
    match (descr, fortran, shape) {
        (Some(descr), Some(fortran), Some(shape)) => Ok(Header { descr, fortran, shape }),
        _ => Err(err("the header lacks 'descr', 'fortran_order' or 'shape'")),
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.s.get(self.i) == Some(&c);
        self.i += hit as usize;
        hit
    }
    fn expect(&mut self, c: u8) -> Result<(), ModelError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(err(format!("malformed header: expected '{}' at byte {}", c as char, self.i)))
        }
    }
    fn string(&mut self) -> Result<String, ModelError> {
        let q = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => return Err(err(format!("malformed header: expected a quoted string at byte {}", self.i))),
        };
        self.i += 1;
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != q {
            self.i += 1;
        }
        let v = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.expect(q)?;
        Ok(v)
    }
    fn boolean(&mut self) -> Result<bool, ModelError> {
        for (word, v) in [(&b"True"[..], true), (&b"False"[..], false)] {
            if self.s[self.i..].starts_with(word) {
                self.i += word.len();
                return Ok(v);
            }
        }
        Err(err(format!("malformed header: expected True or False at byte {}", self.i)))
    }
    fn tuple(&mut self) -> Result<Vec<usize>, ModelError> {
        self.expect(b'(')?;
        let mut dims = Vec::new();
        loop {
            self.ws();
            if self.eat(b')') {
                return Ok(dims);
            }
            let start = self.i;
            while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                self.i += 1;
            }
            let digits = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
            // Python 2 wrote long dimensions as `3L`.
            self.eat(b'L');
            let d: usize =
                digits.parse().map_err(|_| err(format!("malformed header: bad dimension at byte {start}")))?;
            dims.push(d);
            self.ws();
            if !self.eat(b',') {
                self.ws();
                self.expect(b')')?;
                return Ok(dims);
            }
        }
    }
}
