//! A TLS front for tests: terminates TLS with a certificate of a test PKI made
//! at test time (`support/certs.py`) and passes the decrypted bytes to an
//! emulator. It counts what it sees, so a test can tell that nothing reached
//! the emulator through a refused handshake and that nothing came in the
//! clear.

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::run_with_stdin;

/// A test PKI in a folder of its own, removed when dropped: `ca.pem` (the
/// authority the tests trust), `other-ca.pem`, and the server certificates
/// `good`, `wrong-host`, `unknown-ca` and `expired` (see `support/certs.py`).
pub struct Pki {
    /// The folder that holds the files.
    pub dir: PathBuf,
}

impl Pki {
    /// Makes the certificates (a few hundred milliseconds of Python).
    pub fn make() -> Pki {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "ld-dynamodb-pki-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let python = std::env::var("LD_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
        let mut command = Command::new(python);
        command
            .arg(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("support/certs.py"))
            .arg(&dir);
        let out = run_with_stdin(command, "");
        assert!(
            out.status.success(),
            "certs.py: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Pki { dir }
    }

    /// A file of the PKI, such as `ca.pem`.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What the front saw.
#[derive(Default)]
struct Seen {
    /// TCP connections accepted.
    connections: AtomicUsize,
    /// Connections whose first byte was not a TLS handshake record.
    plaintext: AtomicUsize,
    /// Handshakes completed.
    handshakes: AtomicUsize,
    /// Why the others failed, as the server side of rustls says.
    failures: Mutex<Vec<String>>,
    /// Decrypted bytes passed on to the emulator.
    forwarded: AtomicU64,
}

/// A running TLS front on a free 127.0.0.1 port; it stops with the test's runtime.
pub struct TlsFront {
    /// `https://localhost:<port>`.
    pub endpoint: String,
    seen: Arc<Seen>,
}

impl TlsFront {
    /// A front to `upstream` (`http://host:port`) presenting the certificate
    /// `cert` of `pki` (`good`, `wrong-host`, `unknown-ca`, `expired`).
    pub async fn start(upstream: &str, pki: &Pki, cert: &str) -> TlsFront {
        use rustls::pki_types::{pem::PemObject, CertificateDer, PrivateKeyDer};
        let dir = &pki.dir;
        let read = |ext: &str| std::fs::read(dir.join(format!("{cert}.{ext}"))).unwrap();
        let chain = CertificateDer::pem_slice_iter(&read("pem"))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(&read("key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let upstream = upstream
            .strip_prefix("http://")
            .expect("an http:// upstream")
            .to_string();
        let seen = Arc::new(Seen::default());
        let front = seen.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                front.connections.fetch_add(1, Ordering::SeqCst);
                let (acceptor, upstream, seen) =
                    (acceptor.clone(), upstream.clone(), front.clone());
                tokio::spawn(serve(client, acceptor, upstream, seen));
            }
        });
        TlsFront {
            endpoint: format!("https://localhost:{port}"),
            seen,
        }
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.seen.connections.load(Ordering::SeqCst)
    }

    /// Connections that did not start with a TLS handshake record.
    pub fn plaintext(&self) -> usize {
        self.seen.plaintext.load(Ordering::SeqCst)
    }

    /// Handshakes completed.
    pub fn handshakes(&self) -> usize {
        self.seen.handshakes.load(Ordering::SeqCst)
    }

    /// Why handshakes failed (the client's alert, as rustls reports it).
    pub fn failures(&self) -> Vec<String> {
        self.seen.failures.lock().unwrap().clone()
    }

    /// Decrypted bytes passed on to the emulator.
    pub fn forwarded(&self) -> u64 {
        self.seen.forwarded.load(Ordering::SeqCst)
    }
}

/// The first byte of a TLS handshake record.
const HANDSHAKE_RECORD: u8 = 0x16;

async fn serve(
    client: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    upstream: String,
    seen: Arc<Seen>,
) {
    let mut first = [0u8; 1];
    if client.peek(&mut first).await.unwrap_or(0) == 0 {
        return;
    }
    if first[0] != HANDSHAKE_RECORD {
        seen.plaintext.fetch_add(1, Ordering::SeqCst);
        return;
    }
    let tls = match acceptor.accept(client).await {
        Ok(tls) => tls,
        Err(e) => {
            seen.failures.lock().unwrap().push(e.to_string());
            return;
        }
    };
    seen.handshakes.fetch_add(1, Ordering::SeqCst);
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (mut from_client, mut to_client) = tokio::io::split(tls);
    let (mut from_server, mut to_server) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match from_client.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    seen.forwarded.fetch_add(n as u64, Ordering::SeqCst);
                    if to_server.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = to_server.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut from_server, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    tokio::join!(up, down);
}
