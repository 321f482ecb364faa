//! A man in the middle: terminates the client's TLS with a certificate of its own, opens
//! TLS to Gatehouse, and relays bytes both ways. Without channel binding the client cannot
//! tell; with it, the binding the client computes names the wrong certificate.

use super::certs::Cert;
use super::wire::{self, Start};
use tokio::io::AsyncReadExt;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// Starts relaying to `proxy_port` while presenting `cert`; returns the port to dial.
pub async fn start(proxy_port: u16, cert: &Cert) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(cert.server_config());
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // The client's SSLRequest (8 bytes), answered as a server would.
                let mut req = [0u8; 8];
                client.read_exact(&mut req).await.ok()?;
                client.write_all(b"S").await.ok()?;
                let mut client = acceptor.accept(client).await.ok()?;
                let alpn: &[&[u8]] = &[b"postgresql"];
                let mut upstream = wire::tls(proxy_port, Start::SslRequest, alpn).await.ok()?;
                tokio::io::copy_bidirectional(&mut client, &mut upstream)
                    .await
                    .ok()
            });
        }
    });
    port
}
