//! Whole JWKS documents, served by an HTTP service that answers with the fuzz input, fetched
//! by a real `JwksKeySource` and then asked for keys: the parser must never panic, and only
//! public keys may come out of it.
#![no_main]

use auth_layer::jwt::{JwksKeySource, KeyLookup, KeySource};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Empty, Full};
use jsonwebtoken::Algorithm;
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    })
}

fuzz_target!(|data: &[u8]| {
    let body = Bytes::copy_from_slice(data);
    let http = tower::service_fn(move |_req: Request<Empty<Bytes>>| {
        let body = body.clone();
        async move { Ok::<_, std::convert::Infallible>(Response::new(Full::new(body))) }
    });
    let source = JwksKeySource::builder("https://keys.invalid/jwks")
        .http_client(http)
        .build()
        .unwrap();
    runtime().block_on(async {
        if source.refresh().await.is_err() {
            return;
        }
        for kid in [None, Some("k"), Some("")] {
            for alg in [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
                if let KeyLookup::Found(key) = source.lookup(kid, alg) {
                    assert!(
                        key.algorithms().iter().all(|a| !matches!(
                            a,
                            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
                        )),
                        "a symmetric key came out of a fetched key set"
                    );
                }
            }
        }
    });
});
