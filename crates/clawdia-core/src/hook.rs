//! Inbound webhooks: a channel that is told about new messages by an HTTP post to the gateway
//! (Telegram in webhook mode) registers an [`InboundHook`]; the server routes the post to it
//! without the gateway token, and the hook itself checks the sender's shared secret. A hook
//! answers only after it has stored what arrived, so the sender retries anything not kept.

/// What a hook made of one post.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookAnswer {
    /// Stored; the sender may forget it (HTTP 200).
    Accepted,
    /// The secret was missing or wrong (HTTP 401; audited by the server).
    Unauthorized,
    /// Not something this hook takes (HTTP 400), with why.
    Invalid(String),
    /// It could not be stored now (HTTP 500: the sender retries), with why.
    Failed(String),
}

/// A receiver of inbound posts.
#[async_trait::async_trait]
pub trait InboundHook: Send + Sync {
    /// `secret` is the value of the sender's secret header, `body` the raw body.
    async fn receive(&self, secret: Option<&str>, body: &[u8]) -> HookAnswer;
}
