//! The loopback browser (RFC 8252) as an application sees it: where it listens, what it
//! registers as its redirect URI, and how it is configured. The sign-ins themselves — the
//! redirect over real HTTP, other states, other hosts, hostile pages, timeouts, cancellation,
//! sign-ins in turn, the system browser's start page and its cookie, connections queued
//! between sign-ins — are pinned by the unit tests in `src/source/authorization_code/loopback/`,
//! where an `AuthorizationRequest` can be built and the system browser replaced.

use std::sync::Arc;
use std::time::Duration;

use refresh_layer::source::authorization_code::{LoopbackBrowser, UserAgent};
use tokio::net::TcpStream;

async fn bounded<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), test)
        .await
        .expect("the test did not finish in time")
}

#[tokio::test]
async fn binds_127_0_0_1_on_an_ephemeral_port() {
    bounded(async {
        let agent = LoopbackBrowser::bind().await.unwrap();
        let addr = agent.local_addr();
        assert_eq!(addr.ip(), std::net::Ipv4Addr::LOCALHOST);
        assert_ne!(addr.port(), 0);
        let uri: http::Uri = agent.redirect_uri().parse().unwrap();
        assert_eq!(uri.scheme_str(), Some("http"));
        assert_eq!(
            uri.host(),
            Some("127.0.0.1"),
            "never localhost, never 0.0.0.0"
        );
        assert_eq!(uri.port_u16(), Some(addr.port()));
        assert_eq!(uri.path(), "/callback");
        assert!(TcpStream::connect(addr).await.is_ok());
        // Nothing listens on the port at another loopback address (Linux routes all of
        // 127/8 to this machine) or on IPv6.
        #[cfg(target_os = "linux")]
        assert!(
            TcpStream::connect(("127.0.0.2", addr.port()))
                .await
                .is_err()
        );
        assert!(TcpStream::connect(("::1", addr.port())).await.is_err());
    })
    .await;
}

#[tokio::test]
async fn each_agent_has_its_own_port_for_its_whole_life() {
    bounded(async {
        let one = LoopbackBrowser::bind().await.unwrap();
        let two = LoopbackBrowser::bind().await.unwrap();
        assert_ne!(one.redirect_uri(), two.redirect_uri());
        let taken = LoopbackBrowser::bind_port(one.local_addr().port()).await;
        assert!(taken.is_err(), "a second listener on a port in use");
    })
    .await;
}

#[tokio::test]
async fn bind_port_names_that_port_in_the_redirect_uri() {
    bounded(async {
        // A port that was free a moment ago.
        let port = LoopbackBrowser::bind().await.unwrap().local_addr().port();
        let agent = LoopbackBrowser::bind_port(port).await.unwrap();
        assert_eq!(
            agent.redirect_uri(),
            format!("http://127.0.0.1:{port}/callback")
        );
    })
    .await;
}

#[tokio::test]
async fn the_path_is_the_redirect_uris() {
    bounded(async {
        let agent = LoopbackBrowser::bind()
            .await
            .unwrap()
            .path("/oauth/cb")
            .unwrap();
        let port = agent.local_addr().port();
        assert_eq!(
            agent.redirect_uri(),
            format!("http://127.0.0.1:{port}/oauth/cb")
        );
    })
    .await;
}

#[tokio::test]
async fn a_path_that_is_not_a_plain_path_is_a_typed_error() {
    for bad in ["callback", "/cb?x=1", "/cb#f", "/c b", "/cb\n"] {
        let err = LoopbackBrowser::bind()
            .await
            .unwrap()
            .path(bad)
            .expect_err(bad);
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad:?}");
        assert!(err.to_string().contains("starting with '/'"), "{err}");
    }
}

#[tokio::test]
async fn configured_agents_are_user_agents_and_debug_without_secrets() {
    bounded(async {
        let agent = LoopbackBrowser::bind()
            .await
            .unwrap()
            .timeout(Duration::from_millis(300))
            .print_only();
        let debug = format!("{agent:?}");
        assert!(debug.contains(&agent.redirect_uri()), "{debug}");
        assert!(debug.contains("PrintOnly"), "{debug}");
        let agent = agent.open_with(|_| Ok(()));
        assert!(format!("{agent:?}").contains("OpenWith"));
        let shared: Arc<dyn UserAgent> = Arc::new(agent);
        assert!(shared.redirect_uri().starts_with("http://127.0.0.1:"));
    })
    .await;
}
