fn main() {
    eprintln!("benchmarks: not written yet");
}
