//! Whisper's mel filter bank, computed rather than shipped: librosa's `filters.mel(sr=16000,
//! n_fft=400, n_mels=80)` with the Slaney mel scale and Slaney area normalisation, the bank the
//! model was trained with. Row `m` holds the weights of the 201 FFT bins for mel band `m`.

/// Hz -> mel on the Slaney scale: linear below 1 kHz, logarithmic above.
fn hz_to_mel(hz: f64) -> f64 {
    let linear = hz / (200.0 / 3.0);
    if hz >= 1_000.0 { 15.0 + (hz / 1_000.0).ln() / (6.4f64.ln() / 27.0) } else { linear }
}

fn mel_to_hz(mel: f64) -> f64 {
    if mel >= 15.0 { 1_000.0 * ((6.4f64.ln() / 27.0) * (mel - 15.0)).exp() } else { mel * (200.0 / 3.0) }
}

/// `n_mels x (n_fft / 2 + 1)` weights, row-major.
pub fn filters(sample_rate: usize, n_fft: usize, n_mels: usize) -> Vec<f32> {
    let bins = n_fft / 2 + 1;
    let fft_hz: Vec<f64> = (0..bins).map(|k| k as f64 * sample_rate as f64 / n_fft as f64).collect();
    let top = hz_to_mel(sample_rate as f64 / 2.0);
    let points: Vec<f64> = (0..n_mels + 2).map(|i| mel_to_hz(top * i as f64 / (n_mels + 1) as f64)).collect();
    let mut weights = vec![0f32; n_mels * bins];
    for m in 0..n_mels {
        let (low, centre, high) = (points[m], points[m + 1], points[m + 2]);
        let norm = 2.0 / (high - low);
        for (k, &hz) in fft_hz.iter().enumerate() {
            let rising = (hz - low) / (centre - low);
            let falling = (high - hz) / (high - centre);
            weights[m * bins + k] = (rising.min(falling).max(0.0) * norm) as f32;
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::{filters, hz_to_mel, mel_to_hz};

    #[test]
    fn the_slaney_scale_has_its_anchor_points() {
        // Linear at 200/3 Hz per mel up to 1 kHz (15 mel), then 27 mel per factor of 6.4.
        assert!((hz_to_mel(500.0) - 7.5).abs() < 1e-12);
        assert!((hz_to_mel(1_000.0) - 15.0).abs() < 1e-12);
        assert!((hz_to_mel(6_400.0) - 42.0).abs() < 1e-9);
        for hz in [0.0, 123.0, 999.0, 1_000.0, 4_321.0, 8_000.0] {
            assert!((mel_to_hz(hz_to_mel(hz)) - hz).abs() < 1e-6, "{hz}");
        }
    }

    #[test]
    fn each_band_is_a_triangle_peaking_above_the_last() {
        let bank = filters(16_000, 400, 80);
        assert_eq!(bank.len(), 80 * 201);
        let mut last_peak = 0;
        for m in 0..80 {
            let row = &bank[m * 201..(m + 1) * 201];
            let peak = (0..201).max_by(|&a, &b| row[a].total_cmp(&row[b])).unwrap_or(0);
            assert!(row[peak] > 0.0, "band {m} is empty");
            assert!(peak >= last_peak, "band {m} peaks at bin {peak}, below {last_peak}");
            // Rising to the peak, falling after it.
            assert!(row[..peak].windows(2).all(|w| w[0] <= w[1]), "band {m} rises unevenly");
            assert!(row[peak..].windows(2).all(|w| w[0] >= w[1]), "band {m} falls unevenly");
            last_peak = peak;
        }
        assert!(last_peak > 190, "the top band peaks at bin {last_peak}");
    }
}
