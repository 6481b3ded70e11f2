//! appc types (stub, being written).
