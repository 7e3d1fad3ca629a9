fn main() {
    std::process::exit(hastack::applets::main(std::env::args_os().collect()));
}
