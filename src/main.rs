/// The alert agent's routine-event exit runs before `main` (src/alert/fast.rs): glibc calls the
/// executable's `.init_array` entries with argc, argv and envp.
#[used]
#[link_section = ".init_array"]
static ALERT_ROUTINE_EXIT: unsafe extern "C" fn(
    std::ffi::c_int,
    *const *const std::ffi::c_char,
    *const *const std::ffi::c_char,
) = hastack::alert::fast::routine_exit;

fn main() {
    std::process::exit(hastack::applets::main(std::env::args_os().collect()));
}
