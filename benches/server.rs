//! Per-request wall time of the server side; see `benches/RESULTS.md`.
//!
//! `cargo bench -p portcullis-benches --bench server`

mod common;

use criterion::{Criterion, criterion_group, criterion_main};

fn server(c: &mut Criterion) {
    let mut g = c.benchmark_group("server");
    for (name, mut case) in common::cases() {
        g.bench_function(name, |b| b.iter(&mut case));
    }
    g.finish();
    let mut g = c.benchmark_group("client");
    for (name, mut case) in common::client_cases() {
        let name = name.strip_prefix("client/").unwrap_or(&name).to_owned();
        g.bench_function(name, |b| b.iter(&mut case));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(40)
        .warm_up_time(std::time::Duration::from_secs(1))
        .measurement_time(std::time::Duration::from_secs(3));
    targets = server
}
criterion_main!(benches);
