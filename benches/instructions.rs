//! Instructions per request, for when wall time is too noisy to compare (shared VMs): run one
//! case N times under callgrind, collecting only inside `measured_loop` (setup such as RSA key
//! generation varies by millions of instructions and is left out); the count divided by N is
//! the cost of one request, repeatably. `benches/instructions.sh` does this for every case.
//!
//! `cargo bench -p portcullis-benches --bench instructions -- CASE N` (without CASE it lists the cases)

mod common;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let mut cases = common::cases();
    cases.extend(common::client_cases());
    let Some(name) = args.first() else {
        for (name, _) in &cases {
            println!("{name}");
        }
        return;
    };
    let n: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let (_, case) = cases
        .iter_mut()
        .find(|(c, _)| c == name)
        .unwrap_or_else(|| panic!("no case {name}"));
    measured_loop(case, n);
}

#[inline(never)]
fn measured_loop(case: &mut dyn FnMut(), n: usize) {
    for _ in 0..n {
        case();
    }
}
