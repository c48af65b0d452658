//! Unit tests of the local embedder's pure parts: length batching, mean pooling that ignores
//! padding, and the model id; none needs the weights.

use std::path::Path;

use candle_core::{Device, Tensor};

use super::{batches_by_length, mean_pool_normalize, model_id_for};

#[test]
fn batches_group_similar_lengths_and_cover_every_text_once() {
    let lengths = [9, 3, 7, 3, 12, 1, 7];
    assert_eq!(batches_by_length(&lengths, 3, 1000), vec![vec![5, 1, 3], vec![2, 6, 0], vec![4]]);
    assert_eq!(batches_by_length(&[], 32, 1000), Vec::<Vec<usize>>::new());
}

#[test]
fn long_texts_go_in_smaller_batches() {
    // 20 padded tokens per batch at most: 1, 3, 3 fit (3 x 3 = 9); 7, 7 (14); 9, 12 alone.
    let lengths = [9, 3, 7, 3, 12, 1, 7];
    assert_eq!(batches_by_length(&lengths, 32, 20), vec![vec![5, 1, 3], vec![2, 6], vec![0], vec![4]]);
    // A text longer than the budget still gets a batch of its own.
    assert_eq!(batches_by_length(&[50, 2], 32, 20), vec![vec![1], vec![0]]);
}

#[test]
fn mean_pooling_ignores_padding_and_normalizes() {
    // Two texts of 3 token slots, 2 dims; the second has one padding slot holding garbage.
    let hidden = Tensor::new(
        &[[[1.0f32, 0.0], [3.0, 4.0], [2.0, 2.0]], [[0.0, 2.0], [0.0, 4.0], [1000.0, -1000.0]]],
        &Device::Cpu,
    )
    .unwrap();
    let mask = Tensor::new(&[[1u32, 1, 1], [1, 1, 0]], &Device::Cpu).unwrap();
    let pooled = mean_pool_normalize(&hidden, &mask).unwrap().to_vec2::<f32>().unwrap();
    // mean of the first = (2, 2) -> (0.7071, 0.7071); of the second = (0, 3) -> (0, 1).
    let expected = [[std::f32::consts::FRAC_1_SQRT_2, std::f32::consts::FRAC_1_SQRT_2], [0.0, 1.0]];
    for (row, want) in pooled.iter().zip(expected) {
        for (got, want) in row.iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{pooled:?}");
        }
    }
}

#[test]
fn all_padding_or_zero_vectors_do_not_become_nan() {
    let hidden = Tensor::zeros((1, 2, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
    let mask = Tensor::new(&[[0u32, 0]], &Device::Cpu).unwrap();
    let pooled = mean_pool_normalize(&hidden, &mask).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(pooled, vec![vec![0.0; 3]]);
}

#[test]
fn model_id_is_local_slash_folder_name() {
    assert_eq!(model_id_for(Path::new("/x/models/all-MiniLM-L6-v2")), "local/all-MiniLM-L6-v2");
    assert_eq!(model_id_for(Path::new("/x/models/all-MiniLM-L6-v2/")), "local/all-MiniLM-L6-v2");
}
