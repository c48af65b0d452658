//! Word error rate, for checking transcripts (tests, `cargo xtask bench speech`): the word-level
//! edit distance between a reference and a hypothesis over the reference's length, after both
//! are lowercased and stripped of punctuation (so "Hello, world." matches "hello world").

/// The words of `text`, lowercased, punctuation dropped (apostrophes kept: "don't").
pub fn words(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|word| {
            word.chars().filter(|c| c.is_alphanumeric() || *c == '\'').collect::<String>().to_lowercase()
        })
        .filter(|word| !word.is_empty())
        .collect()
}

/// (substitutions + deletions + insertions) / reference words; 0 is perfect. An empty reference
/// gives 0 for an empty hypothesis and 1 otherwise.
pub fn word_error_rate(reference: &str, hypothesis: &str) -> f64 {
    let (reference, hypothesis) = (words(reference), words(hypothesis));
    if reference.is_empty() {
        return if hypothesis.is_empty() { 0.0 } else { 1.0 };
    }
    let mut previous: Vec<usize> = (0..=hypothesis.len()).collect();
    for (i, expected) in reference.iter().enumerate() {
        let mut current = vec![i + 1; hypothesis.len() + 1];
        for (j, got) in hypothesis.iter().enumerate() {
            let substitution = previous[j] + usize::from(expected != got);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[hypothesis.len()] as f64 / reference.len() as f64
}

#[cfg(test)]
mod tests {
    use super::word_error_rate;

    #[test]
    fn edits_are_counted_per_reference_word() {
        assert_eq!(word_error_rate("Hello, world.", "hello world"), 0.0);
        assert_eq!(word_error_rate("the cat sat", "the cat sat down"), 1.0 / 3.0);
        assert_eq!(word_error_rate("the cat sat", "the sat"), 1.0 / 3.0);
        assert_eq!(word_error_rate("the cat sat", "a dog sat"), 2.0 / 3.0);
        assert_eq!(word_error_rate("", ""), 0.0);
        assert_eq!(word_error_rate("", "noise"), 1.0);
        assert_eq!(word_error_rate("one two", ""), 1.0);
    }
}
