//! Ogg/Opus in and out (Telegram voice notes are Ogg/Opus, mono, 48 kHz), on the pure-Rust
//! `opus-pure` codec: no C library to build or install. Decoding applies the header's output
//! gain and trims the encoder's pre-skip and the end-trim, so what comes out is the audio and
//! nothing else; channels are averaged to mono. Encoding writes mono speech (`Application::Voip`,
//! 32 kb/s, 20 ms frames) at the nearest rate Opus codes (8, 12, 16, 24 or 48 kHz; anything else
//! is resampled to 48 kHz first) and ends the file exactly where the audio ends.

use clawdia_core::{Pcm, SpeechError};
use opus_pure::{
    Application, MAX_PACKET_BYTES, MAX_PACKET_SAMPLES, OggOpusReader, OggOpusWriter, OpusEncoder, OpusHead,
    Trim,
};

/// The rate Ogg/Opus is decoded at: Opus's own, whatever the encoder was given.
pub const DECODE_RATE: u32 = 48_000;
/// Bits per second for encoded speech: clear voice at a voice note's usual size.
const ENCODE_BITRATE: i32 = 32_000;
/// The rates an Opus encoder accepts.
const OPUS_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];

fn bad(error: &opus_pure::Error) -> SpeechError {
    SpeechError::Audio(format!("Ogg/Opus: {}", clawdia_core::one_line(&error.to_string())))
}

/// Whether `bytes` start like an Ogg file.
pub fn is_ogg(bytes: &[u8]) -> bool {
    bytes.starts_with(b"OggS")
}

/// Decodes an Ogg/Opus file into mono PCM at 48 kHz.
pub fn decode(bytes: &[u8]) -> Result<Pcm, SpeechError> {
    decode_at(bytes, DECODE_RATE)
}

/// Decodes an Ogg/Opus file into mono PCM at `rate` (one of 8, 12, 16, 24 or 48 kHz: Opus decodes
/// straight to any of them, which is cheaper than resampling afterwards).
pub fn decode_at(bytes: &[u8], rate: u32) -> Result<Pcm, SpeechError> {
    if !OPUS_RATES.contains(&rate) {
        return Err(SpeechError::Audio(format!("Ogg/Opus cannot be decoded at {rate} Hz")));
    }
    let mut reader = OggOpusReader::new(bytes).map_err(|error| bad(&error))?;
    let channels = usize::from(reader.head().channel_count);
    let mut decoder = reader.head().decoder(rate as i32).map_err(|error| bad(&error))?;
    let mut trim = Trim::new(reader.head(), rate as i32, channels).map_err(|error| bad(&error))?;
    let mut block = vec![0i16; MAX_PACKET_SAMPLES * channels];
    let mut samples = Vec::new();
    for packet in reader.packets() {
        let packet = packet.map_err(|error| bad(&error))?;
        let decoded =
            decoder.decode_s16(&packet.data, MAX_PACKET_SAMPLES, &mut block).map_err(|error| bad(&error))?;
        let kept = trim.keep(&packet, &block[..decoded * channels]);
        if channels == 1 {
            samples.extend_from_slice(kept);
        } else {
            samples.extend(kept.chunks_exact(channels).map(|frame| {
                let sum: i32 = frame.iter().map(|&sample| i32::from(sample)).sum();
                (sum / channels as i32) as i16
            }));
        }
    }
    Ok(Pcm { sample_rate: rate, samples })
}

/// Encodes PCM as a mono Ogg/Opus file (a voice note).
pub fn encode(pcm: &Pcm) -> Result<Vec<u8>, SpeechError> {
    let resampled;
    let pcm = if OPUS_RATES.contains(&pcm.sample_rate) {
        pcm
    } else {
        resampled = crate::audio::resample(pcm, DECODE_RATE)?;
        &resampled
    };
    let rate = pcm.sample_rate as i32;
    let frame = pcm.sample_rate as usize / 50;
    let mut encoder = OpusEncoder::new(rate, 1, Application::Voip).map_err(|error| bad(&error))?;
    encoder.bitrate_bps = ENCODE_BITRATE;
    let head = OpusHead::for_encoder(&encoder, pcm.sample_rate);
    // Every Opus rate divides 48 kHz: granule positions count 48 kHz ticks.
    let ticks = 48_000 / pcm.sample_rate as usize;
    let total = pcm.samples.len();
    // The encoder runs `pre_skip` behind its input: feed that much silence more to flush it, in
    // whole frames, then say in the last packet where the audio really ends (RFC 7845 4.4).
    let frames = (total + usize::from(head.pre_skip).div_ceil(ticks)).div_ceil(frame);
    let final_granule = u64::from(head.pre_skip) + (total * ticks) as u64;
    let mut writer = OggOpusWriter::new(Vec::new(), head).map_err(|error| bad(&error))?;
    let mut packet = vec![0u8; MAX_PACKET_BYTES];
    let mut block = vec![0i16; frame];
    for index in 0..frames {
        let start = (index * frame).min(total);
        let end = (start + frame).min(total);
        block[..end - start].copy_from_slice(&pcm.samples[start..end]);
        block[end - start..].fill(0);
        let length = encoder.encode_s16(&block, frame, &mut packet).map_err(|error| bad(&error))?;
        if index + 1 == frames {
            let granule = u64::try_from(writer.granule()).unwrap_or(0);
            let duration = u32::try_from(final_granule.saturating_sub(granule)).unwrap_or(u32::MAX);
            writer.write_packet_with_duration(&packet[..length], duration).map_err(|error| bad(&error))?;
        } else {
            writer.write_packet(&packet[..length]).map_err(|error| bad(&error))?;
        }
    }
    writer.finish().map_err(|error| bad(&error))
}
