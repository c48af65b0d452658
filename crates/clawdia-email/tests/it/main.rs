//! The email channel's tests: who sent a message (DKIM with DMARC alignment, SPF as a signal)
//! against records given to the test resolver; the store; the channel against real Dovecot and
//! Postfix servers on loopback.

mod auth;
mod channel;
mod poll;
mod store;
mod tls;
