//! `oncelog-testkit <role> --store DIR --topic T [options]`: one role of a
//! multi-process oncelog test per process. See `oncelog_testkit::roles`.

use oncelog_testkit::args::Args;
use oncelog_testkit::roles;

fn main() {
    let mut argv = std::env::args().skip(1);
    let Some(role) = argv.next() else {
        eprintln!("usage: oncelog-testkit <append|read|follow|wait|fill|probe|fork-hold|torture> --store DIR --topic T ...");
        std::process::exit(64);
    };
    let result = Args::parse(argv)
        .map_err(roles::Failure::from)
        .and_then(|args| roles::run(&role, &args));
    if let Err(failure) = result {
        roles::say(&failure.line);
        eprintln!("oncelog-testkit {role}: {}", failure.line);
        std::process::exit(failure.code);
    }
}
