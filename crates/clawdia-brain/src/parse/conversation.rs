//! Chat transcripts in plain text: one chunk per turn, so a search can answer with the message
//! that says it rather than a 1,000-character window of a chat.
//!
//! A turn starts with a line `Speaker: message`, optionally led by a time stamp in the shapes
//! chat exports use (`[21/03/2023, 14:02:11] Bob: hi` from WhatsApp on iOS,
//! `21/03/2023, 14:02 - Bob: hi` from WhatsApp on Android, `[2023-03-21 14:02] Bob: hi`), or an
//! IRC line `<bob> hi`. Lines that do not start a turn continue the one before (multi-line
//! messages); lines before the first turn are the preamble (a date, a heading) and travel with
//! the first turn's chunk.
//!
//! A text is taken for a transcript only when it clearly is one (`transcript`): at least
//! `MIN_TURNS` turns by two or more speakers who speak `MIN_TURNS_PER_SPEAKER` times each on
//! average, turn lines making up at least half of the lines from the first turn on, and a short
//! preamble. `Date: ...`/`Location: ...` headers, `NOTE:`/`TODO:` lists and prose fail that.
//!
//! A turn's chunk carries, as its context, the speaker, the time stamp and the messages just
//! before and after it: answers in a chat rarely repeat the words of the question they answer
//! ("Where did you get her?" / "A breeder nearby"). Neighbours appear without their speakers'
//! names, so a turn is not found by the name of whoever spoke next to it. Measured on LoCoMo
//! (`cargo xtask bench brain`), see the bench's notes.

use text_splitter::{ChunkConfig, TextSplitter};

use super::{LineIndex, ParseOptions, chunk_capacity, collapse_whitespace, truncate_chars};
use crate::types::ChunkInput;

/// Fewer turns than this is not a transcript.
const MIN_TURNS: usize = 4;
/// Turns per speaker, on average, below which the `Name: value` lines are fields, not turns.
const MIN_TURNS_PER_SPEAKER: usize = 2;
/// More non-empty lines than this before the first turn: a document that quotes a chat.
const MAX_PREAMBLE_LINES: usize = 5;
/// Speaker names longer than this (in characters) are not names.
const MAX_NAME_CHARS: usize = 40;
/// Nor are names of more words than this.
const MAX_NAME_WORDS: usize = 5;
/// Time stamps longer than this (in bytes) are not stamps.
const MAX_STAMP_BYTES: usize = 40;
/// A neighbour's message is cut to this many characters in a turn's context.
const NEIGHBOUR_CHARS: usize = 300;

/// One turn of a transcript, by lines of the text (0-based, `last` inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Turn {
    pub first: usize,
    pub last: usize,
    pub speaker: String,
    pub stamp: Option<String>,
    /// The message, continuation lines included, whitespace collapsed.
    pub message: String,
}

/// A recognised transcript: its turns and preamble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Transcript {
    pub turns: Vec<Turn>,
    /// The first non-empty preamble line, when it carries no time stamp (a stamped one is a
    /// system message such as WhatsApp's encryption notice, not a title).
    pub heading: Option<String>,
}

impl Transcript {
    /// The speakers in order of first appearance.
    pub fn speakers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for turn in &self.turns {
            if !out.contains(&turn.speaker) {
                out.push(turn.speaker.clone());
            }
        }
        out
    }
}

/// The start of a turn on one line.
struct TurnStart<'a> {
    stamp: Option<&'a str>,
    speaker: &'a str,
    message: &'a str,
}

/// `text` as a transcript, or `None` when it is not clearly one (see the module docs).
pub(super) fn transcript(text: &str) -> Option<Transcript> {
    let lines: Vec<&str> = text.split('\n').map(|line| line.strip_suffix('\r').unwrap_or(line)).collect();
    let mut turns: Vec<Turn> = Vec::new();
    let mut preamble: Vec<&str> = Vec::new();
    let mut continuation_lines = 0;
    for (index, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        if let Some(start) = turn_start(line) {
            turns.push(Turn {
                first: index,
                last: index,
                speaker: start.speaker.to_string(),
                stamp: start.stamp.map(str::to_string),
                message: collapse_whitespace(start.message),
            });
        } else if let Some(turn) = turns.last_mut() {
            turn.last = index;
            turn.message.push(' ');
            turn.message.push_str(&collapse_whitespace(line));
            continuation_lines += 1;
        } else {
            preamble.push(line);
            if preamble.len() > MAX_PREAMBLE_LINES {
                return None;
            }
        }
    }
    let transcript = Transcript {
        heading: preamble
            .first()
            .filter(|line| split_stamp(line).0.is_none())
            .map(|line| collapse_whitespace(line)),
        turns,
    };
    let speakers = transcript.speakers().len();
    let turns = transcript.turns.len();
    let clear = turns >= MIN_TURNS
        && speakers >= 2
        && turns >= MIN_TURNS_PER_SPEAKER * speakers
        && continuation_lines <= turns;
    clear.then_some(transcript)
}

