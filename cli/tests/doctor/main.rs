//! `portcullis doctor` against real servers on loopback: the demo server (embedded provider,
//! and `--jwks-url` mode with a key set served here), and a small API that is not Portcullis
//! and is set up wrong the ways APIs commonly are. Each situation has its expected verdict and
//! causes, in one table per concept; every cause id is produced by at least one of them.

use portcullis_examples_support::demo_app;

mod cors;
mod coverage;
mod hostile_output;
mod keys;
mod legacy;
mod servers;
mod support;
mod tokens;
mod usage;
mod world;
