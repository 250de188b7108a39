//! SQS: the events queue the webhook sends to ([`SqsEventQueue`]), and the message contract the
//! sync function decodes ([`wire`]).

mod queue;
pub mod wire;

pub use queue::{MAX_MESSAGE_BYTES, SqsEventQueue};
pub use wire::{attributes, delivery};
