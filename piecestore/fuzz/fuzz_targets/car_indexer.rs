//! Any bytes, split at any point, must give the same blocks or a typed error; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use piecestore::CarIndexer;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let run = |chunk: usize| {
        let mut ix = CarIndexer::new();
        let mut found = Vec::new();
        let mut ok = true;
        for c in rest.chunks(chunk.max(1)) {
            if ix.update(c, &mut |b| found.push(b)).is_err() {
                ok = false;
                break;
            }
        }
        let end = ix.finish();
        (ok, end, found)
    };
    let whole = run(rest.len());
    let split = run(usize::from(split) + 1);
    assert_eq!(whole.1, split.1);
    assert_eq!(whole.2, split.2);
});
