//! gRPC over TLS: the test server's routes behind rustls on loopback, with a
//! certificate for `localhost` from a CA made for the test (rcgen). Verification
//! stays on: the call passes when the plan trusts the CA and names `localhost`, and
//! fails by its reason, with nothing sent, when the name or the issuer is wrong.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use swarm::compile::graph::{CompiledPlan, Step};
use swarm::engine::config::{EngineConfig, HttpConfig};
use swarm::engine::request::{Outcome, VuContext, execute};
use swarm::engine::session::Protocols;
use swarm::metrics::failure::{FailureKind, TransportFailure};
use swarm::testing::TestPlan;

/// A CA, and a server certificate for `localhost` it signed.
fn certificates() -> (
    CertificateDer<'static>,
    CertificateDer<'static>,
    PrivateKeyDer<'static>,
) {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "swarm gRPC test CA");
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap().der().clone();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = leaf.signed_by(&key, &issuer).unwrap().der().clone();
    let key = PrivateKeyDer::Pkcs8(key.serialize_der().into());
    (ca_cert, cert, key)
}

/// The gRPC test server over TLS (ALPN `h2` only); counts the handshakes that
/// succeeded.
fn tls_server(
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let handshakes = Arc::new(AtomicUsize::new(0));
    let counted = handshakes.clone();
    let app = super::server::app();
    let addr = crate::common::listen(move |listener| async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, app, counted) = (acceptor.clone(), app.clone(), counted.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let service = hyper::service::service_fn(move |req| {
                    let mut app = app.clone();
                    async move {
                        let res = tower_service::Service::call(&mut app, req).await;
                        Ok::<_, Infallible>(res.unwrap_or_else(|e| match e {}))
                    }
                });
                let _ = tokio::time::timeout(
                    Duration::from_secs(20),
                    hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .http2_only()
                        .serve_connection(TokioIo::new(tls), service),
                )
                .await;
            });
        }
    });
    (addr, handshakes)
}

fn plan(target: String) -> CompiledPlan {
    TestPlan::new()
        .target(target)
        .top(&super::schema())
        .flow(
            "- grpc: test.v1.Echo/Echo\n  message: { text: hi }\n  expect: { json: { $.text: hi } }",
        )
        .compile()
}

/// Runs the plan's one call as one user whose TLS trusts `roots`.
async fn call(plan: &CompiledPlan, roots: Vec<CertificateDer<'static>>) -> Outcome {
    let config = EngineConfig {
        http: HttpConfig {
            extra_roots: roots,
            ..HttpConfig::default()
        },
        ..EngineConfig::default()
    };
    let protocols = Protocols::new(&config).unwrap();
    let mut ctx = VuContext::new(0, plan, &protocols);
    let Step::Call(c) = &plan.flows[0].steps[0] else {
        panic!("a call");
    };
    tokio::time::timeout(
        Duration::from_secs(20),
        execute(c, &mut ctx, Instant::now()),
    )
    .await
    .expect("bounded by the call's timeout")
}

#[tokio::test]
async fn a_call_over_tls_verifies_the_server_and_fails_by_reason_on_a_bad_name_or_issuer() {
    let (ca, cert, key) = certificates();
    let (addr, handshakes) = tls_server(cert, key);
    let port = addr.port();

    let trusted = call(&plan(format!("https://localhost:{port}")), vec![ca.clone()]).await;
    assert_eq!(trusted.result, Ok(()), "{trusted:?}");
    assert!(trusted.bytes > 0);
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);

    // The certificate names `localhost`, not 127.0.0.1.
    let other_name = call(&plan(format!("https://127.0.0.1:{port}")), vec![ca]).await;
    assert_eq!(
        other_name.result,
        Err(FailureKind::Transport(TransportFailure::TlsHostname))
    );
    // The CA is not trusted.
    let unknown = call(&plan(format!("https://localhost:{port}")), Vec::new()).await;
    assert_eq!(
        unknown.result,
        Err(FailureKind::Transport(TransportFailure::TlsUnknownIssuer))
    );
    // Neither refused call got as far as a handshake the server accepted.
    assert_eq!(handshakes.load(Ordering::SeqCst), 1);
}
