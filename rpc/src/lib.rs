//! placeholder during initial build
