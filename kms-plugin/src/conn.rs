//! Accepted connections that the plugin can cut off: when requests are
//! still in flight after the shutdown grace period, every connection reads
//! end-of-file and fails to write, so the server's connection tasks end
//! even in a runtime the plugin does not own.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;

/// Cuts off every [`Conn`] made from it.
#[derive(Debug, Default)]
pub(crate) struct Kill {
    killed: AtomicBool,
    notify: Arc<Notify>,
}

impl Kill {
    pub(crate) fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        // Wakes every Conn's future, polled yet or not (each was made
        // before this call).
        self.notify.notify_waiters();
    }

    pub(crate) fn wrap(self: &Arc<Kill>, io: UnixStream) -> Conn {
        Conn {
            io,
            kill: Arc::clone(self),
            killed: Box::pin(Arc::clone(&self.notify).notified_owned()),
        }
    }
}

/// A unix stream that ends when its [`Kill`] fires.
#[derive(Debug)]
pub(crate) struct Conn {
    io: UnixStream,
    kill: Arc<Kill>,
    killed: Pin<Box<OwnedNotified>>,
}

impl Conn {
    /// Whether the connection was cut off; registers the task's waker so
    /// that it is woken when it is.
    fn cut(&mut self, cx: &mut Context<'_>) -> bool {
        self.kill.killed.load(Ordering::SeqCst) || self.killed.as_mut().poll(cx).is_ready()
    }
}

use std::future::Future as _;

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut(cx) {
            return Poll::Ready(Ok(())); // end of file
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.cut(cx) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.cut(cx) {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        Pin::new(&mut this.io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for Conn {
    type ConnectInfo = <UnixStream as tonic::transport::server::Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}
