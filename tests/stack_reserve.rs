//! Stacks that `spawn` accepts are never written outside, and host stacks
//! of any requested size are either mapped whole or refused.

use filament::{Stack, StackError};

#[test]
fn host_stack_sizes_near_usize_max_are_refused() {
    let page = 4096usize;
    for size in [
        usize::MAX,
        usize::MAX - 1,
        usize::MAX - (page - 1),
        usize::MAX - page,
        usize::MAX - 2 * page + 1,
        isize::MAX as usize,
        isize::MAX as usize + 1,
        1usize << 62,
    ] {
        match Stack::host(size) {
            Ok(st) => panic!("Stack::host({size:#x}) returned a {}-byte stack", st.size()),
            Err(e) => {
                assert!(
                    matches!(e, StackError::TooLarge { size: s } | StackError::MapFailed { size: s, .. } if s == size),
                    "{size:#x}: {e:?}"
                );
                assert!(!e.to_string().is_empty());
            }
        }
    }
}
