//! A real HTTP CONNECT proxy for tests, counting the tunnels it opened, and a plain TCP
//! forwarder that gives the sandbox's API server (which listens on 127.0.0.1 only, an
//! address kubectl never proxies) a non-loopback address.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener as StdListener, UdpSocket};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// An HTTP proxy that serves `CONNECT host:port` (what kubectl and the plugins send for an
/// `https://` server) and refuses everything else, on 127.0.0.1. It runs until dropped.
pub struct ConnectProxy {
    addr: SocketAddr,
    served: Arc<Mutex<Vec<String>>>,
    _stop: oneshot::Sender<()>,
}

impl ConnectProxy {
    /// Starts the proxy on a free port.
    ///
    /// # Panics
    /// When no port can be bound.
    pub fn start() -> ConnectProxy {
        let served = Arc::new(Mutex::new(vec![]));
        let (stop, stopped) = oneshot::channel();
        let listener = bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        let addr = listener.local_addr().expect("proxy address");
        let log = Arc::clone(&served);
        spawn(async move {
            let listener = TcpListener::from_std(listener).expect("proxy listener");
            tokio::select! {
                () = accept_tunnels(listener, log) => {}
                _ = stopped => {}
            }
        });
        ConnectProxy {
            addr,
            served,
            _stop: stop,
        }
    }

    /// `http://127.0.0.1:<port>`, for `HTTPS_PROXY`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The `host:port` of every CONNECT served so far, in order.
    pub fn connects(&self) -> Vec<String> {
        self.served.lock().expect("proxy log").clone()
    }
}

async fn accept_tunnels(listener: TcpListener, served: Arc<Mutex<Vec<String>>>) {
    while let Ok((client, _)) = listener.accept().await {
        let served = Arc::clone(&served);
        tokio::spawn(async move {
            let _ = tunnel(client, &served).await;
        });
    }
}

/// Reads one request head; a CONNECT is answered `200` and piped both ways to its target,
/// anything else `405`. A target that cannot be reached gets `502`.
async fn tunnel(client: TcpStream, served: &Mutex<Vec<String>>) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let mut request = String::new();
    client.read_line(&mut request).await?;
    let mut line = String::new();
    while client.read_line(&mut line).await? > 2 {
        line.clear();
    }
    let mut words = request.split_whitespace();
    let (Some("CONNECT"), Some(target)) = (words.next(), words.next()) else {
        return client
            .get_mut()
            .write_all(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            .await;
    };
    let Ok(mut upstream) = TcpStream::connect(target).await else {
        return client
            .get_mut()
            .write_all(b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n")
            .await;
    };
    served.lock().expect("proxy log").push(target.to_owned());
    client
        .get_mut()
        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
        .await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// Forwards every connection it accepts to one target, byte for byte.
pub struct Forward {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl Forward {
    /// Listens on `ip` (any free port) and forwards to `target`.
    ///
    /// # Panics
    /// When `ip` cannot be bound.
    pub fn start(ip: IpAddr, target: SocketAddr) -> Forward {
        let (stop, stopped) = oneshot::channel();
        let listener = bind(SocketAddr::new(ip, 0));
        let addr = listener.local_addr().expect("forward address");
        spawn(async move {
            let listener = TcpListener::from_std(listener).expect("forward listener");
            let forward = async {
                while let Ok((mut client, _)) = listener.accept().await {
                    tokio::spawn(async move {
                        if let Ok(mut upstream) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                    });
                }
            };
            tokio::select! {
                () = forward => {}
                _ = stopped => {}
            }
        });
        Forward { addr, _stop: stop }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

/// This machine's address on its default route: not a loopback address, so kubectl sends
/// requests to it through `HTTPS_PROXY` unless `NO_PROXY` names it. No packet is sent.
///
/// # Panics
/// When the machine has no route off loopback.
pub fn local_address() -> IpAddr {
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).expect("bind a UDP socket");
    // TEST-NET-1: only the route is looked up.
    socket
        .connect((Ipv4Addr::new(192, 0, 2, 1), 9))
        .expect("this machine has no route off loopback");
    let ip = socket.local_addr().expect("local address").ip();
    assert!(
        !ip.is_loopback() && !ip.is_unspecified(),
        "no usable local address: {ip}"
    );
    ip
}

fn bind(addr: SocketAddr) -> StdListener {
    let listener = StdListener::bind(addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    listener.set_nonblocking(true).expect("non-blocking listener");
    listener
}

/// Runs `task` on a runtime of its own thread, so a synchronous test can hold it.
fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .expect("a runtime for the test proxy")
            .block_on(task);
    });
}
