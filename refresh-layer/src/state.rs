//! What one layer's services share at run time, built once by the layer's builder.

use std::sync::Arc;

use crate::credential_cell::Cell;
use crate::decision::Rules;
use portcullis_wire::Origin;

/// What every service of one layer shares.
pub(crate) struct Shared {
    pub(crate) cell: Arc<Cell>,
    pub(crate) scope: Arc<[Origin]>,
    pub(crate) keep_existing: bool,
    pub(crate) max_replay: usize,
    /// Which answers refresh, and which requests are sent again.
    pub(crate) rules: Rules,
    pub(crate) report: bool,
}
