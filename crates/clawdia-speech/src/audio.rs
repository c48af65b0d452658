//! The audio every engine and channel shares: recognising a container by its first bytes and
//! decoding it (`decode`), encoding a reply (`encode`, WAV or Ogg/Opus), and resampling to the
//! rate an engine needs (`resample`, rubato's FFT resampler: fixed ratio, high quality). Every
//! failure is a one-line `SpeechError::Audio`.

use clawdia_core::{Pcm, SpeechError};
use rubato::audioadapter_buffers::owned::InterleavedOwned;
use rubato::{Fft, FixedSync, Resampler};

/// Largest encoded file read (about 30 minutes of 16-bit 48 kHz mono WAV; hours of Opus).
pub const MAX_FILE_BYTES: usize = 200 << 20;

/// A container speech is carried in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioFormat {
    /// RIFF/WAVE, 16-bit mono when written.
    Wav,
    /// Ogg/Opus, the voice-note format of Telegram and WhatsApp.
    OggOpus,
}

impl AudioFormat {
    /// The format a file name asks for by its extension: `.wav`; `.ogg`, `.oga` or `.opus`.
    pub fn from_extension(path: &std::path::Path) -> Option<AudioFormat> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "wav" | "wave" => Some(AudioFormat::Wav),
            "ogg" | "oga" | "opus" => Some(AudioFormat::OggOpus),
            _ => None,
        }
    }

    /// The MIME type to send the file with.
    pub fn mime_type(self) -> &'static str {
        match self {
            AudioFormat::Wav => "audio/wav",
            AudioFormat::OggOpus => "audio/ogg",
        }
    }
}

/// The container `bytes` are in, from their first bytes.
pub fn sniff(bytes: &[u8]) -> Option<AudioFormat> {
    if crate::wav::is_wav(bytes) {
        Some(AudioFormat::Wav)
    } else if crate::ogg::is_ogg(bytes) {
        Some(AudioFormat::OggOpus)
    } else {
        None
    }
}

/// Decodes a WAV or Ogg/Opus file (recognised by its content, not its name) into mono PCM.
pub fn decode(bytes: &[u8]) -> Result<Pcm, SpeechError> {
    if bytes.len() > MAX_FILE_BYTES {
        return Err(SpeechError::Audio(format!(
            "the file is {} MiB, more than the {} MiB read",
            bytes.len() >> 20,
            MAX_FILE_BYTES >> 20
        )));
    }
    match sniff(bytes) {
        Some(AudioFormat::Wav) => crate::wav::decode(bytes),
        Some(AudioFormat::OggOpus) => crate::ogg::decode(bytes),
        None if bytes.is_empty() => Err(SpeechError::Audio("the file is empty".to_string())),
        None => Err(SpeechError::Audio(format!(
            "not a WAV or Ogg/Opus file (it starts with {})",
            clawdia_core::hex(&bytes[..bytes.len().min(4)])
        ))),
    }
}

/// Encodes PCM in `format`.
pub fn encode(pcm: &Pcm, format: AudioFormat) -> Result<Vec<u8>, SpeechError> {
    match format {
        AudioFormat::Wav => crate::wav::encode(pcm),
        AudioFormat::OggOpus => crate::ogg::encode(pcm),
    }
}

/// A float sample in -1..1 as 16-bit, clamped.
pub(crate) fn to_i16(sample: f32) -> i16 {
    (sample * 32_768.0).round().clamp(-32_768.0, 32_767.0) as i16
}

/// `pcm` at `rate`; the same audio when it already is.
pub fn resample(pcm: &Pcm, rate: u32) -> Result<Pcm, SpeechError> {
    if pcm.sample_rate == rate {
        return Ok(pcm.clone());
    }
    let range = crate::wav::MIN_RATE..=crate::wav::MAX_RATE;
    if !range.contains(&pcm.sample_rate) || !range.contains(&rate) {
        return Err(SpeechError::Audio(format!("cannot resample {} Hz to {rate} Hz", pcm.sample_rate)));
    }
    if pcm.samples.is_empty() {
        return Ok(Pcm { sample_rate: rate, samples: Vec::new() });
    }
    let failed = |error: &dyn std::fmt::Display| {
        SpeechError::Audio(format!("cannot resample {} Hz to {rate} Hz: {error}", pcm.sample_rate))
    };
    let mut resampler = Fft::<f32>::new(pcm.sample_rate as usize, rate as usize, 1024, 1, FixedSync::Input)
        .map_err(|error| failed(&error))?;
    let frames = pcm.samples.len();
    let input: Vec<f32> = pcm.samples.iter().map(|&sample| f32::from(sample) / 32_768.0).collect();
    let input = InterleavedOwned::new_from(input, 1, frames).map_err(|error| failed(&error))?;
    let output = resampler.process_all(&input, frames, None).map_err(|error| failed(&error))?;
    let samples = output.take_data().into_iter().map(to_i16).collect();
    Ok(Pcm { sample_rate: rate, samples })
}
