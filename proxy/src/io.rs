//! Boxed stream halves, so a connection's code is the same over plain TCP
//! and TLS, on the client side and the broker side.

use tokio::io::{AsyncRead, AsyncWrite};

pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;
/// Both halves of one stream.
pub type Io = (BoxRead, BoxWrite);
