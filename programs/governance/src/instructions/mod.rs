// Anchor needs the generated account modules at the crate root, hence the glob
// re-exports; each module's `handler` is always called by its full path.
#![allow(ambiguous_glob_reexports)]

pub mod cancel;
pub mod execute;
pub mod guardian_pause;
pub mod initialize_council;
pub mod propose;
pub mod update_council;
pub mod vote;

pub use cancel::*;
pub use execute::*;
pub use guardian_pause::*;
pub use initialize_council::*;
pub use propose::*;
pub use update_council::*;
pub use vote::*;
