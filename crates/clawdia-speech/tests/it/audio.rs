//! Audio in and out: WAV shapes, Ogg/Opus round trips and interop with opus-tools, resampling,
//! and hostile files (one-line errors, never a panic).

use clawdia_core::{Pcm, SpeechError};
use clawdia_speech::{AudioFormat, decode, encode, ogg, resample, wav};
use proptest::prelude::*;

use super::{espeak, tool};

/// A WAV file with the given header fields and raw sample bytes.
fn wav_file(code: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
    let block = channels * bits / 8;
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&code.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&(rate * u32::from(block)).to_le_bytes());
    fmt.extend_from_slice(&block.to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    let mut out = b"RIFF\0\0\0\0WAVE".to_vec();
    // A chunk readers must skip.
    out.extend_from_slice(b"LIST\x03\0\0\0abc\0");
    out.extend_from_slice(b"fmt ");
    out.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    out.extend_from_slice(&fmt);
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

fn sine(rate: u32, hz: f32, seconds: f32) -> Pcm {
    let count = (rate as f32 * seconds) as usize;
    let samples = (0..count)
        .map(|i| ((i as f32 * hz * std::f32::consts::TAU / rate as f32).sin() * 12_000.0) as i16)
        .collect();
    Pcm { sample_rate: rate, samples }
}

/// Sign changes per second: twice the frequency of a pure tone.
fn crossings_per_second(pcm: &Pcm) -> f32 {
    let changes = pcm.samples.windows(2).filter(|pair| (pair[0] < 0) != (pair[1] < 0)).count();
    changes as f32 / pcm.seconds() as f32
}

/// Normalised correlation of two signals over their common length (1.0: identical shape).
fn correlation(a: &[i16], b: &[i16]) -> f64 {
    let n = a.len().min(b.len());
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for i in 0..n {
        let (x, y) = (f64::from(a[i]), f64::from(b[i]));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    ab / (aa.sqrt() * bb.sqrt()).max(1.0)
}

fn audio_error(bytes: &[u8]) -> String {
    match decode(bytes) {
        Ok(pcm) => panic!("decoded {} samples from a bad file", pcm.samples.len()),
        Err(error) => {
            assert!(matches!(error, SpeechError::Audio(_)), "{error:?}");
            let text = error.to_string();
            assert!(!text.contains('\n'), "more than one line: {text}");
            text
        }
    }
}

#[test]
fn wav_round_trips_sixteen_bit_mono() {
    let pcm = sine(16_000, 440.0, 0.5);
    let bytes = encode(&pcm, AudioFormat::Wav).unwrap();
    assert_eq!(bytes.len(), 44 + pcm.samples.len() * 2);
    assert_eq!(decode(&bytes).unwrap(), pcm);
}

#[test]
fn wav_reads_every_common_sample_shape_and_mixes_channels_to_mono() {
    // Half scale positive, then half scale negative, in each encoding.
    let cases: Vec<(u16, u16, Vec<u8>)> = vec![
        (1, 8, vec![192, 64]),
        (1, 16, [16_384i16, -16_384].iter().flat_map(|s| s.to_le_bytes()).collect()),
        (1, 24, vec![0, 0, 0x40, 0, 0, 0xC0]),
        (1, 32, [1i32 << 30, -(1i32 << 30)].iter().flat_map(|s| s.to_le_bytes()).collect()),
        (3, 32, [0.5f32, -0.5].iter().flat_map(|s| s.to_le_bytes()).collect()),
        (3, 64, [0.5f64, -0.5].iter().flat_map(|s| s.to_le_bytes()).collect()),
    ];
    for (code, bits, data) in cases {
        let pcm = decode(&wav_file(code, 1, 8_000, bits, &data)).unwrap();
        assert_eq!(
            pcm,
            Pcm { sample_rate: 8_000, samples: vec![16_384, -16_384] },
            "code {code}, {bits} bits"
        );
    }
    // WAVE_FORMAT_EXTENSIBLE naming float (as ffmpeg writes it): cbSize 22, valid bits, channel
    // mask, then the sub-format GUID starting with the format code.
    let mut extensible = wav_file(
        0xFFFE,
        1,
        8_000,
        32,
        &[0.5f32, -0.5].iter().flat_map(|s| s.to_le_bytes()).collect::<Vec<u8>>(),
    );
    let fmt_at = extensible.windows(4).position(|w| w == b"fmt ").unwrap();
    let mut extension = 22u16.to_le_bytes().to_vec();
    extension.extend_from_slice(&32u16.to_le_bytes());
    extension.extend_from_slice(&4u32.to_le_bytes());
    extension.extend_from_slice(&3u16.to_le_bytes());
    extension.extend_from_slice(&[0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xAA, 0, 0x38, 0x9B, 0x71]);
    extensible[fmt_at + 4..fmt_at + 8].copy_from_slice(&40u32.to_le_bytes());
    extensible.splice(fmt_at + 24..fmt_at + 24, extension);
    let pcm = decode(&extensible).unwrap();
    assert_eq!(pcm, Pcm { sample_rate: 8_000, samples: vec![16_384, -16_384] });
    // Stereo: left and right averaged.
    let stereo: Vec<u8> = [20_000i16, 0, -8_000, -8_000].iter().flat_map(|s| s.to_le_bytes()).collect();
    let pcm = decode(&wav_file(1, 2, 44_100, 16, &stereo)).unwrap();
    assert_eq!(pcm, Pcm { sample_rate: 44_100, samples: vec![10_000, -8_000] });
}

#[test]
fn a_streamed_wav_with_an_unknown_length_reads_to_the_end() {
    let pcm = sine(24_000, 300.0, 0.1);
    let mut bytes = encode(&pcm, AudioFormat::Wav).unwrap();
    bytes[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    // A stream cut mid-sample: the partial sample is dropped.
    bytes.push(0x12);
    assert_eq!(decode(&bytes).unwrap(), pcm);
}

#[test]
fn espeak_speech_decodes_and_survives_an_ogg_opus_round_trip() {
    let Some(bytes) =
        espeak("Ogg/Opus round trip of speech", "Clawdia answers voice notes with her own voice.")
    else {
        return;
    };
    let speech = decode(&bytes).unwrap();
    assert_eq!(speech.sample_rate, 22_050);
    assert!(speech.seconds() > 1.5, "espeak spoke for {} s", speech.seconds());
    let note = encode(&speech, AudioFormat::OggOpus).unwrap();
    assert!(note.starts_with(b"OggS"));
    // 32 kb/s: a fraction of the 16-bit PCM's size.
    assert!(note.len() < bytes.len() / 5, "{} bytes of Opus for {} of WAV", note.len(), bytes.len());
    let back = decode(&note).unwrap();
    assert_eq!(back.sample_rate, 48_000);
    let expected = resample(&speech, 48_000).unwrap();
    assert_eq!(back.samples.len(), expected.samples.len(), "the note ends where the speech ends");
    let similarity = correlation(&back.samples, &expected.samples);
    assert!(similarity > 0.8, "decoded speech correlates {similarity:.3} with the original");
}

#[test]
fn ogg_opus_from_opusenc_decodes_and_ours_plays_in_opusdec() {
    let Some(bytes) = espeak("Ogg/Opus interop with opus-tools", "Testing one two three.") else { return };
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("speech.wav");
    std::fs::write(&source, &bytes).unwrap();
    let theirs = dir.path().join("theirs.opus");
    let Some(()) =
        tool("opusenc interop", "opusenc", &["--quiet", source.to_str().unwrap(), theirs.to_str().unwrap()])
    else {
        return;
    };
    let speech = decode(&bytes).unwrap();
    let decoded = decode(&std::fs::read(&theirs).unwrap()).unwrap();
    let expected = resample(&speech, 48_000).unwrap();
    let difference = decoded.samples.len().abs_diff(expected.samples.len());
    assert!(
        difference < 960,
        "{} samples from opusenc for {}",
        decoded.samples.len(),
        expected.samples.len()
    );
    assert!(correlation(&decoded.samples, &expected.samples) > 0.8);

    let ours = dir.path().join("ours.ogg");
    std::fs::write(&ours, encode(&speech, AudioFormat::OggOpus).unwrap()).unwrap();
    let played = dir.path().join("played.wav");
    tool(
        "opusdec interop",
        "opusdec",
        &["--quiet", "--rate", "48000", ours.to_str().unwrap(), played.to_str().unwrap()],
    )
    .unwrap();
    let played = decode(&std::fs::read(&played).unwrap()).unwrap();
    assert_eq!(played.samples.len(), expected.samples.len());
    assert!(correlation(&played.samples, &expected.samples) > 0.8);
}

#[test]
fn ogg_opus_keeps_a_tone_at_every_opus_rate_and_resamples_the_rest() {
    for rate in [8_000, 16_000, 24_000, 48_000, 22_050, 44_100] {
        let tone = sine(rate, 440.0, 1.0);
        let back = decode(&encode(&tone, AudioFormat::OggOpus).unwrap()).unwrap();
        assert!((back.seconds() - 1.0).abs() < 0.001, "{rate} Hz came back {} s long", back.seconds());
        let hz = crossings_per_second(&back) / 2.0;
        assert!((hz - 440.0).abs() < 5.0, "{rate} Hz: the tone came back at {hz} Hz");
    }
}

#[test]
fn resampling_keeps_length_and_pitch() {
    let tone = sine(22_050, 1_000.0, 2.0);
    for rate in [16_000, 48_000, 8_000] {
        let out = resample(&tone, rate).unwrap();
        assert_eq!(out.sample_rate, rate);
        assert!((out.seconds() - 2.0).abs() < 0.002, "{rate}: {} s", out.seconds());
        let hz = crossings_per_second(&out) / 2.0;
        assert!((hz - 1_000.0).abs() < 5.0, "{rate}: {hz} Hz");
    }
    assert_eq!(resample(&tone, 22_050).unwrap(), tone);
    assert!(resample(&tone, 0).is_err());
}

#[test]
fn broken_audio_files_fail_with_one_line_naming_the_problem() {
    let good = encode(&sine(16_000, 440.0, 0.1), AudioFormat::Wav).unwrap();
    let with = |at: usize, bytes: &[u8]| {
        let mut copy = good.clone();
        copy[at..at + bytes.len()].copy_from_slice(bytes);
        copy
    };
    for (bytes, expected) in [
        (Vec::new(), "unreadable audio: the file is empty"),
        (
            b"ID3\x04\0\0\0\0".to_vec(),
            "unreadable audio: not a WAV or Ogg/Opus file (it starts with 49443304)",
        ),
        (good[..30].to_vec(), "unreadable audio: WAV: the `fmt ` chunk claims 16 bytes but only 10 remain"),
        (with(22, &0u16.to_le_bytes()), "unreadable audio: WAV: 0 channels (1 to 32 are read)"),
        (
            with(24, &0u32.to_le_bytes()),
            "unreadable audio: WAV: a sample rate of 0 Hz (1000 to 384000 are read)",
        ),
        (
            with(20, &0x55u16.to_le_bytes()),
            "unreadable audio: WAV: format code 0x0055 is compressed or unknown (PCM and float WAV are read)",
        ),
        (
            with(34, &12u16.to_le_bytes()),
            "unreadable audio: WAV: 12-bit integer samples (8, 16, 24 or 32 are read)",
        ),
        (with(36, b"junk"), "unreadable audio: WAV: no data chunk"),
        (with(12, b"junk"), "unreadable audio: WAV: the data chunk comes before the fmt chunk"),
        (b"OggS\0\x02garbage".to_vec(), "unreadable audio: Ogg/Opus:"),
    ] {
        let error = audio_error(&bytes);
        assert!(error.starts_with(expected), "expected `{expected}`, got `{error}`");
    }
    // The positive control: the unbroken file decodes.
    assert_eq!(decode(&good).unwrap().samples.len(), 1_600);
}

#[test]
fn a_truncated_voice_note_fails_cleanly() {
    let note = encode(&sine(48_000, 440.0, 1.0), AudioFormat::OggOpus).unwrap();
    for cut in [10, 40, note.len() / 2] {
        match decode(&note[..cut]) {
            Ok(pcm) => assert!(pcm.seconds() < 1.0),
            Err(error) => assert!(!error.to_string().contains('\n')),
        }
    }
    assert!(ogg::is_ogg(&note) && !wav::is_wav(&note));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn no_wav_bytes_make_the_reader_panic(tail in proptest::collection::vec(any::<u8>(), 0..400)) {
        let mut bytes = b"RIFF\0\0\0\0WAVE".to_vec();
        bytes.extend_from_slice(&tail);
        let _ = decode(&bytes);
    }

    #[test]
    fn no_mutation_of_a_wav_file_makes_the_reader_panic(
        edits in proptest::collection::vec((0usize..300, any::<u8>()), 1..8),
        cut in 12usize..300,
    ) {
        let mut bytes = encode(&sine(8_000, 440.0, 0.03), AudioFormat::Wav).unwrap();
        for (at, byte) in edits {
            let at = at % bytes.len();
            if at >= 12 { bytes[at] = byte; }
        }
        bytes.truncate(cut.min(bytes.len()));
        let _ = decode(&bytes);
    }

    #[test]
    fn no_mutation_of_a_voice_note_makes_the_decoder_panic(
        edits in proptest::collection::vec((0usize..4_000, any::<u8>()), 1..12),
        cut in 0usize..4_000,
    ) {
        let mut bytes = encode(&sine(16_000, 440.0, 0.3), AudioFormat::OggOpus).unwrap();
        for (at, byte) in edits {
            let at = at % bytes.len();
            bytes[at] = byte;
        }
        bytes.truncate(cut.max(4).min(bytes.len()));
        let _ = decode(&bytes);
    }
}

/// A well-formed Ogg/Opus file (valid pages and CRCs) around arbitrary packets, so the Opus
/// decoder itself meets garbage.
fn ogg_around(packets: &[Vec<u8>]) -> Vec<u8> {
    let head = opus_pure::OpusHead::new(1, 48_000).unwrap();
    let mut writer = opus_pure::OggOpusWriter::new(Vec::new(), head).unwrap();
    for packet in packets {
        writer.write_packet_with_duration(packet, 960).unwrap();
    }
    writer.finish().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn no_garbage_opus_packet_makes_the_decoder_panic(
        packets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..6),
    ) {
        if let Err(error) = decode(&ogg_around(&packets)) {
            prop_assert!(!error.to_string().contains('\n'));
        }
    }
}