/// The turn a line starts, if it starts one.
fn turn_start(line: &str) -> Option<TurnStart<'_>> {
    let (stamp, rest) = split_stamp(line);
    if let Some(after) = rest.strip_prefix('<') {
        // IRC: `<nick> message`.
        let close = after.find('>')?;
        let (speaker, message) = (&after[..close], after[close + 1..].trim());
        return (is_name(speaker) && !speaker.contains(' ') && !message.is_empty()).then_some(TurnStart {
            stamp,
            speaker,
            message,
        });
    }
    let colon = rest.find(':')?;
    let (speaker, after) = (&rest[..colon], &rest[colon + 1..]);
    // `Name: text`; not `http://`, `10:30` or `key:value`.
    if !after.starts_with([' ', '\t']) {
        return None;
    }
    let message = after.trim();
    (is_name(speaker) && !message.is_empty()).then_some(TurnStart { stamp, speaker, message })
}

/// A leading time stamp and the rest of the line: `[...] rest` with a digit inside the brackets,
/// or a digit-led `date, time - rest` made only of date and time characters.
fn split_stamp(line: &str) -> (Option<&str>, &str) {
    if let Some(inner) = line.strip_prefix('[')
        && let Some(close) = inner.find(']')
        && close <= MAX_STAMP_BYTES
        && inner[..close].chars().any(|c| c.is_ascii_digit())
        && inner[close + 1..].starts_with([' ', '\t'])
    {
        return (Some(inner[..close].trim()), inner[close + 1..].trim_start());
    }
    if line.starts_with(|c: char| c.is_ascii_digit())
        && let Some(dash) = line.find(" - ")
        && dash <= MAX_STAMP_BYTES
        && line[..dash]
            .chars()
            .all(|c| c.is_ascii_digit() || "/.,:- aApPmM".contains(c) || c == '\u{202f}' || c == '\u{a0}')
    {
        return (Some(line[..dash].trim()), line[dash + 3..].trim_start());
    }
    (None, line)
}

/// A plausible speaker name: 1 to 40 characters, at most five words, no padding, led by a letter
/// (or `+`/`@`/`~` for phone numbers and handles), made of letters, digits, spaces and
/// `.'-_()+@&~`; not a shouted label (`NOTE`, `TODO`, `WARNING`).
fn is_name(name: &str) -> bool {
    let chars = name.chars().count();
    let shouted = name.chars().filter(|c| c.is_alphabetic()).count() >= 3
        && name.chars().filter(|c| c.is_alphabetic()).all(char::is_uppercase);
    (1..=MAX_NAME_CHARS).contains(&chars)
        && name.trim() == name
        && name.split_whitespace().count() <= MAX_NAME_WORDS
        && name.starts_with(|c: char| c.is_alphabetic() || "+@~".contains(c))
        && name.chars().all(|c| c.is_alphanumeric() || " .'-_()+@&~".contains(c))
        && !shouted
}

/// One chunk per turn (several for a turn longer than the chunk maximum), the preamble in the
/// first; each with the turn's context (speaker, stamp, neighbouring messages).
pub(super) fn chunks(text: &str, transcript: &Transcript, options: &ParseOptions) -> Vec<ChunkInput> {
    let index = LineIndex::new(text);
    let line_end = |line: usize| index.starts.get(line + 1).map_or(text.len(), |next| next - 1);
    let splitter = TextSplitter::new(ChunkConfig::new(chunk_capacity(options)));
    let max_chars = chunk_capacity(options).max();
    let mut out = Vec::new();
    for (position, turn) in transcript.turns.iter().enumerate() {
        let start = if position == 0 { 0 } else { index.starts[turn.first] };
        let end = line_end(turn.last);
        let context = context_of(&transcript.turns, position);
        let span = &text[start..end];
        if span.chars().count() <= max_chars {
            let trimmed_start = start + (span.len() - span.trim_start().len());
            let piece = span.trim();
            if piece.is_empty() {
                continue;
            }
            let (start_line, end_line) = index.lines_of(trimmed_start..trimmed_start + piece.len());
            out.push(ChunkInput { text: piece.to_string(), context: Some(context), start_line, end_line });
            continue;
        }
        for (offset, piece) in splitter.chunk_indices(span) {
            if piece.trim().is_empty() {
                continue;
            }
            let (start_line, end_line) = index.lines_of(start + offset..start + offset + piece.len());
            out.push(ChunkInput {
                text: piece.to_string(),
                context: Some(context.clone()),
                start_line,
                end_line,
            });
        }
    }
    out
}

/// `Speaker, stamp | previous message | next message` (parts that do not exist are left out).
fn context_of(turns: &[Turn], position: usize) -> String {
    let turn = &turns[position];
    let mut context = match &turn.stamp {
        Some(stamp) => format!("{}, {stamp}", turn.speaker),
        None => turn.speaker.clone(),
    };
    let before = position.checked_sub(1).and_then(|i| turns.get(i));
    for neighbour in before.into_iter().chain(turns.get(position + 1)) {
        context.push_str(" | ");
        context.push_str(truncate_chars(&neighbour.message, NEIGHBOUR_CHARS));
    }
    context
}
