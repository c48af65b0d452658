//! The in-process engines (cargo feature `local`, on by default): Whisper speech to text on
//! candle, read from its CTranslate2 folder. Audio given to them never leaves the machine.

mod ct2;
mod mel;
mod whisper;

pub use whisper::LocalWhisper;
