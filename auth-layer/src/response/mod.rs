//! What the layer answers: challenges, problem bodies, and the 500 of a misconfigured server.

pub(crate) mod challenge;
pub(crate) mod misconfiguration;
pub(crate) mod problem;
