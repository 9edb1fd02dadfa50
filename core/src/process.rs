//! Process-wide settings a long-running market process wants before it starts its threads.

/// Caps glibc's malloc arenas at the number of cores (at least 2) instead of its default of
/// eight per core.
///
/// The hot paths hand buffers between threads: a file read on a blocking thread is freed by
/// the runtime worker that sent it, network frames are written on another. With one arena
/// per thread that ever allocated, each arena keeps the freed megabytes it has seen, and a
/// 1 GiB transfer benchmark peaked at 135-190 MiB of RSS against 45-48 MiB with the cap
/// (`cargo bench -p benches --bench transfer`, 2026-12-07). Call it first in `main`, before
/// any runtime or thread exists: arenas already created stay. Elsewhere than glibc on Linux
/// it does nothing.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
        // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX takes any positive
        // count, and a failure (return 0) leaves the default in place.
        let _ = unsafe { libc::mallopt(libc::M_ARENA_MAX, arenas) };
    }
}
