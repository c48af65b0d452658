//! WAV (RIFF/WAVE) in and out, written here rather than pulled in: the reader takes integer PCM
//! of 8, 16, 24 or 32 bits and IEEE float of 32 or 64 bits, plain or `WAVE_FORMAT_EXTENSIBLE`, in
//! any number of channels (averaged to mono); the writer writes 16-bit mono. A `data` chunk
//! whose size is unknown (`0xFFFFFFFF`, as streaming servers send it) or larger than the file
//! runs to the end of the file, so a stream cut short still reads. Everything else that does
//! not add up is a one-line `SpeechError::Audio` naming the problem, never a panic.

use clawdia_core::{Pcm, SpeechError};

/// `WAVE_FORMAT_PCM`, `WAVE_FORMAT_IEEE_FLOAT`, `WAVE_FORMAT_EXTENSIBLE`.
const FORMAT_PCM: u16 = 1;
const FORMAT_FLOAT: u16 = 3;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;
/// Sample rates outside this range are not audio anyone records speech at.
pub(crate) const MIN_RATE: u32 = 1_000;
pub(crate) const MAX_RATE: u32 = 384_000;
const MAX_CHANNELS: u16 = 32;

fn bad(message: impl Into<String>) -> SpeechError {
    SpeechError::Audio(format!("WAV: {}", message.into()))
}

/// Whether `bytes` start like a WAV file.
pub fn is_wav(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[0..4] == b"RIFF" && &bytes[8..12] == b"WAVE"
}

struct Format {
    code: u16,
    channels: u16,
    rate: u32,
    bits: u16,
}

/// Decodes a WAV file into mono PCM at the file's own sample rate.
pub fn decode(bytes: &[u8]) -> Result<Pcm, SpeechError> {
    if !is_wav(bytes) {
        return Err(bad("not a RIFF/WAVE file"));
    }
    let mut format: Option<Format> = None;
    let mut position = 12usize;
    while position + 8 <= bytes.len() {
        let id = &bytes[position..position + 4];
        let size = u32::from_le_bytes([
            bytes[position + 4],
            bytes[position + 5],
            bytes[position + 6],
            bytes[position + 7],
        ]) as usize;
        let body_start = position + 8;
        let available = bytes.len() - body_start;
        if id == b"data" {
            let format = format.ok_or_else(|| bad("the data chunk comes before the fmt chunk"))?;
            let body = &bytes[body_start..body_start + size.min(available)];
            return samples(&format, body);
        }
        if size > available {
            return Err(bad(format!(
                "the `{}` chunk claims {size} bytes but only {available} remain",
                printable(id)
            )));
        }
        let body = &bytes[body_start..body_start + size];
        if id == b"fmt " {
            format = Some(parse_format(body)?);
        }
        // Chunks are padded to an even length.
        position = body_start + size + (size & 1);
    }
    Err(bad(if format.is_none() { "no fmt chunk" } else { "no data chunk" }))
}

fn printable(id: &[u8]) -> String {
    id.iter()
        .map(|&byte| if byte.is_ascii_graphic() || byte == b' ' { char::from(byte) } else { '?' })
        .collect()
}

fn parse_format(body: &[u8]) -> Result<Format, SpeechError> {
    if body.len() < 16 {
        return Err(bad(format!("the fmt chunk is {} bytes, at least 16 are needed", body.len())));
    }
    let u16_at = |at: usize| u16::from_le_bytes([body[at], body[at + 1]]);
    let mut code = u16_at(0);
    let channels = u16_at(2);
    let rate = u32::from_le_bytes([body[4], body[5], body[6], body[7]]);
    let bits = u16_at(14);
    if code == FORMAT_EXTENSIBLE {
        // cbSize, valid bits, channel mask, then the sub-format GUID whose first two bytes are
        // the format code.
        if body.len() < 26 {
            return Err(bad("the extensible fmt chunk is too short to name its sub-format"));
        }
        code = u16_at(24);
    }
    if channels == 0 || channels > MAX_CHANNELS {
        return Err(bad(format!("{channels} channels (1 to {MAX_CHANNELS} are read)")));
    }
    if !(MIN_RATE..=MAX_RATE).contains(&rate) {
        return Err(bad(format!("a sample rate of {rate} Hz ({MIN_RATE} to {MAX_RATE} are read)")));
    }
    match (code, bits) {
        (FORMAT_PCM, 8 | 16 | 24 | 32) | (FORMAT_FLOAT, 32 | 64) => Ok(Format { code, channels, rate, bits }),
        (FORMAT_PCM, _) => Err(bad(format!("{bits}-bit integer samples (8, 16, 24 or 32 are read)"))),
        (FORMAT_FLOAT, _) => Err(bad(format!("{bits}-bit float samples (32 or 64 are read)"))),
        _ => {
            Err(bad(format!("format code {code:#06x} is compressed or unknown (PCM and float WAV are read)")))
        }
    }
}

/// One sample as a float in -1..1.
fn sample(format: &Format, bytes: &[u8]) -> f32 {
    match (format.code, format.bits) {
        (FORMAT_PCM, 8) => (f32::from(bytes[0]) - 128.0) / 128.0,
        (FORMAT_PCM, 16) => f32::from(i16::from_le_bytes([bytes[0], bytes[1]])) / 32_768.0,
        (FORMAT_PCM, 24) => {
            let value = i32::from_le_bytes([0, bytes[0], bytes[1], bytes[2]]) >> 8;
            value as f32 / 8_388_608.0
        }
        (FORMAT_PCM, _) => {
            i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as f32 / 2_147_483_648.0
        }
        (_, 32) => f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]),
        _ => {
            let mut eight = [0u8; 8];
            eight.copy_from_slice(&bytes[..8]);
            f64::from_le_bytes(eight) as f32
        }
    }
}

fn samples(format: &Format, body: &[u8]) -> Result<Pcm, SpeechError> {
    let width = usize::from(format.bits / 8);
    let frame = width * usize::from(format.channels);
    // A trailing partial frame (a stream cut mid-sample) is dropped.
    let frames = body.len() / frame;
    let mut samples = Vec::with_capacity(frames);
    for chunk in body.chunks_exact(frame) {
        let sum: f32 = chunk.chunks_exact(width).map(|bytes| sample(format, bytes)).sum();
        let mean = sum / f32::from(format.channels);
        samples.push(crate::audio::to_i16(mean));
    }
    Ok(Pcm { sample_rate: format.rate, samples })
}

/// Encodes PCM as a 16-bit mono WAV file.
pub fn encode(pcm: &Pcm) -> Result<Vec<u8>, SpeechError> {
    if !(MIN_RATE..=MAX_RATE).contains(&pcm.sample_rate) {
        return Err(SpeechError::Audio(format!(
            "cannot write a WAV at {} Hz ({MIN_RATE} to {MAX_RATE} are written)",
            pcm.sample_rate
        )));
    }
    let data_bytes = pcm
        .samples
        .len()
        .checked_mul(2)
        .filter(|bytes| *bytes <= u32::MAX as usize - 36)
        .ok_or_else(|| SpeechError::Audio("the audio is too long for one WAV file".to_string()))?;
    let mut out = Vec::with_capacity(44 + data_bytes);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&((36 + data_bytes) as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&FORMAT_PCM.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&pcm.sample_rate.to_le_bytes());
    out.extend_from_slice(&(pcm.sample_rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data_bytes as u32).to_le_bytes());
    for sample in &pcm.samples {
        out.extend_from_slice(&sample.to_le_bytes());
    }
    Ok(out)
}
