//! A TCP proxy a drill puts in front of a service, to slow down, swallow or
//! cut what passes between it and its callers, as a bad network would.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to the bytes that pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forwarded as they come.
    None,
    /// Each chunk held this long before it is forwarded, both ways.
    Latency(Duration),
    /// Nothing forwarded (connections stay open): calls meet their deadline.
    Blackhole,
}

/// The proxy; stops with the test.
pub struct FaultProxy {
    addr: SocketAddr,
    fault: watch::Sender<Fault>,
    /// Bumped to cut every connection open now.
    resets: watch::Sender<u64>,
    accepting: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl FaultProxy {
    /// A proxy on a free loopback port to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (fault, faults) = watch::channel(Fault::None);
        let (resets, reset_count) = watch::channel(0u64);
        let accepting = tokio::spawn(async move {
            while let Ok((caller, _)) = listener.accept().await {
                let (faults, resets) = (faults.clone(), reset_count.clone());
                tokio::spawn(async move {
                    let Ok(service) = TcpStream::connect(target).await else { return };
                    relay(caller, service, faults, resets).await;
                });
            }
        });
        Self { addr, fault, resets, accepting }
    }

    /// Where callers connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// From now on, `fault` applies to every connection.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    /// Cuts every connection open now (both sides see it closed mid-call);
    /// callers reconnect.
    pub fn reset_all(&self) {
        self.resets.send_modify(|n| *n += 1);
    }
}

/// Pumps both ways until either side closes or a reset is ordered.
async fn relay(
    caller: TcpStream,
    service: TcpStream,
    faults: watch::Receiver<Fault>,
    mut resets: watch::Receiver<u64>,
) {
    let _ = caller.set_nodelay(true);
    let _ = service.set_nodelay(true);
    resets.mark_unchanged();
    let (caller_read, caller_write) = caller.into_split();
    let (service_read, service_write) = service.into_split();
    let upstream = pump(caller_read, service_write, faults.clone());
    let downstream = pump(service_read, caller_write, faults);
    tokio::select! {
        _ = upstream => {}
        _ = downstream => {}
        _ = resets.changed() => {}
    }
    // Dropping the halves closes both sockets; the callers see their calls fail.
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut faults: watch::Receiver<Fault>,
) {
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let Ok(n) = from.read(&mut buffer).await else { return };
        if n == 0 {
            return;
        }
        loop {
            let fault = *faults.borrow_and_update();
            match fault {
                Fault::None => break,
                Fault::Latency(delay) => {
                    tokio::time::sleep(delay).await;
                    break;
                }
                // Held until the fault changes.
                Fault::Blackhole => {
                    if faults.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

#[tokio::test]
async fn the_proxy_forwards_delays_swallows_and_cuts() {
    let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = echo.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = echo.accept().await {
            tokio::spawn(async move {
                let mut b = [0u8; 16];
                while let Ok(n) = socket.read(&mut b).await {
                    if n == 0 || socket.write_all(&b[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let proxy = FaultProxy::start(target).await;
    let mut socket = TcpStream::connect(proxy.addr()).await.unwrap();
    let round_trip = async |socket: &mut TcpStream| {
        let started = std::time::Instant::now();
        socket.write_all(b"x").await.unwrap();
        let mut b = [0u8; 1];
        let n = tokio::time::timeout(Duration::from_millis(500), socket.read(&mut b)).await;
        (n.ok().map(Result::unwrap), started.elapsed())
    };
    assert_eq!(round_trip(&mut socket).await.0, Some(1));
    proxy.set(Fault::Latency(Duration::from_millis(100)));
    let (n, took) = round_trip(&mut socket).await;
    assert_eq!(n, Some(1));
    assert!(took >= Duration::from_millis(200), "{took:?}: delayed both ways");
    proxy.set(Fault::Blackhole);
    assert_eq!(round_trip(&mut socket).await.0, None, "swallowed");
    proxy.set(Fault::None);
    proxy.reset_all();
    let mut b = [0u8; 4];
    // The held byte may still arrive; then the connection ends.
    let mut ended = false;
    for _ in 0..3 {
        if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(500), socket.read(&mut b)).await {
            ended = true;
            break;
        }
    }
    assert!(ended, "cut");
}
